package control

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/testutil"
)

// checkHeartbeats picks the silent instances under the lock, then marks
// them disconnected (and stops their tasks) in a later Update. An agent that
// comes back in between (a poll opens, or it registers again after a
// restart) must not be declared lost by that stale decision: its tasks,
// protected ones included, would be stopped under a live agent.
func TestReviewHeartbeatLostDecisionIsRechecked(t *testing.T) {
	for _, back := range []string{"poll", "register"} {
		t.Run(back, func(t *testing.T) {
			bb, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoFsync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bb.Close() })
			gate := &revGatedBackend{Backend: bb, pass: true}
			clk := clock.NewFake(time.Unix(1_700_000_000, 0))
			st := openEngine(t, gate, clk)
			s := New(st, testPart, nil)
			a := NewAgents(st, testPart, nil)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			wg.Go(func() { a.Run(ctx) })
			if _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); err != nil {
				t.Fatal(err)
			}
			reg, err := a.RegisterContainerInstance(ctx, RegisterContainerInstanceInput{Cluster: "c"})
			if err != nil {
				t.Fatal(err)
			}
			instARN := reg.ContainerInstance.ContainerInstanceARN
			id, _, _ := domain.ResourceName(instARN, "container-instance")
			if _, err := s.RegisterTaskDefinition(ctx, RegisterTaskDefinitionInput{Family: "f",
				ContainerDefinitions: []domain.ContainerDefinition{{Name: "app", Image: "x", Command: []string{"sleep", "1"}}}}); err != nil {
				t.Fatal(err)
			}
			run, err := s.RunTask(ctx, RunTaskInput{Cluster: "c", TaskDefinition: "f"})
			if err != nil {
				t.Fatal(err)
			}
			taskID := run.Tasks[0].TaskARN[len(run.Tasks[0].TaskARN)-32:]

			// The agent has been silent for longer than the timeout.
			clk.Advance(31 * time.Second)

			// Hold the apply loop (without holding the state lock, which
			// checkHeartbeats reads under): one batch stuck in its commit,
			// one prepared behind it, and the loop blocked handing over a
			// third.
			release := make(chan struct{})
			released := sync.OnceFunc(func() { close(release) })
			defer released() // a failure must not leave the loop stuck
			gate.entered, gate.release = make(chan struct{}), release
			held := make(chan error, 3)
			// hold queues an Update that writes, and returns once it has
			// been prepared (its function ran).
			hold := func() {
				ran := make(chan struct{})
				go func() {
					held <- st.Update(ctx, func(tx *state.Tx) error {
						Clusters.Put(tx, Clusters.Get(tx, "c"))
						close(ran)
						return nil
					})
				}()
				<-ran
			}
			hold()
			<-gate.entered
			hold()
			hold()
			if back == "register" {
				// The restarted agent registers again; its Update is
				// queued first, and it touches lastSeen only once that
				// Update has committed.
				wg.Go(func() {
					_, _ = a.RegisterContainerInstance(ctx, RegisterContainerInstanceInput{Cluster: "c", ContainerInstanceARN: instARN})
				})
				waitPending(t, st, 1)
			}
			hb := make(chan struct{})
			go func() { a.checkHeartbeats(ctx, 30*time.Second); close(hb) }()
			if back == "register" {
				waitPending(t, st, 2)
			} else {
				waitPending(t, st, 1)
			}

			// The agent is back before that Update runs.
			switch back {
			case "poll":
				rev := st.Rev()
				wg.Go(func() {
					_, _ = a.Poll(ctx, agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instARN, KnownRevision: rev, WaitSeconds: 30})
				})
				testutil.EventuallyTrue(t, 10*time.Second, time.Millisecond, "the poll to open", func() bool {
					a.mu.Lock()
					defer a.mu.Unlock()
					return a.polling[id] == 1
				})
			}
			released()
			for range 3 {
				if err := <-held; err != nil {
					t.Fatal(err)
				}
			}
			<-hb
			if err := st.Update(ctx, func(*state.Tx) error { return nil }); err != nil { // barrier
				t.Fatal(err)
			}
			var ci *domain.ContainerInstance
			var task *domain.Task
			st.View(func(r *state.View) { ci, task = getInstance(r, "c", id), getTask(r, "c", taskID) })
			if !ci.AgentConnected {
				t.Fatal("instance marked disconnected although its agent is back")
			}
			if task.LastStatus == domain.StatusStopped {
				t.Fatalf("task stopped (%s) although its agent is back", task.StopCode)
			}
		})
	}
}
