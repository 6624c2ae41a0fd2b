package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

// etcdServer is one embedded etcd for the package's tests; each test uses
// prefixes of its own.
var etcdServer *etcdcluster.Embedded

func TestMain(m *testing.M) {
	os.Exit(etcdcluster.RunWithEmbedded(func() int { return testutil.RunMain(m) }, etcdcluster.EmbeddedConfig{}, &etcdServer, false))
}

var creds = testutil.Credentials{AccessKeyID: "AKIDSTORETEST", SecretAccessKey: "store-test-secret"}

// holdfast runs a one-shot command of the binary and returns its output.
func holdfast(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testutil.BuildHoldfast(t), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustHoldfast(t *testing.T, args ...string) string {
	t.Helper()
	out, err := holdfast(t, args...)
	if err != nil {
		t.Fatalf("holdfast %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// serverProc is a running `holdfast server`.
type serverProc struct {
	*testutil.Daemon
	ecs *ecs.Client
}

// startServer runs `holdfast server` with the store flags given and waits
// for /healthz.
func startServer(t *testing.T, dataDir string, storeArgs ...string) *serverProc {
	t.Helper()
	addr := testutil.FreeAddr(t)
	args := append([]string{"server", "--data-dir", dataDir, "--listen", addr,
		"--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey, "--log-level", "debug"}, storeArgs...)
	d := &testutil.Daemon{Name: "holdfast server", Args: args, LogPath: filepath.Join(t.TempDir(), "server.log")}
	d.Start(t)
	t.Cleanup(func() {
		d.Stop(syscall.SIGTERM, 20*time.Second)
		if t.Failed() {
			t.Logf("server log (tail):\n%s", d.LogTail(30))
		}
	})
	d.WaitHealthy(t, "http://"+addr+"/healthz", 60*time.Second)
	return &serverProc{Daemon: d, ecs: testutil.ECSClient("http://"+addr, creds)}
}

// stop stops the server cleanly and checks that it exited on SIGTERM.
func (s *serverProc) stop(t *testing.T) {
	t.Helper()
	if !s.Stop(syscall.SIGTERM, 20*time.Second) {
		t.Fatalf("server did not stop on SIGTERM:\n%s", s.LogTail(20))
	}
}

func etcdArgs(prefix string) []string {
	return []string{"--store", "etcd", "--etcd-endpoints", etcdServer.Endpoint(), "--etcd-prefix", prefix}
}

func newPrefix(t *testing.T) string {
	return fmt.Sprintf("/holdfast-test/%s/%d/", t.Name(), time.Now().UnixNano())
}

// seed creates a task definition and a service of desired count 0 (no
// agent needed) with a tag.
func seed(t *testing.T, c *ecs.Client, service string) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String(service),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Command: []string{"sleep", "60"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{
		ServiceName: aws.String(service), TaskDefinition: aws.String(service), DesiredCount: aws.Int32(0),
	}); err != nil {
		t.Fatal(err)
	}
}

// hasService checks that the control plane knows service with its task
// definition.
func hasService(t *testing.T, c *ecs.Client, service string) {
	t.Helper()
	out, err := c.DescribeServices(t.Context(), &ecs.DescribeServicesInput{Services: []string{service}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 || aws.ToString(out.Services[0].Status) != "ACTIVE" || !strings.Contains(aws.ToString(out.Services[0].TaskDefinition), ":task-definition/"+service+":1") {
		t.Fatalf("DescribeServices(%s) = %+v, failures %+v", service, out.Services, out.Failures)
	}
}

func boltFormat(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dataDir, "holdfast.db"), bolt.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kv, ok, err := b.Get(context.Background(), store.FormatKey)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "absent"
	}
	return string(kv.Value)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// Today's binary starts on a data dir written before format versions: it
// stamps the format and serves the old objects as they were.
func TestServerMigratesStoreFromBeforeFormatVersions(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	dir := t.TempDir()
	copyFile(t, "testdata/bolt-before-format-versions.db", filepath.Join(dir, "holdfast.db"))
	if got := boltFormat(t, dir); got != "absent" {
		t.Fatalf("the fixture already has a format key: %s", got)
	}
	s := startServer(t, dir)
	hasService(t, s.ecs, "web")
	tasks, err := s.ecs.ListTasks(t.Context(), &ecs.ListTasksInput{ServiceName: aws.String("web")})
	if err != nil || len(tasks.TaskArns) != 3 {
		t.Fatalf("ListTasks(web) = %v, %v; want the fixture's 3 tasks", tasks, err)
	}
	prot, err := s.ecs.GetTaskProtection(t.Context(), &ecs.GetTaskProtectionInput{Cluster: aws.String("default"), Tasks: tasks.TaskArns})
	if err != nil || len(prot.ProtectedTasks) != 3 {
		t.Fatalf("GetTaskProtection = %+v, %v", prot, err)
	}
	s.stop(t)
	if !strings.Contains(s.LogTail(200), "store data format migrated") {
		t.Errorf("no migration in the log:\n%s", s.LogTail(30))
	}
	if got := boltFormat(t, dir); got != fmt.Sprint(store.CurrentFormat) {
		t.Fatalf("format after the first start = %s, want %d", got, store.CurrentFormat)
	}
	// The second start has nothing to migrate.
	s = startServer(t, dir)
	hasService(t, s.ecs, "web")
	s.stop(t)
	if strings.Contains(s.LogTail(400), "store data format migrated") {
		t.Errorf("the second start migrated again:\n%s", s.LogTail(30))
	}
}

// A store written by a newer holdfast is refused with a clear message, and
// left as it was.
func TestServerRefusesNewerFormat(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	dir := t.TempDir()
	b, err := bolt.Open(filepath.Join(dir, "holdfast.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Txn(t.Context(), []store.Op{store.Put(store.FormatKey, store.FormatValue(store.CurrentFormat+1)), store.Put("clusters/x", []byte("{}"))}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	out, err := holdfast(t, "server", "--data-dir", dir, "--listen", testutil.FreeAddr(t), "--access-key-id", "a", "--secret-access-key", "b")
	if err == nil || !strings.Contains(out, "newer than this holdfast") || !strings.Contains(out, fmt.Sprintf("format %d", store.CurrentFormat+1)) {
		t.Fatalf("server on a newer store: %v\n%s", err, out)
	}
	if got := boltFormat(t, dir); got != fmt.Sprint(store.CurrentFormat+1) {
		t.Fatalf("format changed to %s", got)
	}
}

// The whole control plane runs on etcd: what it acknowledged survives a
// kill -9, and a second server on the same prefix is refused while the
// first holds it.
func TestServerOnEtcd(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	prefix := newPrefix(t)
	s := startServer(t, t.TempDir(), etcdArgs(prefix)...)
	seed(t, s.ecs, "web")
	if _, err := s.ecs.TagResource(t.Context(), &ecs.TagResourceInput{
		ResourceArn: aws.String("arn:aws:ecs:us-east-1:000000000000:service/default/web"),
		Tags:        []ecstypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := holdfast(t, append([]string{"server", "--data-dir", t.TempDir(), "--listen", testutil.FreeAddr(t),
		"--access-key-id", "a", "--secret-access-key", "b"}, etcdArgs(prefix)...)...)
	if err == nil || !strings.Contains(out, "in use") || !strings.Contains(out, fmt.Sprintf("pid %d", s.Pid())) {
		t.Fatalf("second server on the same prefix: %v\n%s", err, out)
	}
	s.Kill9(t, 10*time.Second)
	// The lock of the killed server expires with its lease (a few seconds);
	// the new server waits for it.
	s = startServer(t, t.TempDir(), etcdArgs(prefix)...)
	hasService(t, s.ecs, "web")
	tags, err := s.ecs.ListTagsForResource(t.Context(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:000000000000:service/default/web")})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "a" {
		t.Fatalf("tags after kill -9 = %+v, %v", tags, err)
	}
	s.stop(t)
}

// backup, restore and migrate through the binary, in every direction: a
// service created on one store is served from each copy.
func TestBackupRestoreMigrate(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	work := t.TempDir()
	d1 := filepath.Join(work, "d1")
	s := startServer(t, d1)
	seed(t, s.ecs, "web")

	// A bolt store is locked by its server: backup says so.
	if out, err := holdfast(t, "backup", filepath.Join(work, "busy.hfb"), "--data-dir", d1); err == nil || !strings.Contains(out, "in use") {
		t.Fatalf("backup of a running bolt store: %v\n%s", err, out)
	}
	s.stop(t)

	f1 := filepath.Join(work, "d1.hfb")
	out := mustHoldfast(t, "backup", f1, "--data-dir", d1)
	if !strings.Contains(out, "backed up") {
		t.Fatalf("backup output: %s", out)
	}
	// Restore into a new bolt data dir.
	d2 := filepath.Join(work, "d2")
	mustHoldfast(t, "restore", f1, "--data-dir", d2)
	if out, err := holdfast(t, "restore", f1, "--data-dir", d2); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("restore into a non-empty store: %v\n%s", err, out)
	}
	mustHoldfast(t, "restore", f1, "--data-dir", d2, "--force")
	s = startServer(t, d2)
	hasService(t, s.ecs, "web")
	seed(t, s.ecs, "api") // written after the restore, at revisions past the bump
	s.stop(t)

	// Migrate d2 onto etcd; the source stays as it was.
	prefix := newPrefix(t)
	out = mustHoldfast(t, append([]string{"migrate", "--from", "bolt", "--to", "etcd", "--data-dir", d2}, etcdArgs(prefix)[2:]...)...)
	if !strings.Contains(out, "migrated") || !strings.Contains(out, "--store etcd") {
		t.Fatalf("migrate output: %s", out)
	}
	s = startServer(t, t.TempDir(), etcdArgs(prefix)...)
	hasService(t, s.ecs, "web")
	hasService(t, s.ecs, "api")
	seed(t, s.ecs, "worker")
	// An etcd store is backed up online.
	f2 := filepath.Join(work, "etcd.hfb")
	mustHoldfast(t, append([]string{"backup", f2}, etcdArgs(prefix)...)...)
	// It cannot be restored into while its server holds it.
	if out, err := holdfast(t, append([]string{"restore", f2, "--force"}, etcdArgs(prefix)...)...); err == nil || !strings.Contains(out, "in use") {
		t.Fatalf("restore into a running etcd store: %v\n%s", err, out)
	}
	s.stop(t)

	// Back to bolt, by restore and by migrate.
	d3 := filepath.Join(work, "d3")
	mustHoldfast(t, "restore", f2, "--data-dir", d3)
	d4 := filepath.Join(work, "d4")
	mustHoldfast(t, append([]string{"migrate", "--from", "etcd", "--to", "bolt", "--data-dir", d4}, etcdArgs(prefix)[2:]...)...)
	for _, d := range []string{d3, d4} {
		s = startServer(t, d)
		for _, svc := range []string{"web", "api", "worker"} {
			hasService(t, s.ecs, svc)
		}
		s.stop(t)
	}

	// And a restore into etcd, on a fresh prefix.
	p2 := newPrefix(t)
	mustHoldfast(t, append([]string{"restore", f1}, etcdArgs(p2)...)...)
	s = startServer(t, t.TempDir(), etcdArgs(p2)...)
	hasService(t, s.ecs, "web")
	s.stop(t)

	// A damaged backup is refused before the store is touched.
	data, err := os.ReadFile(f1)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(work, "bad.hfb")
	if err := os.WriteFile(bad, data[:len(data)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	d5 := filepath.Join(work, "d5")
	if out, err := holdfast(t, "restore", bad, "--data-dir", d5); err == nil || !strings.Contains(out, "not a complete holdfast backup") {
		t.Fatalf("restore of a truncated backup: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(d5, "holdfast.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore created the store: %v", err)
	}
}
