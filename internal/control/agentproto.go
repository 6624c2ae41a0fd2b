package control

import (
	"context"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
)

// The control plane's side of the agent protocol. The wire types are in
// internal/agentapi, shared with the agent.

// Poll is the agent's heartbeat and desired-state long poll.
func (s *Store) Poll(ctx context.Context, in agentapi.PollInput) (*agentapi.PollOutput, error) {
	cluster, id, err := instanceRef(in.Cluster, in.ContainerInstanceARN)
	if err != nil {
		return nil, err
	}
	var ci *domain.ContainerInstance
	s.read(func(st *state) { ci = st.instances[cluster][id] })
	if ci == nil || ci.Status == domain.Inactive {
		return nil, domain.Errorf(domain.KindResourceNotFound, "Container instance not found; register again.")
	}
	s.mu.Lock()
	if s.polling == nil {
		s.polling = map[string]int{}
	}
	s.polling[id]++
	s.mu.Unlock()
	s.touch(id)
	defer func() {
		s.mu.Lock()
		s.polling[id]--
		s.mu.Unlock()
		s.touch(id)
	}()
	if !ci.AgentConnected {
		// The agent is back: mark it connected again.
		err := s.Update(ctx, func(tx *Tx) error {
			cur := tx.Instance(cluster, id)
			if cur == nil || cur.AgentConnected {
				return nil
			}
			v := cloneInstance(cur)
			v.AgentConnected = true
			tx.PutInstance(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	wait := time.Duration(in.WaitSeconds) * time.Second
	if wait > 30*time.Second {
		wait = 30 * time.Second
	}
	s.mu.Lock()
	rev := s.instRev[id]
	ch := s.instWait[id]
	if ch == nil {
		ch = make(chan struct{})
		s.instWait[id] = ch
	}
	s.mu.Unlock()
	if rev <= in.KnownRevision && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		case <-s.closed:
		case <-s.draining:
		}
		t.Stop()
	}
	out := &agentapi.PollOutput{Tasks: []agentapi.DesiredTask{}, TaskARNs: []string{}}
	s.read(func(st *state) {
		out.Revision = s.instRev[id]
		out.Full = in.KnownRevision <= 0 || in.KnownRevision < s.loadRev
		if cur := st.instances[cluster][id]; cur != nil {
			out.InstanceStatus = cur.Status
		}
		for _, tid := range sortedKeys(st.byInstance[id]) {
			t := st.byInstance[id][tid]
			out.TaskARNs = append(out.TaskARNs, t.TaskARN)
			if !out.Full && s.taskRev[cluster+"/"+tid] <= in.KnownRevision {
				continue
			}
			td, _ := resolveTaskDef(st, t.TaskDefinitionARN)
			out.Tasks = append(out.Tasks, agentapi.DesiredTask{Task: taskView(t), ServiceName: t.Internal.ServiceName, TaskDefinition: td})
		}
	})
	return out, nil
}

// SubmitTaskStateChange records a task's new known status. Status only
// moves forward along the lifecycle; a report for a task the control plane
// already stopped is acknowledged and ignored.
func (s *Store) SubmitTaskStateChange(ctx context.Context, in agentapi.SubmitTaskStateChangeInput) (*agentapi.AckOutput, error) {
	if in.Task == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Task cannot be empty.")
	}
	if _, ok := domain.LifecycleOrder[in.Status]; !ok && in.Status != "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Invalid task status: %s", in.Status)
	}
	for _, cc := range in.Containers {
		switch cc.HealthStatus {
		case "", domain.Healthy, domain.Unhealthy, domain.Unknown:
		default:
			return nil, domain.Errorf(domain.KindInvalidParameter, "Invalid container health status: %s", cc.HealthStatus)
		}
	}
	cluster, id, err := taskRef(in.Cluster, in.Task)
	if err != nil {
		return nil, err
	}
	err = s.Update(ctx, func(tx *Tx) error {
		t := tx.Task(cluster, id)
		if t == nil {
			return domain.Errorf(domain.KindInvalidParameter, "The referenced task was not found.")
		}
		if t.LastStatus == domain.StatusStopped {
			return nil
		}
		now := tx.Now()
		v := cloneTask(t)
		for _, cc := range in.Containers {
			for i := range v.Containers {
				c := &v.Containers[i]
				if c.Name != cc.ContainerName {
					continue
				}
				if cc.Status != "" && domain.LifecycleOrder[cc.Status] >= domain.LifecycleOrder[c.LastStatus] {
					c.LastStatus = cc.Status
				}
				if cc.ExitCode != nil {
					c.ExitCode = cc.ExitCode
				}
				if cc.Reason != "" {
					c.Reason = cc.Reason
				}
				if cc.RuntimeID != "" {
					c.RuntimeID = cc.RuntimeID
				}
				if cc.HealthStatus != "" {
					c.HealthStatus = cc.HealthStatus
				}
			}
		}
		wasHealthy := v.HealthStatus == domain.Healthy
		v.HealthStatus = taskHealth(tx, v)
		if in.PullStartedAt != nil {
			v.PullStartedAt = in.PullStartedAt
		}
		if in.PullStoppedAt != nil {
			v.PullStoppedAt = in.PullStoppedAt
		}
		if in.ExecutionStoppedAt != nil {
			v.ExecutionStoppedAt = in.ExecutionStoppedAt
		}
		if in.Status != "" && domain.LifecycleOrder[in.Status] > domain.LifecycleOrder[v.LastStatus] {
			wasRunning := v.StartedAt != nil
			v.LastStatus = in.Status
			switch in.Status {
			case domain.StatusRunning:
				v.StartedAt = domain.TimePtr(now)
				v.Connectivity = "CONNECTED"
				if !hasHealthCheck(tx, v) {
					// Without a health check a task that runs counts as a
					// success for the circuit breaker.
					resetFailedTasks(tx, v)
				}
			case domain.StatusStopped:
				if v.DesiredStatus != domain.StatusStopped {
					// It stopped by itself.
					if wasRunning {
						v.StopCode = domain.StopEssentialContainerExited
						v.StoppedReason = "Essential container in task exited"
					} else {
						v.StopCode = domain.StopTaskFailedToStart
						v.StoppedReason = in.Reason
						if v.StoppedReason == "" {
							v.StoppedReason = "Task failed to start"
						}
						countFailedStart(tx, v)
					}
				}
				markStopped(v, now)
			}
		}
		if !wasHealthy && v.HealthStatus == domain.Healthy && v.LastStatus == domain.StatusRunning {
			resetFailedTasks(tx, v)
		}
		tx.PutTask(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &agentapi.AckOutput{Acknowledgment: "ACK"}, nil
}

// taskHealth derives a task's healthStatus from its containers' (see
// domain.TaskHealth).
func taskHealth(tx *Tx, t *domain.Task) string {
	td, err := resolveTaskDef(tx.st, t.TaskDefinitionARN)
	if err != nil {
		return t.HealthStatus
	}
	cs := make([]domain.ContainerHealth, len(t.Containers))
	for i, c := range t.Containers {
		cs[i] = domain.ContainerHealth{Name: c.Name, Status: c.HealthStatus}
	}
	return domain.TaskHealth(td, cs)
}

func hasHealthCheck(tx *Tx, t *domain.Task) bool {
	td, err := resolveTaskDef(tx.st, t.TaskDefinitionARN)
	return err == nil && td.HasHealthCheck()
}

// resetFailedTasks zeroes the failedTasks count of t's deployment: ECS
// counts consecutive failures, and a task that runs (and is HEALTHY, with a
// health check) resets the count. It also ends start throttling.
func resetFailedTasks(tx *Tx, t *domain.Task) {
	if t.Internal.ServiceName == "" {
		return
	}
	sv := tx.Service(t.Internal.ClusterName, t.Internal.ServiceName)
	if sv == nil {
		return
	}
	for i := range sv.Deployments {
		d := &sv.Deployments[i]
		if d.ID == t.StartedBy && d.FailedTasks > 0 {
			v := cloneService(sv)
			v.Deployments[i].FailedTasks = 0
			tx.PutService(v)
			return
		}
	}
}

// countFailedStart feeds the deployment circuit breaker.
func countFailedStart(tx *Tx, t *domain.Task) {
	if t.Internal.ServiceName == "" {
		return
	}
	sv := tx.Service(t.Internal.ClusterName, t.Internal.ServiceName)
	if sv == nil {
		return
	}
	v := cloneService(sv)
	for i := range v.Deployments {
		if v.Deployments[i].ID == t.StartedBy {
			v.Deployments[i].FailedTasks++
			v.Internal.LastFailedStart = tx.Now()
		}
	}
	tx.PutService(v)
}

// checkHeartbeats marks instances whose agent has not been heard from for
// longer than timeout as disconnected, and stops their tasks so that the
// controller replaces them.
func (s *Store) checkHeartbeats(timeout time.Duration) {
	now := s.clock.Now()
	type lost struct{ cluster, id string }
	var gone []lost
	s.mu.Lock()
	for cluster, m := range s.st.instances {
		for id, ci := range m {
			if !ci.AgentConnected || ci.Status == domain.Inactive || s.polling[id] > 0 {
				continue
			}
			seen, ok := s.lastSeen[id]
			if !ok {
				if s.lastSeen == nil {
					s.lastSeen = map[string]time.Time{}
				}
				s.lastSeen[id] = now // first look after a restart: grace
				continue
			}
			if now.Sub(seen) > timeout {
				gone = append(gone, lost{cluster, id})
			}
		}
	}
	s.mu.Unlock()
	for _, g := range gone {
		err := s.Update(context.Background(), func(tx *Tx) error {
			ci := tx.Instance(g.cluster, g.id)
			if ci == nil || !ci.AgentConnected {
				return nil
			}
			// The agent may be back since it was picked: a poll open, a
			// heartbeat, or a registration ahead of this in the loop. (fn
			// runs under s.mu's read lock, which guards polling and lastSeen.)
			now := tx.Now()
			if s.polling[g.id] > 0 || now.Sub(s.lastSeen[g.id]) <= timeout || now.Sub(ci.Internal.LastSeen) <= timeout {
				return nil
			}
			v := cloneInstance(ci)
			v.AgentConnected = false
			tx.PutInstance(v)
			for tid := range tx.st.byInstance[g.id] {
				t := tx.Task(g.cluster, tid)
				if t == nil || t.LastStatus == domain.StatusStopped {
					continue
				}
				st := cloneTask(t)
				if st.DesiredStatus != domain.StatusStopped {
					st.StopCode = domain.StopInfrastructureHealth
					st.StoppedReason = "Container instance " + g.id + " stopped sending heartbeats to the control plane"
				}
				markStopped(st, tx.Now())
				tx.PutTask(st)
			}
			return nil
		})
		if err != nil {
			s.log.Error("mark instance disconnected", "instance", g.id, "err", err)
		} else {
			s.log.Warn("container instance lost: no heartbeat", "instance", g.id, "timeout", timeout)
		}
	}
}

// RunHeartbeatMonitor checks heartbeats every timeout/4 until ctx ends.
func (s *Store) RunHeartbeatMonitor(ctx context.Context, timeout time.Duration) {
	period := timeout / 4
	if period <= 0 {
		period = time.Second
	}
	for {
		done := make(chan struct{})
		t := s.clock.AfterFunc(period, func() { close(done) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
			return
		case <-done:
		}
		s.checkHeartbeats(timeout)
	}
}
