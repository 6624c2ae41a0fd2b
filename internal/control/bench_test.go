package control

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

// BenchmarkControllerScaleInToZero measures one whole controller pass for
// a 10,000-task service (1,000 protected, 50 instances over 3 AZs) right
// after desiredCount dropped to 0: building the reconciler's input from
// the state, the pure reconcile, and staging the plan (9,000 stops and
// the events). The durable commit of the resulting writes is not
// included; BenchmarkReconcileScaleInToZero in internal/scheduler measures
// the pure reconcile alone.
func BenchmarkControllerScaleInToZero(b *testing.B) {
	backend, err := bolt.Open(filepath.Join(b.TempDir(), "h.db"), bolt.Options{NoFsync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(backend, clock.NewFake(now), domain.Partition{Region: "us-east-1", AccountID: "000000000000"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st := s.st
	c := &domain.Cluster{ClusterARN: s.part.ClusterARN("default"), ClusterName: "default", Status: domain.Active}
	st.clusters["default"] = c
	td := &domain.TaskDefinition{TaskDefinitionARN: s.part.TaskDefinitionARN("web", 1), Family: "web", Revision: 1, Status: domain.Active,
		ContainerDefinitions: []domain.ContainerDefinition{{Name: "app", Image: "app", Command: []string{"sleep", "1"}}}}
	st.putTaskDef(td)
	var insts []*domain.ContainerInstance
	for i := range 50 {
		az := string(rune('a' + i%3))
		ci := &domain.ContainerInstance{ContainerInstanceARN: s.part.ContainerInstanceARN("default", fmt.Sprintf("i%02d", i)), Status: domain.Active, AgentConnected: true,
			Attributes: []domain.Attribute{{Name: "availability-zone", Value: &az}},
			Internal:   &domain.InstanceInternal{ID: fmt.Sprintf("i%02d", i), ClusterName: "default"}}
		st.putInstance(ci)
		insts = append(insts, ci)
	}
	sv := &domain.Service{ServiceARN: s.part.ServiceARN("default", "web"), ServiceName: "web", ClusterARN: c.ClusterARN, Status: domain.Active,
		DesiredCount: 0, TaskDefinition: td.TaskDefinitionARN,
		Deployments: []domain.Deployment{{ID: "ecs-svc/1000000000000000001", Status: domain.Primary, TaskDefinition: td.TaskDefinitionARN, RolloutState: domain.RolloutCompleted}},
		Internal:    &domain.ServiceInternal{ClusterName: "default"}}
	st.putService(sv)
	for i := range 10000 {
		t := s.newTask("default", c, td, insts[i%50], now.Add(time.Duration(i)*time.Millisecond))
		t.LastStatus = domain.StatusRunning
		t.StartedBy = sv.Deployments[0].ID
		t.Group = "service:web"
		t.Internal.ServiceName = "web"
		if i%10 == 0 {
			t.Internal.ProtectedUntil = now.Add(time.Duration(1+i%120) * time.Minute)
		}
		st.putTask(t)
	}
	ctl := NewController(s)
	b.ReportAllocs()
	b.ResetTimer()
	var stops int
	for range b.N {
		tx := &Tx{st: st, now: now}
		in := buildInput(tx, sv)
		plan := scheduler.Reconcile(in)
		if err := ctl.applyPlan(tx, sv, plan); err != nil {
			b.Fatal(err)
		}
		stops = len(plan.Stop)
	}
	b.StopTimer()
	if stops != 9000 {
		b.Fatalf("plan stopped %d tasks, want 9000", stops)
	}
}
