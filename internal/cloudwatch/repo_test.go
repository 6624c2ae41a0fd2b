package cloudwatch

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

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

// TestAlarmRepositories runs one suite over the in-memory repository and
// the state engine's on a real store, which keeps alarms across a restart.
func TestAlarmRepositories(t *testing.T) {
	t.Run("memory", func(t *testing.T) { alarmRepoSuite(t, NewMemAlarms(), nil) })
	t.Run("state", func(t *testing.T) {
		dir := t.TempDir()
		e, closeFn := openState(t, dir)
		alarmRepoSuite(t, NewStateAlarms(e), func() AlarmRepository {
			closeFn()
			e2, close2 := openState(t, dir)
			t.Cleanup(close2)
			return NewStateAlarms(e2)
		})
	})
}

func alarmRepoSuite(t *testing.T, r AlarmRepository, reopen func() AlarmRepository) {
	ctx := context.Background()
	a := &Alarm{Managed: true, Tags: []Tag{{Key: ptr("k"), Value: ptr("v")}}, MetricAlarm: MetricAlarm{
		AlarmName: ptr("TargetTracking-service/c/s-AlarmHigh-1"), Threshold: ptr(5.0), StateValue: ptr("OK"),
		AlarmActions: []string{"arn:p"}, Dimensions: []Dimension{{Name: ptr("ClusterName"), Value: ptr("c")}},
		Metrics: []MetricDataQuery{{Id: ptr("e1"), Expression: ptr("m1/m2")}},
	}}
	if err := r.PutAlarm(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.AlarmActions[0] = "changed" // the repository kept its own copy
	if err := r.PutAlarm(ctx, &Alarm{MetricAlarm: MetricAlarm{AlarmName: ptr("b")}}); err != nil {
		t.Fatal(err)
	}
	got, _ := r.GetAlarm(ctx, "TargetTracking-service/c/s-AlarmHigh-1")
	got.Tags[0].Value = ptr("x")
	check := func(r AlarmRepository) {
		t.Helper()
		g, err := r.GetAlarm(ctx, "TargetTracking-service/c/s-AlarmHigh-1")
		if err != nil || g == nil || !g.Managed || *g.Threshold != 5 || g.AlarmActions[0] != "arn:p" || *g.Tags[0].Value != "v" ||
			*g.Dimensions[0].Value != "c" || *g.Metrics[0].Expression != "m1/m2" {
			t.Fatalf("alarm: %+v %v", g, err)
		}
		all, _ := r.ListAlarms(ctx)
		if n, _ := r.CountAlarms(ctx); len(all) != 2 || n != 2 || all[0].Name() != "TargetTracking-service/c/s-AlarmHigh-1" {
			t.Fatalf("list: %d (count %d)", len(all), n)
		}
		if g, _ := r.GetAlarm(ctx, "none"); g != nil {
			t.Fatal("unknown alarm found")
		}
	}
	check(r)
	if reopen != nil {
		r = reopen()
		check(r)
	}
	if err := r.DeleteAlarms(ctx, []string{"b", "none"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.CountAlarms(ctx); n != 1 {
		t.Fatalf("%d alarms after the delete", n)
	}
}
