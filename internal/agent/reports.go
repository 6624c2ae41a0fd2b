package agent

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
)

// markDirty queues a report of lt's current status (and writes its
// record). Caller holds a.mu.
func (a *Agent) markDirty(lt *localTask) {
	lt.reportDirty = true
	a.changedLocked(lt)
	select {
	case a.reportWake <- struct{}{}:
	default:
	}
}

// reportLoop sends each task's newest status until the control plane
// acknowledges it; while the control plane is unreachable it keeps trying,
// so the agent catches up when it returns.
func (a *Agent) reportLoop(ctx context.Context) {
	backoff := newBackoff()
	for {
		pending := a.pendingReports()
		failed := false
		for i, r := range pending {
			if err := a.report(ctx, r); err != nil {
				a.log.Warn("status report failed; will retry", "task", r.ID, "status", r.KnownStatus, "err", err)
				failed = true
				// pendingReports cleared their dirty flags: queue this one
				// and the rest again, or a change that left the status as
				// it was (health, a container's exit) is never retried.
				a.mu.Lock()
				for _, u := range pending[i:] {
					if lt := a.tasks[u.ID]; lt != nil {
						lt.reportDirty = true
					}
				}
				a.mu.Unlock()
				break
			}
		}
		if failed {
			backoff.sleep(ctx)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		backoff.reset()
		select {
		case <-ctx.Done():
			return
		case <-a.reportWake:
		}
	}
}

// pendingReports copies the tasks whose status is not yet acknowledged.
func (a *Agent) pendingReports() []localTask {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []localTask
	for _, lt := range a.tasks {
		if lt.reportDirty || lt.Reported != lt.KnownStatus {
			lt.reportDirty = false
			c := *lt
			c.Containers = append([]localContainer(nil), lt.Containers...)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// report sends one task's status. On acknowledgement it records what was
// acknowledged and wakes the task's runner (which, for a STOPPED task,
// forgets it).
func (a *Agent) report(ctx context.Context, t localTask) error {
	// The report goes to ECS's SubmitTaskStateChange through the raw signed
	// client, with holdfast's extension: containers[].healthStatus (the SDK's
	// ContainerStateChange has no such member). See docs/architecture.md.
	in := agentapi.SubmitTaskStateChangeInput{
		Cluster: a.cfg.Cluster,
		Task:    t.ARN,
		Status:  t.KnownStatus,
	}
	if t.StopReason != "" && t.KnownStatus == domain.StatusStopped {
		in.Reason = t.StopReason
	}
	if !t.StoppedAt.IsZero() {
		in.ExecutionStoppedAt = domain.TimePtr(t.StoppedAt)
	}
	if !t.StartedAt.IsZero() {
		in.PullStartedAt = domain.TimePtr(t.CreatedAt)
		in.PullStoppedAt = domain.TimePtr(t.CreatedAt)
	}
	for _, c := range t.Containers {
		cs := agentapi.ContainerStateChange{
			ContainerName: c.Name,
			Status:        c.Status,
			RuntimeID:     c.RuntimeID,
			ExitCode:      c.ExitCode,
			Reason:        c.Reason,
		}
		if c.Status == domain.StatusRunning && c.HealthStatus != "" {
			cs.HealthStatus = c.HealthStatus
		}
		in.Containers = append(in.Containers, cs)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ack agentapi.AckOutput
	if err := a.raw.call(rctx, agentapi.SubmitTaskStateChangeTarget, in, &ack); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Type == "InvalidParameterException" {
			// The control plane no longer knows this task: nothing to report.
			a.log.Warn("control plane rejected a status report; dropping it", "task", t.ID, "err", err)
		} else {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if lt := a.tasks[t.ID]; lt != nil && lt.Reported != t.KnownStatus {
		lt.Reported = t.KnownStatus
		a.changedLocked(lt)
	}
	return nil
}
