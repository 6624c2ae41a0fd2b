package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// An instance whose agent stops polling for longer than HeartbeatTimeout
// is marked agentConnected=false, its tasks are STOPPED with
// InfrastructureHealth, and the service's task is replaced on an instance
// that still polls. The test is both agents; the clock is fake.
func TestHeartbeatLoss(t *testing.T) {
	const timeout = 30 * time.Second
	f := startFake(t, timeout)
	f.cluster("c")
	td := f.taskDef("web")
	lost := f.instance("c", "az-a")
	f.service("c", "svc", td, 1)
	old := f.waitServiceTasks("c", "svc", 1)[0]
	if inst := aws.ToString(f.task("c", old).ContainerInstanceArn); inst != lost {
		t.Fatalf("task on %s, want %s", inst, lost)
	}
	f.report("c", old, "RUNNING")
	run := must(f.ecs.RunTask(f.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)}))
	standalone := aws.ToString(run.Tasks[0].TaskArn)
	f.report("c", standalone, "RUNNING")
	alive := f.instance("c", "az-b")

	// Only the second instance keeps polling; the clock moves in steps
	// shorter than the timeout so that its heartbeat never lapses.
	connected := func(arn string) bool {
		d := must(f.ecs.DescribeContainerInstances(f.ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("c"), ContainerInstances: []string{arn}}))
		return d.ContainerInstances[0].AgentConnected
	}
	steps := 0
	eventually(t, "instance marked disconnected", func() bool {
		f.poll("c", alive)
		if !connected(lost) {
			return true
		}
		if steps < 40 {
			f.clk.Advance(5 * time.Second)
			steps++
		}
		return false
	})
	if elapsed := time.Duration(steps) * 5 * time.Second; elapsed <= timeout {
		t.Fatalf("instance lost after %v, not more than the %v timeout", elapsed, timeout)
	}
	if !connected(alive) {
		t.Fatalf("the polling instance was marked disconnected too")
	}
	for _, arn := range []string{old, standalone} {
		tk := f.task("c", arn)
		if aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeInfrastructureHealth ||
			!strings.Contains(aws.ToString(tk.StoppedReason), "heartbeats") {
			t.Fatalf("task on lost instance: %s %s %q", aws.ToString(tk.LastStatus), tk.StopCode, aws.ToString(tk.StoppedReason))
		}
	}
	// The replacement goes to the instance that still polls, and its
	// agent is told to run it.
	var repl string
	eventually(t, "replacement task", func() bool {
		ts := f.serviceTasks("c", "svc")
		if len(ts) == 1 && ts[0] != old {
			repl = ts[0]
			return true
		}
		return false
	})
	if inst := aws.ToString(f.task("c", repl).ContainerInstanceArn); inst != alive {
		t.Fatalf("replacement on %s, want %s", inst, alive)
	}
	p := f.poll("c", alive)
	if len(p.Tasks) != 1 || p.Tasks[0].Task.TaskARN != repl || p.Tasks[0].ServiceName != "svc" {
		t.Fatalf("poll of the live instance: %+v", p.Tasks)
	}

	// The lost agent comes back: connected again, with nothing to run.
	p = f.poll("c", lost)
	if len(p.Tasks) != 0 {
		t.Fatalf("returning agent told to run %d tasks", len(p.Tasks))
	}
	if !connected(lost) {
		t.Fatalf("returning agent not reconnected")
	}
	// A late report from it does not resurrect the stopped task.
	f.report("c", old, "RUNNING")
	if tk := f.task("c", old); aws.ToString(tk.LastStatus) != "STOPPED" {
		t.Fatalf("stopped task resurrected: %s", aws.ToString(tk.LastStatus))
	}
}
