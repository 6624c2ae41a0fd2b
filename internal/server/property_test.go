package server_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Random sequences of API operations (scale, protect, unprotect, StopTask,
// advance the fake clock) against the in-process server with two fake
// instances whose agents report RUNNING for every task they are given.
// After every step: no task was stopped by the scheduler while a
// protection it had been acknowledged was live at its stoppingAt.
func TestPropertyProtectionNeverStopped(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { propRun(t, seed, 60) })
	}
}

type propProt struct {
	at    time.Time // when the acknowledged call was made
	until time.Time // zero: disabled
}

func propRun(t *testing.T, seed uint64, steps int) {
	f := startFake(t, 0)
	rng := rand.New(rand.NewPCG(seed, 99))
	f.cluster("c")
	td := f.taskDef("web")
	f.instance("c", "az-a")
	f.instance("c", "az-b")
	f.service("c", "p", td, 3)
	history := map[string][]propProt{} // task -> acknowledged protection calls, in order
	desired := int32(3)

	// agents reports what two real agents would: RUNNING for every task
	// they are given, STOPPED for every task they are told to stop.
	agents := func() bool {
		changed := false
		for _, arn := range f.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("p")}) {
			if tk := f.task("c", arn); aws.ToString(tk.LastStatus) != "RUNNING" {
				f.report("c", arn, "RUNNING")
				changed = true
			}
		}
		for _, arn := range f.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("p"), DesiredStatus: types.DesiredStatusStopped}) {
			if tk := f.task("c", arn); aws.ToString(tk.LastStatus) != "STOPPED" {
				f.report("c", arn, "STOPPED")
				changed = true
			}
		}
		return changed
	}
	settle := func() {
		for range 10 {
			f.barrier("c/p")
			if !agents() {
				f.barrier("c/p")
				if !agents() {
					return
				}
			}
		}
	}
	check := func(step int, what string) {
		t.Helper()
		for _, arn := range f.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("p"), DesiredStatus: types.DesiredStatusStopped}) {
			tk := f.task("c", arn)
			if tk.StopCode != types.TaskStopCodeServiceSchedulerInitiated || tk.StoppingAt == nil {
				continue
			}
			stopAt := *tk.StoppingAt
			var live *propProt
			for i := range history[arn] {
				if h := history[arn][i]; !h.at.After(stopAt) {
					live = &history[arn][i]
				}
			}
			if live != nil && !live.until.IsZero() && stopAt.Before(live.until) {
				t.Fatalf("seed step %d (%s): task %s stopped by the scheduler at %v with protection until %v",
					step, what, shortID(arn), stopAt, live.until)
			}
		}
		// Every live protection the server reports is the last one the
		// test was acknowledged.
		g := f.getProtection("c")
		for _, pt := range g.ProtectedTasks {
			h := history[aws.ToString(pt.TaskArn)]
			if len(h) == 0 || h[len(h)-1].until.IsZero() || !h[len(h)-1].until.Equal(*pt.ExpirationDate) {
				t.Fatalf("step %d: protection %+v not the acknowledged one %+v", step, protectionSummary([]types.ProtectedTask{pt}), h)
			}
		}
	}

	settle()
	for step := range steps {
		live := f.serviceTasks("c", "p")
		pick := func() []string {
			var s []string
			for _, a := range live {
				if rng.IntN(2) == 0 {
					s = append(s, a)
				}
			}
			if len(s) == 0 && len(live) > 0 {
				s = append(s, live[rng.IntN(len(live))])
			}
			return s
		}
		var what string
		switch op := rng.IntN(10); {
		case op < 2:
			desired = int32(rng.IntN(6))
			what = fmt.Sprintf("scale to %d", desired)
			must(f.ecs.UpdateService(f.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("p"), DesiredCount: aws.Int32(desired)}))
		case op < 5 && len(live) > 0:
			tasks := pick()
			minutes := int32(1 + rng.IntN(10))
			what = fmt.Sprintf("protect %d for %dm", len(tasks), minutes)
			now := f.clk.Now()
			out := f.protect("c", true, aws.Int32(minutes), tasks...)
			for _, pt := range out.ProtectedTasks {
				a := aws.ToString(pt.TaskArn)
				history[a] = append(history[a], propProt{at: now, until: *pt.ExpirationDate})
			}
			for _, fl := range out.Failures {
				if r := aws.ToString(fl.Reason); r != "DEPLOYMENT_BLOCKED" && r != "TASK_NOT_VALID" {
					t.Fatalf("step %d: protect failure %s for %s", step, r, aws.ToString(fl.Arn))
				}
			}
		case op < 6 && len(live) > 0:
			tasks := pick()
			what = fmt.Sprintf("unprotect %d", len(tasks))
			now := f.clk.Now()
			out := f.protect("c", false, nil, tasks...)
			for _, pt := range out.ProtectedTasks {
				a := aws.ToString(pt.TaskArn)
				history[a] = append(history[a], propProt{at: now})
			}
		case op < 7 && len(live) > 0:
			a := live[rng.IntN(len(live))]
			what = "StopTask " + shortID(a)
			must(f.ecs.StopTask(f.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(a)}))
		default:
			d := time.Duration(1+rng.IntN(8*60)) * time.Second
			what = "advance " + d.String()
			f.clk.Advance(d)
		}
		settle()
		check(step, what)
		// With nothing protected and nothing pending, the service runs
		// exactly its desired count.
		if g := f.getProtection("c"); len(g.ProtectedTasks) == 0 {
			if n := len(f.serviceTasks("c", "p")); int32(n) != desired {
				t.Fatalf("step %d (%s): %d tasks, desired %d, none protected", step, what, n, desired)
			}
		}
	}
	sched := 0
	for _, arn := range f.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String("p"), DesiredStatus: types.DesiredStatusStopped}) {
		if f.task("c", arn).StopCode == types.TaskStopCodeServiceSchedulerInitiated {
			sched++
		}
	}
	t.Logf("%d tasks protected at some point, %d stopped by the scheduler", len(history), sched)
	// Finally everything expires: the service converges to desired.
	f.clk.Advance(11 * time.Minute)
	settle()
	check(steps, "final")
	if n := len(f.serviceTasks("c", "p")); int32(n) != desired {
		t.Fatalf("final: %d tasks, desired %d", n, desired)
	}
}
