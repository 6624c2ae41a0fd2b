package server_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/agentapi"
)

// pollFrom is a poll with a known revision (waitSeconds 0).
func (e *hfEnv) pollFrom(cluster, instanceARN string, known int64) agentapi.PollOutput {
	e.t.Helper()
	body, _ := json.Marshal(agentapi.PollInput{Cluster: cluster, ContainerInstanceARN: instanceARN, KnownRevision: known})
	status, b := hfRaw(e.t, e.addr, agentapi.PollTarget, body)
	if status != http.StatusOK {
		e.t.Fatalf("poll: %d %s", status, b)
	}
	var out agentapi.PollOutput
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func pollTaskARNs(out agentapi.PollOutput) []string {
	var arns []string
	for _, d := range out.Tasks {
		arns = append(arns, d.Task.TaskARN)
	}
	sort.Strings(arns)
	return arns
}

// TestDeltaPoll: an agent that knows a revision gets the full list of its
// task ARNs but the records of only the tasks that changed since; a new
// agent (revision 0) gets every record.
func TestDeltaPoll(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	inst := e.instance("c", "az-a")
	td := e.taskDef("web")
	r := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Count: aws.Int32(2)}))
	first := []string{aws.ToString(r.Tasks[0].TaskArn), aws.ToString(r.Tasks[1].TaskArn)}
	sort.Strings(first)

	full := e.pollFrom("c", inst, 0)
	if !full.Full || len(full.TaskARNs) != 2 || len(full.Tasks) != 2 {
		t.Fatalf("first poll: full=%v arns=%v records=%d", full.Full, full.TaskARNs, len(full.Tasks))
	}
	// Nothing changed: no records, both ARNs.
	same := e.pollFrom("c", inst, full.Revision)
	if same.Full || len(same.Tasks) != 0 || len(same.TaskARNs) != 2 {
		t.Fatalf("unchanged poll: full=%v arns=%v records=%v", same.Full, same.TaskARNs, pollTaskARNs(same))
	}
	// A third task: only its record comes down.
	r3 := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)}))
	third := aws.ToString(r3.Tasks[0].TaskArn)
	d := e.pollFrom("c", inst, full.Revision)
	if got := pollTaskARNs(d); len(got) != 1 || got[0] != third || len(d.TaskARNs) != 3 || d.Tasks[0].TaskDefinition == nil {
		t.Fatalf("delta after RunTask: records=%v arns=%v", got, d.TaskARNs)
	}
	// StopTask: the task's record comes down with desiredStatus STOPPED.
	must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(first[0])}))
	d2 := e.pollFrom("c", inst, d.Revision)
	if got := pollTaskARNs(d2); len(got) != 1 || got[0] != first[0] || d2.Tasks[0].Task.DesiredStatus != "STOPPED" {
		t.Fatalf("delta after StopTask: records=%v", got)
	}
	// Once the agent reports it STOPPED it leaves the list altogether.
	e.report("c", first[0], "STOPPED")
	d3 := e.pollFrom("c", inst, d2.Revision)
	if len(d3.Tasks) != 0 || len(d3.TaskARNs) != 2 {
		t.Fatalf("after STOPPED: records=%v arns=%v", pollTaskARNs(d3), d3.TaskARNs)
	}
	for _, arn := range d3.TaskARNs {
		if arn == first[0] {
			t.Fatalf("stopped task still listed: %v", d3.TaskARNs)
		}
	}
}

// maximumPercent has no upper bound (ECS documents none): raising it is
// how users let new tasks start while old protected ones hold on.
func TestMaximumPercentAbove200(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	td := e.taskDef("web")
	out := must(e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("wide"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(400), MinimumHealthyPercent: aws.Int32(100)}}))
	if got := aws.ToInt32(out.Service.DeploymentConfiguration.MaximumPercent); got != 400 {
		t.Fatalf("maximumPercent = %d, want 400", got)
	}
}
