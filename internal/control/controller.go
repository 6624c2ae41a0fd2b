package control

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/workqueue"
)

// Controller reconciles services, Kubernetes-controller style: level
// triggered and keyed by service ("cluster/name"). It reads the state
// engine's change feed: every durable change that touches a service (its
// desired count, a task's status or protection, an instance joining or
// leaving) queues the service's key at once; timed rechecks (protection
// expiry, event repeats, start throttling) come from the plan's
// RequeueAfter through the work queue's clock. A key is never reconciled
// twice at once, and a reconcile that fails is retried with per-key
// exponential backoff.
//
// The pure reconciler runs outside any lock on an input read from a view;
// its plan is applied only to the state the input came from (see
// reconcile).
type Controller struct {
	st    *state.Engine
	part  domain.Partition
	log   *slog.Logger
	clk   clock.Clock
	queue *workqueue.Queue
	sub   *state.Subscription
	// processed is the revision of the last batch of the change feed
	// whose services were queued.
	processed atomic.Int64

	mu sync.Mutex
	// inert holds the services whose last plan was ProtectionInert: a
	// change of protection alone cannot change their plan, so it does not
	// queue them.
	inert map[string]bool

	// StoppedRetention is how long STOPPED tasks stay visible (ECS: at
	// least an hour).
	StoppedRetention time.Duration
	// Reconciled, if set, is called after each reconcile (tests, metrics).
	Reconciled func(key string, plan scheduler.Plan)
}

// Retry backoff of a reconcile that failed (for example a failed commit).
const (
	retryBase = time.Second
	retryMax  = 5 * time.Minute
)

// NewController returns a controller reading st's change feed from now on.
// Call Run.
func NewController(st *state.Engine, part domain.Partition, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		st:               st,
		part:             part,
		log:              log,
		clk:              st.Clock(),
		queue:            workqueue.New(st.Clock(), retryBase, retryMax),
		inert:            map[string]bool{},
		StoppedRetention: time.Hour,
	}
	c.sub = c.subscribe()
	return c
}

// subscribe subscribes to the feed after the current revision and queues
// every live service: everything is dirty at start (or after the
// controller fell behind the feed).
func (c *Controller) subscribe() *state.Subscription {
	var sub *state.Subscription
	var keys []string
	c.st.View(func(r *state.View) {
		for k, sv := range Services.All(r) {
			if sv.Status != domain.Inactive {
				keys = append(keys, k)
			}
		}
		var err error
		sub, err = c.st.Subscribe(state.SubscribeOptions{After: r.Rev()})
		if err != nil {
			panic("control: subscribe at the current revision: " + err.Error())
		}
		c.processed.Store(r.Rev())
	})
	for _, k := range keys {
		c.Enqueue(k)
	}
	return sub
}

// Enqueue queues a service key.
func (c *Controller) Enqueue(key string) {
	c.mu.Lock()
	delete(c.inert, key)
	c.mu.Unlock()
	c.queue.Add(key)
}

// enqueueProtection queues a service whose task's protection changed,
// unless its last plan showed that protection cannot change it.
func (c *Controller) enqueueProtection(key string) {
	c.mu.Lock()
	skip := c.inert[key]
	c.mu.Unlock()
	if !skip {
		c.queue.Add(key)
	}
}

// onBatch queues the services a committed batch touched.
func (c *Controller) onBatch(b state.Batch) {
	for _, ch := range b.Changes {
		if _, sv, ok := state.As(ch, Services); ok {
			if sv != nil {
				c.Enqueue(ch.Key)
			}
			continue
		}
		if old, t, ok := state.As(ch, Tasks); ok {
			if t == nil {
				t = old
			}
			if t.Internal.ServiceName != "" {
				c.Enqueue(svcKey(t.Internal.ClusterName, t.Internal.ServiceName))
			}
			continue
		}
		if old, p, ok := state.As(ch, Protections); ok {
			if p == nil {
				p = old
			}
			if p.Service != "" {
				c.enqueueProtection(svcKey(p.Cluster, p.Service))
			}
			continue
		}
		if old, ci, ok := state.As(ch, Instances); ok && ci != nil {
			if old == nil || old.Status != ci.Status || old.AgentConnected != ci.AgentConnected {
				c.enqueueCluster(ci.Internal.ClusterName)
			}
		}
	}
}

func (c *Controller) enqueueCluster(cluster string) {
	var keys []string
	c.st.View(func(r *state.View) {
		for k, sv := range servicesByCluster.Group(r, cluster) {
			if sv.Status != domain.Inactive {
				keys = append(keys, k)
			}
		}
	})
	for _, k := range keys {
		c.Enqueue(k)
	}
}

// Run reconciles queued services with workers goroutines until ctx ends
// or the state engine closes. Reconciles of different services run
// concurrently so that their writes share a group commit. Every goroutine
// it starts has ended when it returns.
func (c *Controller) Run(ctx context.Context, workers int) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel() // the engine closed
		c.watch(ctx)
	})
	wg.Go(func() { c.gcLoop(ctx) })
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				key, ok := c.queue.Get(ctx)
				if !ok {
					return
				}
				c.reconcile(ctx, key)
				c.queue.Done(key)
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
}

// watch feeds the queue from the change feed until ctx ends or the engine
// closes.
func (c *Controller) watch(ctx context.Context) {
	for {
		b, err := c.sub.Next(ctx)
		switch {
		case err == nil:
			c.onBatch(b)
			c.processed.Store(b.Rev)
		case errors.Is(err, state.ErrLagged):
			c.log.Warn("controller fell behind the change feed; reconciling every service", "err", err)
			c.sub = c.subscribe()
		default:
			return
		}
	}
}

// Idle reports that the controller has queued the services of every
// durable commit and has nothing queued or running (timed rechecks do not
// count). Tests use it to wait for the controller to settle.
func (c *Controller) Idle() bool {
	rev := c.st.Rev()
	return c.processed.Load() >= rev && c.queue.Idle()
}

// planBasis is what a plan was computed from: the service and cluster
// records, and the versions of the groups its input was built from (the
// service's tasks and protections, the cluster's instances). A plan is
// applied only to the state it was computed from: the same basis.
type planBasis struct {
	svc                    *domain.Service
	cluster                *domain.Cluster
	tasks, prots, instance uint64
}

func basisOf(r state.Reader, sv *domain.Service) planBasis {
	cluster := sv.Internal.ClusterName
	group := svcKey(cluster, sv.ServiceName)
	return planBasis{
		svc:      sv,
		cluster:  Clusters.Get(r, cluster),
		tasks:    tasksByService.Version(r, group),
		prots:    protectionsByService.Version(r, group),
		instance: instancesByCluster.Version(r, cluster),
	}
}

// reconcile builds the reconciler's input on a read view and runs the pure
// reconciler outside any lock, so that it holds up neither the apply loop
// nor other readers; then it applies the plan in an Update if the state
// it was computed from is still the state (compare-and-swap on the
// basis' record pointers and group versions); if not, it plans again
// inside the Update. Either way the plan that is applied was computed from
// exactly the state it is applied to.
func (c *Controller) reconcile(ctx context.Context, key string) {
	cluster, name, _ := strings.Cut(key, "/")
	var plan scheduler.Plan
	var basis planBasis
	var in *scheduler.Input
	c.st.View(func(v *state.View) {
		sv := getService(v, cluster, name)
		if sv == nil || sv.Status == domain.Inactive {
			return
		}
		basis = basisOf(v, sv)
		input := buildInput(v, sv)
		in = &input
	})
	if in != nil {
		plan = scheduler.Reconcile(*in)
	}
	ran := false
	err := update(ctx, c.st, func(tx *state.Tx) error {
		sv := getService(tx, cluster, name)
		if sv == nil || sv.Status == domain.Inactive {
			return nil
		}
		if basisOf(tx, sv) != basis {
			plan = scheduler.Reconcile(buildInput(tx, sv))
		}
		ran = true
		return c.applyPlan(tx, sv, plan)
	})
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("reconcile failed; retrying", "service", key, "err", err, "retry", c.queue.Backoff(c.queue.Failures(key)))
			c.queue.AddRateLimited(key)
		}
		return
	}
	c.queue.Forget(key)
	if !ran {
		// Gone or INACTIVE: forget its timer.
		c.queue.Drop(key)
		c.mu.Lock()
		delete(c.inert, key)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	if plan.ProtectionInert {
		c.inert[key] = true
	} else {
		delete(c.inert, key)
	}
	c.mu.Unlock()
	if plan.RequeueAfter > 0 {
		c.queue.AddAfter(key, plan.RequeueAfter)
	}
	if c.Reconciled != nil {
		c.Reconciled(key, plan)
	}
}

// buildInput turns the state into the reconciler's input.
func buildInput(tx state.Reader, sv *domain.Service) scheduler.Input {
	cluster := sv.Internal.ClusterName
	in := scheduler.Input{
		Now: tx.Now(),
		Service: scheduler.Service{
			Name:                  sv.ServiceName,
			Status:                sv.Status,
			DesiredCount:          sv.DesiredCount,
			MinimumHealthyPercent: sv.MinHealthyPercent(),
			MaximumPercent:        sv.MaxPercent(),
		},
		Events: scheduler.EventMemory(sv.Internal.EventMemory),
	}
	in.Service.LastFailedStart = sv.Internal.LastFailedStart
	if cb := sv.DeploymentConfiguration.DeploymentCircuitBreaker; cb != nil {
		in.Service.CircuitBreaker.Enable = cb.Enable
		in.Service.CircuitBreaker.Rollback = cb.Rollback
	}
	for _, d := range sv.Deployments {
		sd := scheduler.Deployment{
			ID:             d.ID,
			Status:         d.Status,
			RolloutState:   d.RolloutState,
			TaskDefinition: d.TaskDefinition,
			FailedTasks:    d.FailedTasks,
		}
		if d.CreatedAt != nil {
			sd.CreatedAt = d.CreatedAt.Time
		}
		if td, err := resolveTaskDef(tx, d.TaskDefinition); err == nil {
			sd.HasHealthCheck = td.HasHealthCheck()
		}
		in.Service.Deployments = append(in.Service.Deployments, sd)
	}
	in.Instances = placement(tx, cluster)
	azOf := make(map[string]string, len(in.Instances))
	for _, inst := range in.Instances {
		azOf[inst.ID] = inst.AZ
	}
	group := svcKey(cluster, sv.ServiceName)
	protected := make(map[string]time.Time, protectionsByService.Len(tx, group))
	for _, p := range protectionsByService.Group(tx, group) {
		protected[p.TaskID] = p.Until
	}
	in.Tasks = make([]scheduler.Task, 0, tasksByService.Len(tx, group))
	for _, t := range tasksByService.Group(tx, group) {
		st := scheduler.Task{
			ID:             t.Internal.ID,
			DeploymentID:   t.StartedBy,
			Instance:       t.Internal.InstanceID,
			AZ:             azOf[t.Internal.InstanceID],
			LastStatus:     t.LastStatus,
			DesiredStatus:  t.DesiredStatus,
			Health:         t.HealthStatus,
			ProtectedUntil: protected[t.Internal.ID],
		}
		if st.Health == "" {
			st.Health = domain.Unknown
		}
		if t.CreatedAt != nil {
			st.CreatedAt = t.CreatedAt.Time
		}
		if t.StartedAt != nil {
			st.StartedAt = t.StartedAt.Time
		}
		in.Tasks = append(in.Tasks, st)
	}
	slices.SortFunc(in.Tasks, func(a, b scheduler.Task) int { return strings.Compare(a.ID, b.ID) })
	return in
}

// applyPlan stages the plan's writes. The service record is written only
// when something in it changed, so a quiet reconcile writes nothing.
func (c *Controller) applyPlan(tx *state.Tx, sv *domain.Service, plan scheduler.Plan) error {
	cluster := sv.Internal.ClusterName
	now := tx.Now()
	nv := cloneService(sv)
	cl := Clusters.Get(tx, cluster)

	var started, stopped []string
	stoppedSet := map[string]bool{}
	insts := map[string]*domain.ContainerInstance{}
	instance := func(id string) *domain.ContainerInstance {
		ci, ok := insts[id]
		if !ok {
			ci = getInstance(tx, cluster, id)
			insts[id] = ci
		}
		return ci
	}
	for _, p := range plan.Start {
		d := findDeployment(nv, p.DeploymentID)
		ci := instance(p.Instance)
		if d == nil || ci == nil || cl == nil {
			continue
		}
		td, err := resolveTaskDef(tx, d.TaskDefinition)
		if err != nil {
			continue
		}
		t := newTask(c.part, cluster, cl, td, ci, now)
		t.Group = "service:" + sv.ServiceName
		t.StartedBy = d.ID
		t.Internal.ServiceName = sv.ServiceName
		putTask(tx, t)
		started = append(started, t.Internal.ID)
	}
	for _, st := range plan.Stop {
		t := getTask(tx, cluster, st.TaskID)
		if t == nil || t.DesiredStatus == domain.StatusStopped {
			continue
		}
		if st.Cause == scheduler.StopUnhealthy {
			// Protection covers scale-in and deployments only: an UNHEALTHY
			// task is replaced whether or not it is protected.
			if d := findDeployment(nv, t.StartedBy); d != nil && d.Status == domain.Primary && d.RolloutState == domain.RolloutInProgress {
				// The circuit breaker's second stage: health check failures
				// of the deployment being rolled out count as failed tasks.
				d.FailedTasks++
			}
		} else if isProtected(tx, t, now) {
			// The reconciler never asks for this; refuse it here too.
			c.log.Error("scheduler asked to stop a protected task; refused", "task", st.TaskID)
			continue
		}
		stopTaskOn(tx, t, instance(t.Internal.InstanceID), domain.StopServiceSchedulerInitiated, st.Reason)
		stopped = append(stopped, st.TaskID)
		stoppedSet[st.TaskID] = true
	}
	// The plan's events, with the task ids of what was actually started
	// and stopped.
	for _, e := range plan.Events {
		msg := e.Message
		switch e.Kind {
		case scheduler.EventTasksStarted:
			if len(started) == 0 {
				continue
			}
			msg = scheduler.StartedReplacingMessage(sv.ServiceName, started, min(e.Replaced, len(started)))
		case scheduler.EventTasksStopped:
			if len(stopped) == 0 {
				continue
			}
			msg = scheduler.StoppedMessage(sv.ServiceName, stopped)
		case scheduler.EventTaskFailedHealthChecks:
			if !stoppedSet[e.TaskID] {
				continue
			}
		}
		addEvent(nv, msg, now)
	}
	for _, dc := range plan.Deployments {
		d := findDeployment(nv, dc.ID)
		if d == nil {
			continue
		}
		if d.Status != dc.Status || d.RolloutState != dc.RolloutState {
			d.UpdatedAt = domain.TimePtr(now)
		}
		d.Status = dc.Status
		d.RolloutState = dc.RolloutState
		if dc.RolloutStateReason != "" {
			d.RolloutStateReason = dc.RolloutStateReason
		}
		d.DesiredCount = dc.DesiredCount
	}
	if rb := plan.Rollback; rb != nil {
		nv.TaskDefinition = rb.TaskDefinition
	}
	if len(plan.Forget) > 0 {
		nv.Deployments = slices.DeleteFunc(nv.Deployments, func(d domain.Deployment) bool { return slices.Contains(plan.Forget, d.ID) })
	}
	nv.Internal.EventMemory = map[string]time.Time(plan.EventMemory)
	if len(nv.Internal.EventMemory) == 0 {
		nv.Internal.EventMemory = nil
	}
	if nv.Status == domain.Draining && plan.Inactive {
		nv.Status = domain.Inactive
	}
	if serviceChanged(sv, nv) {
		Services.Put(tx, nv)
	}
	return nil
}

func serviceChanged(a, b *domain.Service) bool {
	if a.Status != b.Status || a.TaskDefinition != b.TaskDefinition || len(a.Events) != len(b.Events) {
		return true
	}
	if len(a.Events) > 0 && a.Events[0].ID != b.Events[0].ID {
		return true
	}
	if !reflect.DeepEqual(a.Deployments, b.Deployments) {
		return true
	}
	am, bm := a.Internal.EventMemory, b.Internal.EventMemory
	if len(am) != len(bm) {
		return true
	}
	for k, v := range am {
		if w, ok := bm[k]; !ok || !w.Equal(v) {
			return true
		}
	}
	return false
}

func findDeployment(sv *domain.Service, id string) *domain.Deployment {
	for i := range sv.Deployments {
		if sv.Deployments[i].ID == id {
			return &sv.Deployments[i]
		}
	}
	return nil
}

// addEvent puts an event first and keeps the newest MaxEvents.
func addEvent(sv *domain.Service, msg string, now time.Time) {
	ev := domain.ServiceEvent{ID: newUUID(), CreatedAt: domain.TimePtr(now), Message: msg}
	sv.Events = append([]domain.ServiceEvent{ev}, sv.Events...)
	if len(sv.Events) > domain.MaxEvents {
		sv.Events = sv.Events[:domain.MaxEvents]
	}
}

// gcLoop deletes STOPPED tasks older than StoppedRetention.
func (c *Controller) gcLoop(ctx context.Context) {
	for {
		done := make(chan struct{})
		t := c.clk.AfterFunc(5*time.Minute, func() { close(done) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-done:
		}
		c.collect(ctx)
	}
}

func (c *Controller) collect(ctx context.Context) {
	cutoff := c.clk.Now().Add(-c.StoppedRetention)
	var old []string
	c.st.View(func(r *state.View) {
		for k, t := range Tasks.All(r) {
			if t.LastStatus == domain.StatusStopped && t.StoppedAt != nil && t.StoppedAt.Before(cutoff) {
				old = append(old, k)
			}
		}
	})
	for len(old) > 0 {
		n := min(len(old), 500)
		chunk := old[:n]
		old = old[n:]
		_ = update(ctx, c.st, func(tx *state.Tx) error {
			for _, k := range chunk {
				cluster, id, _ := strings.Cut(k, "/")
				deleteTask(tx, cluster, id)
			}
			return nil
		})
	}
}
