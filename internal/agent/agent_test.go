package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/runtime/fake"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The agent tests below run the real agent against a real control plane
// (internal/server over loopback, a bolt store on disk) with the fake
// runtime, whose containers play workload scripts (internal/agent/ctr/workload).

const hangGuard = 30 * time.Second

type harness struct {
	t       *testing.T
	ecs     *ecs.Client
	tr      *http.Transport
	apiURL  string
	host    *fake.Host
	dataDir string
	cluster string

	ag        *Agent
	agentURL  string
	stopAgent func()
	// beforeRun, if set, adjusts a new agent before it runs.
	beforeRun func(*Agent)
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	srv, err := server.New(server.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Region: "us-east-1", AccountID: "000000000000",
		AccessKeyID: "AK", SecretAccessKey: "SK", HeartbeatTimeout: time.Hour,
		DefaultCluster: "default", Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	h := &harness{t: t, tr: tr, apiURL: "http://" + addr, host: fake.NewHost(), dataDir: t.TempDir(), cluster: "default"}
	h.ecs = testutil.ECSClient(h.apiURL, testutil.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"},
		func(o *ecs.Options) { o.HTTPClient = &http.Client{Transport: tr} })
	t.Cleanup(func() {
		if h.stopAgent != nil {
			h.stopAgent()
		}
		cancel()
		<-srvDone
		tr.CloseIdleConnections()
	})
	return h
}

// startAgent runs an agent over the harness's data dir and fake host, as a
// (re)started agent process would.
func (h *harness) startAgent() *Agent {
	h.t.Helper()
	rt, err := fake.New(h.host)
	if err != nil {
		h.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ag, err := New(Config{
		Cluster: h.cluster, ServerURL: h.apiURL, Listen: ln.Addr().String(), DataDir: h.dataDir,
		AccessKeyID: "AK", SecretAccessKey: "SK", Runtime: rt, PollWait: time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		ln.Close()
		h.t.Fatal(err)
	}
	if h.beforeRun != nil {
		h.beforeRun(ag)
	}
	hs := &http.Server{Handler: ag.Handler()}
	serveDone := make(chan struct{})
	go func() { _ = hs.Serve(ln); close(serveDone) }()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = ag.Run(ctx); close(runDone) }()
	stopped := false
	h.stopAgent = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-runDone
		_ = hs.Close()
		<-serveDone
	}
	h.ag, h.agentURL = ag, "http://"+ln.Addr().String()
	select {
	case <-ag.Ready():
	case <-time.After(hangGuard):
		h.t.Fatal("agent not ready")
	}
	return ag
}

// run registers a task definition with the given containers and runs one
// task of it; it returns the task's ARN.
func (h *harness) run(defs ...types.ContainerDefinition) string {
	h.t.Helper()
	ctx := context.Background()
	td, err := h.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("fake"), ContainerDefinitions: defs,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := h.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(h.cluster), TaskDefinition: td.TaskDefinition.TaskDefinitionArn})
	if err != nil {
		h.t.Fatal(err)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

func container(name string, script ...string) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String("fake"), Command: script}
}

func (h *harness) task(arn string) types.Task {
	h.t.Helper()
	out, err := h.ecs.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(h.cluster), Tasks: []string{arn}})
	if err != nil || len(out.Tasks) != 1 {
		h.t.Fatalf("DescribeTasks: %v %+v", err, out)
	}
	return out.Tasks[0]
}

func (h *harness) waitStatus(arn, status string) types.Task {
	h.t.Helper()
	var got types.Task
	testutil.Eventually(h.t, hangGuard, 10*time.Millisecond, "task "+status, func() (bool, string) {
		got = h.task(arn)
		return aws.ToString(got.LastStatus) == status, aws.ToString(got.LastStatus)
	})
	return got
}

func (h *harness) stopTask(arn string) {
	h.t.Helper()
	if _, err := h.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String(h.cluster), Task: aws.String(arn)}); err != nil {
		h.t.Fatal(err)
	}
}

// waitForgotten waits until the agent has forgotten task arn: no record,
// no runner, nothing left in the runtime.
func (h *harness) waitForgotten(arn string) {
	h.t.Helper()
	id := taskID(arn)
	testutil.EventuallyTrue(h.t, hangGuard, 10*time.Millisecond, "task forgotten", func() bool {
		h.ag.mu.Lock()
		defer h.ag.mu.Unlock()
		return h.ag.tasks[id] == nil && h.ag.runners[id] == nil
	})
	if _, err := h.ag.rt.Logs(context.Background(), id+"-app", ctr.LogOptions{}); err == nil {
		h.t.Fatal("the runtime still knows the container of a forgotten task")
	}
}

func exitCode(c types.Container) int {
	if c.ExitCode == nil {
		return -1
	}
	return int(*c.ExitCode)
}

func TestTaskLifecycle(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	arn := h.run(container("app", "out", "hello", "sleep"))
	h.waitStatus(arn, "RUNNING")
	if got := h.host.Running(); !slices.Equal(got, []string{taskID(arn) + "-app"}) {
		t.Fatalf("running containers %v", got)
	}
	h.stopTask(arn)
	got := h.waitStatus(arn, "STOPPED")
	if c := got.Containers[0]; exitCode(c) != 143 || aws.ToString(c.LastStatus) != "STOPPED" {
		t.Fatalf("container %+v, want STOPPED with 143", c)
	}
	if got.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("stopCode %s", got.StopCode)
	}
	h.waitForgotten(arn)
	if out := readLog(t, h.dataDir, taskID(arn), "app"); out != "hello\n" {
		t.Fatalf("log %q", out)
	}
}

func TestEssentialExitStopsTask(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	side := container("side", "sleep")
	side.Essential = aws.Bool(false)
	arn := h.run(container("app", "sleep-ms", "100", "exit", "3"), side)
	got := h.waitStatus(arn, "STOPPED")
	if aws.ToString(got.StoppedReason) != reasonEssentialExited || got.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Fatalf("stopped %q (%s)", aws.ToString(got.StoppedReason), got.StopCode)
	}
	codes := map[string]int{}
	for _, c := range got.Containers {
		codes[aws.ToString(c.Name)] = exitCode(c)
	}
	if codes["app"] != 3 || codes["side"] != 143 {
		t.Fatalf("exit codes %v", codes)
	}
	h.waitForgotten(arn)
}

func TestNonEssentialExitKeepsTask(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	side := container("side", "exit", "5")
	side.Essential = aws.Bool(false)
	arn := h.run(container("app", "sleep"), side)
	testutil.Eventually(t, hangGuard, 10*time.Millisecond, "the sidecar's exit reported", func() (bool, string) {
		got := h.task(arn)
		for _, c := range got.Containers {
			if aws.ToString(c.Name) == "side" {
				return aws.ToString(c.LastStatus) == "STOPPED" && exitCode(c) == 5, aws.ToString(c.LastStatus)
			}
		}
		return false, "no sidecar"
	})
	if got := h.task(arn); aws.ToString(got.LastStatus) != "RUNNING" {
		t.Fatalf("task %s after a non-essential exit", aws.ToString(got.LastStatus))
	}
	h.stopTask(arn)
	h.waitStatus(arn, "STOPPED")
}

func TestOOMKillReported(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	arn := h.run(container("app", "sleep"))
	h.waitStatus(arn, "RUNNING")
	if err := h.host.OOMKill(taskID(arn) + "-app"); err != nil {
		t.Fatal(err)
	}
	got := h.waitStatus(arn, "STOPPED")
	c := got.Containers[0]
	if aws.ToString(c.Reason) != "OutOfMemoryError: Container killed due to memory usage" || exitCode(c) != 137 {
		t.Fatalf("container reason %q, exit %d", aws.ToString(c.Reason), exitCode(c))
	}
	if aws.ToString(got.StoppedReason) != "Essential container in task exited" {
		t.Fatalf("stoppedReason %q", aws.ToString(got.StoppedReason))
	}
}

func TestStartFailureStopsTask(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	bad := container("app", "exit", "0")
	bad.EntryPoint = []string{"/no/such/program"}
	arn := h.run(bad)
	got := h.waitStatus(arn, "STOPPED")
	if got.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(aws.ToString(got.StoppedReason), "CannotStartContainerError: ") {
		t.Fatalf("stopped %q (%s)", aws.ToString(got.StoppedReason), got.StopCode)
	}
	h.waitForgotten(arn)
}

func TestHealthReported(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	app := container("app", "sleep")
	app.HealthCheck = &types.HealthCheck{Command: []string{"CMD", "exit", "1"}, Interval: aws.Int32(1), Retries: aws.Int32(1)}
	arn := h.run(app)
	testutil.Eventually(t, hangGuard, 10*time.Millisecond, "task UNHEALTHY", func() (bool, string) {
		got := h.task(arn)
		return got.HealthStatus == types.HealthStatusUnhealthy, string(got.HealthStatus)
	})
	h.stopTask(arn)
	h.waitStatus(arn, "STOPPED")
}

// Restarting the agent never stops its tasks: the next agent adopts them
// (here over the same fake host) and still reports how they end.
func TestRestartAdopts(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	arn := h.run(container("app", "trap-term", "0", "sleep"))
	h.waitStatus(arn, "RUNNING")
	h.stopAgent()
	if got := h.host.Running(); len(got) != 1 {
		t.Fatalf("running after the agent stopped: %v", got)
	}
	h.startAgent()
	h.stopTask(arn)
	got := h.waitStatus(arn, "STOPPED")
	if exitCode(got.Containers[0]) != 0 {
		t.Fatalf("exit %d, want the trap's 0", exitCode(got.Containers[0]))
	}
	h.waitForgotten(arn)
}

// The task endpoint's lookup takes the agent's lock on every request; a
// record being written (fsync, which can take a long time on a busy disk)
// must never hold it.
func TestLookupDoesNotWaitForRecordWrites(t *testing.T) {
	h := newHarness(t)
	ag := h.startAgent()
	arn := h.run(container("app", "sleep"))
	h.waitStatus(arn, "RUNNING")
	ag.mu.Lock()
	endpointID := ag.tasks[taskID(arn)].Containers[0].EndpointID
	ag.mu.Unlock()

	// From now on, writing a task record blocks until released.
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	ag.mu.Lock()
	orig := ag.writeFile
	ag.writeFile = func(path string, b []byte) error {
		if strings.Contains(path, string(filepath.Separator)+"tasks"+string(filepath.Separator)) {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return orig(path, b)
	}
	ag.mu.Unlock()
	// A second task makes the agent write records.
	second := h.run(container("app", "sleep"))
	select {
	case <-entered:
	case <-time.After(hangGuard):
		t.Fatal("no record write")
	}
	// While that write is blocked, the endpoint answers.
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(h.agentURL + "/v4/" + endpointID + "/task")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = &statusError{resp.StatusCode}
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangGuard):
		t.Fatal("the task endpoint waited for a record write")
	}
	once.Do(func() { close(release) })
	h.waitStatus(second, "RUNNING")
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

func readLog(t *testing.T, dataDir, task, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "logs", task, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A container may exit before the runner has recorded its start (the
// runtime's event can be applied first); the task must still stop, with
// the exit code, not stay RUNNING.
func TestExitBeforeStartRecorded(t *testing.T) {
	h := newHarness(t)
	h.beforeRun = func(ag *Agent) {
		ag.afterStart = func(runtimeID string) {
			// Hold the runner until the container's exit is applied.
			testutil.EventuallyTrue(t, hangGuard, time.Millisecond, "exit applied", func() bool {
				ag.mu.Lock()
				defer ag.mu.Unlock()
				ref := ag.byRuntime[runtimeID]
				lt := ag.tasks[ref.task]
				return lt != nil && lt.Containers[0].Status == domain.StatusStopped
			})
		}
	}
	h.startAgent()
	arn := h.run(container("app", "exit", "4"))
	got := h.waitStatus(arn, "STOPPED")
	if exitCode(got.Containers[0]) != 4 || aws.ToString(got.StoppedReason) != reasonEssentialExited {
		t.Fatalf("exit %d, reason %q", exitCode(got.Containers[0]), aws.ToString(got.StoppedReason))
	}
	h.waitForgotten(arn)
}
