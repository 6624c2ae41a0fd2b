package testutil

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Daemon is one long-running holdfast process started by a test (`holdfast
// up`, `server` or `agent`). Start it again after it stopped to restart it.
type Daemon struct {
	Name    string   // for messages, e.g. "holdfast up"
	Bin     string   // the binary; BuildHoldfast's when empty
	Args    []string // its arguments
	LogPath string   // stdout and stderr are appended to this file
	Env     []string // added to the test's environment
	// Setpgid runs it in a process group of its own; a SIGKILL that ends
	// a stop then goes to the whole group.
	Setpgid bool

	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts the process; it does not wait for it to be ready.
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	if d.Bin == "" {
		d.Bin = BuildHoldfast(t)
	}
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== test: starting %s %s\n", d.Bin, strings.Join(d.Args, " "))
	cmd := exec.Command(d.Bin, d.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), d.Env...)
	if d.Setpgid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", d.Name, err)
	}
	d.cmd = cmd
	d.done = make(chan struct{})
	done := d.done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
}

// Running reports whether the process was started and has not exited.
func (d *Daemon) Running() bool {
	if d == nil || d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Pid is the process id, or 0 before Start.
func (d *Daemon) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Kill9 SIGKILLs the running process and waits up to timeout for it to go.
func (d *Daemon) Kill9(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !d.Running() {
		t.Fatalf("%s is not running", d.Name)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not die after SIGKILL", d.Name)
	}
}

// Stop sends sig and waits up to wait for the process to exit, then
// SIGKILLs it (its group with Setpgid) and waits. It reports whether the
// process exited on sig.
func (d *Daemon) Stop(sig os.Signal, wait time.Duration) bool {
	if !d.Running() {
		return true
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return true
	case <-time.After(wait):
	}
	if d.Setpgid {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	return false
}

// LogTail returns the last n lines of the log.
func (d *Daemon) LogTail(n int) string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return err.Error()
	}
	return Tail(string(b), n)
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var healthClient = &http.Client{Timeout: 10 * time.Second}

// WaitHealthy waits up to timeout for url (a /healthz) to answer 200 OK,
// failing t with the log's tail if the process exits meanwhile.
func (d *Daemon) WaitHealthy(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, 50*time.Millisecond, d.Name+" "+url+" to answer 200", func() (bool, string) {
		if !d.Running() {
			t.Fatalf("%s exited during start:\n%s", d.Name, d.LogTail(40))
		}
		resp, err := healthClient.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// UpConfig configures StartUp; the zero value is a `holdfast up` that
// generates its own credentials.
type UpConfig struct {
	DataDir string // default: a new t.TempDir()
	LogPath string // default: holdfast.log in a new t.TempDir()
	// Credentials are passed as --access-key-id/--secret-access-key when
	// set; otherwise holdfast up generates them (see ReadCredentials).
	Credentials Credentials
	Args        []string // more flags, e.g. --log-level warn
	Env         []string
	Setpgid     bool
	StopSignal  os.Signal     // what the cleanup sends; default SIGTERM
	StopWait    time.Duration // how long the cleanup waits before SIGKILL; default 20 s
	// HealthTimeout bounds the wait for /healthz; default 60 s.
	HealthTimeout time.Duration
}

// Up is a running `holdfast up`.
type Up struct {
	*Daemon
	Endpoint  string // the ECS API, http://127.0.0.1:port
	APIAddr   string
	AgentAddr string
	DataDir   string
}

// StartUp runs `holdfast up` on free loopback ports and waits for its
// /healthz. A cleanup stops it (StopSignal, then SIGKILL) and, when the
// test failed, logs the tail of its log. Cleanups registered after StartUp
// run before that stop.
func StartUp(t testing.TB, c UpConfig) *Up {
	t.Helper()
	if c.DataDir == "" {
		c.DataDir = t.TempDir()
	}
	if c.LogPath == "" {
		c.LogPath = filepath.Join(t.TempDir(), "holdfast.log")
	}
	if c.StopSignal == nil {
		c.StopSignal = syscall.SIGTERM
	}
	if c.StopWait == 0 {
		c.StopWait = 20 * time.Second
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = 60 * time.Second
	}
	u := &Up{APIAddr: FreeAddr(t), AgentAddr: FreeAddr(t), DataDir: c.DataDir}
	u.Endpoint = "http://" + u.APIAddr
	args := []string{"up", "--data-dir", c.DataDir, "--listen", u.APIAddr, "--agent-listen", u.AgentAddr}
	if c.Credentials != (Credentials{}) {
		args = append(args, "--access-key-id", c.Credentials.AccessKeyID, "--secret-access-key", c.Credentials.SecretAccessKey)
	}
	u.Daemon = &Daemon{Name: "holdfast up", Args: append(args, c.Args...), LogPath: c.LogPath, Env: c.Env, Setpgid: c.Setpgid}
	u.Start(t)
	t.Cleanup(func() {
		u.Stop(c.StopSignal, c.StopWait)
		if t.Failed() {
			t.Logf("holdfast up log (tail):\n%s", u.LogTail(40))
		}
	})
	u.WaitHealthy(t, u.Endpoint+"/healthz", c.HealthTimeout)
	return u
}
