package control

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/store/bolt"
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
			defer bb.Close()
			gate := &revGatedBackend{Backend: bb, pass: true}
			clk := clock.NewFake(time.Unix(1_700_000_000, 0))
			s, err := Open(gate, clk, domain.Partition{Region: "us-east-1", AccountID: "000000000000"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); err != nil {
				t.Fatal(err)
			}
			reg, err := s.RegisterContainerInstance(ctx, RegisterContainerInstanceInput{Cluster: "c"})
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
			// checkHeartbeats takes): one batch stuck in its commit, one
			// prepared behind it, and the loop blocked handing over a third.
			release := make(chan struct{})
			gate.entered, gate.release = make(chan struct{}), release
			held := make(chan error, 3)
			hold := func() {
				go func() {
					held <- s.Update(ctx, func(tx *Tx) error {
						tx.PutCluster(tx.Cluster("c"))
						return nil
					})
				}()
			}
			hold()
			<-gate.entered
			for range 2 {
				hold()
				time.Sleep(10 * time.Millisecond)
				for len(s.reqs) != 0 {
					time.Sleep(time.Millisecond)
				}
			}
			time.Sleep(10 * time.Millisecond)
			if back == "register" {
				// The restarted agent registers again; its Update is
				// queued first, and it touches lastSeen only once that
				// Update has committed.
				go func() {
					_, _ = s.RegisterContainerInstance(ctx, RegisterContainerInstanceInput{Cluster: "c", ContainerInstanceARN: instARN})
				}()
				for len(s.reqs) != 1 {
					time.Sleep(time.Millisecond)
				}
			}
			hb := make(chan struct{})
			go func() { s.checkHeartbeats(30 * time.Second); close(hb) }()
			if back == "register" {
				for len(s.reqs) != 2 {
					time.Sleep(time.Millisecond)
				}
			} else {
				for len(s.reqs) != 1 {
					time.Sleep(time.Millisecond)
				}
			}

			// The agent is back before that Update runs.
			switch back {
			case "poll":
				s.mu.RLock()
				rev := s.rev
				s.mu.RUnlock()
				go func() {
					_, _ = s.Poll(ctx, agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instARN, KnownRevision: rev, WaitSeconds: 30})
				}()
				for {
					s.mu.RLock()
					n := s.polling[id]
					s.mu.RUnlock()
					if n == 1 {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			close(release)
			for range 3 {
				if err := <-held; err != nil {
					t.Fatal(err)
				}
			}
			<-hb
			if err := s.Update(ctx, func(*Tx) error { return nil }); err != nil { // barrier
				t.Fatal(err)
			}
			var ci *domain.ContainerInstance
			var task *domain.Task
			s.read(func(st *state) { ci, task = st.instances["c"][id], st.tasks["c"][taskID] })
			if !ci.AgentConnected {
				t.Fatal("instance marked disconnected although its agent is back")
			}
			if task.LastStatus == domain.StatusStopped {
				t.Fatalf("task stopped (%s) although its agent is back", task.StopCode)
			}
		})
	}
}
