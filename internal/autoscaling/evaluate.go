package autoscaling

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Evaluate computes what Application Auto Scaling does to one scalable
// target now. It is a pure function of in: no I/O, no clock, deterministic.
func Evaluate(in Input) Plan {
	e := newEngine(&in)
	e.scheduled()
	e.dynamic()
	return e.finish()
}

type engine struct {
	in      *Input
	now     time.Time
	min     int
	max     int
	desired int
	running int
	mem     Memory
	plan    Plan
	requeue time.Duration
}

func newEngine(in *Input) *engine {
	e := &engine{in: in, now: in.Now, min: in.Target.Min, max: in.Target.Max,
		desired: in.Service.Desired, running: max(in.Service.Running, 0), mem: in.Memory}
	e.mem.Scheduled = make(map[string]time.Time, len(in.Memory.Scheduled))
	for k, v := range in.Memory.Scheduled {
		e.mem.Scheduled[k] = v
	}
	return e
}

func (e *engine) finish() Plan {
	// Forget actions that no longer exist.
	for name := range e.mem.Scheduled {
		if !slices.ContainsFunc(e.in.Scheduled, func(a ScheduledAction) bool { return a.Name == name }) {
			delete(e.mem.Scheduled, name)
		}
	}
	if e.desired != e.in.Service.Desired {
		d := e.desired
		e.plan.SetDesired = &d
	}
	e.plan.Memory = e.mem
	e.plan.RequeueAfter = e.requeue
	return e.plan
}

func (e *engine) requeueAt(t time.Time) {
	if d := t.Sub(e.now); d > 0 && (e.requeue == 0 || d < e.requeue) {
		e.requeue = d
	}
}

// setDesired records a desired-count change and its activity.
func (e *engine) setDesired(n int, cause string) {
	e.desired = n
	e.plan.Activities = append(e.plan.Activities, Activity{
		Description:   fmt.Sprintf("Setting desired count to %d.", n),
		Cause:         cause,
		StatusCode:    StatusSuccessful,
		StatusMessage: fmt.Sprintf("Successfully set desired count to %d. Change successfully fulfilled by ecs.", n),
		Start:         e.now, End: e.now, Scaled: true, Desired: n,
	})
	e.mem.LastNotScaled = ""
}

// notScaled records a not-scaled activity, once per repeating reason.
func (e *engine) notScaled(cause string, r NotScaledReason) {
	key := r.Code + "|" + cause
	if e.mem.LastNotScaled == key {
		return
	}
	e.mem.LastNotScaled = key
	e.plan.Activities = append(e.plan.Activities, Activity{
		Description: "Attempting to scale due to alarm triggered",
		Cause:       cause, StatusCode: StatusFailed, Start: e.now, End: e.now,
		NotScaledReasons: []NotScaledReason{r}, Desired: -1,
	})
}

func intp(v int) *int { return &v }

// scheduled runs the scheduled actions that are due: they set the bounds
// and move the desired count inside them, whatever the cooldowns.
func (e *engine) scheduled() {
	type due struct {
		a  *ScheduledAction
		at time.Time
	}
	var fire []due
	for i := range e.in.Scheduled {
		a := &e.in.Scheduled[i]
		if a.Schedule == nil {
			continue
		}
		after, ran := e.mem.Scheduled[a.Name]
		if !ran {
			after = a.Created.Add(-time.Nanosecond)
		}
		anchor := a.Created
		if !a.Start.IsZero() {
			anchor = a.Start
		}
		next, ok := a.Schedule.Next(after, anchor, a.Start, a.End)
		if !ok {
			continue
		}
		if next.After(e.now) {
			e.requeueAt(next)
			continue
		}
		// Due. Missed occurrences collapse into one run; the next one is
		// counted from now.
		e.mem.Scheduled[a.Name] = e.now
		if after, ok := a.Schedule.Next(e.now, anchor, a.Start, a.End); ok {
			e.requeueAt(after)
		}
		if e.in.Target.ScheduledSuspended {
			continue
		}
		fire = append(fire, due{a, next})
	}
	slices.SortStableFunc(fire, func(x, y due) int { return x.at.Compare(y.at) })
	for _, f := range fire {
		e.runScheduled(f.a)
	}
}

func (e *engine) runScheduled(a *ScheduledAction) {
	var parts []string
	if a.Min != nil {
		e.min = *a.Min
		parts = append(parts, fmt.Sprintf("min capacity to %d", e.min))
	}
	if a.Max != nil {
		e.max = *a.Max
		parts = append(parts, fmt.Sprintf("max capacity to %d", e.max))
	}
	if len(parts) == 0 {
		return
	}
	if e.max < e.min { // a new bound crossing the other moves it along
		if a.Min != nil {
			e.max = e.min
		} else {
			e.min = e.max
		}
	}
	e.plan.SetMin, e.plan.SetMax = intp(e.min), intp(e.max)
	what := strings.Join(parts, " and ")
	e.plan.Activities = append(e.plan.Activities, Activity{
		Description:   "Setting " + what,
		Cause:         fmt.Sprintf("scheduled action name %s was triggered", a.Name),
		StatusCode:    StatusSuccessful,
		StatusMessage: "Successfully set " + what,
		Start:         e.now, Scaled: true, Desired: -1,
	})
	switch {
	case e.desired < e.min:
		e.setDesired(e.min, fmt.Sprintf("minimum capacity was set to %d", e.min))
	case e.desired > e.max:
		e.setDesired(e.max, fmt.Sprintf("maximum capacity was set to %d", e.max))
	}
}

// proposal is what one policy wants, triggered by one alarm.
type proposal struct {
	capacity int
	policy   *Policy
	alarm    string
	cooldown time.Duration
}

func (p proposal) cause() string {
	return fmt.Sprintf("monitor alarm %s in state ALARM triggered policy %s", p.alarm, p.policy.Name)
}

func orDefault(d *time.Duration) time.Duration {
	if d == nil {
		return DefaultCooldown
	}
	return *d
}

// proportional is target tracking's capacity for a metric value: the
// capacity at which the metric would meet the target, rounded up.
func proportional(base int, value, target float64) int {
	if target <= 0 {
		return base
	}
	c := math.Ceil(float64(base) * value / target)
	if math.IsNaN(c) || c < 0 {
		return 0
	}
	if c > 1e9 {
		return 1e9
	}
	return int(c)
}

// dynamic applies the scaling policies whose alarms are in ALARM:
// scale out if any policy says so (the largest capacity wins), scale in
// only if every scale-in-enabled target-tracking policy agrees (and any
// step policy wants it), never during a deployment or a scale-in cooldown.
func (e *engine) dynamic() {
	sig := func(name string) (AlarmSignal, bool) {
		s, ok := e.in.Alarms[name]
		return s, ok && s.Evaluated && s.State == StateAlarm && len(s.Values) > 0
	}
	outCooling := !e.mem.ScaleOutAt.IsZero() && e.now.Before(e.mem.ScaleOutAt.Add(e.mem.ScaleOutCooldown))
	inCooling := !e.mem.ScaleInAt.IsZero() && e.now.Before(e.mem.ScaleInAt.Add(e.mem.ScaleInCooldown))
	// During a scale-out cooldown the capacity that scale-out added counts
	// as already there: proposals start from the capacity it started from,
	// and only a larger scale-out goes ahead.
	outBase := e.running
	if outCooling {
		outBase = e.mem.ScaleOutBase
	}

	var outs, ins, ttIns []proposal
	ttInPolicies := 0
	for i := range e.in.Policies {
		p := &e.in.Policies[i]
		switch p.Type {
		case TargetTracking:
			if s, ok := sig(p.HighAlarm); ok {
				c := proportional(outBase, s.Values[0], p.TargetValue)
				if outBase == 0 && s.Values[0] > p.TargetValue {
					c = 1 // from zero: the minimum amount
				}
				outs = append(outs, proposal{c, p, p.HighAlarm, orDefault(p.ScaleOutCooldown)})
			}
			if !p.DisableScaleIn {
				ttInPolicies++
				if s, ok := sig(p.LowAlarm); ok {
					if c := proportional(e.running, s.Values[0], p.TargetValue); c < e.running {
						ttIns = append(ttIns, proposal{c, p, p.LowAlarm, orDefault(p.ScaleInCooldown)})
					}
				}
			}
		case StepScaling:
			for _, name := range p.Alarms {
				s, ok := sig(name)
				if !ok {
					continue
				}
				adj, ok := stepFor(p.Steps, aggregate(p.Aggregation, s.Values)-s.Threshold)
				if !ok {
					continue
				}
				if c := applyStep(p.AdjustmentType, e.running, adj, p.MinAdjustmentMagnitude); c > e.running {
					if outCooling && p.AdjustmentType != ExactCapacity {
						c = applyStep(p.AdjustmentType, outBase, adj, p.MinAdjustmentMagnitude)
					}
					outs = append(outs, proposal{c, p, name, orDefault(p.Cooldown)})
				} else if c < e.running {
					ins = append(ins, proposal{c, p, name, orDefault(p.Cooldown)})
				}
			}
		}
	}
	if ttInPolicies > 0 && len(ttIns) == ttInPolicies {
		ins = append(ins, ttIns...)
	}

	if len(outs) > 0 && !e.in.Target.DynamicOutSuspended {
		best := largest(outs)
		if outCooling && best.capacity <= e.mem.ScaleOutDesired {
			return // not larger than the scale-out that started the cooldown
		}
		target := min(max(best.capacity, e.min), e.max)
		target = max(target, e.desired) // a scale-out never lowers the desired count
		if target == e.desired {
			r := NotScaledReason{Code: NotScaledAtDesired, CurrentCapacity: intp(e.desired)}
			if best.capacity > e.desired && e.desired >= e.max {
				r = NotScaledReason{Code: NotScaledAtMax, MaxCapacity: intp(e.max)}
			}
			e.notScaled(best.cause(), r)
			return
		}
		e.setDesired(target, best.cause())
		e.mem.ScaleOutAt, e.mem.ScaleOutBase, e.mem.ScaleOutDesired, e.mem.ScaleOutCooldown = e.now, e.running, target, best.cooldown
		return
	}
	if len(ins) == 0 || e.in.Target.DynamicInSuspended {
		return
	}
	best := largest(ins) // the largest capacity wins: the most cautious scale-in
	if e.in.Service.Deploying {
		e.notScaled(best.cause(), NotScaledReason{Code: NotScaledUnscalable, CurrentCapacity: intp(e.desired)})
		return
	}
	if inCooling {
		return
	}
	target := max(min(best.capacity, e.max), e.min)
	target = min(target, e.desired) // a scale-in never raises the desired count
	if target == e.desired {
		r := NotScaledReason{Code: NotScaledAtDesired, CurrentCapacity: intp(e.desired)}
		if best.capacity < e.desired && e.desired <= e.min {
			r = NotScaledReason{Code: NotScaledAtMin, MinCapacity: intp(e.min)}
		}
		e.notScaled(best.cause(), r)
		return
	}
	e.setDesired(target, best.cause())
	e.mem.ScaleInAt, e.mem.ScaleInCooldown = e.now, best.cooldown
	// Protected tasks above the new desired count keep running: say so.
	if blocked := min(e.running, e.in.Service.Protected) - target; blocked > 0 {
		a := &e.plan.Activities[len(e.plan.Activities)-1]
		a.NotScaledReasons = []NotScaledReason{{Code: NotScaledProtected, CurrentCapacity: intp(e.running),
			MinCapacity: intp(e.min), MaxCapacity: intp(e.max)}}
		a.Details = fmt.Sprintf("%d %s protected from scale-in %s not stopped.", blocked, plural(blocked, "task", "tasks"), plural(blocked, "was", "were"))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func largest(ps []proposal) proposal {
	best := ps[0]
	for _, p := range ps[1:] {
		if p.capacity > best.capacity {
			best = p
		}
	}
	return best
}

func aggregate(kind string, vals []float64) float64 {
	switch kind {
	case "Minimum":
		return slices.Min(vals)
	case "Maximum":
		return slices.Max(vals)
	}
	s := 0.0
	for _, v := range vals {
		s += v
	}
	return s / float64(len(vals))
}

// stepFor finds the step adjustment for a metric diff (value - threshold).
// Above the threshold the lower bound is inclusive and the upper exclusive;
// below it, the other way round.
func stepFor(steps []Step, diff float64) (int, bool) {
	for _, s := range steps {
		lowOK := s.Lower == nil || diff > *s.Lower || diff >= 0 && diff == *s.Lower
		upOK := s.Upper == nil || diff < *s.Upper || diff < 0 && diff == *s.Upper
		if lowOK && upOK {
			return s.Adjustment, true
		}
	}
	return 0, false
}

// applyStep applies a step adjustment to capacity base.
func applyStep(kind string, base, adj, minMag int) int {
	switch kind {
	case ExactCapacity:
		return max(adj, 0)
	case PercentChangeInCapacity:
		d := float64(base) * float64(adj) / 100
		var n int
		switch {
		case d > 1:
			n = int(math.Floor(d))
		case d > 0:
			n = 1
		case d < -1:
			n = int(math.Ceil(d))
		case d < 0:
			n = -1
		}
		if minMag > 0 && n != 0 && abs(n) < minMag {
			n = minMag * sign(n)
		}
		return max(base+n, 0)
	default:
		return max(base+adj, 0)
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func sign(n int) int {
	if n < 0 {
		return -1
	}
	return 1
}
