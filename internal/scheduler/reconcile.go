package scheduler

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// tinfo is the reconciler's view of one task that is not lost.
type tinfo struct {
	t         *Task
	dep       *depState
	inst      int // instance index (a per-AZ pseudo-instance when unplaced)
	az        int
	class     int8  // victim class, see victimClass
	created   int64 // CreatedAt in Unix nanoseconds, for the tie-break
	pending   bool  // not RUNNING yet
	protected bool
	healthy   bool // counts toward minimumHealthyPercent
	stopped   bool // stopped by this plan
}

// depState is the reconciler's view of one deployment.
type depState struct {
	id        string
	in        *Deployment // nil for a deployment only named by tasks
	status    string
	rollout   string
	reason    string
	createdAt time.Time
	hc        bool
	target    int

	keep     []*tinfo // live tasks that are neither doomed nor drained
	doomed   []*tinfo // RUNNING and UNHEALTHY: replaced, protected or not
	drain    []*tinfo // unprotected, on a DRAINING instance: replaced
	running  int
	pending  int
	stopping int // desired STOPPED (or already going down), not gone yet
}

func (d *depState) tasksLeft() int {
	return len(d.keep) + len(d.doomed) + len(d.drain) + d.stopping
}

// Reconcile computes the plan that moves one service toward its desired
// state. It is a pure function of in: no I/O, no clock, and deterministic.
func Reconcile(in Input) Plan {
	r := newReconciler(&in)
	return r.run()
}

type reconciler struct {
	in       *Input
	now      time.Time
	name     string
	draining bool // the service is being deleted
	desired  int
	maxCap   int // floor(desired*max/100): RUNNING+PENDING+stopping ceiling
	minFloor int // ceil(desired*min/100): healthy RUNNING floor

	deps    []*depState // sorted oldest first
	primary *depState
	frozen  bool // PRIMARY FAILED without rollback: no starts, no replacement

	sp        spread
	azIdx     map[string]int
	instAZ    []int
	eligible  []int // connected ACTIVE instances, by index
	drainInst []bool

	live    int // live tasks (desired RUNNING, not lost)
	total   int // tasks counted against maxCap
	healthy int // healthy RUNNING tasks

	plan    Plan
	log     *eventLog
	requeue time.Duration
}

func newReconciler(in *Input) *reconciler {
	s := &in.Service
	r := &reconciler{in: in, now: in.Now, name: s.Name, draining: s.Status == ServiceDraining}
	r.desired = max(s.DesiredCount, 0)
	minP, maxP := s.MinimumHealthyPercent, s.MaximumPercent
	if minP < 0 {
		minP = DefaultMinimumHealthyPercent
	}
	minP = min(minP, 100)
	if maxP <= 0 {
		maxP = DefaultMaximumPercent
	}
	r.maxCap = r.desired * maxP / 100
	r.minFloor = (r.desired*minP + 99) / 100
	r.log = newEventLog(in.Now, in.Events)
	return r
}

func (r *reconciler) run() Plan {
	r.indexDeployments()
	r.circuitBreaker()
	r.indexInstances()
	r.classifyTasks()
	r.setTargets()

	starts, noInstance := r.countStarts()
	starts = r.throttle(starts)
	r.stopDoomed(starts)
	budget := r.healthy - r.minFloor
	refused := r.stopDrained(&budget)
	if r.stopSurplus(&budget) {
		refused = true
	}
	r.placeStarts(starts)

	for _, st := range r.plan.Stop {
		if st.Cause == StopUnhealthy {
			r.log.once(Event{Cause: "failed-health-checks/" + st.TaskID, Kind: EventTaskFailedHealthChecks,
				Message: FailedHealthChecksMessage(r.name, st.TaskID), TaskID: st.TaskID})
		}
	}
	if n := len(r.plan.Stop); n > 0 {
		r.log.once(Event{Cause: "stopped", Kind: EventTasksStopped, N: n})
	}
	if n := len(r.plan.Start); n > 0 {
		r.log.once(Event{Cause: "started", Kind: EventTasksStarted, N: n, Replaced: min(r.unhealthy(), n)})
	}
	r.blockedEvents()
	if noInstance {
		r.log.hold(Event{Cause: causeNoInstance, Kind: EventNoContainerInstance, Message: NoContainerInstanceMessage(r.name)})
	}
	if r.noProgress(refused) {
		r.log.hold(Event{Cause: causeDeployConfig, Kind: EventDeploymentConfiguration, Message: DeploymentConfigurationMessage(r.name)})
	}
	r.completeAndSteady()
	r.deploymentChanges()
	r.retention()
	r.plan.Inactive = r.draining && len(r.in.Tasks) == 0
	r.plan.ProtectionInert = r.protectionInert()

	r.plan.Events = r.log.events
	r.plan.EventMemory = r.log.mem
	r.requeueIn(r.log.requeue)
	r.plan.RequeueAfter = r.requeue
	return r.plan
}

func (r *reconciler) requeueIn(d time.Duration) {
	if d > 0 && (r.requeue == 0 || d < r.requeue) {
		r.requeue = d
	}
}

func (r *reconciler) indexDeployments() {
	ds := r.in.Service.Deployments
	r.deps = make([]*depState, 0, len(ds))
	for i := range ds {
		d := &ds[i]
		rollout := d.RolloutState
		if rollout == "" {
			rollout = RolloutInProgress
		}
		r.deps = append(r.deps, &depState{
			id: d.ID, in: d, status: d.Status, rollout: rollout,
			createdAt: d.CreatedAt, hc: d.HasHealthCheck,
		})
	}
	r.sortDeps()
	// The PRIMARY is the newest deployment with that status (there should be
	// exactly one); any older one claiming PRIMARY is being replaced.
	for _, d := range r.deps {
		if d.status == DeploymentPrimary {
			if r.primary != nil {
				r.primary.status = DeploymentActive
			}
			r.primary = d
		}
	}
}

func (r *reconciler) sortDeps() {
	slices.SortStableFunc(r.deps, func(a, b *depState) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
}

// circuitBreakerThreshold is ECS's current bound: half the desired count,
// rounded up, at least 3 and at most 200.
func circuitBreakerThreshold(desired int) int {
	return min(max((desired+1)/2, 3), 200)
}

// circuitBreaker fails the PRIMARY once FailedTasks reaches the threshold and,
// with rollback, makes the newest COMPLETED deployment PRIMARY again. The
// rest of the pass then reconciles toward the rolled-back deployment.
// FailedTasks counts only tasks that failed to start (the control plane
// increments it); protection never counts as a failure.
func (r *reconciler) circuitBreaker() {
	p := r.primary
	cb := r.in.Service.CircuitBreaker
	if p == nil || r.draining || !cb.Enable || p.rollout != RolloutInProgress || p.in.FailedTasks < circuitBreakerThreshold(r.desired) {
		r.frozen = p != nil && p.rollout == RolloutFailed
		return
	}
	p.rollout = RolloutFailed
	p.reason = "ECS deployment circuit breaker: task failed to start."
	r.log.once(Event{Cause: "deployment-failed/" + p.id, Kind: EventDeploymentFailed,
		Message: DeploymentFailedMessage(r.name, p.id), DeploymentID: p.id})
	r.frozen = true
	if !cb.Rollback {
		return
	}
	var to *depState
	for _, d := range r.deps {
		if d != p && d.rollout == RolloutCompleted {
			to = d // the newest wins: deps are sorted oldest first
		}
	}
	if to == nil {
		return
	}
	p.status = DeploymentActive
	to.status = DeploymentPrimary
	to.rollout = RolloutInProgress
	to.reason = "ECS deployment circuit breaker: rolling back to deploymentId " + to.id + "."
	r.plan.Rollback = &Rollback{From: p.id, To: to.id, TaskDefinition: to.in.TaskDefinition}
	r.log.once(Event{Cause: "rollback/" + to.id, Kind: EventRollingBack,
		Message: RollingBackMessage(r.name, to.id), DeploymentID: to.id})
	r.primary = to
	r.frozen = false
}

func (r *reconciler) indexInstances() {
	insts := r.in.Instances
	azIdx := map[string]int{}
	azOf := func(name string) int {
		if i, ok := azIdx[name]; ok {
			return i
		}
		azIdx[name] = len(r.sp.azNames)
		r.sp.azNames = append(r.sp.azNames, name)
		return azIdx[name]
	}
	r.instAZ = make([]int, len(insts))
	r.drainInst = make([]bool, len(insts))
	r.sp.instNames = make([]string, len(insts))
	for i := range insts {
		r.sp.instNames[i] = insts[i].ID
		r.instAZ[i] = azOf(insts[i].AZ)
		r.drainInst[i] = insts[i].Status == InstanceDraining
		if insts[i].Connected && insts[i].Status == InstanceActive {
			r.eligible = append(r.eligible, i)
		}
	}
	for i := range r.in.Tasks {
		azOf(r.in.Tasks[i].AZ)
	}
	// One pseudo-instance per AZ holds the tasks not placed yet.
	for _, name := range r.sp.azNames {
		r.sp.instNames = append(r.sp.instNames, "~unplaced/"+name)
	}
	r.sp.azCount = make([]int, len(r.sp.azNames))
	r.sp.instCount = make([]int, len(r.sp.instNames))
	r.azIdx = azIdx
}

func isGoingDown(status string) bool {
	switch status {
	case StatusDeactivating, StatusStopping, StatusDeprovisioning, StatusStopped:
		return true
	}
	return false
}

// classifyTasks sorts every task into its deployment's lists. Tasks whose
// instance is gone or disconnected are lost: the control plane marks them
// STOPPED, so they are neither counted nor stopped here.
func (r *reconciler) classifyTasks() {
	instIdx := make(map[string]int, len(r.in.Instances))
	for i := range r.in.Instances {
		instIdx[r.in.Instances[i].ID] = i
	}
	depIdx := make(map[string]*depState, len(r.deps))
	for _, d := range r.deps {
		depIdx[d.id] = d
	}
	infos := make([]tinfo, len(r.in.Tasks))
	added := false
	for i := range r.in.Tasks {
		t := &r.in.Tasks[i]
		inst := -1
		if t.Instance != "" {
			j, ok := instIdx[t.Instance]
			if !ok || !r.in.Instances[j].Connected {
				continue
			}
			inst = j
		}
		d := depIdx[t.DeploymentID]
		if d == nil {
			// A deployment the service no longer lists: replaced, target 0.
			d = &depState{id: t.DeploymentID, status: DeploymentActive, rollout: RolloutCompleted, createdAt: time.Time{}}
			depIdx[t.DeploymentID] = d
			r.deps = append(r.deps, d)
			added = true
		}
		r.total++
		if t.DesiredStatus == StatusStopped || isGoingDown(t.LastStatus) {
			d.stopping++
			continue
		}
		ti := &infos[i]
		ti.t, ti.dep = t, d
		if inst >= 0 {
			ti.inst, ti.az = inst, r.instAZ[inst]
		} else {
			ti.az = r.azIdx[t.AZ]
			ti.inst = len(r.in.Instances) + ti.az
		}
		ti.pending = t.LastStatus != StatusRunning
		ti.protected = t.Protected(r.now)
		ti.healthy = !ti.pending && t.Health != HealthUnhealthy && (!d.hc || t.Health == HealthHealthy)
		ti.class = victimClass(ti)
		ti.created = t.CreatedAt.UnixNano()
		r.live++
		r.sp.azCount[ti.az]++
		r.sp.instCount[ti.inst]++
		if ti.pending {
			d.pending++
		} else {
			d.running++
		}
		if ti.healthy {
			r.healthy++
		}
		switch {
		case !ti.pending && t.Health == HealthUnhealthy:
			d.doomed = append(d.doomed, ti)
		case inst >= 0 && r.drainInst[inst] && !ti.protected:
			// Protected tasks on a DRAINING instance stay until their
			// protection is released or expires (beyond ECS, which documents
			// protection for scale-in and deployments only): they are kept
			// like any other task and not replaced.
			d.drain = append(d.drain, ti)
		default:
			d.keep = append(d.keep, ti)
		}
	}
	if added {
		r.sortDeps()
	}
}

func (r *reconciler) setTargets() {
	for _, d := range r.deps {
		d.target = 0
	}
	if r.primary != nil && !r.draining {
		r.primary.target = r.desired
	}
}

// countStarts decides how many tasks the PRIMARY starts: what it lacks, within
// the maximumPercent ceiling (which counts every task not yet STOPPED,
// protected ones included), and only if an instance can take them.
func (r *reconciler) countStarts() (starts int, noInstance bool) {
	p := r.primary
	if p == nil || r.draining || r.frozen {
		return 0, false
	}
	need := p.target - len(p.keep)
	room := r.maxCap - r.total
	starts = max(min(need, room), 0)
	if starts > 0 && len(r.eligible) == 0 {
		return 0, true
	}
	return starts, false
}

func (r *reconciler) stop(t *tinfo, cause StopCause) {
	if r.plan.Stop == nil {
		r.plan.Stop = make([]Stop, 0, r.live)
	}
	t.stopped = true
	depID := t.dep.id
	if r.primary != nil {
		depID = r.primary.id
	}
	reason := ScalingStoppedReason(depID)
	if cause == StopUnhealthy {
		reason = UnhealthyStoppedReason
	}
	r.plan.Stop = append(r.plan.Stop, Stop{TaskID: t.t.ID, DeploymentID: depID, Cause: cause, Reason: reason})
}

// Start throttling (ECS's "service throttle logic"): once the PRIMARY
// deployment has had ThrottleAfter consecutive tasks fail to start, its
// next start waits ThrottleBase after the last failure, doubling with
// every further failure up to ThrottleMax. A task that runs (or a new
// deployment) resets the count, which the control plane keeps.
const (
	ThrottleAfter = 3
	ThrottleBase  = 10 * time.Second
	ThrottleMax   = 15 * time.Minute
)

// ThrottleDelay is how long after the last failed start the next start
// waits, with failed consecutive failures (failed >= ThrottleAfter).
func ThrottleDelay(failed int) time.Duration {
	d := ThrottleBase
	for i := ThrottleAfter; i < failed && d < ThrottleMax; i++ {
		d *= 2
	}
	return min(d, ThrottleMax)
}

// throttle holds back the PRIMARY's starts while it is throttled, reports
// it (six-hourly while it lasts), and asks for a recheck when the wait is
// over. A rollback in this pass is never throttled.
func (r *reconciler) throttle(starts int) int {
	p := r.primary
	last := r.in.Service.LastFailedStart
	if starts == 0 || p == nil || p.in == nil || r.plan.Rollback != nil || p.in.FailedTasks < ThrottleAfter || last.IsZero() {
		return starts
	}
	wait := last.Add(ThrottleDelay(p.in.FailedTasks)).Sub(r.now)
	if wait <= 0 {
		return starts
	}
	r.requeueIn(wait)
	r.log.hold(Event{Cause: causeThrottle, Kind: EventStartThrottled, Message: UnableToStartMessage(r.name)})
	return 0
}

// unhealthy counts the RUNNING tasks reported UNHEALTHY (being replaced).
func (r *reconciler) unhealthy() int {
	n := 0
	for _, d := range r.deps {
		n += len(d.doomed)
	}
	return n
}

// protectionInert reports that protection plays no part in this pass:
// every deployment is at or under its target (counting its tasks on
// DRAINING instances, protected or not) and no task is on a DRAINING
// instance. Protection changes neither of these counts, so it stays true
// until something other than a protection changes.
func (r *reconciler) protectionInert() bool {
	for _, d := range r.deps {
		if len(d.keep)+len(d.drain) > d.target {
			return false
		}
		for _, t := range d.keep {
			if t.inst < len(r.in.Instances) && r.drainInst[t.inst] {
				return false
			}
		}
		if len(d.drain) > 0 {
			return false
		}
	}
	return true
}

// retention forgets the INACTIVE deployments beyond the newest
// KeepInactiveDeployments.
func (r *reconciler) retention() {
	kept := 0
	for i := len(r.deps) - 1; i >= 0; i-- { // newest first
		d := r.deps[i]
		if d.in == nil || d.status != DeploymentInactive {
			continue
		}
		if kept < KeepInactiveDeployments {
			kept++
			continue
		}
		r.plan.Forget = append(r.plan.Forget, d.id)
	}
}

// stopDoomed replaces UNHEALTHY RUNNING tasks, protected or not (protection
// covers scale-in and deployments only): start-first when a replacement is on
// its way (started now or still pending) and the deployment lacks RUNNING
// tasks, otherwise stop-first. Unhealthy tasks do not count as healthy, so
// stopping them never lowers the minimumHealthyPercent count.
func (r *reconciler) stopDoomed(starts int) {
	for _, d := range r.deps {
		if len(d.doomed) == 0 {
			continue
		}
		keepAlive := 0
		if d == r.primary && !r.draining {
			running := 0
			for _, t := range d.keep {
				if !t.pending {
					running++
				}
			}
			keepAlive = min(len(d.doomed), countPending(d.keep)+starts, max(d.target-running, 0))
			keepAlive = max(keepAlive, 0)
		}
		victims := r.sp.selectVictims(slices.Clone(d.doomed), len(d.doomed)-keepAlive, nil, true)
		for _, t := range victims {
			r.stop(t, StopUnhealthy)
		}
	}
}

func countPending(ts []*tinfo) int {
	n := 0
	for _, t := range ts {
		if t.pending {
			n++
		}
	}
	return n
}

// stopDrained replaces unprotected tasks on DRAINING instances within the
// minimumHealthyPercent floor (their replacements were counted in starts, so
// the replacement starts first when maximumPercent allows). It reports
// whether the floor refused a stop.
func (r *reconciler) stopDrained(budget *int) (refused bool) {
	for _, d := range r.deps {
		if len(d.drain) == 0 || (r.frozen && d != r.primary) {
			continue
		}
		cause := StopInstanceDraining
		if r.draining {
			cause = StopServiceDraining
		}
		victims := r.sp.selectVictims(d.drain, len(d.drain), budget, r.draining)
		for _, t := range victims {
			r.stop(t, cause)
		}
		if len(victims) < len(d.drain) {
			refused = true
		}
	}
	return refused
}

// stopSurplus scales in every deployment above its target: older
// deployments (target 0) oldest first, then the PRIMARY. Protected tasks are
// never candidates. It reports whether the floor refused a stop.
func (r *reconciler) stopSurplus(budget *int) (refused bool) {
	order := make([]*depState, 0, len(r.deps))
	for _, d := range r.deps {
		if d != r.primary {
			order = append(order, d)
		}
	}
	if r.primary != nil {
		order = append(order, r.primary)
	}
	cause := StopScaleIn
	if r.draining {
		cause = StopServiceDraining
	}
	for _, d := range order {
		surplus := len(d.keep) - d.target
		if surplus <= 0 || (r.frozen && d != r.primary) {
			continue
		}
		cands := make([]*tinfo, 0, len(d.keep))
		protected := 0
		var expires time.Time
		for _, t := range d.keep {
			if !t.protected {
				cands = append(cands, t)
				continue
			}
			protected++
			if expires.IsZero() || t.t.ProtectedUntil.Before(expires) {
				expires = t.t.ProtectedUntil
			}
		}
		nCands := len(cands)
		want := min(surplus, nCands)
		victims := r.sp.selectVictims(cands, want, budget, r.draining)
		for _, t := range victims {
			r.stop(t, cause)
		}
		if len(victims) < want {
			refused = true
		}
		if surplus > nCands {
			// The scheduler would stop protected tasks now or later: act on
			// the earliest expiry at once.
			r.requeueIn(expires.Sub(r.now))
			if len(victims) == nCands {
				// Every unprotected candidate is gone or going: protection
				// alone holds the deployment above its target.
				r.plan.BlockedBy = append(r.plan.BlockedBy, Blocked{
					DeploymentID: d.id, Protected: protected,
					Shortfall: surplus - nCands, Expires: expires,
				})
			}
		}
	}
	// A protected task on a DRAINING instance is replaced once its
	// protection ends.
	for _, d := range r.deps {
		for _, t := range d.keep {
			if t.protected && t.inst < len(r.in.Instances) && r.drainInst[t.inst] {
				r.requeueIn(t.t.ProtectedUntil.Sub(r.now))
			}
		}
	}
	return refused
}

// blockedEvents reports every deployment whose scale-in protection blocks.
// N is the number of protected tasks the deployment keeps, not only the
// shortfall: ECS's text reads "N tasks under protection", AWS's own demo shows
// the count of protected tasks of the task set, and the DEPLOYMENT_BLOCKED
// rule compares that same count with the desired count. A different N is a
// different cause, so it is reported at once.
func (r *reconciler) blockedEvents() {
	for _, b := range r.plan.BlockedBy {
		r.plan.Blocked += b.Protected
		r.log.hold(Event{
			Cause: ProtectionBlockedCause(b.DeploymentID, b.Protected), Kind: EventProtectionBlocked,
			Message: ProtectionBlockedMessage(r.name, b.DeploymentID, b.Protected),
			N:       b.Protected, DeploymentID: b.DeploymentID,
		})
	}
}

// noProgress reports the deployment-configuration deadlock: the PRIMARY needs
// tasks but maximumPercent leaves no room, the minimumHealthyPercent floor
// refuses every stop that would make room, and nothing is in flight that
// could change that (no pending task, no task on its way down).
func (r *reconciler) noProgress(refused bool) bool {
	p := r.primary
	if !refused || !r.plan.Empty() || p == nil || r.draining || r.frozen {
		return false
	}
	if len(p.keep) >= p.target || r.maxCap-r.total > 0 {
		return false
	}
	for _, d := range r.deps {
		if d.pending > 0 || d.stopping > 0 {
			return false
		}
	}
	return true
}

// placeStarts places the PRIMARY's new tasks, spreading over AZs, then over
// instances, counting the tasks that remain after this plan's stops (tasks
// being replaced on DRAINING instances excluded).
func (r *reconciler) placeStarts(starts int) {
	if starts <= 0 {
		return
	}
	azCount := make([]int, len(r.sp.azNames))
	instCount := make([]int, len(r.sp.instNames))
	for _, d := range r.deps {
		for _, t := range d.keep {
			if !t.stopped {
				azCount[t.az]++
				instCount[t.inst]++
			}
		}
		for _, t := range d.doomed {
			if !t.stopped {
				azCount[t.az]++
				instCount[t.inst]++
			}
		}
	}
	for _, i := range r.sp.place(starts, r.eligible, r.instAZ, azCount, instCount) {
		inst := &r.in.Instances[i]
		r.plan.Start = append(r.plan.Start, Placement{DeploymentID: r.primary.id, Instance: inst.ID, AZ: inst.AZ})
	}
}

// completeAndSteady completes the PRIMARY deployment once it runs its target
// of healthy tasks and no other deployment has a task left (older ones become
// INACTIVE), and reports the steady state.
func (r *reconciler) completeAndSteady() {
	if r.draining {
		r.plan.Steady = r.total == 0
		return
	}
	p := r.primary
	if p == nil || p.rollout == RolloutFailed || !r.plan.Empty() {
		return
	}
	if len(p.keep) != p.target || len(p.doomed) > 0 || len(p.drain) > 0 || p.stopping > 0 {
		return
	}
	for _, t := range p.keep {
		if !t.healthy {
			return
		}
	}
	for _, d := range r.deps {
		if d != p && d.tasksLeft() > 0 {
			return
		}
	}
	for _, d := range r.deps {
		if d != p && d.status != DeploymentInactive {
			d.status = DeploymentInactive
		}
	}
	if p.rollout != RolloutCompleted {
		p.rollout = RolloutCompleted
		p.reason = "ECS deployment " + p.id + " completed."
		r.log.once(Event{Cause: "deployment-completed/" + p.id, Kind: EventDeploymentCompleted,
			Message: DeploymentCompletedMessage(r.name, p.id), DeploymentID: p.id})
	}
	for _, t := range p.keep {
		if t.inst < len(r.in.Instances) && r.drainInst[t.inst] {
			return // a protected task still sits on a DRAINING instance
		}
	}
	r.plan.Steady = true
	r.log.hold(Event{Cause: causeSteady, Kind: EventSteadyState, Message: SteadyStateMessage(r.name)})
}

func (r *reconciler) deploymentChanges() {
	for _, d := range r.deps {
		if d.in == nil || (d.in.Status == DeploymentInactive && d.status == DeploymentInactive) {
			continue
		}
		c := DeploymentChange{
			ID: d.id, Status: d.status, RolloutState: d.rollout, RolloutStateReason: d.reason,
			DesiredCount: d.target, RunningCount: d.running, PendingCount: d.pending,
			FailedTasks: d.in.FailedTasks,
		}
		r.plan.Deployments = append(r.plan.Deployments, c)
	}
}

// String renders a plan compactly, for logs and test failures.
func (p Plan) String() string {
	s := "plan{"
	for _, st := range p.Start {
		s += " start " + st.DeploymentID + "@" + st.Instance
	}
	for _, st := range p.Stop {
		s += " stop " + st.TaskID + "(" + st.Cause.String() + ")"
	}
	for _, e := range p.Events {
		s += " event " + e.Kind.String()
		if e.N > 0 {
			s += "/" + strconv.Itoa(e.N)
		}
	}
	if p.RequeueAfter > 0 {
		s += " requeue " + p.RequeueAfter.String()
	}
	if p.Steady {
		s += " steady"
	}
	return s + " }"
}
