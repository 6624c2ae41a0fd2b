package autoscaling

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/cloudwatch/alarm"
)

// sim runs one scalable target second by second: metrics feed the managed
// alarms of each target-tracking policy through CloudWatch's real alarm
// evaluator (1-second periods, 3 out of 3 above the target, 15 out of 15
// below 90% of it), Evaluate decides, and the service follows its desired
// count with a lag, keeping protected tasks above it.
type sim struct {
	t       *testing.T
	rng     *rand.Rand
	in      Input
	history map[string][]alarm.Datapoint // per policy metric
	metric  func(p *Policy, s *sim) float64
	steps   int
	// lastChange is the second of the last desired-count change.
	lastChange int
	// scaleInUntil is when the last dynamic scale-in's cooldown ends.
	scaleInUntil time.Time
	onPlan       func(s *sim, before Input, p Plan)
}

func newSim(t *testing.T, seed uint64) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed*7+1)), history: map[string][]alarm.Datapoint{}}
	s.in.Now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	s.in.Alarms = map[string]AlarmSignal{}
	return s
}

func (s *sim) addTT(name string, target float64, out, in time.Duration, disableIn bool) {
	s.in.Policies = append(s.in.Policies, Policy{Name: name, Type: TargetTracking, TargetValue: target,
		HighAlarm: name + "-high", LowAlarm: name + "-low", ScaleOutCooldown: &out, ScaleInCooldown: &in, DisableScaleIn: disableIn})
}

func (s *sim) cooldownOf(policy string, in bool) time.Duration {
	for _, p := range s.in.Policies {
		if p.Name == policy {
			if in {
				return orDefault(p.ScaleInCooldown)
			}
			return orDefault(p.ScaleOutCooldown)
		}
	}
	s.t.Fatalf("unknown policy %s", policy)
	return 0
}

// step advances one second.
func (s *sim) step() {
	s.steps++
	s.in.Now = s.in.Now.Add(time.Second)
	for i := range s.in.Policies {
		p := &s.in.Policies[i]
		if p.Type != TargetTracking {
			continue
		}
		v := s.metric(p, s)
		h := append(s.history[p.Name], alarm.Datapoint{Time: s.in.Now.Add(-time.Second), Value: v})
		if len(h) > 40 {
			h = h[len(h)-40:]
		}
		s.history[p.Name] = h
		for _, a := range []struct {
			name string
			def  alarm.Definition
		}{
			{p.HighAlarm, alarm.Definition{Period: time.Second, EvaluationPeriods: HighAlarmPeriods, Threshold: p.TargetValue, Comparison: alarm.GreaterThanThreshold}},
			{p.LowAlarm, alarm.Definition{Period: time.Second, EvaluationPeriods: LowAlarmPeriods, Threshold: p.TargetValue * LowAlarmRatio, Comparison: alarm.LessThanThreshold}},
		} {
			old := s.in.Alarms[a.name]
			if old.State == "" {
				old.State = StateInsufficientData
			}
			r := alarm.Evaluate(a.def, old.State, h, s.in.Now)
			sig := AlarmSignal{State: r.State, Threshold: a.def.Threshold, Evaluated: true}
			for _, d := range r.Evaluated {
				sig.Values = append(sig.Values, d.Value)
			}
			s.in.Alarms[a.name] = sig
		}
	}
	before := s.in
	plan := Evaluate(s.in)
	if s.onPlan != nil {
		s.onPlan(s, before, plan)
	}
	if plan.SetMin != nil {
		s.in.Target.Min = *plan.SetMin
	}
	if plan.SetMax != nil {
		s.in.Target.Max = *plan.SetMax
	}
	if plan.SetDesired != nil {
		s.in.Service.Desired = *plan.SetDesired
		s.lastChange = s.steps
	}
	s.in.Memory = plan.Memory
	// The service follows: up to two tasks start per second; on scale-in
	// the unprotected surplus stops at once and protected tasks stay.
	svc := &s.in.Service
	switch {
	case svc.Running < svc.Desired:
		svc.Running = min(svc.Desired, svc.Running+2)
	case svc.Running > svc.Desired:
		svc.Running = max(svc.Desired, min(svc.Running, svc.Protected))
	}
	svc.Protected = min(svc.Protected, svc.Running)
}

// checkSafety asserts the safety rules on every plan.
func checkSafety(s *sim, before Input, p Plan) {
	t := s.t
	lo, hi := before.Target.Min, before.Target.Max
	if p.SetMin != nil {
		lo = *p.SetMin
	}
	if p.SetMax != nil {
		hi = *p.SetMax
	}
	if p.SetDesired != nil && (*p.SetDesired < lo || *p.SetDesired > hi) {
		t.Fatalf("step %d: desired %d outside [%d, %d]: %+v", s.steps, *p.SetDesired, lo, hi, p.Activities)
	}
	for _, a := range p.Activities {
		if !a.Scaled || a.Desired < 0 || !strings.HasPrefix(a.Cause, "monitor alarm ") {
			continue
		}
		policy := a.Cause[strings.LastIndex(a.Cause, " ")+1:]
		prev := before.Service.Desired
		if a.Desired < prev {
			if before.Service.Deploying {
				t.Fatalf("step %d: scale-in %d -> %d during a deployment", s.steps, prev, a.Desired)
			}
			if before.Now.Before(s.scaleInUntil) {
				t.Fatalf("step %d: scale-in %d -> %d during the cooldown (until %v)", s.steps, prev, a.Desired, s.scaleInUntil)
			}
			if before.Target.DynamicInSuspended {
				t.Fatalf("step %d: scale-in while suspended", s.steps)
			}
			s.scaleInUntil = before.Now.Add(s.cooldownOf(policy, true))
			blocked := min(before.Service.Running, before.Service.Protected) - a.Desired
			has := strings.HasPrefix(a.Details, fmt.Sprintf("%d task", blocked))
			if blocked > 0 != has {
				t.Fatalf("step %d: %d protected tasks above the new desired count %d, details %q", s.steps, blocked, a.Desired, a.Details)
			}
		} else if before.Target.DynamicOutSuspended {
			t.Fatalf("step %d: scale-out while suspended", s.steps)
		}
	}
}

// TestSafetyProperties runs random targets, policies and metric series,
// with deployments, protection, manual desired counts, scheduled actions
// and suspensions, and checks on every plan that the desired count stays
// within [min, max] and that no dynamic scale-in happens during a
// deployment, a scale-in cooldown or a suspension.
func TestSafetyProperties(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		s := newSim(t, seed)
		rng := s.rng
		s.in.Target.Min = rng.IntN(4)
		s.in.Target.Max = s.in.Target.Min + rng.IntN(16)
		s.in.Target.DynamicInSuspended = rng.IntN(10) == 0
		s.in.Target.DynamicOutSuspended = rng.IntN(10) == 0
		cool := []time.Duration{0, 5 * time.Second, 30 * time.Second, 300 * time.Second}
		for i := range 1 + rng.IntN(3) {
			s.addTT(fmt.Sprint("p", i), float64(10+rng.IntN(90)), cool[rng.IntN(4)], cool[rng.IntN(4)], rng.IntN(4) == 0)
		}
		if rng.IntN(2) == 0 {
			sched, _ := ParseSchedule("cron(*/3 * * * ? *)", "")
			mn, mx := rng.IntN(4), 0
			mx = mn + rng.IntN(10)
			s.in.Scheduled = append(s.in.Scheduled, ScheduledAction{Name: "flip", Schedule: sched, Created: s.in.Now, Min: &mn, Max: &mx})
		}
		s.in.Service.Desired = rng.IntN(20)
		s.in.Service.Running = s.in.Service.Desired
		levels := map[string]float64{}
		s.metric = func(p *Policy, s *sim) float64 {
			l, ok := levels[p.Name]
			if !ok || s.rng.IntN(40) == 0 {
				l = s.rng.Float64() * 3 * p.TargetValue // jumps
			}
			l = math.Max(0, l+s.rng.NormFloat64()*p.TargetValue*0.05)
			levels[p.Name] = l
			return l
		}
		s.onPlan = checkSafety
		deployLeft := 0
		for range 1500 {
			switch {
			case deployLeft > 0:
				deployLeft--
				s.in.Service.Deploying = deployLeft > 0
			case rng.IntN(100) < 2:
				deployLeft = 5 + rng.IntN(60)
				s.in.Service.Deploying = true
			}
			if rng.IntN(200) == 0 {
				s.in.Service.Desired = rng.IntN(25) // a manual UpdateService
			}
			if rng.IntN(20) == 0 {
				s.in.Service.Protected = rng.IntN(s.in.Service.Running + 1)
			}
			s.step()
		}
	}
}

// TestConvergence checks that with a constant load the desired count
// settles: on a service whose metric is load ÷ running tasks (backlog per
// task), at the proportional capacity or inside the 10% band above it; on a
// metric that does not react to capacity, at a bound or where it stops
// moving.
func TestConvergence(t *testing.T) {
	for seed := range uint64(100) {
		s := newSim(t, 1000+seed)
		rng := s.rng
		s.in.Target = Target{Min: rng.IntN(2), Max: 30}
		target := float64(5 + rng.IntN(45))
		cool := []time.Duration{0, 10 * time.Second, 60 * time.Second}
		s.addTT("p", target, cool[rng.IntN(3)], cool[rng.IntN(3)], false)
		load := float64(rng.IntN(250))
		plant := rng.IntN(3) != 0
		s.metric = func(p *Policy, s *sim) float64 {
			if !plant {
				return load
			}
			return load / float64(max(s.in.Service.Running, 1))
		}
		s.in.Service.Desired = rng.IntN(31)
		s.in.Service.Running = s.in.Service.Desired
		s.onPlan = checkSafety
		for range 4000 {
			s.step()
		}
		if s.steps-s.lastChange < 600 {
			t.Fatalf("seed %d (plant %v, load %v, target %v): desired still changing at step %d (%d)", seed, plant, load, target, s.lastChange, s.in.Service.Desired)
		}
		if !plant {
			continue
		}
		clamp := func(n int) int { return min(max(n, s.in.Target.Min), s.in.Target.Max) }
		lo := clamp(int(math.Ceil(load / target)))
		hi := clamp(max(int(math.Ceil(load/target)), int(math.Floor(load/(LowAlarmRatio*target)))))
		if d := s.in.Service.Desired; d < lo || d > hi {
			t.Fatalf("seed %d (load %v, target %v): settled at %d, want %d..%d", seed, load, target, d, lo, hi)
		}
	}
}

// BenchmarkEvaluate1000Targets evaluates 1,000 scalable targets with two
// target-tracking policies each (2,000 policies, 4,000 alarms), every
// alarm evaluated this round, a quarter of them in ALARM.
func BenchmarkEvaluate1000Targets(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := make([]Input, 1000)
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for i := range inputs {
		in := Input{Now: now, Target: Target{Min: 1, Max: 50}, Service: Service{Desired: 10, Running: 10, Protected: rng.IntN(3)},
			Alarms: map[string]AlarmSignal{}}
		for j := range 2 {
			name := fmt.Sprintf("t%d-p%d", i, j)
			in.Policies = append(in.Policies, Policy{Name: name, Type: TargetTracking, TargetValue: 50,
				HighAlarm: name + "-high", LowAlarm: name + "-low"})
			for _, a := range []string{name + "-high", name + "-low"} {
				st := StateOK
				if rng.IntN(4) == 0 {
					st = StateAlarm
				}
				in.Alarms[a] = AlarmSignal{State: st, Evaluated: true, Values: []float64{rng.Float64() * 100, 50, 50}}
			}
		}
		inputs[i] = in
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := range inputs {
			_ = Evaluate(inputs[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/round")
}
