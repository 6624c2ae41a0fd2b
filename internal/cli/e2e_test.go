//go:build linux

package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/holdfast/holdfast/internal/cli"
	"github.com/holdfast/holdfast/internal/testutil"
)

// The end-to-end test runs the real binary: `holdfast up` on free loopback
// ports with a temporary data dir, and each operator command as a process,
// so exit codes and output are what a person sees.

// TestMain removes the holdfast binary the test builds.
func TestMain(m *testing.M) { testutil.Main(m) }

// cleanEnv is the test's environment without AWS and holdfast settings, so
// that the commands under test see only what each case gives them.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "HOLDFAST_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

type cluster struct {
	bin      string
	dataDir  string
	endpoint string
	ecs      *ecs.Client
	creds    testutil.Credentials
}

// eventually polls cond until it holds; the limit only bounds a hung test.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, 90*time.Second, 200*time.Millisecond, what, cond)
}

// startUp runs `holdfast up` with extra flags.
func startUp(t *testing.T, extra ...string) *cluster {
	t.Helper()
	c := &cluster{bin: testutil.BuildHoldfast(t), dataDir: t.TempDir()}
	args := append([]string{"up", "--data-dir", c.dataDir, "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--log-level", "warn"}, extra...)
	up := exec.Command(c.bin, args...)
	up.Env = cleanEnv()
	var upErr bytes.Buffer
	up.Stderr = &upErr
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	endpoint := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "export AWS_ENDPOINT_URL_ECS="); ok {
				endpoint <- strings.TrimSpace(v)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- up.Wait()
	}()
	select {
	case c.endpoint = <-endpoint:
	case err := <-exited:
		t.Fatalf("holdfast up exited: %v\n%s", err, upErr.String())
	case <-time.After(90 * time.Second):
		_ = up.Process.Kill()
		t.Fatalf("holdfast up printed no banner\n%s", upErr.String())
	}
	c.creds = testutil.ReadCredentials(t, c.dataDir)
	c.ecs = testutil.ECSClient(c.endpoint, c.creds)
	t.Cleanup(func() {
		c.stopAllTasks(t)
		_ = up.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = up.Process.Kill()
			<-exited
		}
		killLeftovers(t, c.dataDir)
	})
	return c
}

// stopAllTasks stops every task through the API and waits until the agent
// reports them stopped: the agent leaves tasks running when it exits.
func (c *cluster) stopAllTasks(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := testutil.StopAllTasks(ctx, c.ecs, "default"); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// killLeftovers kills task processes that the runtime still records as
// running in dataDir, should stopping them through the API have failed.
func killLeftovers(t *testing.T, dataDir string) {
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "state.json" {
			return nil
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), "exit.json")); err == nil {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var st struct {
			ShimPID int `json:"shimPid"`
			PID     int `json:"pid"`
		}
		if json.Unmarshal(b, &st) != nil {
			return nil
		}
		for _, pid := range []int{st.PID, st.ShimPID} {
			if pid > 1 && syscall.Kill(pid, 0) == nil {
				t.Logf("cleanup: killing leftover task process %d", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs an operator command with credentials from the data dir only.
func (c *cluster) run(t *testing.T, args ...string) result {
	t.Helper()
	args = append(args, "--endpoint", c.endpoint, "--data-dir", c.dataDir)
	return c.runEnv(t, cleanEnv(), args...)
}

func (c *cluster) runEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("holdfast %v: %v", args, err)
	}
	return r
}

// ok runs a command that must succeed.
func (c *cluster) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := c.run(t, args...)
	if r.code != 0 {
		t.Fatalf("holdfast %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail with an error containing want.
func (c *cluster) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	r := c.run(t, args...)
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("holdfast %s: exit %d, want non-zero and %q on stderr\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, s)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", s)
	}
	return v
}

func requireColumns(t *testing.T, table string, cols ...string) {
	t.Helper()
	header, _, _ := strings.Cut(table, "\n")
	for _, col := range cols {
		if !strings.Contains(header, col) {
			t.Fatalf("table header %q lacks %q\n%s", header, col, table)
		}
	}
}

func rowOf(t *testing.T, table, id string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, id) {
			return line
		}
	}
	t.Fatalf("no row for %s in\n%s", id, table)
	return ""
}

func TestOperatorCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs holdfast up")
	}
	c := startUp(t)
	ctx := context.Background()

	_, err := c.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name:       aws.String("app"),
			Image:      aws.String("busybox"),
			Essential:  aws.Bool(true),
			EntryPoint: []string{"/bin/sh", "-c"},
			Command:    []string{"echo hello-from-task; exec sleep 60"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster:        aws.String("default"),
		ServiceName:    aws.String("web"),
		TaskDefinition: aws.String("web"),
		DesiredCount:   aws.Int32(2),
	}); err != nil {
		t.Fatal(err)
	}

	// ps: JSON, once both tasks run.
	var ps cli.PSJSON
	eventually(t, "2 running tasks in ps", func() (bool, string) {
		ps = decode[cli.PSJSON](t, c.ok(t, "ps", "--output", "json"))
		return len(ps.Services) == 1 && ps.Services[0].Running == 2 && ps.Services[0].RolloutState == "COMPLETED", fmt.Sprintf("%+v", ps)
	})
	if s := ps.Services[0]; ps.Cluster != "default" || s.Name != "web" || s.Status != "ACTIVE" || s.Desired != 2 || s.Pending != 0 || s.Protected != 0 || s.Deployments != 1 {
		t.Fatalf("ps: %+v", ps)
	}
	table := c.ok(t, "ps")
	requireColumns(t, table, "SERVICE", "STATUS", "DESIRED", "RUNNING", "PENDING", "PROTECTED", "ROLLOUT")
	if f := strings.Fields(rowOf(t, table, "web")); len(f) < 7 || f[1] != "ACTIVE" || f[2] != "2" || f[3] != "2" || f[4] != "0" || f[5] != "0" || f[6] != "COMPLETED" {
		t.Fatalf("ps row: %q", f)
	}

	// The environment alone works too (no data dir, no --endpoint).
	env := append(cleanEnv(), "AWS_ENDPOINT_URL_ECS="+c.endpoint, "AWS_ACCESS_KEY_ID="+c.creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+c.creds.SecretAccessKey, "AWS_REGION=us-east-1")
	if r := c.runEnv(t, env, "ps", "--data-dir", t.TempDir(), "-o", "json"); r.code != 0 || decode[cli.PSJSON](t, r.stdout).Services[0].Running != 2 {
		t.Fatalf("ps from the environment: %+v", r)
	}
	// No credentials at all: a clear error.
	if r := c.runEnv(t, cleanEnv(), "ps", "--endpoint", c.endpoint, "--data-dir", t.TempDir()); r.code == 0 || !strings.Contains(r.stderr, "AWS_ACCESS_KEY_ID") {
		t.Fatalf("ps without credentials: %+v", r)
	}

	// tasks
	tasks := decode[cli.TasksJSON](t, c.ok(t, "tasks", "web", "-o", "json"))
	if len(tasks.Tasks) != 2 {
		t.Fatalf("tasks: %+v", tasks)
	}
	for _, tk := range tasks.Tasks {
		if tk.LastStatus != "RUNNING" || tk.DesiredStatus != "RUNNING" || tk.Instance == "" || tk.Protected || tk.StartedAt == nil || !strings.HasSuffix(tk.ARN, "/"+tk.ID) {
			t.Fatalf("task: %+v", tk)
		}
	}
	t1, t2 := tasks.Tasks[0], tasks.Tasks[1]
	table = c.ok(t, "tasks", "web")
	requireColumns(t, table, "TASK", "LAST STATUS", "DESIRED", "INSTANCE", "PROTECTED", "TIME LEFT", "STARTED")
	if row := rowOf(t, table, t1.ID); !strings.Contains(row, " no ") || !strings.Contains(row, t1.Instance) {
		t.Fatalf("unprotected row: %q", row)
	}

	// protect (by ARN), then tasks and ps show it.
	out := c.ok(t, "protect", t1.ARN, "--minutes", "120")
	if !strings.Contains(out, t1.ID) || !strings.Contains(out, "protected until") {
		t.Fatalf("protect: %q", out)
	}
	table = c.ok(t, "tasks", "web")
	row := strings.Fields(rowOf(t, table, t1.ID))
	if len(row) < 6 || row[4] != "yes" || !regexp.MustCompile(`^1h5\dm$`).MatchString(row[5]) {
		t.Fatalf("protected row: %q\n%s", row, table)
	}
	if row := strings.Fields(rowOf(t, table, t2.ID)); row[4] != "no" || row[5] != "-" {
		t.Fatalf("unprotected row: %q", row)
	}
	tasks = decode[cli.TasksJSON](t, c.ok(t, "tasks", "web", "-o", "json"))
	for _, tk := range tasks.Tasks {
		if want := tk.ID == t1.ID; tk.Protected != want || (want && (tk.ProtectionExpiresAt == nil || tk.TimeLeftSeconds <= 0 || tk.TimeLeftSeconds > 7200)) {
			t.Fatalf("task after protect: %+v", tk)
		}
	}
	if p := decode[cli.PSJSON](t, c.ok(t, "ps", "-o", "json")); p.Services[0].Protected != 1 {
		t.Fatalf("ps protected: %+v", p)
	}
	pj := decode[cli.ProtectJSON](t, c.ok(t, "protect", t1.ID, "-o", "json"))
	if len(pj.ProtectedTasks) != 1 || !pj.ProtectedTasks[0].Protected || pj.ProtectedTasks[0].ExpiresAt == nil || len(pj.Failures) != 0 {
		t.Fatalf("protect json: %+v", pj)
	}

	// Failures: the reason or the AWS error, and a non-zero exit.
	c.fails(t, "MISSING", "protect", "0123456789abcdef0123456789abcdef")
	c.fails(t, "InvalidParameterException", "protect", t1.ID, "--minutes", "3000")
	c.fails(t, "ServiceNotFoundException: Service not found.", "events", "nosuch")
	c.fails(t, "ServiceNotFoundException: Service not found.", "tasks", "nosuch")
	c.fails(t, "ServiceNotFoundException: Service not found.", "scale", "nosuch", "1")
	c.fails(t, "ClusterNotFoundException", "ps", "--cluster", "nosuch")

	// logs: a line the task printed, as text, as JSON and followed.
	if out := c.ok(t, "logs", t1.ID); !strings.Contains(out, "hello-from-task") {
		t.Fatalf("logs: %q", out)
	}
	if lj := decode[cli.LogsJSON](t, c.ok(t, "logs", t1.ARN, "--container", "app", "-o", "json")); lj.Container != "app" || len(lj.Lines) == 0 || lj.Lines[0] != "hello-from-task" {
		t.Fatalf("logs json: %+v", lj)
	}
	c.fails(t, "no logs", "logs", t1.ID, "--container", "nosuch")
	followLogs(t, c, t1.ID)

	// scale in with one task protected: one stops, the event says why.
	if out := c.ok(t, "scale", "web", "0"); !strings.Contains(out, "2 -> 0") {
		t.Fatalf("scale: %q", out)
	}
	const reason = "(reason 1 tasks under protection)"
	eventually(t, "the protection event", func() (bool, string) {
		ev := decode[cli.EventsJSON](t, c.ok(t, "events", "web", "-o", "json"))
		return len(ev.Events) > 0 && strings.Contains(ev.Events[0].Message, reason), fmt.Sprintf("%+v", ev)
	})
	table = c.ok(t, "events", "web")
	requireColumns(t, table, "TIME", "MESSAGE")
	if lines := strings.Split(table, "\n"); len(lines) < 2 || !strings.Contains(lines[1], reason) {
		t.Fatalf("events table, newest first:\n%s", table)
	}
	ev := decode[cli.EventsJSON](t, c.ok(t, "events", "web", "--limit", "1", "-o", "json"))
	if len(ev.Events) != 1 || ev.Events[0].CreatedAt == nil || ev.Service != "web" {
		t.Fatalf("events --limit 1: %+v", ev)
	}
	eventually(t, "the unprotected task stopped", func() (bool, string) {
		tj := decode[cli.TasksJSON](t, c.ok(t, "tasks", "web", "-o", "json"))
		return len(tj.Tasks) == 1 && tj.Tasks[0].ID == t1.ID && tj.Tasks[0].LastStatus == "RUNNING", fmt.Sprintf("%+v", tj)
	})
	if tj := decode[cli.TasksJSON](t, c.ok(t, "tasks", "web", "--all", "-o", "json")); len(tj.Tasks) != 2 {
		t.Fatalf("tasks --all: %+v", tj)
	}

	// protect --off: the scheduler may now stop the last task.
	if out := c.ok(t, "protect", t1.ID, "--off"); !strings.Contains(out, "protection off") {
		t.Fatalf("protect --off: %q", out)
	}
	eventually(t, "the released task stopped", func() (bool, string) {
		p := decode[cli.PSJSON](t, c.ok(t, "ps", "-o", "json"))
		return p.Services[0].Running == 0 && p.Services[0].Protected == 0 && p.Services[0].Desired == 0, fmt.Sprintf("%+v", p)
	})
}

// followLogs runs `logs -f`, waits for the task's line and interrupts it:
// Ctrl-C ends a follow cleanly.
func followLogs(t *testing.T, c *cluster, task string) {
	t.Helper()
	cmd := exec.Command(c.bin, "logs", "-f", task, "--endpoint", c.endpoint, "--data-dir", c.dataDir)
	cmd.Env = cleanEnv()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "hello-from-task") {
				found = true
				seen <- true
			}
		}
		if !found {
			seen <- false
		}
	}()
	select {
	case ok := <-seen:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("logs -f ended without the task's line; stderr: %s", errb.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("logs -f printed nothing; stderr: %s", errb.String())
	}
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f after Ctrl-C: %v; stderr: %s", err, errb.String())
	}
}

// The operator commands find credentials in this order: flags, HOLDFAST_*
// environment, the data dir, then the AWS SDK's chain (a profile here) for
// an endpoint the user named, and never send a profile's keys to the
// default endpoint. With a profile, the user's own IAM identity applies.
func TestCredentialSearchOrder(t *testing.T) {
	c := startUp(t)
	ctx := context.Background()
	td, err := c.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("none"), Essential: aws.Bool(true),
			Command: []string{"sleep", "3600"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ecs.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: td.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	iamc := testutil.IAMClient(c.endpoint, c.creds)
	if _, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("viewer")}); err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("viewer"), PolicyName: aws.String("read"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:List*","ecs:Describe*"],"Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	k, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	profile := filepath.Join(home, "credentials")
	if err := os.WriteFile(profile, []byte("[viewer]\naws_access_key_id = "+aws.ToString(k.AccessKey.AccessKeyId)+
		"\naws_secret_access_key = "+aws.ToString(k.AccessKey.SecretAccessKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	profileEnv := append(cleanEnv(), "HOME="+home, "AWS_SHARED_CREDENTIALS_FILE="+profile, "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_PROFILE=viewer", "AWS_EC2_METADATA_DISABLED=true")
	empty := t.TempDir()

	// The profile, for the endpoint named in the environment: the user
	// may read, and may not scale.
	named := append(profileEnv, "AWS_ENDPOINT_URL="+c.endpoint)
	if r := c.runEnv(t, named, "ps", "--data-dir", empty); r.code != 0 {
		t.Fatalf("ps as the profile's user: %+v", r)
	}
	if r := c.runEnv(t, named, "scale", "web", "3", "--data-dir", empty); r.code == 0 ||
		!strings.Contains(r.stderr, "AccessDeniedException: User: arn:aws:iam::000000000000:user/viewer is not authorized to perform: ecs:UpdateService") {
		t.Fatalf("scale as the profile's user: %+v", r)
	}
	// Not for the default endpoint: nothing is sent.
	if r := c.runEnv(t, profileEnv, "ps", "--data-dir", empty); r.code == 0 || !strings.Contains(r.stderr, "no credentials") ||
		!strings.Contains(r.stderr, "name the endpoint") {
		t.Fatalf("ps with a profile and the default endpoint: %+v", r)
	}
	// The data dir comes before the profile (the root may scale), and
	// HOLDFAST_* before the data dir.
	if r := c.runEnv(t, named, "scale", "web", "2", "--data-dir", c.dataDir); r.code != 0 {
		t.Fatalf("scale with the data dir's credentials: %+v", r)
	}
	bad := append(named, "HOLDFAST_ACCESS_KEY_ID=AKIANOSUCHKEY0000000", "HOLDFAST_SECRET_ACCESS_KEY=x")
	if r := c.runEnv(t, bad, "ps", "--data-dir", c.dataDir); r.code == 0 || !strings.Contains(r.stderr, "UnrecognizedClientException") {
		t.Fatalf("HOLDFAST_* should be used before the data dir: %+v", r)
	}
	// Flags come first.
	secretFile := filepath.Join(home, "secret")
	if err := os.WriteFile(secretFile, []byte(c.creds.SecretAccessKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.runEnv(t, bad, "scale", "web", "2", "--data-dir", empty, "--access-key-id", c.creds.AccessKeyID,
		"--secret-access-key-file", secretFile); r.code != 0 {
		t.Fatalf("scale with flags: %+v", r)
	}
}
