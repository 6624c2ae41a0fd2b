package control

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/state"
)

// The cached count of live protections that DEPLOYMENT_BLOCKED compares
// with the desired count is always the count a fresh scan gives, whatever
// happens between calls: protections set, renewed, released and expiring,
// tasks stopped by the user and by the scheduler, the desired count moving.
func TestLiveCountCacheMatchesRecount(t *testing.T) {
	h := depStart(t, "a", "b")
	td := depTaskDef(t, h, "web", nil)
	depCreateService(t, h, "web", td, 8, nil)
	h.converge(16)
	rng := rand.New(rand.NewPCG(9, 9))
	check := func(step int, what string) {
		t.Helper()
		var got, want int
		err := h.s.st.Update(h.ctx, func(tx *state.Tx) error {
			want, _ = liveProtections(tx, depCluster, "web", tx.Now())
			got = h.s.liveCount(tx, depCluster, "web", tx.Now())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("step %d (%s): cached live count %d, a recount gives %d", step, what, got, want)
		}
	}
	for step := range 300 {
		tasks := h.tasks()
		pick := func() []string {
			var ids []string
			for _, tk := range tasks {
				if rng.IntN(3) == 0 && len(ids) < 10 {
					ids = append(ids, tk.TaskARN)
				}
			}
			if len(ids) == 0 && len(tasks) > 0 {
				ids = append(ids, tasks[rng.IntN(len(tasks))].TaskARN)
			}
			return ids
		}
		var what string
		switch op := rng.IntN(10); {
		case op < 4 && len(tasks) > 0:
			what = "protect"
			minutes := int64(1 + rng.IntN(5))
			on := true
			if _, err := h.s.UpdateTaskProtection(h.ctx, UpdateTaskProtectionInput{Cluster: depCluster, Tasks: pick(), ProtectionEnabled: &on, ExpiresInMinutes: &minutes}); err != nil {
				t.Fatal(err)
			}
		case op < 6 && len(tasks) > 0:
			what = "release"
			h.protect(false, pick()...)
		case op < 7:
			what = "advance"
			h.clk.Advance(time.Duration(rng.IntN(90)) * time.Second)
		case op < 8 && len(tasks) > 0:
			what = "stop"
			if _, err := h.s.StopTask(h.ctx, StopTaskInput{Cluster: depCluster, Task: tasks[rng.IntN(len(tasks))].TaskARN}); err != nil {
				t.Fatal(err)
			}
		case op < 9:
			what = "scale"
			n := 4 + rng.IntN(8)
			if _, err := h.s.UpdateService(h.ctx, UpdateServiceInput{Cluster: depCluster, Service: "web", DesiredCount: &n}); err != nil {
				t.Fatal(err)
			}
		default:
			what = "agents"
			h.settle()
			h.agentStep()
		}
		check(step, what)
	}
}
