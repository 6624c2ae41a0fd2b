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

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/runtime/process/shim"
)

// Options configure a process Runtime.
type Options struct {
	// StateDir holds one directory per container (created if missing).
	StateDir string
	// Shim is the command prefix that runs the shim; the container's state
	// directory is appended, e.g. []string{exe, "shim"} for
	// "holdfast shim <dir>". The shim must end up calling shim.Run with the
	// remaining arguments. Shims inherit the agent's environment.
	Shim []string
	// WorkDir is where a container without a workingDirectory runs: in
	// WorkDir/<task id>/<container name>, created at start. "" keeps the
	// agent's working directory.
	WorkDir string
	// InheritEnv names the agent's environment variables that a container
	// gets unless its Spec.Env sets them (the agent passes PATH and HOME,
	// as DESIGN.md promises). Nothing else is inherited.
	InheritEnv []string
	// Logger may be nil.
	Logger *slog.Logger
}

// Runtime runs containers as host processes under shims. It implements
// ctr.Runtime; all methods are safe for concurrent use.
type Runtime struct {
	stateDir string
	workDir  string
	inherit  []string
	shim     []string
	log      *slog.Logger
	events   chan ctr.Event
	done     chan struct{}
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	dirLock  *os.File
	wg       sync.WaitGroup // health monitors and queued sends, joined by Close

	mu         sync.Mutex
	closed     bool
	containers map[string]*container
	watches    map[*pidWatch]struct{}
}

var _ ctr.Runtime = (*Runtime)(nil)

// container is the Runtime's view of one container.
type container struct {
	id          string
	dir         string
	stopTimeout time.Duration
	logPath     string
	exitedCh    chan struct{} // closed when it has exited
	// monitorDone is closed when its health monitor has ended (nil: none);
	// stopMonitor ends it.
	monitorDone chan struct{}
	stopMonitor context.CancelFunc

	mu          sync.Mutex
	running     bool   // pid and pidStart are known and it has not exited
	pid         int    // the program, leader of its process group
	pidStart    uint64 // its start time, to guard against pid reuse
	startedAt   time.Time
	health      string // "" without a health check
	exited      bool
	stopping    bool
	pendingStop time.Duration // > 0: Stop called while starting
	killTimer   *time.Timer
}

func newContainer(id, dir string) *container {
	return &container{id: id, dir: dir, stopTimeout: ctr.DefaultStopTimeout, exitedCh: make(chan struct{})}
}

// New returns a Runtime over opts.StateDir. It takes an exclusive lock on
// the directory that Close releases, so two Runtimes never manage the same
// containers; it fails with ctr.ErrStateInUse otherwise. Call Adopt before
// Start to pick up the containers of earlier agents.
func New(opts Options) (*Runtime, error) {
	if len(opts.Shim) == 0 || opts.Shim[0] == "" {
		return nil, errors.New("process runtime: empty shim command")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	workDir := opts.WorkDir
	if workDir != "" {
		if workDir, err = filepath.Abs(workDir); err != nil {
			return nil, err
		}
	}
	shimPath := opts.Shim[0]
	if !strings.Contains(shimPath, "/") {
		shimPath, err = exec.LookPath(shimPath)
	} else {
		shimPath, err = filepath.Abs(shimPath)
	}
	if err != nil {
		return nil, fmt.Errorf("process runtime: shim: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	lock, err := shim.OpenLock(filepath.Join(abs, runtimeLock))
	if err != nil {
		return nil, err
	}
	ok, err := shim.TryLock(lock)
	if err != nil || !ok {
		lock.Close()
		if err == nil {
			err = fmt.Errorf("%w: %s", ctr.ErrStateInUse, abs)
		}
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		ctx:        ctx,
		cancel:     cancel,
		stateDir:   abs,
		workDir:    workDir,
		inherit:    append([]string(nil), opts.InheritEnv...),
		shim:       append([]string{shimPath}, opts.Shim[1:]...),
		log:        logger,
		events:     make(chan ctr.Event, 256),
		done:       make(chan struct{}),
		dirLock:    lock,
		containers: make(map[string]*container),
		watches:    make(map[*pidWatch]struct{}),
	}, nil
}

// Name is "process".
func (r *Runtime) Name() string { return "process" }

// Events delivers health changes and exits (see ctr.Runtime). The channel
// is buffered; a slow reader delays only the delivery.
func (r *Runtime) Events() <-chan ctr.Event { return r.events }

// SetupTask has nothing to prepare: every task runs in the host's network.
func (r *Runtime) SetupTask(ctx context.Context, task ctr.TaskSpec) (ctr.TaskNetwork, error) {
	if r.isClosed() {
		return ctr.TaskNetwork{}, ctr.ErrClosed
	}
	return ctr.TaskNetwork{Mode: "host"}, nil
}

// TeardownTask has nothing to release.
func (r *Runtime) TeardownTask(ctx context.Context, taskID string) error { return nil }

func (r *Runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Start starts the container's program (entryPoint followed by command) and
// returns once the shim has started it. The program leads its own process
// group. See ctr.Runtime.
func (r *Runtime) Start(ctx context.Context, spec ctr.Spec) (ctr.Info, error) {
	if err := ctr.ValidateID(spec.ID); err != nil {
		return ctr.Info{}, err
	}
	rec, err := r.shimSpec(spec)
	if err != nil {
		return ctr.Info{}, err
	}
	c := newContainer(spec.ID, filepath.Join(r.stateDir, spec.ID))
	c.stopTimeout = time.Duration(rec.StopTimeout)
	c.logPath = rec.LogPath
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ctr.Info{}, ctr.ErrClosed
	case r.containers[spec.ID] != nil:
		r.mu.Unlock()
		return ctr.Info{}, fmt.Errorf("%w: %s", ctr.ErrExists, spec.ID)
	}
	r.containers[spec.ID] = c
	r.mu.Unlock()

	_, err = r.start(ctx, c, rec)
	if err != nil {
		r.mu.Lock()
		delete(r.containers, spec.ID)
		r.mu.Unlock()
		return ctr.Info{}, err
	}
	return c.info(), nil
}

// shimSpec turns a Spec into what the shim runs, creating the working
// and log directories.
func (r *Runtime) shimSpec(spec ctr.Spec) (shim.Spec, error) {
	cd := spec.Container
	argv := append(append([]string{}, cd.EntryPoint...), cd.Command...)
	if len(argv) == 0 || argv[0] == "" {
		return shim.Spec{}, fmt.Errorf("%w: container %s has no entryPoint or command (the process runtime does not read images)", ctr.ErrCannotStart, cd.Name)
	}
	if spec.LogPath == "" {
		return shim.Spec{}, fmt.Errorf("process runtime: %s: no log path", spec.ID)
	}
	rec := shim.Spec{
		Argv:        argv,
		Env:         r.env(spec.Env),
		Dir:         cd.WorkingDirectory,
		StopTimeout: int64(orDefault(spec.StopTimeout)),
		HealthCheck: healthJSON(cd.HealthCheck),
		LogLimits:   spec.LogLimits,
	}
	var err error
	if rec.LogPath, err = filepath.Abs(spec.LogPath); err != nil {
		return rec, err
	}
	if err := os.MkdirAll(filepath.Dir(rec.LogPath), 0o700); err != nil {
		return rec, err
	}
	if rec.Dir == "" && r.workDir != "" {
		task := spec.Task.ID
		if task == "" {
			task = spec.ID
		}
		rec.Dir = filepath.Join(r.workDir, task, cd.Name)
		if err := os.MkdirAll(rec.Dir, 0o755); err != nil {
			return rec, err
		}
	}
	if rec.Dir != "" {
		if rec.Dir, err = filepath.Abs(rec.Dir); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// env is the container's environment: the inherited variables the Spec does
// not set, then the Spec's.
func (r *Runtime) env(specEnv []string) []string {
	var base []string
	for _, k := range r.inherit {
		if v, ok := os.LookupEnv(k); ok {
			base = append(base, k+"="+v)
		}
	}
	return ctr.MergeEnv(base, specEnv)
}

func (r *Runtime) start(ctx context.Context, c *container, rec shim.Spec) (int, error) {
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("%w: %s has state from an earlier run; Adopt and Forget it first", ctr.ErrExists, c.id)
		}
		return 0, err
	}
	// The shim is not running yet, so a plain write is enough: an agent
	// crash here leaves a directory without a live shim, which Adopt
	// records as a start that never happened.
	if err := shim.WriteJSONAtomic(c.dir, shim.SpecFile, rec, false); err != nil {
		os.RemoveAll(c.dir)
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, shim.LogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
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
		f := append(strings.Fields(rest), "", "", "")
		pid, perr := strconv.Atoi(f[0])
		start, serr := strconv.ParseUint(f[1], 10, 64)
		startedAt := time.Now().UTC()
		if ns, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			startedAt = time.Unix(0, ns).UTC()
		}
		if perr == nil && serr == nil && pid > 0 {
			r.adoptStarted(c, pid, start, startedAt)
			if w != nil && !r.track(w) {
				w.close()
				w = nil
			}
			r.startMonitor(c, rec, "")
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
	var st shim.State
	if rerr != nil && shim.ReadJSON(c.dir, shim.StateFile, &st) == nil && st.PID > 0 {
		_ = unix.Kill(-st.PID, unix.SIGKILL)
	}
	shimOut, _ := os.ReadFile(filepath.Join(c.dir, shim.LogFile))
	os.RemoveAll(c.dir)
	switch {
	case rerr != nil && ctx.Err() != nil:
		return 0, fmt.Errorf("process runtime: starting %s: %w", c.id, context.Cause(ctx))
	case strings.HasPrefix(line, "err "):
		return 0, fmt.Errorf("%w: %s", ctr.ErrCannotStart, strings.TrimSpace(line[4:]))
	default:
		detail := strings.TrimSpace(string(shimOut))
		if detail == "" {
			detail = line
		}
		if rerr != nil {
			detail += " (" + rerr.Error() + ")"
		}
		return 0, fmt.Errorf("%w: shim for %s failed: %s", ctr.ErrCannotStart, c.id, detail)
	}
}

// adoptStarted records the running program of c and applies a Stop that
// arrived while it was starting.
func (r *Runtime) adoptStarted(c *container, pid int, start uint64, startedAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid, c.pidStart, c.running, c.startedAt = pid, start, true, startedAt
	if c.pendingStop > 0 {
		r.stopLocked(c, c.pendingStop)
	}
}

// Stop sends SIGTERM to the container's process group at once and SIGKILL
// after timeout unless the program has exited by then (see ctr.Runtime).
// Escalation timers keep running after Close.
func (r *Runtime) Stop(id string, timeout time.Duration) error {
	r.mu.Lock()
	c := r.containers[id]
	r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %s", ctr.ErrNotFound, id)
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
	if !shim.SameProcess(c.pid, c.pidStart) {
		return
	}
	if err := unix.Kill(-c.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		r.log.Warn("process runtime: signal failed", "id", c.id, "signal", unix.SignalName(sig), "err", err)
	}
}

// Adopt scans the state directory for containers this Runtime does not know
// yet: it re-attaches to those whose shim is alive (their Exited event
// arrives when they end) and immediately queues the exit of those that
// ended while no agent was watching (including starts that a dying agent
// abandoned and shims that vanished without an exit record, with ExitCode
// nil and a Reason). Health checks of live containers resume from their
// last verdict. Directories it cannot make sense of are reported in the
// error and left alone.
func (r *Runtime) Adopt(ctx context.Context) ([]ctr.Info, error) {
	entries, err := os.ReadDir(r.stateDir)
	if err != nil {
		return nil, err
	}
	var infos []ctr.Info
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || ctr.ValidateID(e.Name()) != nil {
			continue
		}
		id := e.Name()
		c := newContainer(id, filepath.Join(r.stateDir, id))
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return infos, ctr.ErrClosed
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
			errs = append(errs, fmt.Errorf("process runtime: adopting %s: %w", id, err))
			continue
		}
		infos = append(infos, c.info())
	}
	return infos, errors.Join(errs...)
}

// shimStateWait bounds how long Adopt waits for a live shim that has not
// recorded its program yet (it is between starting and reporting).
const shimStateWait = 10 * time.Second

func (r *Runtime) adopt(c *container) error {
	var spec shim.Spec
	haveSpec := shim.ReadJSON(c.dir, shim.SpecFile, &spec) == nil
	if haveSpec {
		c.mu.Lock() // c is already visible to Stop
		c.stopTimeout = orDefault(time.Duration(spec.StopTimeout))
		c.logPath = spec.LogPath
		c.mu.Unlock()
	}
	var rec shim.Exit
	if shim.ReadJSON(c.dir, shim.ExitFile, &rec) == nil {
		r.exitedAlready(c, rec)
		return nil
	}
	lock, err := shim.OpenLock(filepath.Join(c.dir, shim.LockFile))
	if err != nil {
		return err
	}
	defer lock.Close()
	free, err := shim.TryLock(lock)
	if err != nil {
		return err
	}
	if free {
		// No shim: it finished between our two reads, or it never ran,
		// or it died without a record. We hold the lock, so a shim that
		// is only now starting will find our record and give up.
		if shim.ReadJSON(c.dir, shim.ExitFile, &rec) == nil {
			r.exitedAlready(c, rec)
			return nil
		}
		rec = shim.Exit{Reason: "agent stopped before the container started", At: time.Now().UTC()}
		var st shim.State
		if shim.ReadJSON(c.dir, shim.StateFile, &st) == nil {
			rec.Reason = "shim exited without an exit record; container process lost"
			if shim.SameProcess(st.PID, st.PIDStart) {
				_ = unix.Kill(-st.PID, unix.SIGKILL)
			}
		}
		if err := shim.WriteJSONAtomic(c.dir, shim.ExitFile, rec, true); err != nil {
			return err
		}
		r.exitedAlready(c, rec)
		return nil
	}

	// A shim is alive. It may still be starting the program.
	var st shim.State
	deadline := time.Now().Add(shimStateWait)
	for {
		err := shim.ReadJSON(c.dir, shim.StateFile, &st)
		if err == nil {
			break
		}
		if shim.ReadJSON(c.dir, shim.ExitFile, &rec) == nil {
			r.exitedAlready(c, rec)
			return nil
		}
		if !shim.IsNotExist(err) || time.Now().After(deadline) {
			return fmt.Errorf("live shim has not recorded its program: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w, err := openPidWatch(st.ShimPID)
	switch {
	case err == nil:
		// Opened after the lock check, so if the start time matches the
		// pidfd refers to the shim itself and not to a reused pid.
		if !shim.SameProcess(st.ShimPID, st.ShimStart) {
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
		return ctr.ErrClosed
	}
	r.adoptStarted(c, st.PID, st.PIDStart, st.StartedAt)
	if haveSpec {
		var h healthRecord
		_ = shim.ReadJSON(c.dir, healthFile, &h)
		r.startMonitor(c, spec, h.Status)
	}
	go r.watchAdopted(c, w)
	return nil
}

// exitedAlready marks c as exited and queues its exit for delivery.
func (r *Runtime) exitedAlready(c *container, rec shim.Exit) {
	if r.markExited(c) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.send(exitEvent(c.id, rec))
		}()
	}
}

// watchChild waits for a shim this Runtime started. When the Runtime is
// closed first it stops watching, but still reaps the shim when it exits
// (the shim is the agent's child; without a Wait it would stay a zombie
// for the agent's lifetime). That goroutine is the one that outlives Close.
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
	lock, err := shim.OpenLock(filepath.Join(c.dir, shim.LockFile))
	if err != nil {
		r.log.Error("process runtime: cannot watch adopted container", "id", c.id, "err", err)
		return
	}
	defer lock.Close()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		free, err := shim.TryLock(lock)
		if err != nil {
			r.log.Error("process runtime: cannot watch adopted container", "id", c.id, "err", err)
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
// delivers it, after the container's last health event.
func (r *Runtime) finish(c *container) {
	var rec shim.Exit
	if err := shim.ReadJSON(c.dir, shim.ExitFile, &rec); err != nil {
		rec = shim.Exit{Reason: "shim exited without an exit record; container process lost", At: time.Now().UTC()}
		c.mu.Lock()
		if shim.SameProcess(c.pid, c.pidStart) {
			_ = unix.Kill(-c.pid, unix.SIGKILL)
		}
		c.mu.Unlock()
		if err := shim.WriteJSONAtomic(c.dir, shim.ExitFile, rec, true); err != nil {
			r.log.Error("process runtime: recording lost container", "id", c.id, "err", err)
		}
	}
	if r.markExited(c) {
		if c.monitorDone != nil {
			<-c.monitorDone // markExited cancelled it
		}
		r.send(exitEvent(c.id, rec))
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
	close(c.exitedCh)
	if c.stopMonitor != nil {
		c.stopMonitor()
	}
	if c.killTimer != nil {
		c.killTimer.Stop()
	}
	return true
}

func (r *Runtime) send(e ctr.Event) {
	select {
	case r.events <- e:
	case <-r.done:
	}
}

// Forget removes the state of an exited container (see ctr.Runtime).
func (r *Runtime) Forget(id string) error {
	if err := ctr.ValidateID(id); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		if shim.FileExists(filepath.Join(r.stateDir, id)) {
			return fmt.Errorf("%w: %s has state but was not adopted", ctr.ErrNotFound, id)
		}
		return nil
	}
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	if !exited {
		return fmt.Errorf("%w: %s", ctr.ErrNotExited, id)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	delete(r.containers, id)
	return nil
}

// Close detaches the Runtime from its containers, as an agent shutdown does:
// nothing is stopped, exits stop being delivered (the next Runtime's Adopt
// reports them), health checks pause, and the lock on the state directory
// is released.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	r.cancel()
	ws := r.watches
	r.watches = nil
	r.mu.Unlock()
	for w := range ws {
		w.close()
	}
	r.wg.Wait()
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

func (r *Runtime) lookup(id string) (*container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ctr.ErrClosed
	}
	c := r.containers[id]
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ctr.ErrNotFound, id)
	}
	return c, nil
}

func (c *container) info() ctr.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ctr.Info{ID: c.id, PID: c.pid, StartedAt: c.startedAt, Health: c.health}
}

// runtimeLock is the file in the state directory that a Runtime holds
// locked while it manages the directory.
const runtimeLock = ".runtime.lock"

func exitEvent(id string, e shim.Exit) ctr.Event {
	return ctr.Event{Type: ctr.Exited, ID: id, At: e.At,
		Exit: ctr.Exit{ExitCode: e.ExitCode, Signal: e.Signal, Reason: e.Reason}}
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return ctr.DefaultStopTimeout
	}
	return d
}
