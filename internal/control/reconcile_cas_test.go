package control

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

// The controller plans on a read view and applies the plan in an Update
// only if the state is still the one it planned from. A change that lands
// in between (here: the desired count drops from 2 to 1) makes it plan
// again inside the Update, so the plan applied is the one for the new
// state.
func TestReconcilePlansAgainWhenTheStateMoved(t *testing.T) {
	b, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	gate := &revGatedBackend{Backend: b, pass: true}
	st := openEngine(t, gate, clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	s := New(st, testPart, nil)
	ctx := context.Background()
	dep := "ecs-svc/1000000000000000001"
	var ids []string
	err = st.Update(ctx, func(tx *state.Tx) error {
		Clusters.Put(tx, &domain.Cluster{ClusterARN: testPart.ClusterARN("c"), ClusterName: "c", Status: domain.Active})
		Instances.Put(tx, &domain.ContainerInstance{Status: domain.Active, AgentConnected: true, Attributes: []domain.Attribute{},
			Internal: &domain.InstanceInternal{ID: "i1", ClusterName: "c"}})
		Services.Put(tx, &domain.Service{ServiceName: "web", Status: domain.Active, DesiredCount: 2,
			Deployments: []domain.Deployment{{ID: dep, Status: domain.Primary, RolloutState: domain.RolloutCompleted}},
			Internal:    &domain.ServiceInternal{ClusterName: "c"}})
		for range 2 {
			id := newID()
			ids = append(ids, id)
			putTask(tx, &domain.Task{TaskARN: testPart.TaskARN("c", id), LastStatus: domain.StatusRunning, DesiredStatus: domain.StatusRunning,
				StartedBy: dep, HealthStatus: domain.Healthy,
				Internal: &domain.TaskInternal{ID: id, ClusterName: "c", ServiceName: "web", InstanceID: "i1"}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := NewController(st, testPart, nil)
	var plans []int // stops of each reconcile
	c.Reconciled = func(_ string, p scheduler.Plan) { plans = append(plans, len(p.Stop)) }

	// Hold the apply loop without holding the state's lock (readers go
	// on): one batch stuck in its commit, one prepared behind it, and the
	// loop blocked handing over a third. The scale-in is queued first (not
	// applied yet), then the reconcile plans from a view without it and
	// queues its Update behind it.
	rel := make(chan struct{})
	release := sync.OnceFunc(func() { close(rel) })
	defer release()
	gate.entered, gate.release = make(chan struct{}), rel
	var wg sync.WaitGroup
	defer wg.Wait()
	touch := func() {
		ran := make(chan struct{})
		wg.Go(func() {
			_ = st.Update(ctx, func(tx *state.Tx) error {
				Clusters.Put(tx, Clusters.Get(tx, "c"))
				close(ran)
				return nil
			})
		})
		<-ran
	}
	touch()
	<-gate.entered
	touch()
	touch()
	wg.Go(func() {
		one := 1
		if _, err := s.UpdateService(ctx, UpdateServiceInput{Cluster: "c", Service: "web", DesiredCount: &one}); err != nil {
			t.Error(err)
		}
	})
	waitPending(t, st, 1)
	wg.Go(func() { c.reconcile(ctx, "c/web") })
	waitPending(t, st, 2)
	release()
	wg.Wait()

	stopped := 0
	st.View(func(r *state.View) {
		for _, id := range ids {
			if getTask(r, "c", id).DesiredStatus == domain.StatusStopped {
				stopped++
			}
		}
	})
	if stopped != 1 || len(plans) != 1 || plans[0] != 1 {
		t.Fatalf("after the scale-in to 1: %d tasks stopping, plans %v; want 1 stop (planned again inside the Update)", stopped, plans)
	}
}
