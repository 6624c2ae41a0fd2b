package agent

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/domain"
)

// The task lifecycle.
//
// Each task has one runner goroutine, from the moment the agent learns of
// the task (or loads its record) until its STOPPED status is acknowledged
// by the control plane and its record is removed. The runner is the only
// caller of the runtime for its task and the only writer of its record.
// Everything else (the long poll, runtime events, acknowledgements) changes
// the task in memory under a.mu and wakes the runner, which then:
//
//  1. writes the record if it changed (before any container starts, the
//     record naming it is durable, so a restarted agent adopts it);
//  2. starts the containers of a PENDING task, in definition order,
//     abandoning the start if the task is stopped meanwhile;
//  3. asks the runtime to stop every running container of a task whose
//     desired status is STOPPED;
//  4. once the task is STOPPED, tears down what the runtime set up for it,
//     and once STOPPED is acknowledged, forgets its containers, removes the
//     record and ends.
//
// Runners end with Run's context; Run waits for them. Tasks keep running.

// ECS's texts.
const (
	reasonEssentialExited = "Essential container in task exited"
	reasonOOM             = "OutOfMemoryError: Container killed due to memory usage"
)

// runner is the handle of a task's runner goroutine.
type runner struct {
	wake chan struct{} // capacity 1: something changed
}

// spawnLocked starts the runner of task id unless it has one or Run is not
// running. Caller holds a.mu.
func (a *Agent) spawnLocked(id string) {
	if a.runCtx == nil || a.runners[id] != nil || a.runCtx.Err() != nil {
		return
	}
	r := &runner{wake: make(chan struct{}, 1)}
	a.runners[id] = r
	ctx := a.runCtx
	a.wg.Go(func() { a.runTask(ctx, id, r) })
}

// wakeLocked wakes task id's runner. Caller holds a.mu.
func (a *Agent) wakeLocked(id string) {
	if r := a.runners[id]; r != nil {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (a *Agent) runTask(ctx context.Context, id string, r *runner) {
	defer func() {
		a.persist(id) // what changed last, if the agent is stopping
		a.mu.Lock()
		if a.runners[id] == r {
			delete(a.runners, id)
		}
		a.mu.Unlock()
	}()
	a.persist(id)
	a.startContainers(ctx, id)
	for ctx.Err() == nil {
		a.persist(id)
		a.sendStops(id)
		if a.finish(ctx, id) {
			return
		}
		var refresh <-chan time.Time
		timer := a.credentialsTimer(id)
		if timer != nil {
			refresh = timer.C
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-refresh:
			a.refreshCredentials(ctx, id)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// startContainers starts every container of a PENDING task; if one cannot
// start, the task stops with the runtime's reason.
func (a *Agent) startContainers(ctx context.Context, id string) {
	a.mu.Lock()
	lt := a.tasks[id]
	if lt == nil || lt.KnownStatus != domain.StatusPending || lt.DesiredStatus != domain.StatusRunning {
		a.mu.Unlock()
		return
	}
	lt.starting = true
	task := a.taskSpecLocked(lt)
	a.mu.Unlock()
	if !a.ensureCredentials(ctx, id) {
		return
	}

	network, err := a.rt.SetupTask(ctx, task)
	if err != nil {
		if ctx.Err() == nil {
			a.failStart(id, err.Error())
		}
		return
	}
	a.mu.Lock()
	lt.Network = &network
	a.changedLocked(lt)
	a.mu.Unlock()
	for i := range task.Definition.ContainerDefinitions {
		a.persist(id) // durable before the container exists
		spec, skip, abort := a.nextStart(id, i, task)
		if abort {
			return
		}
		if skip {
			continue
		}
		info, err := a.rt.Start(ctx, spec)
		if err != nil {
			if ctx.Err() != nil {
				// The agent is shutting down, not the task failing: the
				// next agent finishes the start.
				return
			}
			a.failStart(id, err.Error())
			return
		}
		if a.afterStart != nil {
			a.afterStart(spec.ID)
		}
		a.mu.Lock()
		c := &lt.Containers[i]
		if c.Status == domain.StatusPending {
			// (Its exit may have been applied already.)
			c.Status = domain.StatusRunning
		}
		c.PID = info.PID
		c.StartedAt = info.StartedAt
		if c.StartedAt.IsZero() {
			c.StartedAt = time.Now()
		}
		if info.Health != "" && c.HealthStatus == "" {
			c.HealthStatus = info.Health
		}
		a.changedLocked(lt)
		a.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lt.starting = false
	if lt.KnownStatus == domain.StatusPending {
		lt.KnownStatus = domain.StatusRunning
		lt.StartedAt = time.Now()
	}
	if lt.DesiredStatus == domain.StatusStopped {
		a.stopLocked(lt)
	}
	a.markDirty(lt)
}

// nextStart prepares the start of container i: skip it when it already
// runs (adopted after an agent restart), abort when the task was told to
// stop meanwhile (the containers not started yet never will be; those
// already started are stopped).
func (a *Agent) nextStart(id string, i int, task ctr.TaskSpec) (spec ctr.Spec, skip, abort bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt.DesiredStatus == domain.StatusStopped {
		lt.starting = false
		for j := i; j < len(lt.Containers); j++ {
			if lt.Containers[j].Status == domain.StatusPending {
				lt.Containers[j].Status = domain.StatusStopped
			}
		}
		a.stopLocked(lt)
		a.markDirty(lt)
		return spec, false, true
	}
	c := lt.Containers[i]
	if c.Status == domain.StatusRunning {
		return spec, true, false
	}
	cd := task.Definition.ContainerDefinitions[i]
	return ctr.Spec{
		ID:          c.RuntimeID,
		Task:        task,
		Container:   cd,
		Env:         a.env(lt, cd, c),
		LogPath:     a.logPath(id, cd.Name),
		LogLimits:   a.cfg.LogLimits,
		StopTimeout: c.StopTimeout,
	}, false, false
}

func (a *Agent) taskSpecLocked(lt *localTask) ctr.TaskSpec {
	return ctr.TaskSpec{ID: lt.ID, ARN: lt.ARN, Cluster: a.cfg.Cluster, Definition: lt.TaskDef}
}

// env builds a container's environment: the task definition's environment,
// then the injected ECS variables. The runtime adds its own base (the
// process runtime: the agent's PATH and HOME).
func (a *Agent) env(lt *localTask, cd domain.ContainerDefinition, c localContainer) []string {
	var env []string
	for _, kv := range cd.Environment {
		env = append(env, kv.Name+"="+kv.Value)
	}
	host := "http://" + a.cfg.Listen
	return ctr.MergeEnv(env, append([]string{
		"ECS_AGENT_URI=" + host + "/api/" + c.EndpointID,
		"ECS_CONTAINER_METADATA_URI_V4=" + host + "/v4/" + c.EndpointID,
		"ECS_CONTAINER_METADATA_URI=" + host + "/v4/" + c.EndpointID,
		"AWS_REGION=" + a.cfg.Region,
		"AWS_DEFAULT_REGION=" + a.cfg.Region,
	}, a.credentialsEnv(lt, c)...))
}

// failStart stops a task whose start failed, with the reason.
func (a *Agent) failStart(id, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt == nil {
		return
	}
	lt.starting = false
	a.log.Warn("task failed to start", "task", id, "reason", reason)
	lt.StopReason = reason
	lt.DesiredStatus = domain.StatusStopped
	for i := range lt.Containers {
		if lt.Containers[i].Status == domain.StatusPending {
			lt.Containers[i].Status = domain.StatusStopped
			lt.Containers[i].Reason = reason
		}
	}
	a.stopLocked(lt)
	a.markDirty(lt)
}

// sendStops asks the runtime to stop the running containers of a task that
// is to stop, each once per agent.
func (a *Agent) sendStops(id string) {
	type stop struct {
		id      string
		timeout time.Duration
	}
	var stops []stop
	a.mu.Lock()
	if lt := a.tasks[id]; lt != nil && lt.DesiredStatus == domain.StatusStopped {
		for i := range lt.Containers {
			c := &lt.Containers[i]
			if c.Status == domain.StatusRunning && !c.stopSent {
				c.stopSent = true
				stops = append(stops, stop{c.RuntimeID, c.StopTimeout})
			}
		}
	}
	a.mu.Unlock()
	for _, s := range stops {
		if err := a.rt.Stop(s.id, s.timeout); err != nil {
			a.log.Warn("stop container", "container", s.id, "err", err)
		}
	}
}

// finish tears a STOPPED task down and, once its STOPPED status is
// acknowledged, forgets it; it reports true when the runner is done.
func (a *Agent) finish(ctx context.Context, id string) bool {
	a.mu.Lock()
	lt := a.tasks[id]
	if lt == nil {
		a.mu.Unlock()
		return true
	}
	if lt.KnownStatus != domain.StatusStopped {
		a.mu.Unlock()
		return false
	}
	tornDown, acked := lt.tornDown, lt.Reported == domain.StatusStopped
	var ids []string
	for _, c := range lt.Containers {
		ids = append(ids, c.RuntimeID)
	}
	a.mu.Unlock()
	if !tornDown {
		if err := a.rt.TeardownTask(ctx, id); err != nil {
			a.log.Warn("tear down task", "task", id, "err", err)
		} else {
			a.mu.Lock()
			lt.tornDown = true
			a.mu.Unlock()
		}
	}
	if !acked {
		return false
	}
	for _, rid := range ids {
		if err := a.rt.Forget(rid); err != nil {
			a.log.Warn("forget container", "container", rid, "err", err)
		}
	}
	a.removeRecord(id)
	a.mu.Lock()
	for _, rid := range ids {
		delete(a.byRuntime, rid)
	}
	delete(a.tasks, id)
	a.mu.Unlock()
	return true
}

// stopLocked moves lt towards STOPPED: a task that was RUNNING is STOPPING
// until its last container has exited; the runner sends the stops.
func (a *Agent) stopLocked(lt *localTask) {
	live := false
	for _, c := range lt.Containers {
		if c.Status == domain.StatusRunning {
			live = true
		}
	}
	if live && lt.KnownStatus == domain.StatusRunning {
		lt.KnownStatus = domain.StatusStopping
		a.markDirty(lt)
	}
	a.changedLocked(lt)
	if lt.KnownStatus != domain.StatusStopped {
		a.finishIfDone(lt)
	}
}

// finishIfDone moves lt to STOPPED once no container is running.
func (a *Agent) finishIfDone(lt *localTask) {
	if lt.starting {
		return // the runner finishes the start first
	}
	for _, c := range lt.Containers {
		if c.Status == domain.StatusRunning {
			return
		}
	}
	if lt.KnownStatus == domain.StatusStopped {
		return
	}
	if lt.KnownStatus == domain.StatusPending && lt.DesiredStatus == domain.StatusRunning {
		return // still starting
	}
	lt.KnownStatus = domain.StatusStopped
	lt.StoppedAt = time.Now()
	for _, c := range lt.Containers {
		delete(a.byEndpoint, c.EndpointID)
	}
	a.dropCredentialsLocked(lt)
	a.markDirty(lt)
}

// eventLoop applies the runtime's events until ctx ends.
func (a *Agent) eventLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-a.rt.Events():
			switch e.Type {
			case ctr.Exited:
				a.onExit(e)
			case ctr.HealthChanged:
				a.onHealth(e)
			}
		}
	}
}

func (a *Agent) onExit(e ctr.Event) {
	a.mu.Lock()
	ref, ok := a.byRuntime[e.ID]
	var lt *localTask
	if ok {
		lt = a.tasks[ref.task]
	}
	if lt == nil {
		a.mu.Unlock()
		// Not ours (any more): its exit has nothing to update.
		if err := a.rt.Forget(e.ID); err != nil && !errors.Is(err, ctr.ErrNotFound) {
			a.log.Warn("forget container", "container", e.ID, "err", err)
		}
		return
	}
	defer a.mu.Unlock()
	for i := range lt.Containers {
		c := &lt.Containers[i]
		if c.Name != ref.container || c.Status == domain.StatusStopped {
			continue
		}
		c.Status = domain.StatusStopped
		c.ExitCode = e.Exit.ExitCode
		c.Reason = e.Exit.Reason
		if e.Exit.OOMKilled {
			c.Reason = reasonOOM
		}
		if c.ExitCode == nil && e.Exit.Signal != "" {
			// A signalled process reports 128+n, as a shell would.
			code := 128 + signalNumber(e.Exit.Signal)
			c.ExitCode = &code
		}
		c.FinishedAt = e.At
		a.containerStoppedLocked(lt, c)
	}
}

// containerStoppedLocked applies the exit of c to its task: an essential
// container's exit stops the task; a non-essential one's does not.
func (a *Agent) containerStoppedLocked(lt *localTask, c *localContainer) {
	if c.Essential && lt.DesiredStatus == domain.StatusRunning {
		lt.DesiredStatus = domain.StatusStopped
		lt.StopReason = reasonEssentialExited
	}
	if lt.DesiredStatus == domain.StatusStopped {
		a.stopLocked(lt)
	}
	a.finishIfDone(lt)
	// Report the container's exit even while the task goes on.
	a.markDirty(lt)
}

func (a *Agent) onHealth(e ctr.Event) {
	a.mu.Lock()
	ref, ok := a.byRuntime[e.ID]
	a.mu.Unlock()
	if ok {
		a.setHealth(ref.task, ref.container, e.Health)
	}
}

// setHealth records a container's new health status and queues a report;
// it reports false once the container no longer runs in a task meant to
// keep running.
func (a *Agent) setHealth(taskID, name, status string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[taskID]
	if lt == nil || lt.DesiredStatus != domain.StatusRunning {
		return false
	}
	for i := range lt.Containers {
		c := &lt.Containers[i]
		// (A verdict may arrive before the runner has seen its start.)
		if c.Name != name || c.Status == domain.StatusStopped {
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

func signalNumber(name string) int {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "QUIT":
		return 3
	case "KILL":
		return 9
	case "TERM":
		return 15
	default:
		return 0
	}
}
