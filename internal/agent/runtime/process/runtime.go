//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultStopTimeout is the grace period between SIGTERM and SIGKILL when
// neither Stop nor the Spec gives one (ECS's default stopTimeout).
const DefaultStopTimeout = 30 * time.Second

// Errors returned by the Runtime. Callers match them with errors.Is.
var (
	// ErrCannotStart wraps every failure to start a container's program
	// (binary not found, bad working directory, unwritable log, ...). Its
	// text is ECS's stop code, so err.Error() reads
	// "CannotStartContainerError: <detail>".
	ErrCannotStart = errors.New("CannotStartContainerError")
	// ErrNotFound is an id the Runtime does not know.
	ErrNotFound = errors.New("container not found")
	// ErrExists is a Start for an id that is running, or whose state has
	// not been forgotten yet.
	ErrExists = errors.New("container already exists")
	// ErrNotExited is a Forget for a container that has not exited.
	ErrNotExited = errors.New("container has not exited")
	// ErrStateDirInUse means another Runtime (another agent) holds stateDir.
	ErrStateDirInUse = errors.New("state directory is in use by another runtime")
	// ErrClosed is any call on a closed Runtime.
	ErrClosed = errors.New("runtime is closed")
)

// Spec describes one container to run as a host process.
type Spec struct {
	// ID is the unique container id chosen by the caller, for example
	// "<taskid>-<containerName>". It names the container's state directory,
	// so it must be 1-255 characters from [A-Za-z0-9._-], not starting
	// with a dot.
	ID string
	// Argv is entryPoint followed by command. A first element without a
	// slash is looked up in the PATH of Env (not the agent's).
	Argv []string
	// Env is the complete environment, KEY=VALUE; nothing is inherited
	// (see MergeEnv).
	Env []string
	// Dir is the working directory; "" keeps the agent's.
	Dir string
	// LogPath is the file that receives both stdout and stderr, appended
	// to, interleaved in write order, readable while the program runs. Its
	// directory must exist.
	LogPath string
	// StopTimeout is the grace period Stop uses by default; 0 means
	// DefaultStopTimeout.
	StopTimeout time.Duration
}

// Exit is how a container ended. Exactly one Exit per started or adopted
// container is delivered on Runtime.Exits.
type Exit struct {
	// ID is Spec.ID.
	ID string
	// ExitCode is the program's exit status; for a program killed by a
	// signal it is 128+signal number, as Docker and ECS report it. It is
	// nil only when the outcome is unknown, and Reason then says why.
	ExitCode *int
	// Signal is the name of the signal that killed the program ("SIGTERM",
	// "SIGKILL"), or "".
	Signal string
	// Reason is empty for an ordinary exit and explains an abnormal one
	// (for example a shim that vanished, or a start abandoned by a dead
	// agent).
	Reason string
	// At is when the exit was observed.
	At time.Time
}

// Runtime starts, stops and watches containers. All methods are safe for
// concurrent use.
type Runtime struct {
	stateDir string
	shim     []string
	log      *slog.Logger
	exits    chan Exit
	done     chan struct{}
	dirLock  *os.File

	mu         sync.Mutex
	closed     bool
	containers map[string]*container
	watches    map[*pidWatch]struct{}
}

// container is the Runtime's view of one container.
type container struct {
	id          string
	dir         string
	stopTimeout time.Duration

	mu          sync.Mutex
	running     bool   // pid and pidStart are known and it has not exited
	pid         int    // the program, leader of its process group
	pidStart    uint64 // its start time, to guard against pid reuse
	exited      bool
	stopping    bool
	pendingStop time.Duration // > 0: Stop called while starting
	killTimer   *time.Timer
}

// New returns a Runtime that keeps one directory per container under
// stateDir (created if missing) and starts shims as shim followed by the
// container's state directory, e.g. []string{exe, "shim"} for
// "holdfast shim <dir>"; the shim must end up calling RunShim with the
// remaining arguments. Shims inherit the agent's environment. logger may be
// nil.
//
// New takes an exclusive lock on stateDir that Close releases, so two
// Runtimes never manage the same directory; it fails with ErrStateDirInUse
// otherwise. Call Adopt before Start to pick up containers of earlier agents.
func New(stateDir string, shim []string, logger *slog.Logger) (*Runtime, error) {
	if len(shim) == 0 || shim[0] == "" {
		return nil, errors.New("runtime: empty shim command")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	shimPath := shim[0]
	if !strings.Contains(shimPath, "/") {
		shimPath, err = exec.LookPath(shimPath)
	} else {
		shimPath, err = filepath.Abs(shimPath)
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: shim: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	lock, err := openLock(filepath.Join(abs, runtimeLock))
	if err != nil {
		return nil, err
	}
	ok, err := tryLock(lock)
	if err != nil || !ok {
		lock.Close()
		if err == nil {
			err = fmt.Errorf("%w: %s", ErrStateDirInUse, abs)
		}
		return nil, err
	}
	return &Runtime{
		stateDir:   abs,
		shim:       append([]string{shimPath}, shim[1:]...),
		log:        logger,
		exits:      make(chan Exit, 256),
		done:       make(chan struct{}),
		dirLock:    lock,
		containers: make(map[string]*container),
		watches:    make(map[*pidWatch]struct{}),
	}, nil
}

// Exits delivers every container exit, exactly once per container started
// or adopted by this Runtime. Undelivered exits are not lost when the agent
// dies: the container's state stays until Forget, and the next agent's Adopt
// reports it again, so across agent restarts delivery is at least once. The
// channel is buffered; a slow reader delays only the delivery. It is never
// closed.
func (r *Runtime) Exits() <-chan Exit { return r.exits }

// Start starts the container and returns the pid of its program once the
// shim has started it (not when it exits). The program leads its own process
// group. A program that cannot be started yields an error wrapping
// ErrCannotStart, and leaves no state and no Exit behind. Cancelling ctx
// aborts a start in progress and kills whatever it had started.
func (r *Runtime) Start(ctx context.Context, spec Spec) (int, error) {
	if err := validateID(spec.ID); err != nil {
		return 0, err
	}
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return 0, fmt.Errorf("%w: %s: empty command", ErrCannotStart, spec.ID)
	}
	if spec.LogPath == "" {
		return 0, fmt.Errorf("runtime: %s: no log path", spec.ID)
	}
	c := &container{
		id:          spec.ID,
		dir:         filepath.Join(r.stateDir, spec.ID),
		stopTimeout: orDefault(spec.StopTimeout),
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return 0, ErrClosed
	case r.containers[spec.ID] != nil:
		r.mu.Unlock()
		return 0, fmt.Errorf("%w: %s", ErrExists, spec.ID)
	}
	r.containers[spec.ID] = c
	r.mu.Unlock()

	pid, err := r.start(ctx, c, spec)
	if err != nil {
		r.mu.Lock()
		delete(r.containers, spec.ID)
		r.mu.Unlock()
		return 0, err
	}
	return pid, nil
}

func (r *Runtime) start(ctx context.Context, c *container, spec Spec) (int, error) {
	rec := specRecord{
		Argv:        spec.Argv,
		Env:         spec.Env,
		Dir:         spec.Dir,
		LogPath:     spec.LogPath,
		StopTimeout: int64(c.stopTimeout),
	}
	var err error
	if rec.LogPath, err = filepath.Abs(rec.LogPath); err != nil {
		return 0, err
	}
	if rec.Dir != "" {
		if rec.Dir, err = filepath.Abs(rec.Dir); err != nil {
			return 0, err
		}
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("%w: %s has state from an earlier run; Adopt and Forget it first", ErrExists, c.id)
		}
		return 0, err
	}
	// The shim is not running yet, so a plain write is enough: an agent
	// crash here leaves a directory without a live shim, which Adopt
	// records as a start that never happened.
	if err := writeJSONAtomic(c.dir, specFile, rec, false); err != nil {
		os.RemoveAll(c.dir)
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, shimLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		os.RemoveAll(c.dir)
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		os.RemoveAll(c.dir)
		return 0, err
	}
	args := make([]string, 0, len(r.shim)+1)
	args = append(append(args, r.shim...), c.dir)
	cmd := &exec.Cmd{
		Path:        r.shim[0],
		Args:        args,
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{pw}, // fd 3 in the shim
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	pw.Close()
	logf.Close()
	if err != nil {
		pr.Close()
		os.RemoveAll(c.dir)
		return 0, fmt.Errorf("runtime: starting shim: %w", err)
	}
	// The shim is our unreaped child, so its pid cannot be reused yet.
	w, werr := openPidWatch(cmd.Process.Pid)
	if werr != nil && !errors.Is(werr, errNoPidfd) {
		r.log.Warn("runtime: pidfd_open failed, falling back to wait", "id", c.id, "err", werr)
	}

	stop := context.AfterFunc(ctx, func() { _ = pr.SetReadDeadline(time.Unix(1, 0)) })
	out, rerr := io.ReadAll(io.LimitReader(pr, 64<<10))
	stop()
	pr.Close()

	line := string(out)
	if rest, ok := strings.CutPrefix(line, "ok "); ok && strings.HasSuffix(rest, "\n") {
		pidStr, startStr, _ := strings.Cut(strings.TrimSpace(rest), " ")
		pid, perr := strconv.Atoi(pidStr)
		start, serr := strconv.ParseUint(startStr, 10, 64)
		if perr == nil && serr == nil && pid > 0 {
			r.adoptStarted(c, pid, start)
			if w != nil && !r.track(w) {
				w.close()
				w = nil
			}
			go r.watchChild(c, cmd, w)
			return pid, nil
		}
		line = "malformed report " + strconv.Quote(line)
	}

	// Failure: make sure nothing survives, then erase every trace.
	if w != nil {
		w.close()
	}
	if rerr != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL) // the program gets PDEATHSIG
	}
	_ = cmd.Wait()
	var st stateRecord
	if rerr != nil && readJSON(c.dir, stateFile, &st) == nil && st.PID > 0 {
		_ = unix.Kill(-st.PID, unix.SIGKILL)
	}
	shimOut, _ := os.ReadFile(filepath.Join(c.dir, shimLog))
	os.RemoveAll(c.dir)
	switch {
	case rerr != nil && ctx.Err() != nil:
		return 0, fmt.Errorf("runtime: starting %s: %w", c.id, context.Cause(ctx))
	case strings.HasPrefix(line, "err "):
		return 0, fmt.Errorf("%w: %s", ErrCannotStart, strings.TrimSpace(line[4:]))
	default:
		detail := strings.TrimSpace(string(shimOut))
		if detail == "" {
			detail = line
		}
		if rerr != nil {
			detail += " (" + rerr.Error() + ")"
		}
		return 0, fmt.Errorf("%w: shim for %s failed: %s", ErrCannotStart, c.id, detail)
	}
}

// adoptStarted records the running program of c and applies a Stop that
// arrived while it was starting.
func (r *Runtime) adoptStarted(c *container, pid int, start uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid, c.pidStart, c.running = pid, start, true
	if c.pendingStop > 0 {
		r.stopLocked(c, c.pendingStop)
	}
}

// Stop sends SIGTERM to the container's process group at once and SIGKILL
// after timeout (timeout <= 0: the Spec's StopTimeout, default 30 s) unless
// the program has exited by then. It does not block: the outcome arrives on
// Exits. Stop is idempotent: stopping a container that is already stopping
// or has exited does nothing and returns nil (a later call cannot shorten
// the grace period). A Stop during Start is applied as soon as the program
// runs. Escalation timers keep running after Close.
func (r *Runtime) Stop(id string, timeout time.Duration) error {
	r.mu.Lock()
	c := r.containers[id]
	r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if timeout <= 0 {
		timeout = c.stopTimeout
	}
	if !c.running {
		if !c.exited && c.pendingStop == 0 {
			c.pendingStop = timeout
		}
		return nil
	}
	r.stopLocked(c, timeout)
	return nil
}

// stopLocked signals c; c.mu is held.
func (r *Runtime) stopLocked(c *container, timeout time.Duration) {
	if c.stopping || c.exited {
		return
	}
	c.stopping = true
	r.signalLocked(c, unix.SIGTERM)
	c.killTimer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.exited {
			r.signalLocked(c, unix.SIGKILL)
		}
	})
}

// signalLocked signals the process group led by c's program, provided the
// leader is still the process the shim started (alive or not yet reaped).
// Once the shim has reaped it, the shim kills the group itself.
func (r *Runtime) signalLocked(c *container, sig unix.Signal) {
	if !sameProcess(c.pid, c.pidStart) {
		return
	}
	if err := unix.Kill(-c.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		r.log.Warn("runtime: signal failed", "id", c.id, "signal", unix.SignalName(sig), "err", err)
	}
}

// Adopt scans stateDir for containers this Runtime does not know yet: it
// re-attaches to those whose shim is alive (their Exit arrives when they
// end) and immediately queues the Exit of those that ended while no agent
// was watching (including starts that a dying agent abandoned and shims
// that vanished without an exit record, with ExitCode nil and a Reason). It
// returns the ids of all containers it took over; each will produce exactly
// one Exit. Call it once at agent start, before Start. Directories it
// cannot make sense of are reported in the error and left alone.
func (r *Runtime) Adopt() ([]string, error) {
	entries, err := os.ReadDir(r.stateDir)
	if err != nil {
		return nil, err
	}
	var ids []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || validateID(e.Name()) != nil {
			continue
		}
		id := e.Name()
		c := &container{id: id, dir: filepath.Join(r.stateDir, id), stopTimeout: DefaultStopTimeout}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ids, ErrClosed
		}
		if r.containers[id] != nil {
			r.mu.Unlock()
			continue
		}
		r.containers[id] = c
		r.mu.Unlock()
		if err := r.adopt(c); err != nil {
			r.mu.Lock()
			delete(r.containers, id)
			r.mu.Unlock()
			errs = append(errs, fmt.Errorf("runtime: adopting %s: %w", id, err))
			continue
		}
		ids = append(ids, id)
	}
	return ids, errors.Join(errs...)
}

// shimStateWait bounds how long Adopt waits for a live shim that has not
// recorded its program yet (it is between starting and reporting).
const shimStateWait = 10 * time.Second

func (r *Runtime) adopt(c *container) error {
	var spec specRecord
	if readJSON(c.dir, specFile, &spec) == nil {
		c.mu.Lock() // c is already visible to Stop
		c.stopTimeout = orDefault(time.Duration(spec.StopTimeout))
		c.mu.Unlock()
	}
	var rec exitRecord
	if readJSON(c.dir, exitFile, &rec) == nil {
		r.exitedAlready(c, rec)
		return nil
	}
	lock, err := openLock(filepath.Join(c.dir, lockFile))
	if err != nil {
		return err
	}
	defer lock.Close()
	free, err := tryLock(lock)
	if err != nil {
		return err
	}
	if free {
		// No shim: it finished between our two reads, or it never ran,
		// or it died without a record. We hold the lock, so a shim that
		// is only now starting will find our record and give up.
		if readJSON(c.dir, exitFile, &rec) == nil {
			r.exitedAlready(c, rec)
			return nil
		}
		rec = exitRecord{Reason: "agent stopped before the container started", At: time.Now().UTC()}
		var st stateRecord
		if readJSON(c.dir, stateFile, &st) == nil {
			rec.Reason = "shim exited without an exit record; container process lost"
			if sameProcess(st.PID, st.PIDStart) {
				_ = unix.Kill(-st.PID, unix.SIGKILL)
			}
		}
		if err := writeJSONAtomic(c.dir, exitFile, rec, true); err != nil {
			return err
		}
		r.exitedAlready(c, rec)
		return nil
	}

	// A shim is alive. It may still be starting the program.
	var st stateRecord
	deadline := time.Now().Add(shimStateWait)
	for {
		err := readJSON(c.dir, stateFile, &st)
		if err == nil {
			break
		}
		if readJSON(c.dir, exitFile, &rec) == nil {
			r.exitedAlready(c, rec)
			return nil
		}
		if !isNotExist(err) || time.Now().After(deadline) {
			return fmt.Errorf("live shim has not recorded its program: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w, err := openPidWatch(st.ShimPID)
	switch {
	case err == nil:
		// Opened after the lock check, so if the start time matches the
		// pidfd refers to the shim itself and not to a reused pid.
		if !sameProcess(st.ShimPID, st.ShimStart) {
			w.close()
			w = nil
		}
	case errors.Is(err, unix.ESRCH), errors.Is(err, errNoPidfd):
		w = nil
	default:
		return err
	}
	if w != nil && !r.track(w) {
		w.close()
		return ErrClosed
	}
	r.adoptStarted(c, st.PID, st.PIDStart)
	go r.watchAdopted(c, w)
	return nil
}

// exitedAlready marks c as exited and queues rec for delivery.
func (r *Runtime) exitedAlready(c *container, rec exitRecord) {
	if r.markExited(c) {
		go r.send(rec.toExit(c.id))
	}
}

// watchChild waits for a shim this Runtime started.
func (r *Runtime) watchChild(c *container, cmd *exec.Cmd, w *pidWatch) {
	if w != nil {
		err := w.wait()
		r.untrack(w)
		if err != nil { // closed: stop watching, but still reap
			_ = cmd.Wait()
			return
		}
	}
	_ = cmd.Wait()
	r.finish(c)
}

// watchAdopted waits for a shim that is not our child, by pidfd or, without
// one, by probing the shim's lock.
func (r *Runtime) watchAdopted(c *container, w *pidWatch) {
	if w != nil {
		err := w.wait()
		r.untrack(w)
		if err != nil {
			return
		}
		r.finish(c)
		return
	}
	lock, err := openLock(filepath.Join(c.dir, lockFile))
	if err != nil {
		r.log.Error("runtime: cannot watch adopted container", "id", c.id, "err", err)
		return
	}
	defer lock.Close()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		free, err := tryLock(lock)
		if err != nil {
			r.log.Error("runtime: cannot watch adopted container", "id", c.id, "err", err)
			return
		}
		if free {
			r.finish(c)
			return
		}
		select {
		case <-t.C:
		case <-r.done:
			return
		}
	}
}

// finish collects the exit record of a container whose shim has exited and
// delivers it.
func (r *Runtime) finish(c *container) {
	var rec exitRecord
	if err := readJSON(c.dir, exitFile, &rec); err != nil {
		rec = exitRecord{Reason: "shim exited without an exit record; container process lost", At: time.Now().UTC()}
		c.mu.Lock()
		if sameProcess(c.pid, c.pidStart) {
			_ = unix.Kill(-c.pid, unix.SIGKILL)
		}
		c.mu.Unlock()
		if err := writeJSONAtomic(c.dir, exitFile, rec, true); err != nil {
			r.log.Error("runtime: recording lost container", "id", c.id, "err", err)
		}
	}
	if r.markExited(c) {
		r.send(rec.toExit(c.id))
	}
}

// markExited flips c to exited and reports whether this call did it.
func (r *Runtime) markExited(c *container) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited {
		return false
	}
	c.exited, c.running = true, false
	if c.killTimer != nil {
		c.killTimer.Stop()
	}
	return true
}

func (r *Runtime) send(e Exit) {
	select {
	case r.exits <- e:
	case <-r.done:
	}
}

// Forget removes the state of an exited container, once the caller has
// durably recorded its exit. The log file is the caller's and is kept.
// Forgetting an unknown id that has no state is a no-op.
func (r *Runtime) Forget(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		if fileExists(filepath.Join(r.stateDir, id)) {
			return fmt.Errorf("%w: %s has state but was not adopted", ErrNotFound, id)
		}
		return nil
	}
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	if !exited {
		return fmt.Errorf("%w: %s", ErrNotExited, id)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	delete(r.containers, id)
	return nil
}

// Close detaches the Runtime from its containers, as an agent shutdown does:
// nothing is stopped, exits stop being delivered (the next Runtime's Adopt
// reports them), and the lock on stateDir is released.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	ws := r.watches
	r.watches = nil
	r.mu.Unlock()
	for w := range ws {
		w.close()
	}
	return r.dirLock.Close()
}

func (r *Runtime) track(w *pidWatch) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.watches[w] = struct{}{}
	return true
}

func (r *Runtime) untrack(w *pidWatch) {
	r.mu.Lock()
	delete(r.watches, w)
	r.mu.Unlock()
	w.close()
}

// MergeEnv returns base with overrides applied: a KEY present in both takes
// the override's value at base's position, new keys follow in order, and
// later duplicates win. Entries without '=' or with an empty key are
// dropped. Use it to build Spec.Env from the agent's PATH and HOME and the
// task definition's environment.
func MergeEnv(base, overrides []string) []string {
	out := make([]string, 0, len(base)+len(overrides))
	idx := make(map[string]int, len(base)+len(overrides))
	add := func(kv string) {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		add(kv)
	}
	for _, kv := range overrides {
		add(kv)
	}
	return out
}

func validateID(id string) error {
	if id == "" || len(id) > 255 || id[0] == '.' {
		return fmt.Errorf("runtime: invalid container id %q", id)
	}
	for _, ch := range []byte(id) {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '.', ch == '_', ch == '-':
		default:
			return fmt.Errorf("runtime: invalid container id %q", id)
		}
	}
	return nil
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultStopTimeout
	}
	return d
}
