package control

import (
	"testing"

	"github.com/holdfast/holdfast/internal/domain"
)

// A task's protection record lives exactly while its protection is set:
// written by UpdateTaskProtection, deleted when the task stops.
func TestProtectionRecordFollowsTask(t *testing.T) {
	h := depStart(t, "i1")
	td := depTaskDef(t, h, "web", nil)
	depCreateService(t, h, "web", td, 2, nil)
	h.converge(100)
	tasks := h.tasks()
	if len(tasks) != 2 {
		t.Fatalf("%d tasks, want 2", len(tasks))
	}
	prot, plain := tasks[0], tasks[1]
	h.protect(true, prot.Internal.ID)
	has := func(id string) bool {
		_, ok, err := h.backend.Get(h.ctx, Protections.StoreKey(taskKey(depCluster, id)))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !has(prot.Internal.ID) || has(plain.Internal.ID) {
		t.Fatalf("records: protected %v, plain %v; want true, false", has(prot.Internal.ID), has(plain.Internal.ID))
	}
	for _, tk := range []*domain.Task{prot, plain} {
		if _, err := h.s.StopTask(h.ctx, StopTaskInput{Cluster: depCluster, Task: tk.TaskARN}); err != nil {
			t.Fatal(err)
		}
		h.submit(h.task(tk.Internal.ID), domain.StatusStopped, "", "")
	}
	h.barrier()
	if has(prot.Internal.ID) {
		t.Fatal("the stopped task's protection record is still stored")
	}
}
