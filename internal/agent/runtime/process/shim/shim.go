//go:build linux

package shim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
)

// reportFD is the descriptor on which the shim tells the agent whether the
// program started: "ok <pid> <starttime> <started-at-unix-ns>\n" or
// "err <message>\n", then EOF.
const reportFD = 3

// GCEveryEnv, set to a duration in the shim's environment, makes the shim
// collect garbage that often. Go forces a collection every two minutes
// anyway; tests use it to show that nothing the shim needs (its lock) goes
// with one.
const GCEveryEnv = "HOLDFAST_SHIM_GC_EVERY"

// Run implements the shim process. args are the arguments after the shim
// command prefix given to New; today that is exactly one, the container's
// state directory. cmd/holdfast calls it for "holdfast shim ..." and exits
// with its result: 0 when the program ran (its own exit status is in the exit
// record, not in the shim's), 1 when the program could not be started or the
// shim failed, 2 on a usage error.
func Run(args []string) int {
	// PR_SET_PDEATHSIG fires when the thread that forked the child exits,
	// so fork from a thread that lives as long as the process.
	runtime.LockOSThread()

	// Catch, never ignore: caught signals revert to SIG_DFL in the program.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT)

	if d, err := time.ParseDuration(os.Getenv(GCEveryEnv)); err == nil && d > 0 {
		go func() {
			for {
				time.Sleep(d)
				runtime.GC()
			}
		}()
	}
	report := openReport()
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: shim <container-state-dir>")
		report.fail("shim: bad arguments")
		return 2
	}
	dir := args[0]

	lock, err := OpenLock(dir + "/" + LockFile)
	if err == nil {
		err = flockWait(lock)
	}
	if err != nil {
		report.fail("shim: locking state: " + err.Error())
		return 1
	}
	// The lock must be held until the shim exits: once lock is unreachable
	// the garbage collector may finalize it, closing the fd and releasing
	// the flock, and an adopting agent would then take the shim for dead
	// (and kill its program).
	defer runtime.KeepAlive(lock)
	// An exit record already present means an agent gave up on this start
	// (it died before we got here and its successor adopted the directory).
	if FileExists(dir + "/" + ExitFile) {
		report.fail("shim: container was abandoned before it started")
		return 1
	}

	started, cmd, out, err := startProgram(dir)
	if err != nil {
		msg := err.Error()
		_ = writeExit(dir, Exit{Reason: "CannotStartContainerError: " + msg, At: time.Now().UTC()})
		report.fail(msg)
		return 1
	}
	report.ok(started)
	pid := started.PID

	werr := cmd.Wait()
	exitedAt := time.Now().UTC()
	// Leftovers of the program's group die with it, as in a container.
	_ = unix.Kill(-pid, unix.SIGKILL)
	// The exit record follows the program's last output: whoever sees the
	// exit finds everything it wrote in the log.
	out.finish()
	rec := Exit{At: exitedAt}
	var st syscall.WaitStatus
	ok := false
	if cmd.ProcessState != nil {
		st, ok = cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	if ok {
		switch {
		case st.Exited():
			code := st.ExitStatus()
			rec.ExitCode = &code
		case st.Signaled():
			code := 128 + int(st.Signal())
			rec.ExitCode = &code
			rec.Signal = unix.SignalName(st.Signal())
		}
	} else {
		rec.Reason = "wait failed: " + fmt.Sprint(werr)
	}
	if err := writeExit(dir, rec); err != nil {
		return 1
	}
	return 0
}

func writeExit(dir string, rec Exit) error {
	err := WriteJSONAtomic(dir, ExitFile, rec, true)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shim: writing exit record: %v\n", err)
	}
	return err
}

// startProgram starts the program described by dir/spec.json and records its
// pid before it can be reaped. Its output goes through out into the log.
func startProgram(dir string) (st State, cmd *exec.Cmd, out *output, err error) {
	var spec Spec
	if err := ReadJSON(dir, SpecFile, &spec); err != nil {
		return st, nil, nil, fmt.Errorf("reading spec: %w", err)
	}
	if len(spec.Argv) == 0 {
		return st, nil, nil, errors.New("empty command")
	}
	if spec.Dir != "" {
		// Checked here for a clear message; exec.Cmd would otherwise
		// report "chdir ..." after forking.
		fi, err := os.Stat(spec.Dir)
		if err != nil {
			return st, nil, nil, fmt.Errorf("working directory: %w", err)
		}
		if !fi.IsDir() {
			return st, nil, nil, fmt.Errorf("working directory %s: not a directory", spec.Dir)
		}
	}
	path, err := lookPath(spec.Argv[0], spec.Env, spec.Dir)
	if err != nil {
		return st, nil, nil, err
	}
	out, pw, err := openOutput(spec.LogPath, spec.LogLimits)
	if err != nil {
		return st, nil, nil, err
	}

	env := spec.Env
	if env == nil {
		env = []string{} // nil would mean "inherit the shim's environment"
	}
	cmd = &exec.Cmd{
		Path: path,
		Args: spec.Argv,
		Env:  env,
		Dir:  spec.Dir,
		// One pipe for both: the log keeps the program's write order.
		Stdout: pw,
		Stderr: pw,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = cmd.Start()
	pw.Close() // the program holds its own copies
	if err != nil {
		out.finish()
		return st, nil, nil, err
	}
	pid := cmd.Process.Pid
	st = State{ShimPID: os.Getpid(), PID: pid, StartedAt: time.Now().UTC()}
	st.ShimStart, err = ProcStartTime(st.ShimPID)
	if err == nil {
		st.PIDStart, err = ProcStartTime(pid) // a zombie still has its stat
	}
	if err == nil {
		err = WriteJSONAtomic(dir, StateFile, st, false)
	}
	if err != nil {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = cmd.Wait()
		out.finish()
		return State{}, nil, nil, fmt.Errorf("recording state: %w", err)
	}
	return st, cmd, out, nil
}

// output copies a program's stdout and stderr from a pipe into its log,
// under the log's limits (package ctr/logfile).
type output struct {
	r    *os.File
	w    *logfile.Writer
	done chan struct{}
}

// drainGrace bounds how long the shim waits, after the program's process
// group is gone, for the rest of its output: a process that left the group
// (setsid) may still hold the pipe open.
const drainGrace = 2 * time.Second

func openOutput(logPath string, lim logfile.Limits) (*output, *os.File, error) {
	w, err := logfile.Create(logPath, lim)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("opening log: %w", err)
	}
	o := &output{r: pr, w: w, done: make(chan struct{})}
	go o.copy()
	return o, pw, nil
}

func (o *output) copy() {
	defer close(o.done)
	buf := make([]byte, 32<<10)
	failed := false
	for {
		n, err := o.r.Read(buf)
		if n > 0 {
			// On a write error (a full disk) the output is dropped, never
			// left in the pipe: a program must not block on its log.
			if _, werr := o.w.Write(buf[:n]); werr != nil && !failed {
				failed = true
				fmt.Fprintf(os.Stderr, "shim: writing log: %v (output is dropped until writes succeed)\n", werr)
			} else if werr == nil {
				failed = false
			}
		}
		if err != nil {
			return
		}
	}
}

// finish waits for the program's output to end (or for drainGrace) and
// closes the log.
func (o *output) finish() {
	_ = o.r.SetReadDeadline(time.Now().Add(drainGrace))
	<-o.done
	o.r.Close()
	o.w.Close()
}

func flockWait(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// shimReport is the write end of the agent's start pipe; nil when the shim
// was started without one.
type shimReport struct{ f *os.File }

func openReport() shimReport {
	if _, err := unix.FcntlInt(reportFD, unix.F_GETFD, 0); err != nil {
		return shimReport{}
	}
	// The program must not inherit it, or the agent would not see EOF.
	unix.CloseOnExec(reportFD)
	return shimReport{f: os.NewFile(reportFD, "report")}
}

func (r shimReport) ok(st State) {
	r.send("ok " + strconv.Itoa(st.PID) + " " + strconv.FormatUint(st.PIDStart, 10) + " " + strconv.FormatInt(st.StartedAt.UnixNano(), 10))
}

func (r shimReport) fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	r.send("err " + msg)
}

// send writes one line and closes the pipe. Errors are ignored: the agent
// may be gone, which is exactly the case the shim exists for.
func (r shimReport) send(line string) {
	if r.f == nil {
		return
	}
	line = strings.ReplaceAll(line, "\n", " ")
	_, _ = r.f.Write([]byte(line + "\n"))
	_ = r.f.Close()
}
