package control

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/longpoll"
	"github.com/holdfast/holdfast/internal/state"
)

// Agents serves the agent protocol (its messages are in internal/agentapi):
// registration, the long poll, status reports and the heartbeat monitor.
//
// A long poll waits for its instance's desired tasks to change. Agents
// learns of changes from the state engine's change feed: Run reads it and
// keeps, per instance, the revision at which its desired tasks last changed
// (and per task, for delta polls), and wakes the polls waiting on it. One
// subscription serves every agent.
type Agents struct {
	st   *state.Engine
	part domain.Partition
	log  *slog.Logger

	// lastSeen is when each instance's agent was last heard from (memory
	// only: after a restart every agent gets a fresh grace period); polling
	// counts the agents with a long poll open right now.
	mu       sync.Mutex
	lastSeen map[string]time.Time
	polling  map[string]int

	hub pollHub
	sub *state.Subscription

	// draining is closed by BeginShutdown: long polls answer at once.
	draining     chan struct{}
	drainingOnce sync.Once
	// done is closed when Run returns: polls no longer wait.
	done chan struct{}
}

// pollHub is the per-instance view of the change feed.
type pollHub struct {
	mu sync.Mutex
	// rev is the revision of the last batch applied; advanced is closed
	// and replaced whenever it moves.
	rev      int64
	advanced chan struct{}
	// instRev: the revision at which each instance's desired tasks last
	// changed; wait: closed and replaced at each such change.
	instRev map[string]int64
	wait    map[string]chan struct{}
	// taskRev: the revision at which each non-stopped task's desired state
	// last changed, for delta polls.
	taskRev map[string]int64
}

// NewAgents returns the agent protocol of a control plane. Call Run.
func NewAgents(st *state.Engine, part domain.Partition, log *slog.Logger) *Agents {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agents{
		st:       st,
		part:     part,
		log:      log,
		lastSeen: map[string]time.Time{},
		polling:  map[string]int{},
		draining: make(chan struct{}),
		done:     make(chan struct{}),
	}
	a.hub.wait = map[string]chan struct{}{}
	a.hub.advanced = make(chan struct{})
	a.sub = a.resync()
	return a
}

// resync (re)builds the hub from a view, marking every instance and task
// changed at the view's revision, and subscribes after it.
func (a *Agents) resync() *state.Subscription {
	var sub *state.Subscription
	a.st.View(func(r *state.View) {
		h := &a.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		h.instRev = map[string]int64{}
		h.taskRev = map[string]int64{}
		for _, ci := range Instances.All(r) {
			h.instRev[ci.Internal.ID] = r.Rev()
			for _, t := range tasksByInstance.Group(r, ci.Internal.ID) {
				h.taskRev[taskKey(t.Internal.ClusterName, t.Internal.ID)] = r.Rev()
			}
		}
		for id, ch := range h.wait {
			close(ch)
			delete(h.wait, id)
		}
		var err error
		// A view holds the engine's read lock, so no batch can be published
		// between it and the subscription.
		sub, err = a.st.Subscribe(state.SubscribeOptions{After: r.Rev()})
		if err != nil {
			panic("control: subscribe at the current revision: " + err.Error())
		}
		h.advance(r.Rev())
	})
	return sub
}

// Run keeps the long polls' view of the change feed until ctx ends or the
// engine closes.
func (a *Agents) Run(ctx context.Context) {
	defer close(a.done)
	for {
		b, err := a.sub.Next(ctx)
		switch {
		case err == nil:
			a.hub.apply(b)
		case errors.Is(err, state.ErrLagged):
			a.log.Warn("agent protocol fell behind the change feed; every agent gets its full task list", "err", err)
			a.sub = a.resync()
		default:
			return
		}
	}
}

// apply records which instances' desired tasks a batch changed and wakes
// their polls.
func (h *pollHub) apply(b state.Batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.advance(b.Rev)
	for _, c := range b.Changes {
		if old, t, ok := state.As(c, Tasks); ok {
			if t == nil {
				delete(h.taskRev, c.Key)
				continue
			}
			if t.Internal.InstanceID == "" {
				continue
			}
			stopped := t.LastStatus == domain.StatusStopped
			if old == nil || old.DesiredStatus != t.DesiredStatus || (old.LastStatus == domain.StatusStopped) != stopped ||
				old.Internal.InstanceID != t.Internal.InstanceID {
				if stopped {
					delete(h.taskRev, c.Key)
				} else {
					h.taskRev[c.Key] = b.Rev
				}
				h.changed(t.Internal.InstanceID, b.Rev)
			}
			continue
		}
		if old, ci, ok := state.As(c, Instances); ok && ci != nil {
			if old == nil || old.Status != ci.Status || old.AgentConnected != ci.AgentConnected {
				h.changed(ci.Internal.ID, b.Rev)
			}
		}
	}
}

// advance records that the hub has applied every batch up to rev. Caller
// holds h.mu.
func (h *pollHub) advance(rev int64) {
	if rev > h.rev {
		h.rev = rev
		close(h.advanced)
		h.advanced = make(chan struct{})
	}
}

// caughtUp waits until the hub has applied rev, so that a poll answers
// with every change acknowledged before it began.
func (a *Agents) caughtUp(ctx context.Context, rev int64) {
	h := &a.hub
	for {
		h.mu.Lock()
		done, ch := h.rev >= rev, h.advanced
		h.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-a.done:
			return
		}
	}
}

func (h *pollHub) changed(id string, rev int64) {
	h.instRev[id] = rev
	if ch := h.wait[id]; ch != nil {
		close(ch)
		delete(h.wait, id)
	}
}

// BeginShutdown makes open and future long polls answer at once, so that
// an HTTP server shutdown does not wait for them.
func (a *Agents) BeginShutdown() {
	a.drainingOnce.Do(func() { close(a.draining) })
}

// touch records that an instance's agent was heard from now.
func (a *Agents) touch(id string) {
	a.mu.Lock()
	a.lastSeen[id] = a.st.Now()
	a.mu.Unlock()
}

// Poll is the agent's heartbeat and desired-state long poll.
func (a *Agents) Poll(ctx context.Context, in agentapi.PollInput) (*agentapi.PollOutput, error) {
	cluster, id, err := instanceRef(in.Cluster, in.ContainerInstanceARN)
	if err != nil {
		return nil, err
	}
	var ci *domain.ContainerInstance
	a.st.View(func(r *state.View) { ci = getInstance(r, cluster, id) })
	if ci == nil || ci.Status == domain.Inactive {
		return nil, domain.Errorf(domain.KindResourceNotFound, "Container instance not found; register again.")
	}
	a.mu.Lock()
	a.polling[id]++
	a.mu.Unlock()
	a.touch(id)
	defer func() {
		a.mu.Lock()
		a.polling[id]--
		a.mu.Unlock()
		a.touch(id)
	}()
	if !ci.AgentConnected {
		// The agent is back: mark it connected again.
		err := update(ctx, a.st, func(tx *state.Tx) error {
			cur := getInstance(tx, cluster, id)
			if cur == nil || cur.AgentConnected {
				return nil
			}
			v := cloneInstance(cur)
			v.AgentConnected = true
			Instances.Put(tx, v)
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
	// Read your writes: the answer reflects every commit acknowledged
	// before the poll began.
	a.caughtUp(ctx, a.st.Rev())
	h := &a.hub
	h.mu.Lock()
	rev := h.instRev[id]
	ch := h.wait[id]
	if ch == nil {
		ch = make(chan struct{})
		h.wait[id] = ch
	}
	h.mu.Unlock()
	if rev <= in.KnownRevision && wait > 0 {
		longpoll.Waiting(ctx) // nothing below fails: the transport may stream from here
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		case <-a.done:
		case <-a.draining:
		}
		t.Stop()
	}
	out := &agentapi.PollOutput{Tasks: []agentapi.DesiredTask{}, TaskARNs: []string{}}
	a.st.View(func(r *state.View) {
		h.mu.Lock()
		defer h.mu.Unlock()
		out.Revision = h.instRev[id]
		out.Full = in.KnownRevision <= 0 || in.KnownRevision < a.st.LoadRev()
		if cur := getInstance(r, cluster, id); cur != nil {
			out.InstanceStatus = cur.Status
		}
		for _, k := range tasksByInstance.Keys(r, id) {
			t := Tasks.Get(r, k)
			out.TaskARNs = append(out.TaskARNs, t.TaskARN)
			if !out.Full && h.taskRev[k] <= in.KnownRevision {
				continue
			}
			td, _ := resolveTaskDef(r, t.TaskDefinitionARN)
			out.Tasks = append(out.Tasks, agentapi.DesiredTask{Task: taskView(t), ServiceName: t.Internal.ServiceName, TaskDefinition: td})
		}
	})
	return out, nil
}

// RegisterContainerInstance registers an agent, or re-registers it when
// containerInstanceArn names an instance it registered before.
func (a *Agents) RegisterContainerInstance(ctx context.Context, in RegisterContainerInstanceInput) (*ContainerInstanceOutput, error) {
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	var out *domain.ContainerInstance
	err = update(ctx, a.st, func(tx *state.Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		now := tx.Now()
		var ci *domain.ContainerInstance
		if in.ContainerInstanceARN != "" {
			id, _, err := domain.ResourceName(in.ContainerInstanceARN, "container-instance")
			if err != nil {
				return err
			}
			if old := getInstance(tx, cluster, id); old != nil && old.Status != domain.Inactive {
				ci = cloneInstance(old)
				if ci.Internal.Agent == "" {
					// An instance registered by the root, claimed by an
					// agent identity (after an upgrade).
					ci.Internal.Agent = in.Agent
				}
			}
		}
		if ci == nil {
			id := in.ID
			if id == "" || getInstance(tx, cluster, id) != nil {
				id = newID()
			}
			ci = &domain.ContainerInstance{
				ContainerInstanceARN: a.part.ContainerInstanceARN(cluster, id),
				EC2InstanceID:        "hf-" + id[:17],
				Version:              1,
				Status:               domain.Active,
				RegisteredAt:         domain.TimePtr(now),
				Internal:             &domain.InstanceInternal{ID: id, ClusterName: cluster, Agent: in.Agent},
			}
		}
		ci.Attributes = in.Attributes
		if ci.Attributes == nil {
			ci.Attributes = []domain.Attribute{}
		}
		ci.VersionInfo = in.VersionInfo
		ci.RegisteredResources = in.TotalResources
		ci.RemainingResources = in.TotalResources
		ci.Tags = in.Tags
		ci.AgentConnected = true
		ci.Internal.LastSeen = now
		Instances.Put(tx, ci)
		out = ci
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.touch(out.Internal.ID)
	return &ContainerInstanceOutput{ContainerInstance: instanceView(a.st, out)}, nil
}

// SubmitTaskStateChange records a task's new known status. Status only
// moves forward along the lifecycle; a report for a task the control plane
// already stopped is acknowledged and ignored.
func (a *Agents) SubmitTaskStateChange(ctx context.Context, in agentapi.SubmitTaskStateChangeInput) (*agentapi.AckOutput, error) {
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
	err = update(ctx, a.st, func(tx *state.Tx) error {
		t := getTask(tx, cluster, id)
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
		putTask(tx, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &agentapi.AckOutput{Acknowledgment: "ACK"}, nil
}

// taskHealth derives a task's healthStatus from its containers' (see
// domain.TaskHealth).
func taskHealth(tx *state.Tx, t *domain.Task) string {
	td, err := resolveTaskDef(tx, t.TaskDefinitionARN)
	if err != nil {
		return t.HealthStatus
	}
	cs := make([]domain.ContainerHealth, len(t.Containers))
	for i, c := range t.Containers {
		cs[i] = domain.ContainerHealth{Name: c.Name, Status: c.HealthStatus}
	}
	return domain.TaskHealth(td, cs)
}

func hasHealthCheck(tx *state.Tx, t *domain.Task) bool {
	td, err := resolveTaskDef(tx, t.TaskDefinitionARN)
	return err == nil && td.HasHealthCheck()
}

// resetFailedTasks zeroes the failedTasks count of t's deployment: ECS
// counts consecutive failures, and a task that runs (and is HEALTHY, with a
// health check) resets the count. It also ends start throttling.
func resetFailedTasks(tx *state.Tx, t *domain.Task) {
	if t.Internal.ServiceName == "" {
		return
	}
	sv := getService(tx, t.Internal.ClusterName, t.Internal.ServiceName)
	if sv == nil {
		return
	}
	for i := range sv.Deployments {
		d := &sv.Deployments[i]
		if d.ID == t.StartedBy && d.FailedTasks > 0 {
			v := cloneService(sv)
			v.Deployments[i].FailedTasks = 0
			Services.Put(tx, v)
			return
		}
	}
}

// countFailedStart feeds the deployment circuit breaker.
func countFailedStart(tx *state.Tx, t *domain.Task) {
	if t.Internal.ServiceName == "" {
		return
	}
	sv := getService(tx, t.Internal.ClusterName, t.Internal.ServiceName)
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
	Services.Put(tx, v)
}

// checkHeartbeats marks instances whose agent has not been heard from for
// longer than timeout as disconnected, and stops their tasks so that the
// controller replaces them.
func (a *Agents) checkHeartbeats(ctx context.Context, timeout time.Duration) {
	now := a.st.Now()
	type lost struct{ cluster, id string }
	var gone []lost
	a.st.View(func(r *state.View) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, ci := range Instances.All(r) {
			id := ci.Internal.ID
			if !ci.AgentConnected || ci.Status == domain.Inactive || a.polling[id] > 0 {
				continue
			}
			seen, ok := a.lastSeen[id]
			if !ok {
				a.lastSeen[id] = now // first look after a restart: grace
				continue
			}
			if now.Sub(seen) > timeout {
				gone = append(gone, lost{ci.Internal.ClusterName, id})
			}
		}
	})
	for _, g := range gone {
		err := update(ctx, a.st, func(tx *state.Tx) error {
			ci := getInstance(tx, g.cluster, g.id)
			if ci == nil || !ci.AgentConnected {
				return nil
			}
			// The agent may be back since it was picked: a poll open, a
			// heartbeat, or a registration ahead of this in the loop.
			now := tx.Now()
			a.mu.Lock()
			back := a.polling[g.id] > 0 || now.Sub(a.lastSeen[g.id]) <= timeout
			a.mu.Unlock()
			if back || now.Sub(ci.Internal.LastSeen) <= timeout {
				return nil
			}
			v := cloneInstance(ci)
			v.AgentConnected = false
			Instances.Put(tx, v)
			for _, k := range tasksByInstance.Keys(tx, g.id) {
				st := cloneTask(Tasks.Get(tx, k))
				if st.DesiredStatus != domain.StatusStopped {
					st.StopCode = domain.StopInfrastructureHealth
					st.StoppedReason = "Container instance " + g.id + " stopped sending heartbeats to the control plane"
				}
				markStopped(st, tx.Now())
				putTask(tx, st)
			}
			return nil
		})
		if err != nil {
			a.log.Error("mark instance disconnected", "instance", g.id, "err", err)
		} else {
			a.log.Warn("container instance lost: no heartbeat", "instance", g.id, "timeout", timeout)
		}
	}
}

// RunHeartbeatMonitor checks heartbeats every timeout/4 until ctx ends.
func (a *Agents) RunHeartbeatMonitor(ctx context.Context, timeout time.Duration) {
	period := timeout / 4
	if period <= 0 {
		period = time.Second
	}
	clk := a.st.Clock()
	for {
		done := make(chan struct{})
		t := clk.AfterFunc(period, func() { close(done) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-done:
		}
		a.checkHeartbeats(ctx, timeout)
	}
}
