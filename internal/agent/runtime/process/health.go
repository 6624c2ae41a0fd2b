//go:build linux

package process

import (
	"context"
	"encoding/json"
	"os/exec"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/runtime/process/shim"
	"github.com/holdfast/holdfast/internal/domain"
)

// Health checks. A container definition's healthCheck runs as a host
// process started by the agent (not by the shim), with the container's
// environment and working directory, the way Docker runs a HEALTHCHECK
// inside the container; ctr/health.go has the rules. The monitor of a
// container probes it until it exits, is being stopped, or the Runtime is
// closed (an adopting Runtime resumes it from the last verdict, kept in
// health.json).

// healthFile keeps a container's last health verdict across agent restarts.
const healthFile = "health.json"

// healthRecord is health.json.
type healthRecord struct {
	Status string `json:"status"`
}

// healthJSON is hc as the shim's spec.json keeps it.
func healthJSON(hc *domain.HealthCheck) json.RawMessage {
	if hc == nil {
		return nil
	}
	b, _ := json.Marshal(hc)
	return b
}

// startMonitor starts the health monitor of c if its spec has a health
// check; status is the verdict to resume from.
func (r *Runtime) startMonitor(c *container, spec shim.Spec, status string) {
	var hc *domain.HealthCheck
	if len(spec.HealthCheck) > 0 && json.Unmarshal(spec.HealthCheck, &hc) != nil {
		r.log.Warn("process runtime: unreadable health check", "id", c.id)
	}
	cfg, ok := ctr.ParseHealthCheck(hc)
	if !ok {
		return
	}
	c.mu.Lock()
	started := c.startedAt
	if started.IsZero() {
		started = time.Now()
	}
	st := ctr.NewHealthState(cfg, started, status)
	c.health = st.Status()
	c.monitorDone = make(chan struct{})
	// Cancelled when c exits (markExited) or the Runtime closes.
	ctx, cancel := context.WithCancel(r.ctx)
	c.stopMonitor = cancel
	exited := c.exited
	c.mu.Unlock()
	if exited {
		cancel()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(c.monitorDone)
		defer cancel()
		r.monitor(ctx, c, cfg, st, spec.Env, spec.Dir)
	}()
}

// monitor probes c every interval and delivers every change of verdict.
func (r *Runtime) monitor(ctx context.Context, c *container, cfg ctr.HealthConfig, st *ctr.HealthState, env []string, dir string) {
	t := time.NewTimer(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.probing() {
			return
		}
		start := time.Now()
		passed := probe(ctx, cfg, env, dir)
		if ctx.Err() != nil || !c.probing() {
			return
		}
		if st.Record(start, passed) {
			status := st.Status()
			c.mu.Lock()
			c.health = status
			c.mu.Unlock()
			if err := shim.WriteJSONAtomic(c.dir, healthFile, healthRecord{Status: status}, false); err != nil {
				r.log.Warn("process runtime: recording health", "id", c.id, "err", err)
			}
			r.send(ctr.Event{Type: ctr.HealthChanged, ID: c.id, Health: status, At: time.Now().UTC()})
		}
		// The next probe starts one interval after this one ended.
		t.Reset(cfg.Interval)
	}
}

// probing reports whether c still runs and is not being stopped.
func (c *container) probing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running && !c.stopping && !c.exited
}

// probe runs one health check command and reports whether it passed.
func probe(ctx context.Context, cfg ctr.HealthConfig, env []string, dir string) bool {
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Kill the whole group: a CMD-SHELL probe's children too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return false
	}
	return pctx.Err() == nil
}
