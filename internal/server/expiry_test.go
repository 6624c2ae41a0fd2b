package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/scheduler"
)

var hfEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeEnv is an in-process control plane on a fake clock, with the
// controller's plans recorded.
type fakeEnv struct {
	*hfEnv
	clk *clock.Fake
	log *reconcileLog
}

func startFake(t *testing.T, heartbeat time.Duration) *fakeEnv {
	clk := clock.NewFake(hfEpoch)
	log := &reconcileLog{}
	e := hfStart(t, hfOpts{Clock: clk, Reconciled: log.hook, HeartbeatTimeout: heartbeat})
	return &fakeEnv{hfEnv: e, clk: clk, log: log}
}

// barrier makes the controller reconcile key now and waits for it: after
// it, anything the controller would do at the current fake time is done.
func (f *fakeEnv) barrier(key string) scheduler.Plan {
	f.t.Helper()
	mark := f.log.len()
	f.srv.Controller.Enqueue(key)
	var plan scheduler.Plan
	eventually(f.t, "reconcile of "+key, func() bool {
		return f.log.since(mark, key, func(p scheduler.Plan) bool { plan = p; return true })
	})
	return plan
}

// protectedService creates service name at desired 1 in cluster c with its
// task RUNNING and protected for the default 120 minutes at hfEpoch.
func (f *fakeEnv) protectedService(name string) (task, deployment string) {
	f.t.Helper()
	f.cluster("c")
	td := f.taskDef("web")
	f.instance("c", "az-a")
	sv := f.service("c", name, td, 1)
	task = f.waitServiceTasks("c", name, 1)[0]
	f.report("c", task, "RUNNING")
	f.waitSteady("c", name)
	out := f.protect("c", true, nil, task)
	if len(out.ProtectedTasks) != 1 || !out.ProtectedTasks[0].ExpirationDate.Equal(hfEpoch.Add(120*time.Minute)) {
		f.t.Fatalf("default protection: %+v", protectionSummary(out.ProtectedTasks))
	}
	return task, aws.ToString(sv.Deployments[0].Id)
}

// scaleToZero sets desired 0 and waits for the reconcile that finds the
// protected task blocking and arms its timer for the expiry.
func (f *fakeEnv) scaleToZero(name string, wantRequeue time.Duration) {
	f.t.Helper()
	mark := f.log.len()
	must(f.ecs.UpdateService(f.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String(name), DesiredCount: aws.Int32(0)}))
	eventually(f.t, "blocked reconcile", func() bool {
		return f.log.since(mark, "c/"+name, func(p scheduler.Plan) bool { return p.Blocked == 1 && p.RequeueAfter == wantRequeue })
	})
}

func (f *fakeEnv) wantStillProtected(name, task string, until time.Time, dep string) {
	f.t.Helper()
	f.barrier("c/" + name)
	tk := f.task("c", task)
	if aws.ToString(tk.DesiredStatus) != "RUNNING" || aws.ToString(tk.LastStatus) != "RUNNING" {
		f.t.Fatalf("at %v: protected task is %s/%s (%s)", f.clk.Now(), aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), tk.StopCode)
	}
	g := f.getProtection("c", task)
	if !g.ProtectedTasks[0].ProtectionEnabled || !g.ProtectedTasks[0].ExpirationDate.Equal(until) {
		f.t.Fatalf("at %v: protection %+v", f.clk.Now(), protectionSummary(g.ProtectedTasks))
	}
	want := fmt.Sprintf("(service %s) was unable to reach steady state because (taskSet %s) was unable to scale in due to (reason 1 tasks under protection)", name, dep)
	if msgs := eventMessages(f.describeService("c", name)); !slices.Contains(msgs, want) {
		f.t.Fatalf("at %v: no protection event; events %q", f.clk.Now(), msgs)
	}
}

// wantStoppedAt waits for the scheduler to stop task and checks it did so
// at exactly the expiry instant.
func (f *fakeEnv) wantStoppedAt(name, task string, at time.Time, dep string) {
	f.t.Helper()
	var tk types.Task
	eventually(f.t, "scheduler stop", func() bool {
		tk = f.task("c", task)
		return aws.ToString(tk.DesiredStatus) == "STOPPED"
	})
	if tk.StopCode != types.TaskStopCodeServiceSchedulerInitiated ||
		aws.ToString(tk.StoppedReason) != "Scaling activity initiated by (deployment "+dep+")" {
		f.t.Fatalf("stop: %s %q", tk.StopCode, aws.ToString(tk.StoppedReason))
	}
	if tk.StoppingAt == nil || !tk.StoppingAt.Equal(at) {
		f.t.Fatalf("stoppingAt %v, want %v", tk.StoppingAt, at)
	}
	g := f.getProtection("c", task)
	if g.ProtectedTasks[0].ProtectionEnabled || g.ProtectedTasks[0].ExpirationDate != nil {
		f.t.Fatalf("protection after expiry: %+v", protectionSummary(g.ProtectedTasks))
	}
	want := fmt.Sprintf("(service %s) has stopped 1 running tasks: (task %s).", name, shortID(task))
	if msgs := eventMessages(f.describeService("c", name)); !slices.Contains(msgs, want) {
		f.t.Fatalf("no stop event %q; events %q", want, msgs)
	}
}

func eventMessages(sv types.Service) []string {
	var m []string
	for _, ev := range sv.Events {
		m = append(m, aws.ToString(ev.Message))
	}
	return m
}

// A 2-hour expiry in milliseconds: the scheduler holds the task until the
// instant its default 120-minute protection ends, and stops it then.
func TestExpiryTwoHours(t *testing.T) {
	f := startFake(t, 0)
	task, dep := f.protectedService("q")
	until := hfEpoch.Add(120 * time.Minute)
	f.scaleToZero("q", 120*time.Minute)
	f.wantStillProtected("q", task, until, dep)

	f.clk.Advance(119*time.Minute + 59*time.Second + 999*time.Millisecond)
	f.wantStillProtected("q", task, until, dep)

	f.clk.Advance(time.Millisecond)
	f.wantStoppedAt("q", task, until, dep)
	if !strings.Contains(strings.Join(eventMessages(f.describeService("c", "q")), "\n"), "has reached a steady state.") {
		t.Fatalf("no steady state after the stop")
	}
}

// Every UpdateTaskProtection resets the expiry: re-protecting an hour in
// moves the end to 180 minutes.
func TestExpiryReprotectResets(t *testing.T) {
	f := startFake(t, 0)
	task, dep := f.protectedService("q")
	f.scaleToZero("q", 120*time.Minute)

	f.clk.Advance(60 * time.Minute)
	mark := f.log.len()
	out := f.protect("c", true, nil, task)
	until := hfEpoch.Add(180 * time.Minute)
	if !out.ProtectedTasks[0].ExpirationDate.Equal(until) {
		t.Fatalf("re-protect: %+v", protectionSummary(out.ProtectedTasks))
	}
	eventually(t, "reconcile after re-protect", func() bool {
		return f.log.since(mark, "c/q", func(p scheduler.Plan) bool { return p.RequeueAfter == 120*time.Minute })
	})
	// The first expiry passes without effect.
	f.clk.Advance(60 * time.Minute)
	f.wantStillProtected("q", task, until, dep)
	f.clk.Advance(59*time.Minute + 59*time.Second + 999*time.Millisecond)
	f.wantStillProtected("q", task, until, dep)
	f.clk.Advance(time.Millisecond)
	f.wantStoppedAt("q", task, until, dep)
}

// A shorter re-protection also resets (expiry moves earlier), and
// disabling releases the task at once.
func TestExpiryShortenAndDisable(t *testing.T) {
	f := startFake(t, 0)
	task, dep := f.protectedService("q")
	f.scaleToZero("q", 120*time.Minute)
	mark := f.log.len()
	out := f.protect("c", true, aws.Int32(1), task)
	if !out.ProtectedTasks[0].ExpirationDate.Equal(hfEpoch.Add(time.Minute)) {
		t.Fatalf("shortened: %+v", protectionSummary(out.ProtectedTasks))
	}
	eventually(t, "reconcile after shortening", func() bool {
		return f.log.since(mark, "c/q", func(p scheduler.Plan) bool { return p.RequeueAfter == time.Minute })
	})
	f.clk.Advance(30 * time.Second)
	f.wantStillProtected("q", task, hfEpoch.Add(time.Minute), dep)
	f.protect("c", false, nil, task)
	f.wantStoppedAt("q", task, hfEpoch.Add(30*time.Second), dep)
}
