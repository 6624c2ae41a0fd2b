package aas

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/autoscaling"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

// openState opens a state engine on a bolt file in dir; close it with the
// returned function.
func openState(t *testing.T, dir string) (*state.Engine, func()) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dir, "holdfast.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := state.Open(context.Background(), b, state.Options{})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	return e, func() { e.Close(); b.Close() }
}

// TestRepositories runs one suite over every Repository: the in-memory one
// and the state engine's on a real store on disk, which must also keep
// everything across a restart.
func TestRepositories(t *testing.T) {
	t.Run("memory", func(t *testing.T) { repoSuite(t, NewMemRepository(), nil) })
	t.Run("state", func(t *testing.T) {
		dir := t.TempDir()
		e, closeFn := openState(t, dir)
		repoSuite(t, NewStateRepository(e), func() Repository {
			closeFn()
			e2, close2 := openState(t, dir)
			t.Cleanup(close2)
			return NewStateRepository(e2)
		})
	})
}

func repoSuite(t *testing.T, r Repository, reopen func() Repository) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	k := TargetKey{"ecs", "service/prod/web", "ecs:service:DesiredCount"}
	k2 := TargetKey{"ecs", "service/prod/api", "ecs:service:DesiredCount"}
	ten := 10.0
	tgt := &TargetRecord{Key: k, ARN: "arn:aws:application-autoscaling:us-east-1:1:scalable-target/0eabc", Min: 1, Max: 5, Created: now,
		Tags: map[string]string{"team": "core"}, Suspended: Suspension{In: true},
		Policies: []PolicyRecord{{Name: "cpu", ARN: "arn:p", Type: autoscaling.TargetTracking, Created: now,
			TargetTracking: &TargetTrackingScalingPolicyConfiguration{TargetValue: &ten}, Alarms: []Alarm{{AlarmName: "a", AlarmARN: "arn:a"}}}},
		Scheduled: []ScheduledRecord{{Name: "s", Schedule: "rate(1 hour)", Created: now}},
		Memory:    autoscaling.Memory{ScaleOutAt: now, ScaleOutBase: 2, Scheduled: map[string]time.Time{"s": now}},
	}
	if err := r.PutTarget(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	// What the repository returns is a copy: changing it changes nothing.
	got, _ := r.GetTarget(ctx, k)
	got.Tags["team"] = "other"
	got.Policies[0].Name = "changed"
	got.Memory.Scheduled["s"] = time.Time{}
	if again, _ := r.GetTarget(ctx, k); again.Tags["team"] != "core" || again.Policies[0].Name != "cpu" || !again.Memory.Scheduled["s"].Equal(now) {
		t.Fatalf("a returned record aliases the stored one: %+v", again)
	}
	if err := r.PutTarget(ctx, &TargetRecord{Key: k2, ARN: "arn:2", Min: 0, Max: 1, Created: now}); err != nil {
		t.Fatal(err)
	}
	for i := range MaxActivities + 5 {
		at := now.Add(time.Duration(i) * time.Second)
		if err := r.AddActivities(ctx, k, []ActivityRecord{
			{Scaled: true, ScalingActivity: ScalingActivity{ActivityId: "a", ServiceNamespace: k.Namespace, ResourceId: k.ResourceID, ScalableDimension: k.Dimension,
				Description: "first", StartTime: Timestamp{Time: at}}},
			{Scaled: true, ScalingActivity: ScalingActivity{ActivityId: "b", ServiceNamespace: k.Namespace, ResourceId: k.ResourceID, ScalableDimension: k.Dimension,
				Description: "second", StartTime: Timestamp{Time: at}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.AddActivities(ctx, k2, []ActivityRecord{{ScalingActivity: ScalingActivity{ActivityId: "c", ServiceNamespace: k2.Namespace,
		ResourceId: k2.ResourceID, ScalableDimension: k2.Dimension, Description: "other", StartTime: Timestamp{Time: now}}}}); err != nil {
		t.Fatal(err)
	}

	check := func(r Repository) {
		t.Helper()
		got, err := r.GetTarget(ctx, k)
		if err != nil || got == nil || got.Max != 5 || !got.Suspended.In || got.Policies[0].TargetTracking == nil || *got.Policies[0].TargetTracking.TargetValue != 10 ||
			got.Policies[0].Alarms[0].AlarmName != "a" || got.Memory.ScaleOutBase != 2 || !got.Created.Equal(now) || got.Tags["team"] != "core" {
			t.Fatalf("target: %+v %v", got, err)
		}
		all, _ := r.ListTargets(ctx)
		if n, _ := r.CountTargets(ctx); len(all) != 2 || n != 2 || all[0].Key != k2 {
			t.Fatalf("targets: %d (count %d)", len(all), n)
		}
		acts, _ := r.ListActivities(ctx, &k)
		if len(acts) != MaxActivities || acts[0].Description != "second" || acts[1].Description != "first" ||
			!acts[0].StartTime.Equal(now.Add(time.Duration(MaxActivities+4)*time.Second)) {
			t.Fatalf("activities: %d, newest %+v %+v", len(acts), acts[0], acts[1])
		}
		every, _ := r.ListActivities(ctx, nil)
		if len(every) != MaxActivities+1 {
			t.Fatalf("all activities: %d", len(every))
		}
	}
	check(r)
	if reopen != nil {
		r = reopen()
		check(r)
	}
	if err := r.DeleteTarget(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.GetTarget(ctx, k); got != nil {
		t.Fatal("deleted target still there")
	}
	if acts, _ := r.ListActivities(ctx, &k); len(acts) != 0 {
		t.Fatalf("%d activities of a deleted target", len(acts))
	}
	if acts, _ := r.ListActivities(ctx, &k2); len(acts) != 1 {
		t.Fatalf("the other target's activities: %d", len(acts))
	}
}
