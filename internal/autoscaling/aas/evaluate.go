package aas

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/cloudwatch"
)

// Evaluate is the loop body of Application Auto Scaling: after the alarm
// loop evaluated the alarms (evals are its fresh evaluations), it runs the
// decision of package autoscaling for every scalable target and applies the
// plan: new bounds and decision memory go to the repository, a new desired
// count to ECS, activities to the repository with AWS's texts (a failed
// UpdateService turns the activity Failed). It returns the first error met
// but goes on with the other targets.
func (s *Service) Evaluate(ctx context.Context, evals []cloudwatch.Evaluation) error {
	alarms, err := s.alarms.Alarms(ctx)
	if err != nil {
		return err
	}
	fresh := make(map[string]*cloudwatch.Evaluation, len(evals))
	for i := range evals {
		fresh[evals[i].Alarm.Name()] = &evals[i]
	}
	signals := make(map[string]autoscaling.AlarmSignal, len(alarms))
	byAction := map[string][]string{} // policy ARN -> alarm names
	for _, a := range alarms {
		sig := autoscaling.AlarmSignal{State: a.State()}
		if a.Threshold != nil {
			sig.Threshold = *a.Threshold
		}
		// Actions disabled: CloudWatch invokes nothing.
		if e := fresh[a.Name()]; e != nil && (a.ActionsEnabled == nil || *a.ActionsEnabled) {
			sig.Evaluated = true
			sig.State = e.Alarm.State()
			for _, d := range e.Datapoints {
				sig.Values = append(sig.Values, d.Value)
			}
		}
		signals[a.Name()] = sig
		for _, act := range a.AlarmActions {
			byAction[act] = append(byAction[act], a.Name())
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	targets, err := s.repo.ListTargets(ctx)
	if err != nil {
		return err
	}
	var first error
	for _, t := range targets {
		if err := s.evaluateTarget(ctx, t, signals, byAction); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func seconds(p *int32) *time.Duration {
	if p == nil {
		return nil
	}
	d := time.Duration(*p) * time.Second
	return &d
}

// input builds the decision's view of a target's policies and actions.
func input(t *TargetRecord, byAction map[string][]string, log func(string, ...any)) ([]autoscaling.Policy, []autoscaling.ScheduledAction) {
	var policies []autoscaling.Policy
	for _, p := range t.Policies {
		ap := autoscaling.Policy{Name: p.Name, ARN: p.ARN, Type: p.Type}
		switch {
		case p.TargetTracking != nil:
			c := p.TargetTracking
			ap.TargetValue = *c.TargetValue
			ap.DisableScaleIn = c.DisableScaleIn != nil && *c.DisableScaleIn
			ap.ScaleOutCooldown, ap.ScaleInCooldown = seconds(c.ScaleOutCooldown), seconds(c.ScaleInCooldown)
			for _, a := range p.Alarms {
				switch {
				case strings.Contains(a.AlarmName, "-AlarmHigh-"):
					ap.HighAlarm = a.AlarmName
				case strings.Contains(a.AlarmName, "-AlarmLow-"):
					ap.LowAlarm = a.AlarmName
				}
			}
		case p.Step != nil:
			c := p.Step
			ap.AdjustmentType = *c.AdjustmentType
			ap.Cooldown = seconds(c.Cooldown)
			if c.MinAdjustmentMagnitude != nil {
				ap.MinAdjustmentMagnitude = int(*c.MinAdjustmentMagnitude)
			}
			if c.MetricAggregationType != nil {
				ap.Aggregation = *c.MetricAggregationType
			}
			for _, st := range c.StepAdjustments {
				ap.Steps = append(ap.Steps, autoscaling.Step{Lower: st.MetricIntervalLowerBound, Upper: st.MetricIntervalUpperBound, Adjustment: int(*st.ScalingAdjustment)})
			}
			ap.Alarms = byAction[p.ARN]
		}
		policies = append(policies, ap)
	}
	var scheduled []autoscaling.ScheduledAction
	for _, a := range t.Scheduled {
		sched, err := autoscaling.ParseSchedule(a.Schedule, a.Timezone)
		if err != nil {
			log("scheduled action with an invalid schedule skipped", "action", a.Name, "err", err)
			continue
		}
		sa := autoscaling.ScheduledAction{Name: a.Name, Schedule: sched, Created: a.Created}
		if a.Start != nil {
			sa.Start = *a.Start
		}
		if a.End != nil {
			sa.End = *a.End
		}
		if a.Min != nil {
			v := int(*a.Min)
			sa.Min = &v
		}
		if a.Max != nil {
			v := int(*a.Max)
			sa.Max = &v
		}
		scheduled = append(scheduled, sa)
	}
	return policies, scheduled
}

func (s *Service) evaluateTarget(ctx context.Context, t *TargetRecord, signals map[string]autoscaling.AlarmSignal, byAction map[string][]string) error {
	parts := strings.Split(t.Key.ResourceID, "/")
	if len(parts) != 3 {
		return nil
	}
	cluster, service := parts[1], parts[2]
	st, ok, err := s.ecs.ServiceState(ctx, cluster, service)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.Key.ResourceID, err)
	}
	if !ok {
		return nil // the service is gone or draining: nothing to scale
	}
	policies, scheduled := input(t, byAction, func(msg string, args ...any) { s.log.Warn(msg, append(args, "target", t.Key.ResourceID)...) })
	now := s.now()
	plan := autoscaling.Evaluate(autoscaling.Input{
		Now: now,
		Target: autoscaling.Target{ResourceID: t.Key.ResourceID, Min: int(t.Min), Max: int(t.Max),
			DynamicInSuspended: t.Suspended.In, DynamicOutSuspended: t.Suspended.Out, ScheduledSuspended: t.Suspended.Scheduled},
		Service:   st,
		Policies:  policies,
		Alarms:    signals,
		Scheduled: scheduled,
		Memory:    t.Memory,
	})

	var setErr error
	if plan.SetDesired != nil {
		setErr = s.ecs.SetDesiredCount(ctx, cluster, service, *plan.SetDesired)
		if setErr != nil {
			s.log.Warn("autoscaling could not set the desired count", "target", t.Key.ResourceID, "desired", *plan.SetDesired, "err", setErr)
		}
	}
	changed := false
	if plan.SetMin != nil && int32(*plan.SetMin) != t.Min {
		t.Min, changed = int32(*plan.SetMin), true
	}
	if plan.SetMax != nil && int32(*plan.SetMax) != t.Max {
		t.Max, changed = int32(*plan.SetMax), true
	}
	mem := plan.Memory
	if setErr != nil {
		// The desired count did not change: forget the cooldown it started.
		mem = undoScale(mem, t.Memory, now)
	}
	if !memoryEqual(mem, t.Memory) {
		t.Memory, changed = mem, true
	}
	if changed {
		if err := s.repo.PutTarget(ctx, t); err != nil {
			return err
		}
	}
	if len(plan.Activities) == 0 {
		return nil
	}
	acts := make([]ActivityRecord, 0, len(plan.Activities))
	for _, a := range plan.Activities {
		r := ActivityRecord{Scaled: a.Scaled, ScalingActivity: ScalingActivity{
			ActivityId: newUUID(), ServiceNamespace: t.Key.Namespace, ResourceId: t.Key.ResourceID, ScalableDimension: t.Key.Dimension,
			Description: a.Description, Cause: a.Cause, StartTime: Timestamp{Time: a.Start.Truncate(time.Millisecond)}, StatusCode: a.StatusCode,
		}}
		if !a.End.IsZero() {
			r.EndTime = &Timestamp{Time: a.End.Truncate(time.Millisecond)}
		}
		if a.StatusMessage != "" {
			msg := a.StatusMessage
			r.StatusMessage = &msg
		}
		if a.Details != "" {
			d := a.Details
			r.Details = &d
		}
		for _, n := range a.NotScaledReasons {
			r.NotScaledReasons = append(r.NotScaledReasons, NotScaledReason{Code: n.Code, MaxCapacity: i32(n.MaxCapacity),
				MinCapacity: i32(n.MinCapacity), CurrentCapacity: i32(n.CurrentCapacity)})
		}
		if setErr != nil && a.Desired >= 0 {
			r.StatusCode = autoscaling.StatusFailed
			msg := fmt.Sprintf("Failed to set desired count to %d. Reason: %v", a.Desired, setErr)
			r.StatusMessage = &msg
		}
		acts = append(acts, r)
	}
	return s.repo.AddActivities(ctx, t.Key, acts)
}

func i32(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

func memoryEqual(a, b autoscaling.Memory) bool {
	if !a.ScaleOutAt.Equal(b.ScaleOutAt) || a.ScaleOutBase != b.ScaleOutBase || a.ScaleOutDesired != b.ScaleOutDesired ||
		a.ScaleOutCooldown != b.ScaleOutCooldown || !a.ScaleInAt.Equal(b.ScaleInAt) || a.ScaleInCooldown != b.ScaleInCooldown ||
		a.LastNotScaled != b.LastNotScaled || len(a.Scheduled) != len(b.Scheduled) {
		return false
	}
	for k, v := range a.Scheduled {
		if w, ok := b.Scheduled[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}

// undoScale keeps new's scheduled-action memory but drops a scale-out or
// scale-in it recorded at now, since the desired count was not set.
func undoScale(newMem, old autoscaling.Memory, now time.Time) autoscaling.Memory {
	m := newMem
	if m.ScaleOutAt.Equal(now) {
		m.ScaleOutAt, m.ScaleOutBase, m.ScaleOutDesired, m.ScaleOutCooldown = old.ScaleOutAt, old.ScaleOutBase, old.ScaleOutDesired, old.ScaleOutCooldown
	}
	if m.ScaleInAt.Equal(now) {
		m.ScaleInAt, m.ScaleInCooldown = old.ScaleInAt, old.ScaleInCooldown
	}
	return m
}
