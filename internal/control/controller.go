package control

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
)

// Controller reconciles services, Kubernetes-controller style: level
// triggered and keyed by service ("cluster/name"). Every durable change
// that touches a service (its desired count, a task's status or
// protection, an instance joining or leaving) marks the key dirty at once;
// timed rechecks (protection expiry, event repeats) come from the plan's
// RequeueAfter through the clock. A key is never reconciled twice at once.
//
// The pure reconciler runs inside a Store.Update, so the plan it returns
// is applied against exactly the state it was computed from.
type Controller struct {
	s   *Store
	clk clock.Clock

	mu       sync.Mutex
	dirty    map[string]bool
	inflight map[string]bool
	timers   map[string]clock.Timer
	wake     chan struct{}

	// StoppedRetention is how long STOPPED tasks stay visible (ECS: at
	// least an hour).
	StoppedRetention time.Duration
	// Reconciled, if set, is called after each reconcile (tests, metrics).
	Reconciled func(key string, plan scheduler.Plan)
}

// NewController wires a controller to the store's change notifications.
func NewController(s *Store) *Controller {
	c := &Controller{
		s:                s,
		clk:              s.clock,
		dirty:            map[string]bool{},
		inflight:         map[string]bool{},
		timers:           map[string]clock.Timer{},
		wake:             make(chan struct{}, 1),
		StoppedRetention: time.Hour,
	}
	s.onChange = append(s.onChange, c.onChange)
	return c
}

func (c *Controller) onChange(cs changeSet) {
	for k := range cs.services {
		c.Enqueue(k)
	}
	for cluster := range cs.clusters {
		c.enqueueCluster(cluster)
	}
}

func (c *Controller) enqueueCluster(cluster string) {
	var keys []string
	c.s.read(func(st *state) {
		for name, sv := range st.services[cluster] {
			if sv.Status != domain.Inactive {
				keys = append(keys, svcKey(cluster, name))
			}
		}
	})
	for _, k := range keys {
		c.Enqueue(k)
	}
}

// Enqueue marks a service key dirty.
func (c *Controller) Enqueue(key string) {
	c.mu.Lock()
	c.dirty[key] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run reconciles dirty services until ctx ends. Reconciles of different
// services run concurrently so that their writes share a group commit.
func (c *Controller) Run(ctx context.Context, workers int) {
	// Everything is dirty at start: the state was just loaded.
	var all []string
	c.s.read(func(st *state) {
		for cluster, m := range st.services {
			for name, sv := range m {
				if sv.Status != domain.Inactive {
					all = append(all, svcKey(cluster, name))
				}
			}
		}
	})
	for _, k := range all {
		c.Enqueue(k)
	}
	go c.gcLoop(ctx)
	sem := make(chan struct{}, max(workers, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.s.closed:
			return
		case <-c.wake:
		}
		for {
			key, ok := c.next()
			if !ok {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c.reconcile(ctx, key)
				c.mu.Lock()
				delete(c.inflight, key)
				again := c.dirty[key]
				c.mu.Unlock()
				if again {
					select {
					case c.wake <- struct{}{}:
					default:
					}
				}
			}()
		}
	}
}

func (c *Controller) next() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.dirty {
		if c.inflight[k] {
			continue
		}
		delete(c.dirty, k)
		c.inflight[k] = true
		return k, true
	}
	return "", false
}

func (c *Controller) reconcile(ctx context.Context, key string) {
	cluster, name, _ := strings.Cut(key, "/")
	var plan scheduler.Plan
	ran := false
	err := c.s.Update(ctx, func(tx *Tx) error {
		sv := tx.Service(cluster, name)
		if sv == nil || sv.Status == domain.Inactive {
			return nil
		}
		in := buildInput(tx, sv)
		plan = scheduler.Reconcile(in)
		throttleStarts(sv, &plan, in.Now)
		ran = true
		return c.applyPlan(tx, sv, plan)
	})
	if err != nil {
		c.s.log.Error("reconcile failed", "service", key, "err", err)
		c.requeue(key, time.Second)
		return
	}
	if !ran {
		// Gone or INACTIVE: forget its timer.
		c.mu.Lock()
		if t := c.timers[key]; t != nil {
			t.Stop()
			delete(c.timers, key)
		}
		c.mu.Unlock()
		return
	}
	if plan.RequeueAfter > 0 {
		c.requeue(key, plan.RequeueAfter)
	}
	if c.Reconciled != nil {
		c.Reconciled(key, plan)
	}
}

// requeue arranges a reconcile of key after d, replacing an earlier timer.
func (c *Controller) requeue(key string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timers[key]; t != nil {
		t.Stop()
	}
	c.timers[key] = c.clk.AfterFunc(d, func() { c.Enqueue(key) })
}

// buildInput turns the state into the reconciler's input.
func buildInput(tx *Tx, sv *domain.Service) scheduler.Input {
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
		if td, err := resolveTaskDef(tx.st, d.TaskDefinition); err == nil {
			sd.HasHealthCheck = td.HasHealthCheck()
		}
		in.Service.Deployments = append(in.Service.Deployments, sd)
	}
	azOf := map[string]string{}
	for _, id := range sortedKeys(tx.st.instances[cluster]) {
		ci := tx.st.instances[cluster][id]
		if ci.Status == domain.Inactive {
			continue
		}
		azOf[id] = ci.AZ()
		in.Instances = append(in.Instances, scheduler.Instance{ID: id, AZ: ci.AZ(), Status: ci.Status, Connected: ci.AgentConnected})
	}
	for _, id := range sortedKeys(tx.st.byService[svcKey(cluster, sv.ServiceName)]) {
		t := tx.Task(cluster, id)
		if t == nil || t.LastStatus == domain.StatusStopped {
			continue
		}
		st := scheduler.Task{
			ID:             id,
			DeploymentID:   t.StartedBy,
			Instance:       t.Internal.InstanceID,
			AZ:             azOf[t.Internal.InstanceID],
			LastStatus:     t.LastStatus,
			DesiredStatus:  t.DesiredStatus,
			Health:         t.HealthStatus,
			ProtectedUntil: t.Internal.ProtectedUntil,
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
	return in
}

// applyPlan stages the plan's writes. The service record is written only
// when something in it changed, so a quiet reconcile writes nothing.
func (c *Controller) applyPlan(tx *Tx, sv *domain.Service, plan scheduler.Plan) error {
	cluster := sv.Internal.ClusterName
	now := tx.Now()
	nv := cloneService(sv)
	cl := tx.Cluster(cluster)

	// Tasks reported UNHEALTHY before this plan: a start alongside them is a
	// replacement ("Amazon ECS replaced N tasks due to an unhealthy status.").
	unhealthy := 0
	for id := range tx.st.byService[svcKey(cluster, sv.ServiceName)] {
		if t := tx.Task(cluster, id); t != nil && t.DesiredStatus == domain.StatusRunning &&
			t.LastStatus == domain.StatusRunning && t.HealthStatus == domain.Unhealthy {
			unhealthy++
		}
	}
	var started, stopped, failedHealth []string
	for _, p := range plan.Start {
		d := findDeployment(nv, p.DeploymentID)
		ci := tx.Instance(cluster, p.Instance)
		if d == nil || ci == nil || cl == nil {
			continue
		}
		td, err := resolveTaskDef(tx.st, d.TaskDefinition)
		if err != nil {
			continue
		}
		t := c.s.newTask(cluster, cl, td, ci, now)
		t.Group = "service:" + sv.ServiceName
		t.StartedBy = d.ID
		t.Internal.ServiceName = sv.ServiceName
		tx.PutTask(t)
		started = append(started, t.Internal.ID)
	}
	for _, st := range plan.Stop {
		t := tx.Task(cluster, st.TaskID)
		if t == nil || t.DesiredStatus == domain.StatusStopped {
			continue
		}
		if st.Cause == scheduler.StopUnhealthy {
			// Protection covers scale-in and deployments only: an UNHEALTHY
			// task is replaced whether or not it is protected.
			stopTask(tx, t, domain.StopServiceSchedulerInitiated, StoppedReasonUnhealthy)
			stopped = append(stopped, st.TaskID)
			failedHealth = append(failedHealth, st.TaskID)
			if d := findDeployment(nv, t.StartedBy); d != nil && d.Status == domain.Primary && d.RolloutState == domain.RolloutInProgress {
				// The circuit breaker's second stage: health check failures
				// of the deployment being rolled out count as failed tasks.
				d.FailedTasks++
			}
			continue
		}
		if t.Protected(now) {
			// The reconciler never asks for this; refuse it here too.
			c.s.log.Error("scheduler asked to stop a protected task; refused", "task", st.TaskID)
			continue
		}
		stopTask(tx, t, domain.StopServiceSchedulerInitiated, "Scaling activity initiated by (deployment "+st.DeploymentID+")")
		stopped = append(stopped, st.TaskID)
	}
	for _, e := range plan.Events {
		msg := e.Message
		switch e.Kind {
		case scheduler.EventTasksStarted:
			if len(started) == 0 {
				continue
			}
			msg = scheduler.StartedMessage(sv.ServiceName, started)
			if n := min(unhealthy, len(started)); n > 0 {
				msg += " Amazon ECS replaced " + strconv.Itoa(n) + " tasks due to an unhealthy status."
			}
		case scheduler.EventTasksStopped:
			if len(stopped) == 0 {
				continue
			}
			for _, id := range failedHealth {
				addEvent(nv, FailedHealthChecksMessage(sv.ServiceName, id), now)
			}
			msg = scheduler.StoppedMessage(sv.ServiceName, stopped)
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
	// Keep PRIMARY and ACTIVE deployments and the last few INACTIVE ones
	// (the circuit breaker rolls back to the last COMPLETED one).
	kept := nv.Deployments[:0]
	inactive := 0
	for _, d := range nv.Deployments {
		if d.Status == domain.Inactive {
			inactive++
			if inactive > 5 {
				continue
			}
		}
		kept = append(kept, d)
	}
	nv.Deployments = kept
	nv.Internal.EventMemory = map[string]time.Time(plan.EventMemory)
	if len(nv.Internal.EventMemory) == 0 {
		nv.Internal.EventMemory = nil
	}
	if nv.Status == domain.Draining && plan.Steady && len(tx.st.byService[svcKey(cluster, sv.ServiceName)]) == 0 {
		nv.Status = domain.Inactive
	}
	if serviceChanged(sv, nv) {
		tx.PutService(nv)
	}
	return nil
}

// StoppedReasonUnhealthy is ECS's stoppedReason for a task the service
// scheduler replaced because its container health checks failed.
const StoppedReasonUnhealthy = "Task failed container health checks"

// FailedHealthChecksMessage is ECS's "(service NAME) (task ID) failed
// container health checks." event.
func FailedHealthChecksMessage(service, taskID string) string {
	return "(service " + service + ") (task " + taskID + ") failed container health checks."
}

// UnableToStartMessage is ECS's throttling event "(service NAME) is unable
// to consistently start tasks successfully."
func UnableToStartMessage(service string) string {
	return "(service " + service + ") is unable to consistently start tasks successfully."
}

// Start throttling (ECS's "service throttle logic"): once a deployment has
// had throttleAfter consecutive tasks fail to start, its next start waits
// throttleBase after the last failure, doubling with every further failure
// up to throttleMax. A task that runs (or a new deployment) resets the count.
const (
	throttleAfter = 3
	throttleBase  = 10 * time.Second
	throttleMax   = 15 * time.Minute
	causeThrottle = "start-throttled"
)

func throttleDelay(failed int) time.Duration {
	d := throttleBase
	for i := throttleAfter; i < failed && d < throttleMax; i++ {
		d *= 2
	}
	return min(d, throttleMax)
}

// throttleStarts holds back the plan's starts while the deployment they
// belong to is throttled, reports it once (six-hourly while it lasts), and
// asks for a recheck when the wait is over.
func throttleStarts(sv *domain.Service, plan *scheduler.Plan, now time.Time) {
	if len(plan.Start) == 0 || plan.Rollback != nil {
		return
	}
	d := findDeployment(sv, plan.Start[0].DeploymentID)
	if d == nil || d.FailedTasks < throttleAfter || sv.Internal.LastFailedStart.IsZero() {
		return
	}
	wait := sv.Internal.LastFailedStart.Add(throttleDelay(d.FailedTasks)).Sub(now)
	if wait <= 0 {
		return
	}
	plan.Start = nil
	if plan.RequeueAfter == 0 || wait < plan.RequeueAfter {
		plan.RequeueAfter = wait
	}
	if plan.EventMemory == nil {
		plan.EventMemory = scheduler.EventMemory{}
	}
	if last, ok := sv.Internal.EventMemory[causeThrottle]; ok && now.Sub(last) < scheduler.EventRepeat {
		plan.EventMemory[causeThrottle] = last
		return
	}
	plan.EventMemory[causeThrottle] = now
	plan.Events = append(plan.Events, scheduler.Event{Cause: causeThrottle, Message: UnableToStartMessage(sv.ServiceName), Kind: -1})
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

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	h := newID()
	b := []byte(h)
	b[12] = '4'
	b[16] = "89ab"[b[16]%4]
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32])
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
		case <-c.s.closed:
			t.Stop()
			return
		case <-done:
		}
		c.collect(ctx)
	}
}

func (c *Controller) collect(ctx context.Context) {
	cutoff := c.clk.Now().Add(-c.StoppedRetention)
	type ref struct{ cluster, id string }
	var old []ref
	c.s.read(func(st *state) {
		for cluster, m := range st.tasks {
			for id, t := range m {
				if t.LastStatus == domain.StatusStopped && t.StoppedAt != nil && t.StoppedAt.Before(cutoff) {
					old = append(old, ref{cluster, id})
				}
			}
		}
	})
	for len(old) > 0 {
		n := min(len(old), 500)
		chunk := old[:n]
		old = old[n:]
		_ = c.s.Update(ctx, func(tx *Tx) error {
			for _, r := range chunk {
				tx.DeleteTask(r.cluster, r.id)
			}
			return nil
		})
	}
}
