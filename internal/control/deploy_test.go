package control

// Deployment, circuit breaker, draining and health tests of issue 4, run
// in-process: the ECS operations on a state engine over a bolt file, the Controller, a fake clock,
// and the test itself acting as the agents of two container instances
// (RegisterContainerInstance, then SubmitTaskStateChange for every task the
// control plane assigns or stops). Helpers are prefixed dep to keep clear of
// other test files in this package.

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/testutil"
)

const depCluster = "deploy"

type depHarness struct {
	t       *testing.T
	ctx     context.Context
	s       *ECS
	a       *Agents
	c       *Controller
	backend *bolt.Store
	clk     *clock.Fake
	insts   []string // container instance ids
	// health, if set, is the container healthStatus the fake agents report
	// with RUNNING.
	health string
	// failStart makes the fake agents report tasks of these task
	// definition ARNs STOPPED before RUNNING.
	failStart map[string]bool
}

func depStart(t *testing.T, instances ...string) *depHarness {
	t.Helper()
	backend, err := bolt.Open(filepath.Join(t.TempDir(), "holdfast.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st := openEngine(t, backend, clk)
	part := domain.Partition{Region: "us-east-1", AccountID: "123456789012"}
	s := New(st, part, nil)
	c := NewController(st, part, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 2); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	h := &depHarness{t: t, ctx: ctx, s: s, a: NewAgents(st, part, nil), c: c, backend: backend, clk: clk, failStart: map[string]bool{}}
	if _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: depCluster}); err != nil {
		t.Fatal(err)
	}
	for _, az := range instances {
		v := az
		out, err := h.a.RegisterContainerInstance(ctx, RegisterContainerInstanceInput{
			Cluster:    depCluster,
			Attributes: []domain.Attribute{{Name: "availability-zone", Value: &v}},
		})
		if err != nil {
			t.Fatal(err)
		}
		id, _, _ := domain.ResourceName(out.ContainerInstance.ContainerInstanceARN, "container-instance")
		h.insts = append(h.insts, id)
	}
	return h
}

func depTaskDef(t *testing.T, h *depHarness, family string, hc *domain.HealthCheck) string {
	t.Helper()
	out, err := h.s.RegisterTaskDefinition(h.ctx, RegisterTaskDefinitionInput{
		Family: family,
		ContainerDefinitions: []domain.ContainerDefinition{{
			Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}, HealthCheck: hc,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.TaskDefinition.TaskDefinitionARN
}

func depIntp(v int) *int { return &v }

// barrier returns once every mutation queued before it is durable.
func (h *depHarness) barrier() {
	if err := h.s.st.Update(h.ctx, func(*state.Tx) error { return nil }); err != nil {
		h.t.Fatal(err)
	}
}

// settle waits until the controller has nothing left to reconcile: it has
// read the change feed up to the last commit and its queue is idle.
func (h *depHarness) settle() {
	h.t.Helper()
	testutil.EventuallyTrue(h.t, 10*time.Second, time.Millisecond, "the controller to settle", func() bool {
		h.barrier()
		if !h.c.Idle() {
			return false
		}
		h.barrier()
		return h.c.Idle()
	})
}

// tasks returns the cluster's tasks that are not STOPPED.
func (h *depHarness) tasks() []*domain.Task {
	var out []*domain.Task
	h.s.st.View(func(r *state.View) {
		for _, k := range tasksByCluster.Keys(r, depCluster) {
			if t := Tasks.Get(r, k); t.LastStatus != domain.StatusStopped {
				out = append(out, t)
			}
		}
	})
	return out
}

func (h *depHarness) task(id string) *domain.Task {
	var t *domain.Task
	h.s.st.View(func(r *state.View) { t = getTask(r, depCluster, id) })
	return t
}

// protected reports whether t is protected now.
func (h *depHarness) protected(t *domain.Task) bool {
	var p bool
	h.s.st.View(func(r *state.View) { p = isProtected(r, t, r.Now()) })
	return p
}

// rawService is the stored service record (with its INACTIVE deployments).
func (h *depHarness) rawService(name string) *domain.Service {
	var sv *domain.Service
	h.s.st.View(func(r *state.View) { sv = getService(r, depCluster, name) })
	return sv
}

func (h *depHarness) submit(t *domain.Task, status, reason, health string) {
	h.t.Helper()
	in := agentapi.SubmitTaskStateChangeInput{Cluster: depCluster, Task: t.TaskARN, Status: status, Reason: reason}
	for _, c := range t.Containers {
		in.Containers = append(in.Containers, agentapi.ContainerStateChange{ContainerName: c.Name, Status: status, HealthStatus: health})
	}
	if _, err := h.a.SubmitTaskStateChange(h.ctx, in); err != nil {
		h.t.Fatal(err)
	}
}

// agentStep acts as the agents once: new tasks report RUNNING (or fail to
// start), tasks with desired STOPPED report STOPPED. It reports whether it
// changed anything.
func (h *depHarness) agentStep() bool {
	changed := false
	for _, t := range h.tasks() {
		switch {
		case t.DesiredStatus == domain.StatusStopped:
			h.submit(t, domain.StatusStopped, "", "")
			changed = true
		case t.LastStatus != domain.StatusRunning && h.failStart[t.TaskDefinitionARN]:
			h.submit(t, domain.StatusStopped, "CannotStartContainerError: exec: \"no-such-program\": executable file not found in $PATH", "")
			changed = true
		case t.LastStatus != domain.StatusRunning:
			h.submit(t, domain.StatusRunning, "", h.health)
			changed = true
		}
	}
	return changed
}

// converge alternates reconciles and agent steps until nothing changes,
// checking after every round that the service never exceeds maxTotal
// tasks (running, pending or stopping).
func (h *depHarness) converge(maxTotal int) {
	h.t.Helper()
	for range 200 {
		h.settle()
		if n := len(h.tasks()); maxTotal > 0 && n > maxTotal {
			h.t.Fatalf("%d tasks not STOPPED, above the maximumPercent ceiling %d", n, maxTotal)
		}
		if !h.agentStep() {
			return
		}
	}
	h.t.Fatal("no convergence")
}

func (h *depHarness) service(name string) *domain.Service {
	h.t.Helper()
	out, err := h.s.DescribeServices(h.ctx, DescribeServicesInput{Cluster: depCluster, Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		h.t.Fatalf("DescribeServices: %v %+v", err, out)
	}
	return out.Services[0]
}

func (h *depHarness) protect(enable bool, ids ...string) *TaskProtectionOutput {
	h.t.Helper()
	out, err := h.s.UpdateTaskProtection(h.ctx, UpdateTaskProtectionInput{
		Cluster: depCluster, Tasks: ids, ProtectionEnabled: &enable, ExpiresInMinutes: func() *int64 { v := int64(60); return &v }(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func depEvents(sv *domain.Service) []string {
	var out []string
	for _, e := range sv.Events {
		out = append(out, e.Message)
	}
	return out
}

func depHasEvent(sv *domain.Service, msg string) bool { return slices.Contains(depEvents(sv), msg) }

func depByDeployment(tasks []*domain.Task) map[string][]*domain.Task {
	m := map[string][]*domain.Task{}
	for _, t := range tasks {
		m[t.StartedBy] = append(m[t.StartedBy], t)
	}
	return m
}

func depCreateService(t *testing.T, h *depHarness, name, td string, desired int, dc *domain.DeploymentConfiguration) *domain.Service {
	t.Helper()
	out, err := h.s.CreateService(h.ctx, CreateServiceInput{
		Cluster: depCluster, ServiceName: name, TaskDefinition: td, DesiredCount: &desired, DeploymentConfiguration: dc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Service
}

func TestDeployWithProtectedOldTask(t *testing.T) {
	h := depStart(t, "a", "b")
	td1 := depTaskDef(t, h, "web", nil)
	td2 := depTaskDef(t, h, "web", nil)
	// desired 4, maximumPercent 125: at most 5 tasks at any time.
	dc := &domain.DeploymentConfiguration{MinimumHealthyPercent: depIntp(50), MaximumPercent: depIntp(125)}
	first := depCreateService(t, h, "web", td1, 4, dc)
	oldID := first.Deployments[0].ID
	h.converge(5)
	sv := h.service("web")
	if sv.RunningCount != 4 || len(sv.Deployments) != 1 || sv.Deployments[0].RolloutState != domain.RolloutCompleted {
		t.Fatalf("service not steady before the deployment: %+v", sv)
	}
	if !depHasEvent(sv, "(service web) has reached a steady state.") {
		t.Fatalf("no steady-state event: %q", depEvents(sv))
	}
	old := h.tasks()
	keep := old[0]
	if out := h.protect(true, keep.TaskARN); len(out.Failures) != 0 {
		t.Fatalf("protect: %+v", out.Failures)
	}

	upd, err := h.s.UpdateService(h.ctx, UpdateServiceInput{Cluster: depCluster, Service: "web", TaskDefinition: td2})
	if err != nil {
		t.Fatal(err)
	}
	newID := upd.Service.Deployments[0].ID
	if newID == oldID || upd.Service.Deployments[0].Status != domain.Primary || upd.Service.Deployments[1].Status != domain.Active {
		t.Fatalf("UpdateService deployments: %+v", upd.Service.Deployments)
	}
	if got := upd.Service.Deployments[0].RolloutStateReason; got != "ECS deployment "+newID+" in progress." {
		t.Fatalf("rolloutStateReason %q", got)
	}
	h.converge(5)

	byDep := depByDeployment(h.tasks())
	if len(byDep[newID]) != 4 || len(byDep[oldID]) != 1 || byDep[oldID][0].TaskARN != keep.TaskARN {
		t.Fatalf("after the rollout: new %d, old %d (want 4 new and only the protected old task)", len(byDep[newID]), len(byDep[oldID]))
	}
	for _, o := range old[1:] {
		st := h.task(o.Internal.ID)
		if st.LastStatus != domain.StatusStopped || st.StopCode != domain.StopServiceSchedulerInitiated ||
			st.StoppedReason != "Scaling activity initiated by (deployment "+newID+")" {
			t.Fatalf("old task %s: %s %s %q", o.Internal.ID, st.LastStatus, st.StopCode, st.StoppedReason)
		}
	}
	sv = h.service("web")
	blocked := "(service web) was unable to reach steady state because (taskSet " + oldID + ") was unable to scale in due to (reason 1 tasks under protection)"
	if !depHasEvent(sv, blocked) {
		t.Fatalf("no protection event naming the old deployment; events: %q", depEvents(sv))
	}
	if len(sv.Deployments) != 2 || sv.Deployments[0].RolloutState != domain.RolloutInProgress {
		t.Fatalf("deployments while blocked: %+v", sv.Deployments)
	}
	if sv.Deployments[1].RunningCount != 1 || sv.Deployments[0].RunningCount != 4 {
		t.Fatalf("deployment counts: %+v", sv.Deployments)
	}

	// DEPLOYMENT_BLOCKED: 1 protected; protecting 3 more reaches the desired
	// count, a 5th is one too many; renewing a live protection is accepted.
	fresh := byDep[newID]
	if out := h.protect(true, fresh[0].TaskARN, fresh[1].TaskARN, fresh[2].TaskARN); len(out.Failures) != 0 {
		t.Fatalf("protect 3 more: %+v", out.Failures)
	}
	out := h.protect(true, fresh[3].TaskARN, keep.TaskARN)
	if len(out.Failures) != 1 || out.Failures[0].Reason != domain.ReasonDeploymentBlocked || out.Failures[0].ARN != fresh[3].TaskARN {
		t.Fatalf("one too many: failures %+v", out.Failures)
	}
	if len(out.ProtectedTasks) != 1 || out.ProtectedTasks[0].TaskARN != keep.TaskARN || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("renewal: %+v", out.ProtectedTasks)
	}
	h.protect(false, fresh[0].TaskARN, fresh[1].TaskARN, fresh[2].TaskARN)

	// Release: the old task goes, the deployment completes.
	h.protect(false, keep.TaskARN)
	h.converge(5)
	if st := h.task(keep.Internal.ID); st.LastStatus != domain.StatusStopped || st.StoppedReason != "Scaling activity initiated by (deployment "+newID+")" {
		t.Fatalf("released task: %s %q", st.LastStatus, st.StoppedReason)
	}
	sv = h.service("web")
	if len(sv.Deployments) != 1 || sv.Deployments[0].ID != newID || sv.Deployments[0].RolloutState != domain.RolloutCompleted ||
		sv.Deployments[0].RolloutStateReason != "ECS deployment "+newID+" completed." {
		t.Fatalf("deployments after release: %+v", sv.Deployments)
	}
	if sv.TaskDefinition != td2 || sv.RunningCount != 4 {
		t.Fatalf("service: td %s running %d", sv.TaskDefinition, sv.RunningCount)
	}
	ev := depEvents(sv)
	done := "(service web) (deployment " + newID + ") deployment completed."
	steady := "(service web) has reached a steady state."
	if len(ev) < 2 || ev[0] != steady || ev[1] != done {
		t.Fatalf("newest events %q, want %q then %q", ev[:min(len(ev), 3)], steady, done)
	}
	// INACTIVE deployments are kept internally but hidden.
	raw := h.rawService("web")
	if len(raw.Deployments) != 2 || raw.Deployments[1].Status != domain.Inactive {
		t.Fatalf("stored deployments: %+v", raw.Deployments)
	}
}

func TestDeployCircuitBreakerRollback(t *testing.T) {
	h := depStart(t, "a")
	td1 := depTaskDef(t, h, "cb", nil)
	td2 := depTaskDef(t, h, "cb", nil)
	dc := &domain.DeploymentConfiguration{DeploymentCircuitBreaker: &domain.CircuitBreaker{Enable: true, Rollback: true}}
	first := depCreateService(t, h, "cb", td1, 2, dc)
	goodID := first.Deployments[0].ID
	h.converge(4)
	if sv := h.service("cb"); sv.Deployments[0].RolloutState != domain.RolloutCompleted {
		t.Fatalf("first deployment: %+v", sv.Deployments)
	}
	h.failStart[td2] = true
	upd, err := h.s.UpdateService(h.ctx, UpdateServiceInput{Cluster: depCluster, Service: "cb", TaskDefinition: td2})
	if err != nil {
		t.Fatal(err)
	}
	badID := upd.Service.Deployments[0].ID

	// Step until the breaker trips: 3 tasks (the minimum threshold) fail.
	var sv *domain.Service
	for range 20 {
		h.settle()
		sv = h.service("cb")
		if sv.TaskDefinition == td1 {
			break
		}
		h.agentStep()
	}
	if sv.TaskDefinition != td1 {
		t.Fatalf("no rollback: %+v", sv.Deployments)
	}
	// The rolled-back-to deployment still runs its tasks, so the rollback
	// completes in the next pass and the failed deployment is INACTIVE
	// (kept in the store, hidden from DescribeServices).
	raw := h.rawService("cb")
	var bad, good *domain.Deployment
	for i := range raw.Deployments {
		switch raw.Deployments[i].ID {
		case badID:
			bad = &raw.Deployments[i]
		case goodID:
			good = &raw.Deployments[i]
		}
	}
	if bad == nil || good == nil {
		t.Fatalf("deployments during rollback: %+v", raw.Deployments)
	}
	if len(sv.Deployments) != 1 || sv.Deployments[0].ID != goodID {
		t.Fatalf("DescribeServices deployments: %+v", sv.Deployments)
	}
	if (bad.Status != domain.Active && bad.Status != domain.Inactive) || bad.RolloutState != "FAILED" || bad.FailedTasks < 3 ||
		bad.RolloutStateReason != "ECS deployment circuit breaker: task failed to start." {
		t.Fatalf("failed deployment: %+v", *bad)
	}
	if good.Status != domain.Primary || good.RolloutStateReason != "ECS deployment circuit breaker: rolling back to deploymentId "+goodID+"." &&
		good.RolloutStateReason != "ECS deployment "+goodID+" completed." {
		t.Fatalf("rollback target: %+v", *good)
	}
	for _, want := range []string{
		"(service cb) (deployment " + badID + ") deployment failed: tasks failed to start.",
		"(service cb) rolling back to deployment " + goodID + ".",
	} {
		if !depHasEvent(sv, want) {
			t.Fatalf("missing event %q in %q", want, depEvents(sv))
		}
	}
	var failed []*domain.Task
	h.s.st.View(func(r *state.View) {
		for _, t := range tasksByCluster.Group(r, depCluster) {
			if t.StartedBy == badID {
				failed = append(failed, t)
			}
		}
	})
	// Tasks start two at a time (maximumPercent 200), so the breaker may
	// see a fourth failure in the same round.
	nFailed := 0
	for _, ft := range failed {
		if ft.StopCode == domain.StopTaskFailedToStart {
			nFailed++
			if !strings.HasPrefix(ft.StoppedReason, "CannotStartContainerError") {
				t.Fatalf("failed task: %q", ft.StoppedReason)
			}
		}
	}
	if nFailed != bad.FailedTasks {
		t.Fatalf("%d tasks failed to start, failedTasks %d", nFailed, bad.FailedTasks)
	}
	h.converge(4)
	sv = h.service("cb")
	if len(sv.Deployments) != 1 || sv.Deployments[0].ID != goodID || sv.Deployments[0].RolloutState != domain.RolloutCompleted || sv.RunningCount != 2 {
		t.Fatalf("after the rollback: %+v", sv.Deployments)
	}
}

func TestDeployStartThrottle(t *testing.T) {
	h := depStart(t, "a")
	td := depTaskDef(t, h, "thr", nil)
	h.failStart[td] = true
	depCreateService(t, h, "thr", td, 1, nil)
	for range 10 {
		h.settle()
		if !h.agentStep() {
			break
		}
	}
	h.settle()
	if n := len(h.tasks()); n != 0 {
		t.Fatalf("%d tasks started while throttled", n)
	}
	sv := h.service("thr")
	if sv.Deployments[0].FailedTasks != scheduler.ThrottleAfter {
		t.Fatalf("failedTasks %d, want %d", sv.Deployments[0].FailedTasks, scheduler.ThrottleAfter)
	}
	if !depHasEvent(sv, "(service thr) is unable to consistently start tasks successfully.") {
		t.Fatalf("no throttle event: %q", depEvents(sv))
	}
	h.clk.Advance(scheduler.ThrottleBase - time.Second)
	h.settle()
	if n := len(h.tasks()); n != 0 {
		t.Fatal("started before the back-off ended")
	}
	h.clk.Advance(time.Second)
	h.settle()
	if n := len(h.tasks()); n != 1 {
		t.Fatalf("%d tasks after the back-off, want 1", n)
	}
	// A task that runs resets the count (and the throttling).
	delete(h.failStart, td)
	h.converge(2)
	if sv := h.service("thr"); sv.Deployments[0].FailedTasks != 0 || sv.RunningCount != 1 {
		t.Fatalf("after a good start: %+v", sv.Deployments[0])
	}
}

func TestDeployInstanceDraining(t *testing.T) {
	h := depStart(t, "a", "b")
	td := depTaskDef(t, h, "dr", nil)
	// desired 4, min 50, max 150: at most 6 tasks, at least 2 healthy.
	dc := &domain.DeploymentConfiguration{MinimumHealthyPercent: depIntp(50), MaximumPercent: depIntp(150)}
	depCreateService(t, h, "dr", td, 4, dc)
	h.converge(6)
	a := h.insts[0]
	onA := func() (prot, unprot []*domain.Task) {
		for _, t := range h.tasks() {
			if t.Internal.InstanceID == a {
				if h.protected(t) {
					prot = append(prot, t)
				} else {
					unprot = append(unprot, t)
				}
			}
		}
		return
	}
	_, tasksA := onA()
	if len(tasksA) != 2 {
		t.Fatalf("%d tasks on instance a, want 2 (spread)", len(tasksA))
	}
	keep := tasksA[0]
	h.protect(true, keep.TaskARN)

	if _, err := h.s.UpdateContainerInstancesState(h.ctx, UpdateContainerInstancesStateInput{
		Cluster: depCluster, ContainerInstances: []string{a}, Status: domain.Draining,
	}); err != nil {
		t.Fatal(err)
	}
	h.converge(6)
	prot, unprot := onA()
	if len(prot) != 1 || prot[0].Internal.ID != keep.Internal.ID || len(unprot) != 0 {
		t.Fatalf("on the draining instance: %d protected, %d unprotected", len(prot), len(unprot))
	}
	if st := h.task(tasksA[1].Internal.ID); st.LastStatus != domain.StatusStopped || st.StopCode != domain.StopServiceSchedulerInitiated {
		t.Fatalf("drained task: %s %s", st.LastStatus, st.StopCode)
	}
	// 3 replacements and survivors on b, the protected one on a.
	if sv := h.service("dr"); sv.RunningCount != 4 {
		t.Fatalf("running %d, want 4", sv.RunningCount)
	}
	// Nothing new lands on a DRAINING instance: scale up by 2.
	two := 6
	if _, err := h.s.UpdateService(h.ctx, UpdateServiceInput{Cluster: depCluster, Service: "dr", DesiredCount: &two}); err != nil {
		t.Fatal(err)
	}
	h.converge(9)
	if prot, unprot := onA(); len(prot) != 1 || len(unprot) != 0 {
		t.Fatalf("tasks placed on the draining instance: %d unprotected", len(unprot))
	}
	// Release: the protected task moves too.
	h.protect(false, keep.TaskARN)
	h.converge(9)
	if prot, unprot := onA(); len(prot)+len(unprot) != 0 {
		t.Fatal("the released task stayed on the draining instance")
	}
	sv := h.service("dr")
	if sv.RunningCount != 6 || !depHasEvent(sv, "(service dr) has reached a steady state.") {
		t.Fatalf("running %d; events %q", sv.RunningCount, depEvents(sv))
	}
	// ACTIVE again ends draining: new tasks may go to a again.
	if _, err := h.s.UpdateContainerInstancesState(h.ctx, UpdateContainerInstancesStateInput{
		Cluster: depCluster, ContainerInstances: []string{a}, Status: domain.Active,
	}); err != nil {
		t.Fatal(err)
	}
	eight := 8
	if _, err := h.s.UpdateService(h.ctx, UpdateServiceInput{Cluster: depCluster, Service: "dr", DesiredCount: &eight}); err != nil {
		t.Fatal(err)
	}
	h.converge(12)
	if _, unprot := onA(); len(unprot) != 2 {
		t.Fatalf("%d new tasks on the re-activated instance, want 2", len(unprot))
	}
}

func TestDeployUnhealthyProtectedTaskReplaced(t *testing.T) {
	h := depStart(t, "a")
	td := depTaskDef(t, h, "hc", &domain.HealthCheck{Command: []string{"CMD-SHELL", "true"}})
	depCreateService(t, h, "hc", td, 2, nil)
	h.health = domain.Healthy
	h.converge(4)
	sv := h.service("hc")
	if sv.Deployments[0].RolloutState != domain.RolloutCompleted {
		t.Fatalf("deployment with healthy tasks did not complete: %+v", sv.Deployments[0])
	}
	tasks := h.tasks()
	for _, tk := range tasks {
		if tk.HealthStatus != domain.Healthy || tk.Containers[0].HealthStatus != domain.Healthy {
			t.Fatalf("task health %s / container %s", tk.HealthStatus, tk.Containers[0].HealthStatus)
		}
	}
	sick := tasks[0]
	h.protect(true, sick.TaskARN)
	h.submit(sick, domain.StatusRunning, "", domain.Unhealthy)
	h.converge(4)
	st := h.task(sick.Internal.ID)
	if st.LastStatus != domain.StatusStopped || st.StopCode != domain.StopServiceSchedulerInitiated ||
		st.StoppedReason != "Task failed container health checks" || st.HealthStatus != domain.Unhealthy {
		t.Fatalf("unhealthy protected task: %s %s %q health %s", st.LastStatus, st.StopCode, st.StoppedReason, st.HealthStatus)
	}
	sv = h.service("hc")
	if sv.RunningCount != 2 {
		t.Fatalf("running %d", sv.RunningCount)
	}
	var started string
	for _, e := range depEvents(sv) {
		if strings.HasSuffix(e, "Amazon ECS replaced 1 tasks due to an unhealthy status.") {
			started = e
		}
	}
	for _, want := range []string{
		"(service hc) (task " + sick.Internal.ID + ") failed container health checks.",
		"(service hc) has stopped 1 running tasks: (task " + sick.Internal.ID + ").",
	} {
		if !depHasEvent(sv, want) {
			t.Fatalf("missing event %q in %q", want, depEvents(sv))
		}
	}
	if !strings.HasPrefix(started, "(service hc) has started 1 tasks: (task ") {
		t.Fatalf("no replacement event in %q", depEvents(sv))
	}
}
