package main

// End-to-end tests of the queue consumer through real binaries: the real
// holdfast (`holdfast up`, or an in-process control plane with a fake clock
// plus the real agent), the real worker binary as a task process, and a real
// redis-server. Skipped under -short, and when redis-server is missing and
// cannot be installed (as root with apt-get).

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/examples/internal/democtl"
	"github.com/holdfast/holdfast/examples/internal/demotest"
	"github.com/holdfast/holdfast/internal/agent"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/testutil"
)

// TestMain removes the holdfast binary the tests build.
func TestMain(m *testing.M) { testutil.Main(m) }

// redisServer returns the redis-server binary, installing the Debian
// package when missing and running as root; it skips the test otherwise.
func redisServer(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "redis-server"}} {
				cmd := exec.Command("apt-get", args...)
				cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Logf("apt-get %v: %v\n%s", args, err, out)
					break
				}
			}
			if p, err := exec.LookPath("redis-server"); err == nil {
				return p
			}
		}
	}
	t.Skip("redis-server is not installed and could not be installed (apt-get install redis-server)")
	return ""
}

// startRedis runs a private redis-server and returns its URL.
func startRedis(t *testing.T) string {
	t.Helper()
	bin := redisServer(t)
	dir := t.TempDir()
	port := testutil.FreePort(t)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--save", "", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "redis", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port)
}

// waitFor polls cond every 20 ms until it holds, failing after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	testutil.EventuallyTrue(t, limit, 20*time.Millisecond, what, cond)
}

// TestDemo runs demo.sh against the real `holdfast up` with a short job
// and checks the story: the post's log lines in order, the service event,
// and the task stopping within 1 s of the release.
func TestDemo(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	redisServer(t)
	const jobMS = 3000
	demo := demotest.Run(t, "queue-consumer", "DEMO_JOB_MS="+strconv.Itoa(jobMS))

	// The post's lines, in order, for the one job.
	lines := demotest.ReadLog(t, filepath.Join(demo.Work, "worker.log"))
	var id string
	for _, l := range lines {
		if s, ok := strings.CutSuffix(l.Msg, " - Received"); ok {
			id = s
		}
	}
	if id == "" {
		t.Fatal("no job received")
	}
	want := []string{"Acquiring task protection", "Long polling for messages", id + " - Received",
		fmt.Sprintf("%s - Working for %d milliseconds", id, jobMS), id + " - Done", "Releasing task protection", "Task protection released"}
	var got []string
	var released time.Time
	for i, l := range lines {
		if l.Msg == want[0] && i+len(want) <= len(lines) {
			got = got[:0]
			for _, x := range lines[i : i+len(want)] {
				got = append(got, x.Msg)
			}
			if strings.Join(got, "\n") == strings.Join(want, "\n") {
				released = lines[i+len(want)-1].At
				break
			}
		}
	}
	if released.IsZero() {
		t.Fatalf("worker log does not contain, in order:\n%s\nlog:\n%v", strings.Join(want, "\n"), lines)
	}
	demo.CheckStoppedAfterRelease(t, released)
}

// fakeClock for the in-process control plane.
type hfTest struct {
	clk    *clock.Fake
	ecs    *ecs.Client
	apiURL string
}

// startInProcess runs a control plane with a fake clock and the real agent
// (with its process runtime, through the real holdfast shim binary).
func startInProcess(t *testing.T, hfBin string) *hfTest {
	t.Helper()
	clk := clock.NewFake(time.Now())
	discard := slog.New(slog.DiscardHandler)
	srv, err := server.New(server.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Region: "us-east-1", AccountID: "000000000000",
		AccessKeyID: "AK", SecretAccessKey: "SK", Clock: clk, HeartbeatTimeout: 1000 * time.Hour,
		DefaultCluster: "default", Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	agentLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{
		Cluster: "default", ServerURL: "http://" + addr, Listen: agentLn.Addr().String(), DataDir: t.TempDir(),
		Region: "us-east-1", AccessKeyID: "AK", SecretAccessKey: "SK", Shim: []string{hfBin, "shim"},
		PollWait: 2 * time.Second, Logger: discard,
		// Not about task roles: the endpoint acts with the root's
		// credentials, as `holdfast up --task-credentials=none`.
		ProtectionCredentials: credentials.NewStaticCredentialsProvider("AK", "SK", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hs := &http.Server{Handler: ag.Handler()}
	go func() { _ = hs.Serve(agentLn) }()
	srvDone, agDone := make(chan error, 1), make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	go func() { agDone <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-agDone
		<-srvDone
		_ = hs.Close()
	})
	select {
	case <-ag.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready")
	}
	c := testutil.ECSClient("http://"+addr, testutil.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"})
	return &hfTest{clk: clk, ecs: c, apiURL: "http://" + addr}
}

// TestKilledWorkerProtectionExpires: a worker killed (SIGKILL) in the
// middle of a job cannot renew or release its protection, and does not
// leave its task protected past the expiry it set (1 minute): the
// expirationDate is at most acquire time + 1 min, and once it passes the
// scheduler stops the task. The task outlives the worker process because
// the worker runs under a shell that stays alive (standing in for a process
// that is stuck, or a sidecar). Time is the control plane's fake clock, so
// the minute passes at once.
func TestKilledWorkerProtectionExpires(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	redisURL := startRedis(t)
	dir := t.TempDir()
	hfBin := testutil.BuildHoldfast(t)
	qc := testutil.GoBuild(t, filepath.Join(dir, "queue-consumer"), ".")
	h := startInProcess(t, hfBin)
	ctx := context.Background()
	logPath, pidPath := filepath.Join(dir, "worker.log"), filepath.Join(dir, "worker.pid")

	acquireAt := h.clk.Now() // the fake clock does not move until we advance it
	const service = "killed-worker"
	if err := democtl.Deploy(ctx, h.ecs, "default", service, "", []string{
		"REDIS_URL=" + redisURL, "DEMO_LOG=" + logPath, "PID_FILE=" + pidPath, "PROTECTION_MINUTES=1",
	}, []string{"/bin/sh", "-c", `"$0" worker; echo worker exited >>"$DEMO_LOG"; while :; do sleep 1; done`, qc}); err != nil {
		t.Fatal(err)
	}
	lt, err := h.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("default"), ServiceName: aws.String(service)})
	if err != nil || len(lt.TaskArns) != 1 {
		t.Fatalf("ListTasks: %v %v", lt, err)
	}
	arn := lt.TaskArns[0]
	send := exec.Command(qc, "send", "600000")
	send.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("send: %v %s", err, out)
	}
	waitFor(t, "the worker to start the job", 60*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " - Working for 600000 milliseconds")
	})
	if _, err := h.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("default"), Service: aws.String(service), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 'tasks under protection' event", 60*time.Second, func() bool {
		out, err := h.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("default"), Services: []string{service}})
		if err != nil || len(out.Services) != 1 {
			return false
		}
		for _, e := range out.Services[0].Events {
			if strings.Contains(aws.ToString(e.Message), "(reason 1 tasks under protection)") {
				return true
			}
		}
		return false
	})

	// kill -9 the worker mid-job.
	b, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	describe := func() (lastStatus, desired, stopCode string) {
		dt, err := h.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: []string{arn}})
		if err != nil || len(dt.Tasks) != 1 {
			t.Fatalf("DescribeTasks: %v", err)
		}
		tk := dt.Tasks[0]
		return aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), string(tk.StopCode)
	}
	waitFor(t, "the worker process to be gone", 60*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "worker exited")
	})
	protectionOf := func() (bool, time.Time) {
		out, err := h.ecs.GetTaskProtection(ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String("default"), Tasks: []string{arn}})
		if err != nil || len(out.ProtectedTasks) != 1 {
			t.Fatalf("GetTaskProtection: %v %v", out, err)
		}
		pt := out.ProtectedTasks[0]
		return pt.ProtectionEnabled, aws.ToTime(pt.ExpirationDate)
	}
	on, exp := protectionOf()
	t.Logf("after kill -9: protectionEnabled=%v expirationDate=%v (acquired at %v)", on, exp, acquireAt)
	if !on || exp.After(acquireAt.Add(time.Minute)) {
		t.Fatalf("protection %v until %v; want enabled until at most %v", on, exp, acquireAt.Add(time.Minute))
	}
	if st, desired, _ := describe(); st != "RUNNING" || desired != "RUNNING" {
		t.Fatalf("task %s/%s before the expiry; want RUNNING (still protected)", st, desired)
	}

	// Just before the expiry the task is still protected; just after, the
	// scheduler stops it.
	h.clk.Advance(exp.Sub(h.clk.Now()) - time.Second)
	if on, _ := protectionOf(); !on {
		t.Fatal("protection ended before its expirationDate")
	}
	if _, desired, _ := describe(); desired != "RUNNING" {
		t.Fatalf("desired status %s one second before the expiry", desired)
	}
	h.clk.Advance(2 * time.Second)
	if on, _ := protectionOf(); on {
		t.Fatal("still protected after its expirationDate")
	}
	waitFor(t, "the scheduler to stop the task", 60*time.Second, func() bool {
		st, _, _ := describe()
		return st == "STOPPED"
	})
	if _, _, code := describe(); code != "ServiceSchedulerInitiated" {
		t.Fatalf("stopCode %s, want ServiceSchedulerInitiated", code)
	}
}
