package scheduler

import (
	"fmt"
	"slices"
	"time"
)

// world is a simulated cluster for one service: it feeds Reconcile, applies
// its plans the way the control plane does, and moves tasks along (started
// tasks become RUNNING, stopped tasks become STOPPED, one settle at a time).
type world struct {
	now    time.Time
	svc    Service
	tasks  []Task
	insts  []Instance
	mem    EventMemory
	nextID int

	// failing deployments: their tasks fail to start (FailedTasks counts them).
	failing map[string]bool

	plan    Plan
	startID []string // ids given to the last plan's starts
	msgs    []string // formatted events of the last reconcile
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newWorld() *world {
	return &world{now: epoch, mem: EventMemory{}}
}

func (w *world) input() Input {
	svc := w.svc
	svc.Deployments = slices.Clone(w.svc.Deployments)
	mem := make(EventMemory, len(w.mem))
	for k, v := range w.mem {
		mem[k] = v
	}
	return Input{Now: w.now, Service: svc, Tasks: slices.Clone(w.tasks), Instances: slices.Clone(w.insts), Events: mem}
}

func (w *world) dep(id string) *Deployment {
	for i := range w.svc.Deployments {
		if w.svc.Deployments[i].ID == id {
			return &w.svc.Deployments[i]
		}
	}
	return nil
}

func (w *world) primary() *Deployment {
	for i := range w.svc.Deployments {
		if w.svc.Deployments[i].Status == DeploymentPrimary {
			return &w.svc.Deployments[i]
		}
	}
	return nil
}

func (w *world) task(id string) *Task {
	for i := range w.tasks {
		if w.tasks[i].ID == id {
			return &w.tasks[i]
		}
	}
	return nil
}

func (w *world) inst(id string) *Instance {
	for i := range w.insts {
		if w.insts[i].ID == id {
			return &w.insts[i]
		}
	}
	return nil
}

func (w *world) removeTask(id string) {
	w.tasks = slices.DeleteFunc(w.tasks, func(t Task) bool { return t.ID == id })
}

func (w *world) removeInstance(id string) {
	w.insts = slices.DeleteFunc(w.insts, func(i Instance) bool { return i.ID == id })
	w.tasks = slices.DeleteFunc(w.tasks, func(t Task) bool { return t.Instance == id })
}

// reconcile runs Reconcile and applies its plan.
func (w *world) reconcile() Plan {
	p := Reconcile(w.input())
	w.apply(p)
	return p
}

func (w *world) apply(p Plan) {
	w.plan = p
	w.startID = nil
	var stopped []string
	for _, s := range p.Stop {
		t := w.task(s.TaskID)
		if t == nil {
			panic(fmt.Sprintf("plan stops unknown task %s", s.TaskID))
		}
		t.DesiredStatus = StatusStopped
		stopped = append(stopped, s.TaskID)
	}
	for _, s := range p.Start {
		w.nextID++
		id := fmt.Sprintf("n%d", w.nextID)
		w.startID = append(w.startID, id)
		w.tasks = append(w.tasks, Task{
			ID: id, DeploymentID: s.DeploymentID, Instance: s.Instance, AZ: s.AZ,
			LastStatus: StatusPending, DesiredStatus: StatusRunning, Health: HealthUnknown,
			CreatedAt: w.now,
		})
	}
	for _, c := range p.Deployments {
		if d := w.dep(c.ID); d != nil {
			d.Status, d.RolloutState = c.Status, c.RolloutState
		}
	}
	w.svc.Deployments = slices.DeleteFunc(w.svc.Deployments, func(d Deployment) bool { return slices.Contains(p.Forget, d.ID) })
	w.mem = p.EventMemory
	w.msgs = w.msgs[:0]
	for _, e := range p.Events {
		switch e.Kind {
		case EventTasksStarted:
			w.msgs = append(w.msgs, StartedReplacingMessage(w.svc.Name, w.startID, e.Replaced))
		case EventTasksStopped:
			w.msgs = append(w.msgs, StoppedMessage(w.svc.Name, stopped))
		default:
			w.msgs = append(w.msgs, e.Message)
		}
	}
}

// settle moves every task one step: stopping tasks are gone, pending ones
// run (HEALTHY when their deployment has a health check), or fail to start
// when their deployment is failing.
func (w *world) settle() {
	w.tasks = slices.DeleteFunc(w.tasks, func(t Task) bool {
		if t.DesiredStatus == StatusRunning && t.LastStatus != StatusRunning && w.failing[t.DeploymentID] {
			if d := w.dep(t.DeploymentID); d != nil {
				d.FailedTasks++
				w.svc.LastFailedStart = w.now
			}
			return true
		}
		return t.DesiredStatus == StatusStopped
	})
	for i := range w.tasks {
		t := &w.tasks[i]
		if t.LastStatus != StatusRunning {
			t.LastStatus = StatusRunning
			t.StartedAt = w.now
			if d := w.dep(t.DeploymentID); d != nil && d.HasHealthCheck {
				t.Health = HealthHealthy
			}
		}
	}
}

// deploy creates a new PRIMARY deployment; the old PRIMARY becomes ACTIVE.
func (w *world) deploy(id, taskDef string, hc bool) {
	for i := range w.svc.Deployments {
		if w.svc.Deployments[i].Status == DeploymentPrimary {
			w.svc.Deployments[i].Status = DeploymentActive
		}
	}
	w.svc.Deployments = append(w.svc.Deployments, Deployment{
		ID: id, Status: DeploymentPrimary, RolloutState: RolloutInProgress,
		TaskDefinition: taskDef, CreatedAt: w.now, HasHealthCheck: hc,
	})
}

// counts returns the world's live RUNNING, PENDING and stopping tasks.
func (w *world) counts() (running, pending, stopping int) {
	for _, t := range w.tasks {
		switch {
		case t.DesiredStatus == StatusStopped:
			stopping++
		case t.LastStatus == StatusRunning:
			running++
		default:
			pending++
		}
	}
	return
}
