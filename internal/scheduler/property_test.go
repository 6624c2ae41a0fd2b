package scheduler

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestProperties drives a simulated world with random operation sequences
// and checks the scheduler's safety and liveness rules after every
// reconcile. Set HOLDFAST_SCHED_SEED to replay a logged seed.
func TestProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOLDFAST_SCHED_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with HOLDFAST_SCHED_SEED=%d)", seed, seed)
	sequences, steps := 300, 100
	if testing.Short() {
		sequences = 40
	}
	st := &propStats{}
	for i := range sequences {
		p := &propRun{t: t, rnd: rand.New(rand.NewPCG(seed, uint64(i))), seq: i, seed: seed, emitted: map[string]time.Time{}, stats: st}
		p.run(steps)
		if t.Failed() {
			return
		}
	}
	t.Logf("%+v", *st)
	if st.blockedEvents == 0 || st.completed == 0 || st.converged == 0 {
		t.Errorf("the random sequences did not exercise the rules: %+v", *st)
	}
}

// propStats shows that the random sequences reach the interesting states.
type propStats struct {
	reconciles, starts, stops, blockedEvents, completed, rollbacks, converged, skipped int
}

type propRun struct {
	t       *testing.T
	rnd     *rand.Rand
	seq     int
	seed    uint64
	w       *world
	nextDep int
	nextIns int
	emitted map[string]time.Time // protection causes reported and not cleared
	stats   *propStats
	trace   []string
}

func (p *propRun) fail(format string, a ...any) {
	p.t.Helper()
	tail := p.trace
	if len(tail) > 15 {
		tail = tail[len(tail)-15:]
	}
	p.t.Fatalf("seed %d sequence %d: %s\nlast operations:\n  %s", p.seed, p.seq, fmt.Sprintf(format, a...), joinLines(tail))
}

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

func (p *propRun) newDeploymentID() string {
	p.nextDep++
	return fmt.Sprintf("ecs-svc/%019d", 1000000000000000000+p.nextDep)
}

func (p *propRun) addInstance(draining bool) {
	p.nextIns++
	in := Instance{ID: fmt.Sprintf("i-%02d", p.nextIns), AZ: string(rune('a' + p.rnd.IntN(3))), Status: InstanceActive, Connected: true}
	if draining {
		in.Status = InstanceDraining
	}
	p.w.insts = append(p.w.insts, in)
}

func (p *propRun) run(steps int) {
	r := p.rnd
	p.w = newWorld()
	w := p.w
	w.svc = Service{
		Name: "svc", Status: ServiceActive, DesiredCount: r.IntN(8),
		MinimumHealthyPercent: []int{0, 50, 100, 100}[r.IntN(4)],
		MaximumPercent:        []int{100, 125, 150, 200, 200}[r.IntN(5)],
	}
	w.svc.CircuitBreaker.Enable = r.IntN(2) == 0
	w.svc.CircuitBreaker.Rollback = r.IntN(2) == 0
	w.deploy(p.newDeploymentID(), "svc:1", r.IntN(2) == 0)
	for range 1 + r.IntN(4) {
		p.addInstance(false)
	}
	p.trace = append(p.trace, fmt.Sprintf("create desired=%d min=%d max=%d cb=%v", w.svc.DesiredCount, w.svc.MinimumHealthyPercent, w.svc.MaximumPercent, w.svc.CircuitBreaker))
	for range steps {
		p.op()
		p.check(w.input())
		if r.IntN(5) != 0 {
			w.settle()
		}
	}
	p.finish()
}

func (p *propRun) randomTask(filter func(*Task) bool) *Task {
	var ids []int
	for i := range p.w.tasks {
		if filter(&p.w.tasks[i]) {
			ids = append(ids, i)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return &p.w.tasks[ids[p.rnd.IntN(len(ids))]]
}

func live(t *Task) bool { return t.DesiredStatus == StatusRunning }

func (p *propRun) op() {
	r, w := p.rnd, p.w
	var desc string
	switch n := r.IntN(100); {
	case n < 12:
		w.svc.DesiredCount = r.IntN(10)
		desc = fmt.Sprintf("set desired=%d", w.svc.DesiredCount)
	case n < 30:
		if t := p.randomTask(live); t != nil {
			t.ProtectedUntil = w.now.Add(time.Duration(1+r.IntN(2880)) * time.Minute)
			desc = fmt.Sprintf("protect %s until +%v", t.ID, t.ProtectedUntil.Sub(w.now))
		}
	case n < 38:
		if t := p.randomTask(func(t *Task) bool { return t.Protected(w.now) }); t != nil {
			t.ProtectedUntil = time.Time{}
			desc = "unprotect " + t.ID
		}
	case n < 50:
		var d time.Duration
		switch r.IntN(3) {
		case 0:
			d = time.Duration(1+r.IntN(600)) * time.Second
		case 1:
			d = 2 * time.Hour
		default:
			d = w.plan.RequeueAfter // act on the requested instant exactly
		}
		w.now = w.now.Add(d)
		desc = fmt.Sprintf("advance %v", d)
	case n < 55:
		if t := p.randomTask(func(*Task) bool { return true }); t != nil {
			w.removeTask(t.ID)
			desc = "userstop " + t.ID
		}
	case n < 59:
		if len(w.insts) > 0 {
			id := w.insts[r.IntN(len(w.insts))].ID
			w.removeInstance(id)
			desc = "lose instance " + id
		}
	case n < 66:
		p.addInstance(false)
		desc = "add instance " + w.insts[len(w.insts)-1].ID
	case n < 72:
		id := p.newDeploymentID()
		w.deploy(id, fmt.Sprintf("svc:%d", p.nextDep), r.IntN(2) == 0)
		desc = "deploy " + id
		if r.IntN(4) == 0 {
			if w.failing == nil {
				w.failing = map[string]bool{}
			}
			w.failing[id] = true
			desc += " (its tasks fail to start)"
		}
	case n < 80:
		prim := w.primary()
		if t := p.randomTask(func(t *Task) bool {
			return live(t) && t.LastStatus != StatusRunning && prim != nil && t.DeploymentID == prim.ID
		}); t != nil {
			w.dep(t.DeploymentID).FailedTasks++
			desc = "start failure " + t.ID
			w.removeTask(t.ID)
		}
	case n < 83:
		if len(w.insts) > 0 {
			in := &w.insts[r.IntN(len(w.insts))]
			in.Status = InstanceDraining
			desc = "drain " + in.ID
		}
	case n < 87:
		if t := p.randomTask(func(t *Task) bool { return live(t) && t.LastStatus == StatusRunning }); t != nil {
			t.Health = HealthUnhealthy
			desc = "unhealthy " + t.ID
		}
	default:
		desc = "nothing"
	}
	if desc != "" {
		p.trace = append(p.trace, desc)
	}
}

// oracle recomputes, independently of the reconciler, what the properties
// need from an input.
type oracle struct {
	in      Input
	lost    map[string]bool
	healthy map[string]bool
}

func newOracle(in Input) *oracle {
	o := &oracle{in: in, lost: map[string]bool{}, healthy: map[string]bool{}}
	insts := map[string]Instance{}
	for _, i := range in.Instances {
		insts[i.ID] = i
	}
	hc := map[string]bool{}
	for _, d := range in.Service.Deployments {
		hc[d.ID] = d.HasHealthCheck
	}
	for _, t := range in.Tasks {
		if t.Instance != "" {
			if i, ok := insts[t.Instance]; !ok || !i.Connected {
				o.lost[t.ID] = true
				continue
			}
		}
		if live(&t) && t.LastStatus == StatusRunning && t.Health != HealthUnhealthy && (!hc[t.DeploymentID] || t.Health == HealthHealthy) {
			o.healthy[t.ID] = true
		}
	}
	return o
}

// kept reports whether a task is one its deployment keeps (the set scale-in
// works on): live, not lost, not a RUNNING UNHEALTHY task being replaced,
// and not an unprotected task on a DRAINING instance.
func (o *oracle) kept(t *Task) bool {
	if !live(t) || o.lost[t.ID] || (t.LastStatus == StatusRunning && t.Health == HealthUnhealthy) {
		return false
	}
	if !t.Protected(o.in.Now) {
		for _, i := range o.in.Instances {
			if i.ID == t.Instance && i.Status == InstanceDraining {
				return false
			}
		}
	}
	return true
}

func (p *propRun) check(in Input) {
	p.t.Helper()
	w := p.w
	o := newOracle(in)
	plan := Reconcile(in)
	if again := Reconcile(in); again.String() != plan.String() || fmt.Sprint(again.Stop) != fmt.Sprint(plan.Stop) || fmt.Sprint(again.Start) != fmt.Sprint(plan.Start) {
		p.fail("not deterministic:\n%v\n%v", plan, again)
	}
	desired := in.Service.DesiredCount
	maxCap := desired * in.Service.MaximumPercent / 100
	floor := (desired*in.Service.MinimumHealthyPercent + 99) / 100
	byID := map[string]Task{}
	for _, t := range in.Tasks {
		byID[t.ID] = t
	}

	// (1) never stop a task with unexpired protection (health replacement
	// excepted), never stop a task twice, never touch a lost task.
	healthyStopped := 0
	stopped := map[string]bool{}
	for _, s := range plan.Stop {
		t, ok := byID[s.TaskID]
		switch {
		case !ok:
			p.fail("stop of unknown task %s", s.TaskID)
		case stopped[s.TaskID]:
			p.fail("task %s stopped twice in one plan", s.TaskID)
		case t.Protected(in.Now) && !(t.LastStatus == StatusRunning && t.Health == HealthUnhealthy):
			p.fail("stopped protected task %s (until %v, now %v): %v", t.ID, t.ProtectedUntil, in.Now, plan)
		case !live(&t):
			p.fail("stopped task %s that is already stopping", t.ID)
		case o.lost[t.ID]:
			p.fail("stopped lost task %s", t.ID)
		}
		stopped[s.TaskID] = true
		if o.healthy[t.ID] {
			healthyStopped++
		}
	}

	// (2) starts never push RUNNING+PENDING(+stopping) above maximumPercent.
	if len(plan.Start) > 0 {
		count := len(plan.Start)
		for _, t := range in.Tasks {
			if !o.lost[t.ID] {
				count++
			}
		}
		if count > maxCap {
			p.fail("%d tasks after starts, maximumPercent allows %d: %v", count, maxCap, plan)
		}
		if in.Service.Status == ServiceDraining {
			p.fail("DRAINING service started tasks")
		}
	}

	// (6) stops never push healthy RUNNING below minimumHealthyPercent.
	if healthyStopped > 0 && in.Service.Status != ServiceDraining && len(o.healthy)-healthyStopped < floor {
		p.fail("healthy %d -> %d, floor %d: %v", len(o.healthy), len(o.healthy)-healthyStopped, floor, plan)
	}

	// (4) protection events: right N, no repeat within six hours.
	for _, e := range plan.Events {
		if e.Kind != EventProtectionBlocked {
			continue
		}
		n := 0
		kept := 0
		for _, t := range in.Tasks {
			if t.DeploymentID == e.DeploymentID && o.kept(&t) {
				kept++
				if t.Protected(in.Now) {
					n++
				}
			}
		}
		if n != e.N || n == 0 {
			p.fail("protection event for %s says %d, %d protected tasks", e.DeploymentID, e.N, n)
		}
		if want := ProtectionBlockedMessage(in.Service.Name, e.DeploymentID, n); e.Message != want {
			p.fail("event text %q, want %q", e.Message, want)
		}
		if last, ok := p.emitted[e.Cause]; ok && in.Now.Sub(last) < EventRepeat {
			p.fail("cause %s reported again after %v", e.Cause, in.Now.Sub(last))
		}
		p.emitted[e.Cause] = in.Now
	}
	for c := range p.emitted {
		if _, ok := plan.EventMemory[c]; !ok {
			delete(p.emitted, c)
		}
	}

	w.apply(plan)
	st := p.stats
	st.reconciles++
	st.starts += len(plan.Start)
	st.stops += len(plan.Stop)
	for _, e := range plan.Events {
		switch e.Kind {
		case EventProtectionBlocked:
			st.blockedEvents++
		case EventDeploymentCompleted:
			st.completed++
		case EventRollingBack:
			st.rollbacks++
		}
	}

	// (4, converse) a deployment held above its target by protected tasks
	// alone (every unprotected task it keeps is gone or going) is reported.
	prim := w.primary()
	for _, d := range w.svc.Deployments {
		if prim == nil || (prim.RolloutState == RolloutFailed && d.ID != prim.ID) {
			continue // a FAILED deployment without rollback freezes the rollout
		}
		target := 0
		if d.ID == prim.ID && in.Service.Status != ServiceDraining {
			target = desired
		}
		kept, protected, unprotectedLeft := 0, 0, 0
		for _, t := range in.Tasks {
			if t.DeploymentID != d.ID || !o.kept(&t) {
				continue
			}
			kept++
			switch {
			case t.Protected(in.Now):
				protected++
			case !stopped[t.ID]:
				unprotectedLeft++
			}
		}
		if kept-target > kept-protected && unprotectedLeft == 0 {
			cause := ProtectionBlockedCause(d.ID, protected)
			if _, ok := plan.EventMemory[cause]; !ok {
				p.fail("deployment %s (target %d) keeps %d tasks, %d protected, no other left, but no cause %s: %v", d.ID, target, kept, protected, cause, plan)
			}
		}
	}
}

// finish ends every protection, makes sure an instance exists, and checks
// that the service converges and every deployment completes.
func (p *propRun) finish() {
	w := p.w
	for i := range w.tasks {
		w.tasks[i].ProtectedUntil = time.Time{}
	}
	hasActive := slices.ContainsFunc(w.insts, func(i Instance) bool { return i.Status == InstanceActive })
	if !hasActive {
		p.addInstance(false)
	}
	p.trace = append(p.trace, "finish: unprotect all")
	// Failures count only until the deployment completes or fails; the
	// final phase checks convergence of what did not fail.
	for id := range w.failing {
		if d := w.dep(id); d != nil && d.Status == DeploymentPrimary && d.RolloutState != RolloutFailed {
			p.stats.skipped++
			return // still failing below the threshold (or no breaker)
		}
	}
	desired := w.svc.DesiredCount
	maxCap := desired * w.svc.MaximumPercent / 100
	floor := (desired*w.svc.MinimumHealthyPercent + 99) / 100
	prim := w.primary()
	if prim == nil || prim.RolloutState == RolloutFailed {
		p.stats.skipped++
		return // frozen until the user deploys again
	}
	if desired > 0 && maxCap <= desired && floor >= desired {
		p.stats.skipped++
		return // the configuration allows no replacement (ECS reports it)
	}
	var last Plan
	for range 30 {
		p.check(w.input())
		last = w.plan
		w.settle()
		w.now = w.now.Add(time.Second)
		_, pending, stopping := w.counts()
		if last.Empty() && pending == 0 && stopping == 0 && last.Steady {
			break
		}
	}
	running, pending, _ := w.counts()
	if running != desired || pending != 0 || !last.Steady {
		p.fail("did not converge: running %d pending %d desired %d steady %v: %v", running, pending, desired, last.Steady, last)
	}
	p.stats.converged++
	for _, d := range w.svc.Deployments {
		switch {
		case d.Status == DeploymentPrimary && d.RolloutState != RolloutCompleted:
			p.fail("primary %s is %s after convergence", d.ID, d.RolloutState)
		case d.Status == DeploymentActive:
			p.fail("deployment %s still ACTIVE after convergence", d.ID)
		}
	}
}
