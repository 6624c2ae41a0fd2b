//go:build linux

package process_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/workload"
	"github.com/holdfast/holdfast/internal/agent/runtime/process"
	"github.com/holdfast/holdfast/internal/agent/runtime/process/shim"
	"github.com/holdfast/holdfast/internal/domain"
)

// adopt calls Adopt and returns the ids it took over.
func adopt(rt *process.Runtime) ([]string, error) {
	infos, err := rt.Adopt(context.Background())
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids, err
}

// The test binary doubles as the shim (HOLDFAST_TEST_SHIM=1) and as a
// throw-away agent that the crash test kills with SIGKILL
// (HOLDFAST_TEST_AGENT=<stateDir>).
const (
	envShim  = "HOLDFAST_TEST_SHIM"
	envAgent = "HOLDFAST_TEST_AGENT"
)

func TestMain(m *testing.M) {
	if os.Getenv(workload.Env) == "1" {
		os.Exit(workload.Run(os.Args[1:]))
	}
	if os.Getenv(envShim) == "1" {
		os.Exit(shim.Run(os.Args[1:]))
	}
	// Shims inherit the agent's environment.
	os.Setenv(envShim, "1")
	if dir := os.Getenv(envAgent); dir != "" {
		os.Exit(crashAgent(dir))
	}
	goleak.VerifyTestMain(m)
}

// hangGuard bounds every wait so that a bug fails the test instead of
// hanging it. It is not a performance threshold.
const hangGuard = 30 * time.Second

func shimCmd(tb testing.TB) []string {
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return []string{exe}
}

func newRuntime(tb testing.TB, stateDir string) *process.Runtime {
	tb.Helper()
	rt, err := process.New(process.Options{StateDir: stateDir, Shim: shimCmd(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close() })
	return rt
}

func baseEnv() []string { return []string{"PATH=" + os.Getenv("PATH")} }

func spec(dir, id string, argv ...string) ctr.Spec {
	return ctr.Spec{ID: id, Container: domain.ContainerDefinition{Name: id, EntryPoint: argv}, Env: baseEnv(), LogPath: filepath.Join(dir, id+".log")}
}

func start(tb testing.TB, rt *process.Runtime, s ctr.Spec) int {
	tb.Helper()
	info, err := rt.Start(context.Background(), s)
	if err != nil {
		tb.Fatalf("Start(%s): %v", s.ID, err)
	}
	return info.PID
}

func waitExit(tb testing.TB, rt *process.Runtime, id string) ctr.Exit {
	tb.Helper()
	timer := time.NewTimer(hangGuard)
	defer timer.Stop()
	for {
		select {
		case e := <-rt.Events():
			if e.ID == id && e.Type == ctr.Exited {
				if e.At.IsZero() {
					tb.Error("exit has no time")
				}
				return e.Exit
			}
			tb.Errorf("unexpected event %+v", e)
		case <-timer.C:
			tb.Fatalf("no exit for %s", id)
		}
	}
}

func code(e ctr.Exit) string {
	if e.ExitCode == nil {
		return "nil"
	}
	return strconv.Itoa(*e.ExitCode)
}

// processGone reports whether pid no longer runs (absent or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z"))
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExitCodeAndLog(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, filepath.Join(dir, "state"))
	s := spec(dir, "t1-app", "/bin/sh", "-c", "echo hi; echo err >&2; exit 3")
	start(t, rt, s)
	e := waitExit(t, rt, s.ID)
	if code(e) != "3" || e.Signal != "" || e.Reason != "" {
		t.Fatalf("exit = %+v (code %s), want code 3", e, code(e))
	}
	log, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "hi\n") || !strings.Contains(string(log), "err\n") {
		t.Fatalf("log = %q, want both streams", log)
	}
	if err := rt.Forget(s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", s.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state not removed: %v", err)
	}
	if err := rt.Forget(s.ID); err != nil {
		t.Fatalf("second Forget: %v", err)
	}
}

func TestEnvAndWorkingDir(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, filepath.Join(dir, "state"))
	// "sh" without a slash is resolved through the spec's PATH.
	s := spec(dir, "t1-env", "sh", "-c",
		`printf '%s|%s|%s|%s\n' "$FOO" "$(pwd)" "${HOME-unset}" "${`+envShim+`-none}" > out`)
	s.Env = ctr.MergeEnv(s.Env, []string{"FOO=bar"})
	s.Container.WorkingDirectory = work
	start(t, rt, s)
	if e := waitExit(t, rt, s.ID); code(e) != "0" {
		t.Fatalf("exit = %+v", e)
	}
	out, err := os.ReadFile(filepath.Join(work, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "bar|" + work + "|unset|none\n"; string(out) != want {
		t.Fatalf("out = %q, want %q", out, want)
	}
}

func TestStopTermsTheGroup(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, filepath.Join(dir, "state"))
	s := spec(dir, "t1-term", "/bin/sh", "-c",
		`trap 'echo term > marker; exit 0' TERM; sleep 60 & echo $! > sleep.pid; wait`)
	s.Container.WorkingDirectory = dir
	start(t, rt, s)
	var sleepPID int
	waitFor(t, "sleep.pid", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "sleep.pid"))
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		sleepPID, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	if err := rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	if err := rt.Stop(s.ID, time.Second); err != nil { // idempotent
		t.Fatal(err)
	}
	e := waitExit(t, rt, s.ID)
	if code(e) != "0" || e.Signal != "" {
		t.Fatalf("exit = %+v (code %s), want 0 from the trap", e, code(e))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "marker")); string(b) != "term\n" {
		t.Fatalf("marker = %q", b)
	}
	waitFor(t, "the group's sleep to die", func() bool { return processGone(sleepPID) })
	if err := rt.Stop(s.ID, 0); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, filepath.Join(dir, "state"))
	s := spec(dir, "t1-stubborn", "/bin/sh", "-c", `trap '' TERM; echo ready > ready; sleep 60`)
	s.Container.WorkingDirectory = dir
	pid := start(t, rt, s)
	waitFor(t, "ready", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	if err := rt.Stop(s.ID, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	e := waitExit(t, rt, s.ID)
	if e.Signal != "SIGKILL" || code(e) != "137" {
		t.Fatalf("exit = %+v (code %s), want SIGKILL/137", e, code(e))
	}
	if !processGone(pid) {
		t.Fatal("program still running")
	}
}

func TestAdoptLiveContainer(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	rt1 := newRuntime(t, state)
	if _, err := process.New(process.Options{StateDir: state, Shim: shimCmd(t)}); !errors.Is(err, ctr.ErrStateInUse) {
		t.Fatalf("second New on a held dir: %v", err)
	}
	s := spec(dir, "t1-long", "sleep", "60")
	pid := start(t, rt1, s)
	rt1.Close() // the agent goes away; nothing is stopped

	rt2 := newRuntime(t, state)
	ids, err := adopt(rt2)
	if err != nil || !slices.Equal(ids, []string{s.ID}) {
		t.Fatalf("Adopt = %v, %v", ids, err)
	}
	if processGone(pid) {
		t.Fatal("program died with its runtime")
	}
	if err := rt2.Forget(s.ID); !errors.Is(err, ctr.ErrNotExited) {
		t.Fatalf("Forget of a live container: %v", err)
	}
	if err := rt2.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	e := waitExit(t, rt2, s.ID)
	if e.Signal != "SIGTERM" || code(e) != "143" {
		t.Fatalf("exit = %+v (code %s), want SIGTERM/143", e, code(e))
	}
	if err := rt2.Forget(s.ID); err != nil {
		t.Fatal(err)
	}
}

func TestAdoptExitedWhileNoAgent(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	rt1 := newRuntime(t, state)
	s := spec(dir, "t1-short", "/bin/sh", "-c", "sleep 0.2; exit 7")
	pid := start(t, rt1, s)
	rt1.Close()
	waitFor(t, "the program to exit", func() bool { return processGone(pid) })

	rt2 := newRuntime(t, state)
	ids, err := adopt(rt2)
	if err != nil || !slices.Equal(ids, []string{s.ID}) {
		t.Fatalf("Adopt = %v, %v", ids, err)
	}
	if e := waitExit(t, rt2, s.ID); code(e) != "7" {
		t.Fatalf("exit = %+v (code %s), want 7", e, code(e))
	}
	// Until Forget, the next agent reports it again.
	rt2.Close()
	rt3 := newRuntime(t, state)
	if ids, err := adopt(rt3); err != nil || len(ids) != 1 {
		t.Fatalf("Adopt = %v, %v", ids, err)
	}
	if e := waitExit(t, rt3, s.ID); code(e) != "7" {
		t.Fatalf("re-reported exit = %+v", e)
	}
}

// crashAgent is the body of the agent process that TestAdoptAfterAgentKill9
// kills: it starts one container, prints its pid and waits to be killed.
func crashAgent(stateDir string) int {
	rt, err := process.New(process.Options{StateDir: stateDir, Shim: []string{os.Args[0]}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info, err := rt.Start(context.Background(), ctr.Spec{
		ID: "t1-crash", Container: domain.ContainerDefinition{Name: "crash", Command: []string{"sleep", "60"}},
		Env: baseEnv(), LogPath: stateDir + ".log",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(info.PID)
	select {}
}

func TestAdoptAfterAgentKill9(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	agent := exec.Command(shimCmd(t)[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envShim+"=") {
			agent.Env = append(agent.Env, kv)
		}
	}
	agent.Env = append(agent.Env, envAgent+"="+state)
	agent.Stderr = os.Stderr
	out, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		agent.Process.Kill()
		agent.Wait()
		t.Fatalf("agent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	agent.Process.Signal(unix.SIGKILL)
	agent.Wait()
	if processGone(pid) {
		t.Fatal("program died with the agent")
	}

	rt := newRuntime(t, state)
	ids, err := adopt(rt)
	if err != nil || !slices.Equal(ids, []string{"t1-crash"}) {
		t.Fatalf("Adopt = %v, %v", ids, err)
	}
	if err := rt.Stop("t1-crash", hangGuard); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, rt, "t1-crash"); e.Signal != "SIGTERM" {
		t.Fatalf("exit = %+v (code %s), want SIGTERM", e, code(e))
	}
	if !processGone(pid) {
		t.Fatal("program still running")
	}
}

func TestStartFailure(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	rt := newRuntime(t, state)
	cases := []struct {
		name, want string
		spec       ctr.Spec
	}{
		{"missing binary", "no such file or directory", spec(dir, "t1-x", "/nonexistent/binary")},
		{"missing in PATH", "not found in $PATH", spec(dir, "t1-x", "no-such-program-holdfast")},
		{"bad dir", "working directory", func() ctr.Spec {
			s := spec(dir, "t1-x", "/bin/true")
			s.Container.WorkingDirectory = filepath.Join(dir, "nope")
			return s
		}()},
		{"no command", "has no entryPoint or command (the process runtime does not read images)", func() ctr.Spec {
			s := spec(dir, "t1-x")
			s.Container.Image = "nginx:latest"
			return s
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.Start(context.Background(), tc.spec)
			if !errors.Is(err, ctr.ErrCannotStart) || !strings.Contains(err.Error(), tc.want) ||
				!strings.HasPrefix(err.Error(), "CannotStartContainerError: ") {
				t.Fatalf("err = %v, want CannotStartContainerError mentioning %q", err, tc.want)
			}
			t.Log(err)
			if _, err := os.Stat(filepath.Join(state, tc.spec.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("state left behind: %v", err)
			}
		})
	}
	select {
	case e := <-rt.Events():
		t.Fatalf("event delivered for a failed start: %+v", e)
	default:
	}
	// The id is free again.
	start(t, rt, spec(dir, "t1-x", "/bin/true"))
	if e := waitExit(t, rt, "t1-x"); code(e) != "0" {
		t.Fatalf("exit = %+v", e)
	}
	if _, err := rt.Start(context.Background(), spec(dir, "t1-x", "/bin/true")); !errors.Is(err, ctr.ErrExists) {
		t.Fatalf("Start over unforgotten state: %v", err)
	}
	if _, err := rt.Start(context.Background(), spec(dir, "../evil", "/bin/true")); err == nil {
		t.Fatal("accepted a path as id")
	}
}

// stopLatency stops a running sleep and measures the time until the program
// is gone (pidfd readable) and until its Exit is delivered.
func stopLatency(tb testing.TB, rt *process.Runtime, dir, id string) (gone, delivered time.Duration) {
	pid := start(tb, rt, spec(dir, id, "sleep", "60"))
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(fd)
	t0 := time.Now()
	if err := rt.Stop(id, hangGuard); err != nil {
		tb.Fatal(err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, int(hangGuard/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			tb.Fatalf("poll: %d, %v", n, err)
		}
		break
	}
	gone = time.Since(t0)
	waitExit(tb, rt, id)
	delivered = time.Since(t0)
	if err := rt.Forget(id); err != nil {
		tb.Fatal(err)
	}
	return gone, delivered
}

// TestStopLatency reports (and does not assert) Stop latencies.
func TestStopLatency(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, filepath.Join(dir, "state"))
	var gone, delivered []time.Duration
	for i := range 10 {
		g, d := stopLatency(t, rt, dir, fmt.Sprintf("t1-lat-%d", i))
		gone, delivered = append(gone, g), append(delivered, d)
	}
	slices.Sort(gone)
	slices.Sort(delivered)
	t.Logf("Stop -> program gone: p50 %v max %v; Stop -> Exit delivered: p50 %v max %v",
		gone[len(gone)/2], gone[len(gone)-1], delivered[len(delivered)/2], delivered[len(delivered)-1])
}

func BenchmarkStart(b *testing.B) {
	dir := b.TempDir()
	rt := newRuntime(b, filepath.Join(dir, "state"))
	var ids []string
	var durs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("b-%d", i)
		t0 := time.Now()
		start(b, rt, spec(dir, id, "sleep", "60"))
		durs = append(durs, time.Since(t0))
		ids = append(ids, id)
	}
	b.StopTimer()
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durs[len(durs)*9/10].Microseconds())/1000, "p90-ms")
	for _, id := range ids {
		if err := rt.Stop(id, time.Second); err != nil {
			b.Fatal(err)
		}
	}
	for range ids {
		e := <-rt.Events()
		if err := rt.Forget(e.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStopLatency(b *testing.B) {
	dir := b.TempDir()
	rt := newRuntime(b, filepath.Join(dir, "state"))
	var gone, delivered []time.Duration
	for i := 0; i < b.N; i++ {
		g, d := stopLatency(b, rt, dir, fmt.Sprintf("b-lat-%d", i))
		gone, delivered = append(gone, g), append(delivered, d)
	}
	slices.Sort(gone)
	slices.Sort(delivered)
	b.ReportMetric(float64(gone[len(gone)/2].Microseconds())/1000, "gone-p50-ms")
	b.ReportMetric(float64(delivered[len(delivered)/2].Microseconds())/1000, "exit-p50-ms")
}

func TestShimKilled(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	rt := newRuntime(t, state)
	s := spec(dir, "t1-orphan", "sleep", "60")
	pid := start(t, rt, s)
	var st struct {
		ShimPID int `json:"shimPid"`
	}
	b, err := os.ReadFile(filepath.Join(state, s.ID, "state.json"))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil || st.ShimPID <= 0 {
		t.Fatalf("state.json: %v %q", err, b)
	}
	if err := unix.Kill(st.ShimPID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := waitExit(t, rt, s.ID)
	if e.ExitCode != nil || !strings.Contains(e.Reason, "lost") {
		t.Fatalf("exit = %+v, want an unknown outcome with a reason", e)
	}
	waitFor(t, "the program to die with its shim", func() bool { return processGone(pid) })
}

func TestAdoptAbandonedStart(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	// What an agent killed between creating the directory and starting
	// the shim leaves behind.
	if err := os.MkdirAll(filepath.Join(state, "t1-never"), 0o700); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, state)
	ids, err := adopt(rt)
	if err != nil || !slices.Equal(ids, []string{"t1-never"}) {
		t.Fatalf("Adopt = %v, %v", ids, err)
	}
	e := waitExit(t, rt, "t1-never")
	if e.ExitCode != nil || e.Reason == "" {
		t.Fatalf("exit = %+v", e)
	}
	if err := rt.Forget("t1-never"); err != nil {
		t.Fatal(err)
	}
	if ids, err := adopt(rt); err != nil || len(ids) != 0 {
		t.Fatalf("Adopt after Forget = %v, %v", ids, err)
	}
}

// The agent's PATH and HOME (InheritEnv) reach a container unless its own
// environment sets them; nothing else of the agent's does.
func TestInheritEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", "/agent-home")
	rt, err := process.New(process.Options{StateDir: filepath.Join(dir, "state"), Shim: shimCmd(t), InheritEnv: []string{"PATH", "HOME"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	script := `printf '%s|%s|%s\n' "$HOME" "${PATH:+set}" "${` + envShim + `-none}"`
	inherit := spec(dir, "t1-inherit", "sh", "-c", script)
	inherit.Env = nil
	own := spec(dir, "t1-own", "sh", "-c", script)
	own.Env = []string{"HOME=/app", "PATH=" + os.Getenv("PATH")}
	for _, c := range []struct {
		s    ctr.Spec
		want string
	}{{inherit, "/agent-home|set|none\n"}, {own, "/app|set|none\n"}} {
		start(t, rt, c.s)
		if e := waitExit(t, rt, c.s.ID); code(e) != "0" {
			t.Fatalf("%s: exit %+v", c.s.ID, e)
		}
		if b, _ := os.ReadFile(c.s.LogPath); string(b) != c.want {
			t.Fatalf("%s: output %q, want %q", c.s.ID, b, c.want)
		}
	}
}

// A container without a workingDirectory runs in a directory of its own
// under WorkDir, created for it.
func TestDefaultWorkDir(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	rt, err := process.New(process.Options{StateDir: filepath.Join(dir, "state"), Shim: shimCmd(t), WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s := spec(dir, "t9-app", "/bin/sh", "-c", "pwd")
	s.Task = ctr.TaskSpec{ID: "t9"}
	s.Container.Name = "app"
	start(t, rt, s)
	waitExit(t, rt, s.ID)
	if b, _ := os.ReadFile(s.LogPath); string(b) != filepath.Join(work, "t9", "app")+"\n" {
		t.Fatalf("ran in %q", b)
	}
}

// Stats counts every process of the container's group.
func TestStatsCountsTheGroup(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, filepath.Join(dir, "state"))
	s := spec(dir, "t1-group", "/bin/sh", "-c", "sleep 60 & sleep 60 & echo started; wait")
	start(t, rt, s)
	waitFor(t, "the group to start", func() bool {
		st, err := rt.Stats(context.Background(), s.ID)
		return err == nil && st.PIDs == 3
	})
	st, _ := rt.Stats(context.Background(), s.ID)
	if st.MemoryBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := rt.Stop(s.ID, hangGuard); err != nil {
		t.Fatal(err)
	}
	waitExit(t, rt, s.ID)
}

// TestShimHoldsItsLockThroughGC: the shim holds its container's lock for
// as long as it runs, also after its garbage collector has run (the lock's
// *os.File must stay reachable: a finalized one closes the fd and releases
// the flock, and an adopting agent then took the shim for dead and killed
// its program, two minutes after it started, when Go forces a collection).
func TestShimHoldsItsLockThroughGC(t *testing.T) {
	t.Setenv(shim.GCEveryEnv, "10ms")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	rt := newRuntime(t, state)
	s := spec(dir, "gc", "/bin/sh", "-c", "sleep 30")
	start(t, rt, s)
	lock, err := shim.OpenLock(filepath.Join(state, s.ID, shim.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// Give the shim's collector and finalizers time to run.
	for range 20 {
		free, err := shim.TryLock(lock)
		if err != nil {
			t.Fatal(err)
		}
		if free {
			t.Fatal("the shim's lock is free while the shim runs")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rt.Stop(s.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	waitExit(t, rt, s.ID)
}
