// Package ctrtest is the conformance suite for ctr.Runtime implementations:
// one suite, run against every runtime (process, docker, fake), so that the
// agent can rely on the contract and not on one runtime's habits.
//
// A runtime's test calls Run with a Factory:
//
//	func TestConformance(t *testing.T) {
//		ctrtest.Run(t, ctrtest.Factory{New: newRuntime, Reopen: reopen, Workload: def})
//	}
//
// The containers the suite starts run the scripted program of package
// workload (ctr/workload): Factory.Workload says how this runtime runs it
// (the process runtime: the test binary, whose TestMain calls workload.Run
// when workload.Env is set; Docker: an image holding such a binary; the
// fake: the script itself). The suite synchronises with its containers
// only through the runtime (Logs, Events), never through the host's files,
// and asserts no durations: its deadlines only turn a hang into a failure.
package ctrtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
	"github.com/holdfast/holdfast/internal/agent/ctr/workload"
	"github.com/holdfast/holdfast/internal/domain"
)

// Factory builds runtimes for the suite.
type Factory struct {
	// New returns a runtime over fresh, empty state, on which Adopt has not
	// been called. It registers its own cleanup (Close); the suite may
	// Close it earlier.
	New func(t *testing.T) ctr.Runtime

	// Reopen closes rt and returns a new runtime over the same state, as
	// an agent restart does (Adopt not called yet). Nil skips the adoption
	// subtests.
	Reopen func(t *testing.T, rt ctr.Runtime) ctr.Runtime

	// Workload returns the definition of a container called name whose
	// program is the workload script args: the program in EntryPoint, the
	// script as Command, and in Environment whatever the program needs to
	// run as the workload. The suite adds its own variables to the Spec's
	// Env; health checks run ["CMD", EntryPoint..., script...].
	Workload func(name string, args ...string) domain.ContainerDefinition
}

// hangGuard bounds every wait so that a bug fails the test instead of
// hanging it. It is not a performance threshold.
const hangGuard = 60 * time.Second

// Run runs every conformance subtest against runtimes made by f.
func Run(t *testing.T, f Factory) {
	if f.New == nil || f.Workload == nil {
		t.Fatal("ctrtest: Factory.New and Factory.Workload are required")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"ExitCodeAndLogs", testExitCodeAndLogs},
		{"Env", testEnv},
		{"StopDefault", testStopDefault},
		{"StopTrapped", testStopTrapped},
		{"StopKillsAfterTimeout", testStopKills},
		{"StartFailure", testStartFailure},
		{"IDs", testIDs},
		{"FollowLogs", testFollowLogs},
		{"LogCap", testLogCap},
		{"FollowLogsAcrossRotations", testFollowRotations},
		{"Stats", testStats},
		{"Health", testHealth},
		{"ConcurrentStarts", testConcurrent},
		{"TaskSetup", testTaskSetup},
		{"AdoptRunning", testAdoptRunning},
		{"AdoptRedeliversExit", testAdoptRedelivers},
		{"AdoptKeepsHealth", testAdoptHealth},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// env is one runtime under test with the events it delivered and not yet
// consumed.
type env struct {
	t    *testing.T
	f    Factory
	rt   ctr.Runtime
	dir  string
	seen []ctr.Event
}

func newEnv(t *testing.T, f Factory) *env {
	e := &env{t: t, f: f, rt: f.New(t), dir: t.TempDir()}
	if _, err := e.rt.Adopt(context.Background()); err != nil {
		t.Fatalf("Adopt on fresh state: %v", err)
	}
	return e
}

func task(id string) ctr.TaskSpec {
	return ctr.TaskSpec{
		ID: id, ARN: "arn:aws:ecs:us-east-1:000000000000:task/ctrtest/" + id, Cluster: "ctrtest",
		Definition: &domain.TaskDefinition{Family: "ctrtest", Revision: 1},
	}
}

// spec is a Spec for container id (task "t1", container name from the id)
// running the workload script.
func (e *env) spec(id string, script ...string) ctr.Spec {
	cd := e.f.Workload(strings.ReplaceAll(id, ".", "-"), script...)
	var vars []string
	for _, kv := range cd.Environment {
		vars = append(vars, kv.Name+"="+kv.Value)
	}
	return ctr.Spec{
		ID: id, Task: task("t1"), Container: cd, Env: vars,
		LogPath: filepath.Join(e.dir, "logs", id+".log"), StopTimeout: hangGuard,
	}
}

func (e *env) start(s ctr.Spec) ctr.Info {
	e.t.Helper()
	if _, err := e.rt.SetupTask(context.Background(), s.Task); err != nil {
		e.t.Fatalf("SetupTask(%s): %v", s.Task.ID, err)
	}
	info, err := e.rt.Start(context.Background(), s)
	if err != nil {
		e.t.Fatalf("Start(%s): %v", s.ID, err)
	}
	if info.ID != s.ID {
		e.t.Fatalf("Start(%s) returned Info for %q", s.ID, info.ID)
	}
	return info
}

// next returns the next event for id (of any type), keeping the others.
func (e *env) next(id string) ctr.Event {
	e.t.Helper()
	for i, ev := range e.seen {
		if ev.ID == id {
			e.seen = slices.Delete(e.seen, i, i+1)
			return ev
		}
	}
	timer := time.NewTimer(hangGuard)
	defer timer.Stop()
	for {
		select {
		case ev := <-e.rt.Events():
			if ev.ID == id {
				return ev
			}
			e.seen = append(e.seen, ev)
		case <-timer.C:
			e.t.Fatalf("no event for %s", id)
		}
	}
}

// exit waits for id's Exited event; health events before it are skipped.
func (e *env) exit(id string) ctr.Event {
	e.t.Helper()
	for {
		ev := e.next(id)
		switch ev.Type {
		case ctr.Exited:
			if ev.At.IsZero() {
				e.t.Errorf("Exited event of %s has no time", id)
			}
			return ev
		case ctr.HealthChanged:
		default:
			e.t.Fatalf("event of unknown type %d for %s", ev.Type, id)
		}
	}
}

// noEvent fails if an event for id is delivered before the runtime's events
// go quiet for a moment (a check that nothing is pending, not a timing).
func (e *env) noEvent(id string) {
	e.t.Helper()
	for _, ev := range e.seen {
		if ev.ID == id {
			e.t.Fatalf("unexpected event %+v", ev)
		}
	}
	for {
		select {
		case ev := <-e.rt.Events():
			if ev.ID == id {
				e.t.Fatalf("unexpected event %+v", ev)
			}
			e.seen = append(e.seen, ev)
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

func code(ev ctr.Event) string {
	if ev.Exit.ExitCode == nil {
		return "nil (" + ev.Exit.Reason + ")"
	}
	return fmt.Sprint(*ev.Exit.ExitCode)
}

func (e *env) wantCode(ev ctr.Event, want int) {
	e.t.Helper()
	if ev.Exit.ExitCode == nil || *ev.Exit.ExitCode != want {
		e.t.Fatalf("%s exited with %s, want %d (%+v)", ev.ID, code(ev), want, ev.Exit)
	}
}

func (e *env) logs(id string, follow bool) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	rc, err := e.rt.Logs(ctx, id, ctr.LogOptions{Follow: follow})
	if err != nil {
		e.t.Fatalf("Logs(%s): %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatalf("reading logs of %s: %v (read %q)", id, err, b)
	}
	return string(b)
}

// waitLog follows id's log until it holds line.
func (e *env) waitLog(id, line string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	rc, err := e.rt.Logs(ctx, id, ctr.LogOptions{Follow: true})
	if err != nil {
		e.t.Fatalf("Logs(%s): %v", id, err)
	}
	defer rc.Close()
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(line+"\n")) {
		n, err := rc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			e.t.Fatalf("%s never logged %q: %v (logged %q)", id, line, err, got)
		}
	}
}

func testExitCodeAndLogs(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-app", "out", "hello", "err", "oops", "exit", "3")
	info := e.start(s)
	if info.StartedAt.IsZero() {
		t.Error("Start returned no start time")
	}
	ev := e.exit(s.ID)
	e.wantCode(ev, 3)
	if ev.Exit.Signal != "" || ev.Exit.Reason != "" || ev.Exit.OOMKilled {
		t.Fatalf("ordinary exit reported as %+v", ev.Exit)
	}
	out := e.logs(s.ID, false)
	if !strings.Contains(out, "hello\n") || !strings.Contains(out, "oops\n") {
		t.Fatalf("logs = %q, want both streams", out)
	}
	if got := e.logs(s.ID, true); got != out {
		t.Fatalf("following the log of an exited container = %q, want %q", got, out)
	}
	if err := e.rt.Forget(s.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Forget(s.ID); err != nil {
		t.Fatalf("second Forget: %v", err)
	}
	if _, err := e.rt.Logs(context.Background(), s.ID, ctr.LogOptions{}); !errors.Is(err, ctr.ErrNotFound) {
		t.Fatalf("Logs after Forget: %v, want ErrNotFound", err)
	}
	kept, err := readFile(s.LogPath)
	if err != nil || kept != out {
		t.Fatalf("log at LogPath after Forget = %q, %v; want %q", kept, err, out)
	}
	e.noEvent(s.ID)
	// The id is free again.
	e.start(e.spec("t1-app", "exit", "0"))
	e.wantCode(e.exit(s.ID), 0)
}

func testEnv(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-env", "env", "HOLDFAST_FOO", "env", "HOLDFAST_NOT_SET", "env", "ECS_AGENT_URI")
	s.Env = ctr.MergeEnv(s.Env, []string{"HOLDFAST_FOO=bar baz", "ECS_AGENT_URI=http://127.0.0.1:1/api/x"})
	e.start(s)
	e.wantCode(e.exit(s.ID), 0)
	out := e.logs(s.ID, false)
	for _, want := range []string{"HOLDFAST_FOO=bar baz\n", "HOLDFAST_NOT_SET unset\n", "ECS_AGENT_URI=http://127.0.0.1:1/api/x\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("logs = %q, want %q", out, want)
		}
	}
}

func testStopDefault(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-stop", "out", "ready", "sleep")
	e.start(s)
	e.waitLog(s.ID, "ready")
	if err := e.rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	ev := e.exit(s.ID)
	e.wantCode(ev, 143)
	if ev.Exit.Signal != "" && ev.Exit.Signal != "SIGTERM" {
		t.Fatalf("signal %q, want SIGTERM or none", ev.Exit.Signal)
	}
	if err := e.rt.Stop(s.ID, 0); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
	if _, err := e.rt.Stats(context.Background(), s.ID); !errors.Is(err, ctr.ErrNotRunning) {
		t.Fatalf("Stats after exit: %v, want ErrNotRunning", err)
	}
}

func testStopTrapped(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-trap", "trap-term", "0", "out", "ready", "sleep")
	e.start(s)
	e.waitLog(s.ID, "ready")
	if err := e.rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second Stop cannot shorten the grace period.
	if err := e.rt.Stop(s.ID, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ev := e.exit(s.ID)
	e.wantCode(ev, 0)
	if ev.Exit.Signal != "" {
		t.Fatalf("a program that handled SIGTERM reported signal %q", ev.Exit.Signal)
	}
}

func testStopKills(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-stubborn", "ignore-term", "out", "ready", "sleep")
	e.start(s)
	e.waitLog(s.ID, "ready")
	if err := e.rt.Stop(s.ID, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ev := e.exit(s.ID)
	e.wantCode(ev, 137)
	if ev.Exit.Signal != "" && ev.Exit.Signal != "SIGKILL" {
		t.Fatalf("signal %q, want SIGKILL or none", ev.Exit.Signal)
	}
}

func testStartFailure(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-bad", "exit", "0")
	s.Container.EntryPoint = []string{"/nonexistent/holdfast-ctrtest-program"}
	if _, err := e.rt.SetupTask(context.Background(), s.Task); err != nil {
		t.Fatal(err)
	}
	_, err := e.rt.Start(context.Background(), s)
	if !errors.Is(err, ctr.ErrCannotStart) || !strings.HasPrefix(err.Error(), "CannotStartContainerError: ") {
		t.Fatalf("Start of a missing program: %v, want CannotStartContainerError", err)
	}
	noCmd := e.spec("t1-nocmd")
	noCmd.Container.EntryPoint, noCmd.Container.Command, noCmd.Container.Image = nil, nil, ""
	if _, err := e.rt.Start(context.Background(), noCmd); !errors.Is(err, ctr.ErrCannotStart) {
		t.Fatalf("Start without image or command: %v, want CannotStartContainerError", err)
	}
	e.noEvent(s.ID)
	if _, err := e.rt.Stats(context.Background(), s.ID); !errors.Is(err, ctr.ErrNotFound) {
		t.Fatalf("Stats of a failed start: %v, want ErrNotFound", err)
	}
	// Nothing is left behind: the id starts.
	e.start(e.spec("t1-bad", "exit", "4"))
	e.wantCode(e.exit(s.ID), 4)
}

func testIDs(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-id", "out", "ready", "sleep")
	e.start(s)
	if _, err := e.rt.Start(context.Background(), s); !errors.Is(err, ctr.ErrExists) {
		t.Fatalf("second Start of a running id: %v, want ErrExists", err)
	}
	if err := e.rt.Forget(s.ID); !errors.Is(err, ctr.ErrNotExited) {
		t.Fatalf("Forget of a running container: %v, want ErrNotExited", err)
	}
	for _, bad := range []string{"", "../evil", ".hidden", "a/b", strings.Repeat("x", 256)} {
		b := e.spec("t1-ok", "exit", "0")
		b.ID = bad
		if _, err := e.rt.Start(context.Background(), b); err == nil {
			t.Fatalf("Start accepted id %q", bad)
		}
	}
	const unknown = "t1-unknown"
	if err := e.rt.Stop(unknown, time.Second); !errors.Is(err, ctr.ErrNotFound) {
		t.Fatalf("Stop(unknown): %v", err)
	}
	if _, err := e.rt.Stats(context.Background(), unknown); !errors.Is(err, ctr.ErrNotFound) {
		t.Fatalf("Stats(unknown): %v", err)
	}
	if _, err := e.rt.Logs(context.Background(), unknown, ctr.LogOptions{}); !errors.Is(err, ctr.ErrNotFound) {
		t.Fatalf("Logs(unknown): %v", err)
	}
	if err := e.rt.Forget(unknown); err != nil {
		t.Fatalf("Forget(unknown): %v", err)
	}
	if err := e.rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	e.exit(s.ID)
}

func testFollowLogs(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-follow", "out", "one", "sleep-ms", "300", "out", "two", "sleep-ms", "300", "out", "three", "exit", "0")
	e.start(s)
	// Follow ends by itself once the container has exited, with everything.
	out := e.logs(s.ID, true)
	if out != "one\ntwo\nthree\n" {
		t.Fatalf("followed logs = %q", out)
	}
	e.wantCode(e.exit(s.ID), 0)

	// Following ends when its context does.
	l := e.spec("t1-long", "out", "ready", "sleep")
	e.start(l)
	e.waitLog(l.ID, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := e.rt.Logs(ctx, l.ID, ctr.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(rc); done <- err }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("following a running container ended without an error when its context ended")
		}
	case <-time.After(hangGuard):
		t.Fatal("following did not end with its context")
	}
	rc.Close()
	if err := e.rt.Stop(l.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	e.exit(l.ID)
}

func testStats(t *testing.T, f Factory) {
	e := newEnv(t, f)
	s := e.spec("t1-stats", "out", "ready", "sleep")
	e.start(s)
	e.waitLog(s.ID, "ready")
	st, err := e.rt.Stats(context.Background(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.At.IsZero() || st.PIDs < 1 || st.MemoryBytes == 0 || st.CPU < 0 {
		t.Fatalf("stats of a running container = %+v", st)
	}
	if err := e.rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	e.exit(s.ID)
}

func healthCheck(f Factory, script ...string) *domain.HealthCheck {
	w := f.Workload("probe", script...)
	// Probes every second; the timeout is generous, as a probe is a whole
	// program start (a race-enabled test binary on a busy machine).
	one, timeout := 1, 30
	cmd := append([]string{"CMD"}, w.EntryPoint...)
	return &domain.HealthCheck{Command: append(cmd, w.Command...), Interval: &one, Timeout: &timeout, Retries: &one}
}

// waitHealth waits for id's health event and checks what it says.
func (e *env) waitHealth(id, want string) {
	e.t.Helper()
	ev := e.next(id)
	if ev.Type != ctr.HealthChanged || ev.Health != want {
		e.t.Fatalf("event %+v, want health %s", ev, want)
	}
}

func testHealth(t *testing.T, f Factory) {
	e := newEnv(t, f)
	good := e.spec("t1-good", "out", "ready", "sleep")
	good.Container.HealthCheck = healthCheck(f, "exit", "0")
	bad := e.spec("t1-bad", "out", "ready", "sleep")
	bad.Container.HealthCheck = healthCheck(f, "exit", "1")
	none := e.spec("t1-none", "out", "ready", "sleep")
	if info := e.start(good); info.Health != domain.Unknown {
		t.Fatalf("health at start = %q, want UNKNOWN", info.Health)
	}
	e.start(bad)
	if info := e.start(none); info.Health != "" {
		t.Fatalf("health of a container without a check = %q", info.Health)
	}
	e.waitHealth(good.ID, domain.Healthy)
	e.waitHealth(bad.ID, domain.Unhealthy)
	for _, s := range []ctr.Spec{good, bad, none} {
		if err := e.rt.Stop(s.ID, hangGuard); err != nil {
			t.Fatal(err)
		}
		// No health event after a stop has begun is required, but the
		// exit must be the last event of each container.
		e.exit(s.ID)
		e.noEvent(s.ID)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	e := newEnv(t, f)
	const n = 8
	specs := make([]ctr.Spec, n)
	for i := range specs {
		specs[i] = e.spec(fmt.Sprintf("t1-c%d", i), "out", fmt.Sprint("n", i), "exit", fmt.Sprint(10+i))
	}
	if _, err := e.rt.SetupTask(context.Background(), specs[0].Task); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range specs {
		wg.Go(func() { _, errs[i] = e.rt.Start(context.Background(), s) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
	}
	for i, s := range specs {
		e.wantCode(e.exit(s.ID), 10+i)
		if got := e.logs(s.ID, false); got != fmt.Sprint("n", i, "\n") {
			t.Fatalf("logs of %s = %q", s.ID, got)
		}
	}
}

func testTaskSetup(t *testing.T, f Factory) {
	e := newEnv(t, f)
	tk := task("t2")
	n1, err := e.rt.SetupTask(context.Background(), tk)
	if err != nil {
		t.Fatal(err)
	}
	if n1.Mode == "" {
		t.Fatal("SetupTask returned no network mode")
	}
	n2, err := e.rt.SetupTask(context.Background(), tk)
	if err != nil || n2.Mode != n1.Mode || !slices.Equal(n2.IPv4Addresses, n1.IPv4Addresses) {
		t.Fatalf("SetupTask is not idempotent: %+v then %+v, %v", n1, n2, err)
	}
	for range 2 {
		if err := e.rt.TeardownTask(context.Background(), tk.ID); err != nil {
			t.Fatalf("TeardownTask: %v", err)
		}
	}
	if err := e.rt.TeardownTask(context.Background(), "never-set-up"); err != nil {
		t.Fatalf("TeardownTask of an unknown task: %v", err)
	}
}

func (e *env) reopen() {
	e.t.Helper()
	e.rt = e.f.Reopen(e.t, e.rt)
	e.seen = nil // the old runtime's undelivered events are the new one's to report
}

func (e *env) adopt() []ctr.Info {
	e.t.Helper()
	infos, err := e.rt.Adopt(context.Background())
	if err != nil {
		e.t.Fatalf("Adopt: %v", err)
	}
	return infos
}

func ids(infos []ctr.Info) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.ID)
	}
	slices.Sort(out)
	return out
}

func testAdoptRunning(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("runtime cannot be reopened")
	}
	e := newEnv(t, f)
	s := e.spec("t1-long", "out", "ready", "sleep")
	started := e.start(s)
	e.waitLog(s.ID, "ready")
	e.reopen()
	infos := e.adopt()
	if !slices.Equal(ids(infos), []string{s.ID}) {
		t.Fatalf("Adopt = %v, want [%s]", ids(infos), s.ID)
	}
	if started.PID != 0 && infos[0].PID != started.PID {
		t.Fatalf("adopted pid %d, started as %d", infos[0].PID, started.PID)
	}
	if !infos[0].StartedAt.IsZero() && !infos[0].StartedAt.Equal(started.StartedAt) {
		t.Fatalf("adopted start time %v, started at %v", infos[0].StartedAt, started.StartedAt)
	}
	if _, err := e.rt.Stats(context.Background(), s.ID); err != nil {
		t.Fatalf("Stats of an adopted container: %v", err)
	}
	if err := e.rt.Forget(s.ID); !errors.Is(err, ctr.ErrNotExited) {
		t.Fatalf("Forget of an adopted live container: %v", err)
	}
	if infos := e.adopt(); len(infos) != 0 {
		t.Fatalf("a second Adopt took over %v again", ids(infos))
	}
	if err := e.rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	e.wantCode(e.exit(s.ID), 143)
	if !strings.Contains(e.logs(s.ID, true), "ready\n") {
		t.Fatal("the adopted container's log is not readable")
	}
	if err := e.rt.Forget(s.ID); err != nil {
		t.Fatal(err)
	}
}

func testAdoptRedelivers(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("runtime cannot be reopened")
	}
	e := newEnv(t, f)
	s := e.spec("t1-short", "exit", "7")
	e.start(s)
	e.wantCode(e.exit(s.ID), 7)
	// Delivered but not forgotten: the next runtime reports it again.
	e.reopen()
	if got := ids(e.adopt()); !slices.Equal(got, []string{s.ID}) {
		t.Fatalf("Adopt = %v", got)
	}
	e.wantCode(e.exit(s.ID), 7)
	if err := e.rt.Forget(s.ID); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if got := ids(e.adopt()); len(got) != 0 {
		t.Fatalf("Adopt after Forget = %v", got)
	}
}

func testAdoptHealth(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("runtime cannot be reopened")
	}
	e := newEnv(t, f)
	s := e.spec("t1-hc", "out", "ready", "sleep")
	s.Container.HealthCheck = healthCheck(f, "exit", "0")
	e.start(s)
	e.waitHealth(s.ID, domain.Healthy)
	e.reopen()
	infos := e.adopt()
	if len(infos) != 1 || infos[0].Health != domain.Healthy {
		t.Fatalf("adopted %+v, want the container HEALTHY", infos)
	}
	if err := e.rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	e.wantCode(e.exit(s.ID), 143)
}

func testClosed(t *testing.T, f Factory) {
	e := newEnv(t, f)
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.rt.Start(context.Background(), e.spec("t1-late", "exit", "0")); !errors.Is(err, ctr.ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
}

// output is what a script of lines steps printing n lines in all writes.
func output(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(workload.Line(i))
	}
	return b.String()
}

// logsFrom reads id's log from offset (no follow) and returns it with the
// position it started at.
func (e *env) logsFrom(id string, offset int64) (string, int64) {
	e.t.Helper()
	rc, err := e.rt.Logs(context.Background(), id, ctr.LogOptions{Offset: offset})
	if err != nil {
		e.t.Fatalf("Logs(%s, offset %d): %v", id, offset, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatalf("reading logs of %s: %v", id, err)
	}
	return string(b), rc.Offset()
}

// A container that writes much more than its log cap leaves at most the cap
// on disk (at its LogPath, in ctr/logfile's layout) and its newest output
// readable, from any position, through the runtime and after Forget.
func testLogCap(t *testing.T, f Factory) {
	e := newEnv(t, f)
	const n = 3000 // 36,000 bytes
	s := e.spec("t1-flood", "lines", fmt.Sprint(n), "exit", "0")
	s.LogLimits = logfile.Limits{MaxBytes: 4096, MaxFiles: 3}
	e.start(s)
	e.wantCode(e.exit(s.ID), 0)
	all := output(n)
	got, off := e.logsFrom(s.ID, 0)
	if got != all[off:] {
		t.Fatalf("log from %d is not the end of the output (%d bytes read)", off, len(got))
	}
	if kept := int64(len(got)); kept > s.LogLimits.Total() || kept <= s.LogLimits.Total()-s.LogLimits.MaxBytes {
		t.Fatalf("kept %d bytes of %d under %v", kept, len(all), s.LogLimits)
	}
	// From a position still kept: exactly what follows it.
	from := int64(len(all)) - 100
	if got, at := e.logsFrom(s.ID, from); at != from || got != all[from:] {
		t.Fatalf("log from %d started at %d with %d bytes, want the last 100", from, at, len(got))
	}
	if err := e.rt.Forget(s.ID); err != nil {
		t.Fatal(err)
	}
	paths, err := logfile.Paths(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("log file %s has mode %v; logs are private to the agent", p, perm)
		}
		total += fi.Size()
	}
	if len(paths) > s.LogLimits.MaxFiles || total > s.LogLimits.Total() {
		t.Fatalf("%d log files, %d bytes on disk under %v", len(paths), total, s.LogLimits)
	}
	r, err := logfile.Open(context.Background(), s.LogPath, logfile.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || string(b) != got || r.Offset() != off {
		t.Fatalf("log after Forget: %d bytes from %d, %v; want %d from %d", len(b), r.Offset(), err, len(got), off)
	}
}

// A follower started with the container reads on across rotations to the
// last line; it may skip what was rotated away before it read it, never
// reorder or stop early.
func testFollowRotations(t *testing.T, f Factory) {
	e := newEnv(t, f)
	var script []string
	for range 6 {
		script = append(script, "lines", "300", "sleep-ms", "200")
	}
	s := e.spec("t1-rotating", append(script, "exit", "0")...)
	s.LogLimits = logfile.Limits{MaxBytes: 4096, MaxFiles: 2}
	e.start(s)
	out := e.logs(s.ID, true)
	e.wantCode(e.exit(s.ID), 0)
	if !strings.HasPrefix(out, workload.Line(1)) {
		t.Fatalf("the follower did not start at the first line: %.40q", out)
	}
	if !strings.HasSuffix(out, workload.Line(6*300)) {
		t.Fatalf("the follower stopped before the last line: ...%q", out[max(0, len(out)-40):])
	}
	last := 0
	for line := range strings.Lines(out) {
		var n int
		if _, err := fmt.Sscanf(line, "line-%06d\n", &n); err != nil || line != workload.Line(n) || n <= last {
			t.Fatalf("followed line %q after line %d", line, last)
		}
		last = n
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
