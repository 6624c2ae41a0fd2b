package agent

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

// Container health checks.
//
// A container definition's healthCheck runs as a host process started by the
// agent, with the container's environment and working directory, the way
// Docker runs a HEALTHCHECK inside the container:
//
//   - ["CMD-SHELL", "cmd"] runs /bin/sh -c "cmd"; ["CMD", "prog", "arg"...]
//     runs prog directly; ["NONE"] (or no command) disables the check. Any
//     other first element is read as the program itself (Docker rejects it).
//   - The first probe runs `interval` after the container started, then one
//     every `interval` (probes never overlap). A probe passes on exit code 0;
//     any other exit, a start error, or running past `timeout` (the probe's
//     process group is then killed) is a failure.
//   - Status starts UNKNOWN (Docker's "starting"). A pass makes it HEALTHY and
//     resets the failure streak. A failure while still UNKNOWN and within
//     `startPeriod` of the container's start does not count; any other
//     failure extends the streak, and `retries` consecutive failures make it
//     UNHEALTHY.
//   - Defaults are ECS's: interval 30 s, timeout 5 s, retries 3, startPeriod
//     0. Values of 0 or less read as the default (startPeriod: as 0).
//
// The agent reports every change of a container's status to the control
// plane (healthStatus on SubmitTaskStateChange's containers), which derives
// the task's healthStatus with domain.TaskHealth.

// healthConfig is a parsed container healthCheck.
type healthConfig struct {
	argv        []string
	interval    time.Duration
	timeout     time.Duration
	startPeriod time.Duration
	retries     int
}

// parseHealthCheck reads hc with ECS's defaults; ok is false when there is
// nothing to run.
func parseHealthCheck(hc *domain.HealthCheck) (cfg healthConfig, ok bool) {
	if !hc.Enabled() {
		return cfg, false
	}
	switch hc.Command[0] {
	case "CMD-SHELL":
		if len(hc.Command) < 2 {
			return cfg, false
		}
		cfg.argv = []string{"/bin/sh", "-c", hc.Command[1]}
	case "CMD":
		if len(hc.Command) < 2 {
			return cfg, false
		}
		cfg.argv = append([]string(nil), hc.Command[1:]...)
	default:
		cfg.argv = append([]string(nil), hc.Command...)
	}
	secs := func(p *int, def int) time.Duration {
		if p == nil || *p <= 0 {
			return time.Duration(def) * time.Second
		}
		return time.Duration(*p) * time.Second
	}
	cfg.interval = secs(hc.Interval, 30)
	cfg.timeout = secs(hc.Timeout, 5)
	if hc.StartPeriod != nil && *hc.StartPeriod > 0 {
		cfg.startPeriod = time.Duration(*hc.StartPeriod) * time.Second
	}
	cfg.retries = 3
	if hc.Retries != nil && *hc.Retries > 0 {
		cfg.retries = *hc.Retries
	}
	return cfg, true
}

// healthState is Docker's health state machine for one container.
type healthState struct {
	startPeriod time.Duration
	retries     int
	started     time.Time // when the container started
	status      string    // UNKNOWN, HEALTHY or UNHEALTHY
	streak      int       // consecutive failures that counted
}

func newHealthState(cfg healthConfig, started time.Time, status string) *healthState {
	if status != domain.Healthy && status != domain.Unhealthy {
		status = domain.Unknown
	}
	return &healthState{startPeriod: cfg.startPeriod, retries: max(cfg.retries, 1), started: started, status: status}
}

// record applies the result of a probe that started at probeStart and
// reports whether the status changed.
func (h *healthState) record(probeStart time.Time, passed bool) bool {
	old := h.status
	if passed {
		h.streak = 0
		h.status = domain.Healthy
		return old != h.status
	}
	if h.status == domain.Unknown && probeStart.Sub(h.started) < h.startPeriod {
		return false // failures in the start period do not count
	}
	h.streak++
	if h.streak >= h.retries {
		h.status = domain.Unhealthy
	}
	return old != h.status
}

// probe runs one health check command and reports whether it passed.
func probe(ctx context.Context, cfg healthConfig, env []string, dir string) bool {
	pctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(pctx, cfg.argv[0], cfg.argv[1:]...)
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

// containerDir is where a container runs: its workingDirectory, else its
// own directory under the agent's data dir.
func (a *Agent) containerDir(taskID string, cd domain.ContainerDefinition) string {
	if cd.WorkingDirectory != "" {
		return cd.WorkingDirectory
	}
	return filepath.Join(a.cfg.DataDir, "work", taskID, cd.Name)
}

// startHealthChecks starts the health monitor of every running container of
// task id that defines a health check and has none running yet.
func (a *Agent) startHealthChecks(ctx context.Context, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt == nil || lt.DesiredStatus != domain.StatusRunning {
		return
	}
	for i, c := range lt.Containers {
		if c.Status != domain.StatusRunning || i >= len(lt.TaskDef.ContainerDefinitions) {
			continue
		}
		cd := lt.TaskDef.ContainerDefinitions[i]
		cfg, ok := parseHealthCheck(cd.HealthCheck)
		if !ok || a.monitors[c.RuntimeID] {
			continue
		}
		if a.monitors == nil {
			a.monitors = map[string]bool{}
		}
		a.monitors[c.RuntimeID] = true
		started := c.StartedAt
		if started.IsZero() {
			started = time.Now()
		}
		st := newHealthState(cfg, started, c.HealthStatus)
		go a.healthLoop(ctx, id, c.Name, c.RuntimeID, cfg, st, a.env(cd, c), a.containerDir(id, cd))
	}
}

// healthLoop probes one container every interval until it stops, its task
// is being stopped, or ctx ends, and records every status change.
func (a *Agent) healthLoop(ctx context.Context, taskID, name, runtimeID string, cfg healthConfig, st *healthState, env []string, dir string) {
	defer func() {
		a.mu.Lock()
		delete(a.monitors, runtimeID)
		a.mu.Unlock()
	}()
	t := time.NewTimer(cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.containerLive(taskID, name) {
			return
		}
		start := time.Now()
		passed := probe(ctx, cfg, env, dir)
		if ctx.Err() != nil {
			return
		}
		if st.record(start, passed) {
			if !a.setHealth(taskID, name, st.status) {
				return
			}
		} else if !a.containerLive(taskID, name) {
			return
		}
		// The next probe starts one interval after this one ended.
		t.Reset(cfg.interval)
	}
}

// containerLive reports whether the container runs in a task that is
// meant to keep running.
func (a *Agent) containerLive(taskID, name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[taskID]
	if lt == nil || lt.DesiredStatus != domain.StatusRunning {
		return false
	}
	for _, c := range lt.Containers {
		if c.Name == name {
			return c.Status == domain.StatusRunning
		}
	}
	return false
}

// setHealth records a container's new health status and queues a report;
// it reports false once the container no longer runs.
func (a *Agent) setHealth(taskID, name, status string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[taskID]
	if lt == nil || lt.DesiredStatus != domain.StatusRunning {
		return false
	}
	for i := range lt.Containers {
		c := &lt.Containers[i]
		if c.Name != name || c.Status != domain.StatusRunning {
			continue
		}
		if c.HealthStatus != status {
			a.log.Info("container health changed", "task", taskID, "container", name, "health", status)
			c.HealthStatus = status
			a.markDirty(lt)
		}
		return true
	}
	return false
}
