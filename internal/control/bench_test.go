package control

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

// BenchmarkControllerScaleInToZero measures one whole controller pass for
// a 10,000-task service (1,000 protected, 50 instances over 3 AZs) right
// after desiredCount dropped to 0: building the reconciler's input from
// the state, the pure reconcile, and staging the plan (9,000 stops and
// the events). The durable commit of the resulting writes is not
// included: the pass runs in an Update that then fails, so its writes are
// undone. The "pass-ns/op" metric is the pass alone; ns/op adds the undo.
// BenchmarkReconcileScaleInToZero in internal/scheduler measures the pure
// reconcile alone.
func BenchmarkControllerScaleInToZero(b *testing.B) {
	backend, err := bolt.Open(filepath.Join(b.TempDir(), "h.db"), bolt.Options{NoFsync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := openEngine(b, backend, clock.NewFake(now))
	part := testPart
	ctx := context.Background()
	var sv *domain.Service
	err = st.Update(ctx, func(tx *state.Tx) error {
		c := &domain.Cluster{ClusterARN: part.ClusterARN("default"), ClusterName: "default", Status: domain.Active}
		Clusters.Put(tx, c)
		td := &domain.TaskDefinition{TaskDefinitionARN: part.TaskDefinitionARN("web", 1), Family: "web", Revision: 1, Status: domain.Active,
			ContainerDefinitions: []domain.ContainerDefinition{{Name: "app", Image: "app", Command: []string{"sleep", "1"}}}}
		TaskDefinitions.Put(tx, td)
		var insts []*domain.ContainerInstance
		for i := range 50 {
			az := string(rune('a' + i%3))
			ci := &domain.ContainerInstance{ContainerInstanceARN: part.ContainerInstanceARN("default", fmt.Sprintf("i%02d", i)), Status: domain.Active, AgentConnected: true,
				Attributes: []domain.Attribute{{Name: "availability-zone", Value: &az}},
				Internal:   &domain.InstanceInternal{ID: fmt.Sprintf("i%02d", i), ClusterName: "default"}}
			Instances.Put(tx, ci)
			insts = append(insts, ci)
		}
		sv = &domain.Service{ServiceARN: part.ServiceARN("default", "web"), ServiceName: "web", ClusterARN: c.ClusterARN, Status: domain.Active,
			DesiredCount: 0, TaskDefinition: td.TaskDefinitionARN,
			Deployments: []domain.Deployment{{ID: "ecs-svc/1000000000000000001", Status: domain.Primary, TaskDefinition: td.TaskDefinitionARN, RolloutState: domain.RolloutCompleted}},
			Internal:    &domain.ServiceInternal{ClusterName: "default"}}
		Services.Put(tx, sv)
		for i := range 10000 {
			t := newTask(part, "default", c, td, insts[i%50], now.Add(time.Duration(i)*time.Millisecond))
			t.LastStatus = domain.StatusRunning
			t.StartedBy = sv.Deployments[0].ID
			t.Group = "service:web"
			t.Internal.ServiceName = "web"
			putTask(tx, t)
			if i%10 == 0 {
				Protections.Put(tx, &domain.Protection{Cluster: "default", TaskID: t.Internal.ID, Service: "web",
					Until: now.Add(time.Duration(1+i%120) * time.Minute)})
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ctl := NewController(st, part, nil)
	undo := errors.New("undo")
	b.ReportAllocs()
	b.ResetTimer()
	var stops int
	var pass time.Duration
	for range b.N {
		err := st.Update(ctx, func(tx *state.Tx) error {
			t0 := time.Now()
			in := buildInput(tx, sv)
			plan := scheduler.Reconcile(in)
			if err := ctl.applyPlan(tx, sv, plan); err != nil {
				return err
			}
			pass += time.Since(t0)
			stops = len(plan.Stop)
			return undo
		})
		if !errors.Is(err, undo) {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(pass.Nanoseconds())/float64(b.N), "pass-ns/op")
	if stops != 9000 {
		b.Fatalf("plan stopped %d tasks, want 9000", stops)
	}
}

// BenchmarkUpdateTaskProtection measures UpdateTaskProtection through the
// state engine and a durable bolt store (fsync on), without the HTTP front
// door: 64 goroutines, each alternately protecting and releasing its own
// 10 tasks of one 640-task service. holdfast bench protect measures the
// same calls through the real HTTP server.
func BenchmarkUpdateTaskProtection(b *testing.B) {
	backend, err := bolt.Open(filepath.Join(b.TempDir(), "h.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	st := openEngine(b, backend, clock.Real{})
	s := New(st, testPart, nil)
	ctx := context.Background()
	const clients, perCall = 64, 10
	var ids []string
	err = st.Update(ctx, func(tx *state.Tx) error {
		c := &domain.Cluster{ClusterARN: testPart.ClusterARN("default"), ClusterName: "default", Status: domain.Active}
		Clusters.Put(tx, c)
		Services.Put(tx, &domain.Service{ServiceName: "web", Status: domain.Active, DesiredCount: clients * perCall,
			Internal: &domain.ServiceInternal{ClusterName: "default"}})
		for range clients * perCall {
			id := newID()
			ids = append(ids, id)
			putTask(tx, &domain.Task{TaskARN: testPart.TaskARN("default", id), LastStatus: domain.StatusRunning, DesiredStatus: domain.StatusRunning,
				Internal: &domain.TaskInternal{ID: id, ClusterName: "default", ServiceName: "web"}})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := int(next.Add(1)-1) % clients
		mine := ids[c*perCall : (c+1)*perCall]
		minutes := int64(60)
		for i := 0; pb.Next(); i++ {
			on := i%2 == 0
			out, err := s.UpdateTaskProtection(ctx, UpdateTaskProtectionInput{Cluster: "default", Tasks: mine, ProtectionEnabled: &on, ExpiresInMinutes: &minutes})
			if err != nil || len(out.Failures) != 0 {
				b.Errorf("UpdateTaskProtection: %v %+v", err, out)
				return
			}
		}
	})
}
