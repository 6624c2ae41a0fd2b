// Package fake is an in-memory ctr.Runtime for fast agent tests. Its
// containers are simulated: a container's command is a workload script
// (package ctr/workload) that the fake plays step by step (output goes to
// the log, sleep-ms is a timer, trap-term and ignore-term decide what Stop
// does), so a test scripts a container exactly as it would for a real
// runtime, and the fake passes the same conformance suite (ctr/ctrtest).
//
// A Host is the simulated machine. Its containers outlive the Runtimes
// attached to it, as processes outlive an agent: New attaches a Runtime,
// Close detaches it, and the next Runtime's Adopt finds the containers
// again. Tests can also kill a container the way the kernel's OOM killer
// does (Host.OOMKill).
//
// Rules of the simulation: a container needs a Command (its script) and no
// EntryPoint (an EntryPoint names a program the fake does not have, so
// Start fails with CannotStartContainerError); a health check
// ["CMD", script...] passes when the script exits 0; Stats reports one
// process and a made-up, non-zero memory use.
package fake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
	"github.com/holdfast/holdfast/internal/agent/ctr/workload"
	"github.com/holdfast/holdfast/internal/domain"
)

// Host is a simulated machine that Runtimes attach to.
type Host struct {
	mu         sync.Mutex
	attached   *Runtime
	containers map[string]*container
	tasks      map[string]ctr.TaskNetwork
	nextPID    int
	nextIP     int
}

// NewHost returns an empty machine.
func NewHost() *Host {
	return &Host{containers: map[string]*container{}, tasks: map[string]ctr.TaskNetwork{}, nextPID: 1000}
}

// Runtime is a ctr.Runtime attached to a Host.
type Runtime struct {
	h      *Host
	events chan ctr.Event
	done   chan struct{}
	wg     sync.WaitGroup

	// queue holds events not yet handed to the channel; the delivery
	// goroutine moves them, so the simulation never blocks on a reader.
	qmu    sync.Mutex
	queue  []ctr.Event
	wake   chan struct{}
	closed bool
}

var _ ctr.Runtime = (*Runtime)(nil)

// container is one simulated container. Guarded by Host.mu.
type container struct {
	spec      ctr.Spec
	steps     []workload.Step
	pc        int // next step
	pid       int
	startedAt time.Time
	log       *logfile.Writer // closed at exit
	lines     int             // lines printed by lines steps
	exitedCh  chan struct{}   // closed at exit

	trap       int // exit status on SIGTERM; -1: die by it
	ignoreTerm bool
	stopping   bool
	timer      *time.Timer // sleep-ms or the SIGKILL escalation

	health      *ctr.HealthState
	healthCfg   ctr.HealthConfig
	healthTimer *time.Timer

	exited    bool
	exit      ctr.Event
	adoptedBy *Runtime // the Runtime that knows it (started or adopted it)
}

// New attaches a Runtime to h. Only one Runtime is attached at a time, as
// only one agent manages a state directory: a second New before Close
// fails with ctr.ErrStateInUse.
func New(h *Host) (*Runtime, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.attached != nil {
		return nil, ctr.ErrStateInUse
	}
	r := &Runtime{h: h, events: make(chan ctr.Event, 64), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	h.attached = r
	r.wg.Add(1)
	go r.deliver()
	return r, nil
}

// Name is "fake".
func (r *Runtime) Name() string { return "fake" }

// Events delivers events (see ctr.Runtime).
func (r *Runtime) Events() <-chan ctr.Event { return r.events }

func (r *Runtime) deliver() {
	defer r.wg.Done()
	for {
		r.qmu.Lock()
		var ev ctr.Event
		have := len(r.queue) > 0
		if have {
			ev = r.queue[0]
			r.queue = r.queue[1:]
		}
		r.qmu.Unlock()
		if !have {
			select {
			case <-r.wake:
				continue
			case <-r.done:
				return
			}
		}
		select {
		case r.events <- ev:
		case <-r.done:
			return
		}
	}
}

// emit queues ev on the Runtime that knows the container, if it is still
// attached. Host.mu is held.
func (c *container) emit(ev ctr.Event) {
	r := c.adoptedBy
	if r == nil {
		return
	}
	r.qmu.Lock()
	defer r.qmu.Unlock()
	if r.closed {
		return
	}
	r.queue = append(r.queue, ev)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runtime) check() error {
	r.qmu.Lock()
	defer r.qmu.Unlock()
	if r.closed {
		return ctr.ErrClosed
	}
	return nil
}

// Adopt takes over the Host's containers that no attached Runtime knows.
func (r *Runtime) Adopt(ctx context.Context) ([]ctr.Info, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	h := r.h
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ctr.Info
	for _, id := range sortedKeys(h.containers) {
		c := h.containers[id]
		if c.adoptedBy == r {
			continue
		}
		c.adoptedBy = r
		out = append(out, c.info())
		if c.exited {
			c.emit(c.exit)
		}
	}
	return out, nil
}

// SetupTask records the task's network: its network mode, and under
// awsvpc a made-up address of its own.
func (r *Runtime) SetupTask(ctx context.Context, task ctr.TaskSpec) (ctr.TaskNetwork, error) {
	if err := r.check(); err != nil {
		return ctr.TaskNetwork{}, err
	}
	h := r.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if n, ok := h.tasks[task.ID]; ok {
		return n, nil
	}
	n := ctr.TaskNetwork{Mode: task.NetworkMode()}
	if n.Mode == "awsvpc" {
		h.nextIP++
		n.IPv4Addresses = []string{fmt.Sprintf("10.99.%d.%d", h.nextIP/250, 2+h.nextIP%250)}
	}
	h.tasks[task.ID] = n
	return n, nil
}

// TeardownTask forgets the task's network.
func (r *Runtime) TeardownTask(ctx context.Context, taskID string) error {
	if err := r.check(); err != nil {
		return err
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	delete(r.h.tasks, taskID)
	return nil
}

// Start starts playing the container's script.
func (r *Runtime) Start(ctx context.Context, spec ctr.Spec) (ctr.Info, error) {
	if err := ctr.ValidateID(spec.ID); err != nil {
		return ctr.Info{}, err
	}
	if err := r.check(); err != nil {
		return ctr.Info{}, err
	}
	cd := spec.Container
	if len(cd.EntryPoint) > 0 {
		return ctr.Info{}, fmt.Errorf("%w: fake runtime: no such program %q", ctr.ErrCannotStart, cd.EntryPoint[0])
	}
	if len(cd.Command) == 0 {
		return ctr.Info{}, fmt.Errorf("%w: container %s has no entryPoint or command", ctr.ErrCannotStart, cd.Name)
	}
	steps, err := workload.Parse(cd.Command)
	if err != nil {
		return ctr.Info{}, fmt.Errorf("%w: %v", ctr.ErrCannotStart, err)
	}
	if spec.LogPath == "" {
		return ctr.Info{}, fmt.Errorf("fake runtime: %s: no log path", spec.ID)
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o700); err != nil {
		return ctr.Info{}, err
	}
	h := r.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.containers[spec.ID] != nil {
		return ctr.Info{}, fmt.Errorf("%w: %s", ctr.ErrExists, spec.ID)
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = ctr.DefaultStopTimeout
	}
	lw, err := logfile.Create(spec.LogPath, spec.LogLimits)
	if err != nil {
		return ctr.Info{}, fmt.Errorf("%w: log: %v", ctr.ErrCannotStart, err)
	}
	h.nextPID++
	c := &container{spec: spec, steps: steps, pid: h.nextPID, startedAt: time.Now().UTC(),
		log: lw, exitedCh: make(chan struct{}), trap: -1, adoptedBy: r}
	h.containers[spec.ID] = c
	if cfg, ok := ctr.ParseHealthCheck(cd.HealthCheck); ok {
		c.healthCfg = cfg
		c.health = ctr.NewHealthState(cfg, c.startedAt, "")
		c.scheduleProbe(h)
	}
	c.run(h)
	return c.info(), nil
}

// run plays steps until the script sleeps or ends. Host.mu is held.
func (c *container) run(h *Host) {
	for !c.exited && c.pc < len(c.steps) {
		s := c.steps[c.pc]
		c.pc++
		switch s.Op {
		case "out", "err":
			c.write(s.Arg + "\n")
		case "lines":
			for range s.N {
				c.lines++
				c.write(workload.Line(c.lines))
			}
		case "env":
			line := s.Arg + " unset\n"
			for _, kv := range c.spec.Env {
				if len(kv) > len(s.Arg) && kv[:len(s.Arg)+1] == s.Arg+"=" {
					line = kv + "\n"
				}
			}
			c.write(line)
		case "trap-term":
			c.trap = s.N
		case "ignore-term":
			c.ignoreTerm = true
		case "sleep-ms":
			c.timer = time.AfterFunc(time.Duration(s.N)*time.Millisecond, func() {
				h.mu.Lock()
				defer h.mu.Unlock()
				c.timer = nil
				c.run(h)
			})
			return
		case "sleep":
			c.pc-- // stays here until stopped
			return
		case "exit":
			c.finish(s.N, "", false)
			return
		}
	}
	if !c.exited {
		c.finish(0, "", false)
	}
}

// write appends to the container's log (what does not fit on a full disk
// is lost, as a real container's output would be). Host.mu is held.
func (c *container) write(s string) {
	_, _ = c.log.Write([]byte(s))
}

// finish ends the container. Host.mu is held.
func (c *container) finish(code int, signal string, oom bool) {
	if c.exited {
		return
	}
	c.exited = true
	for _, t := range []*time.Timer{c.timer, c.healthTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.timer, c.healthTimer = nil, nil
	c.exit = ctr.Event{Type: ctr.Exited, ID: c.spec.ID, At: time.Now().UTC(),
		Exit: ctr.Exit{ExitCode: &code, Signal: signal, OOMKilled: oom}}
	_ = c.log.Close()
	close(c.exitedCh)
	c.emit(c.exit)
}

// scheduleProbe runs the next health probe one interval from now.
func (c *container) scheduleProbe(h *Host) {
	c.healthTimer = time.AfterFunc(c.healthCfg.Interval, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if c.exited || c.stopping {
			return
		}
		if c.health.Record(time.Now(), probePasses(c.healthCfg.Argv)) {
			c.emit(ctr.Event{Type: ctr.HealthChanged, ID: c.spec.ID, Health: c.health.Status(), At: time.Now().UTC()})
		}
		c.scheduleProbe(h)
	})
}

// probePasses plays a health check script: it passes when it would exit 0.
func probePasses(argv []string) bool {
	steps, err := workload.Parse(argv)
	if err != nil {
		return false
	}
	for _, s := range steps {
		if s.Op == "exit" {
			return s.N == 0
		}
		if s.Op == "sleep" {
			return false // runs past any timeout
		}
	}
	return true
}

func (c *container) info() ctr.Info {
	info := ctr.Info{ID: c.spec.ID, PID: c.pid, StartedAt: c.startedAt}
	if c.health != nil {
		info.Health = c.health.Status()
	}
	return info
}

func (r *Runtime) get(id string) (*container, error) {
	c := r.h.containers[id]
	if c == nil || c.adoptedBy != r {
		return nil, fmt.Errorf("%w: %s", ctr.ErrNotFound, id)
	}
	return c, nil
}

// Stop delivers SIGTERM as the script says, and SIGKILL after timeout to a
// script that ignores it.
func (r *Runtime) Stop(id string, timeout time.Duration) error {
	h := r.h
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.exited || c.stopping {
		return nil
	}
	c.stopping = true
	if timeout <= 0 {
		timeout = c.spec.StopTimeout
	}
	switch {
	case c.ignoreTerm:
		if c.timer != nil {
			c.timer.Stop()
		}
		c.timer = time.AfterFunc(timeout, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			c.finish(137, "SIGKILL", false)
		})
	case c.trap >= 0:
		c.finish(c.trap, "", false)
	default:
		c.finish(143, "SIGTERM", false)
	}
	return nil
}

// OOMKill kills a running container as the kernel's OOM killer does: exit
// status 137 (SIGKILL) with OOMKilled set.
func (h *Host) OOMKill(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.containers[id]
	if c == nil || c.exited {
		return fmt.Errorf("%w: %s", ctr.ErrNotRunning, id)
	}
	c.finish(137, "SIGKILL", true)
	return nil
}

// Running lists the ids of the Host's containers that have not exited.
func (h *Host) Running() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, id := range sortedKeys(h.containers) {
		if !h.containers[id].exited {
			out = append(out, id)
		}
	}
	return out
}

// Forget removes an exited container.
func (r *Runtime) Forget(id string) error {
	if err := ctr.ValidateID(id); err != nil {
		return err
	}
	h := r.h
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.containers[id]
	if c == nil {
		return nil
	}
	if c.adoptedBy != r {
		return fmt.Errorf("%w: %s exists but was not adopted", ctr.ErrNotFound, id)
	}
	if !c.exited {
		return fmt.Errorf("%w: %s", ctr.ErrNotExited, id)
	}
	delete(h.containers, id)
	return nil
}

// Logs reads the container's log file, following it by polling.
func (r *Runtime) Logs(ctx context.Context, id string, opts ctr.LogOptions) (ctr.LogReader, error) {
	r.h.mu.Lock()
	c, err := r.get(id)
	if err != nil {
		r.h.mu.Unlock()
		return nil, err
	}
	path, exited := c.spec.LogPath, c.exitedCh
	r.h.mu.Unlock()
	return logfile.Open(ctx, path, logfile.ReadOptions{
		Offset: opts.Offset, Follow: opts.Follow, Done: exited, Stop: r.done, Poll: 5 * time.Millisecond,
	})
}

// Stats reports one process using a made-up amount of memory.
func (r *Runtime) Stats(ctx context.Context, id string) (ctr.Stats, error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return ctr.Stats{}, err
	}
	if c.exited {
		return ctr.Stats{}, fmt.Errorf("%w: %s", ctr.ErrNotRunning, id)
	}
	return ctr.Stats{At: time.Now().UTC(), PIDs: 1, MemoryBytes: 1<<20 + uint64(c.log.Position())}, nil
}

// Close detaches the Runtime from the Host; its containers go on.
func (r *Runtime) Close() error {
	r.qmu.Lock()
	if r.closed {
		r.qmu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	r.qmu.Unlock()
	r.wg.Wait()
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	if r.h.attached == r {
		r.h.attached = nil
	}
	for _, c := range r.h.containers {
		if c.adoptedBy == r {
			c.adoptedBy = nil
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Workload is the definition of a fake container called name that plays
// script; it is ctrtest.Factory.Workload for the fake.
func Workload(name string, script ...string) domain.ContainerDefinition {
	return domain.ContainerDefinition{Name: name, Image: "fake", Command: append([]string(nil), script...)}
}

// Host returns the machine r is attached to.
func (r *Runtime) Host() *Host { return r.h }
