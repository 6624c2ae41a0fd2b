package server_test

import (
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// DEPLOYMENT_BLOCKED stays exact when many protections race: with desired
// count 3 and six tasks (a deployment holding its old tasks), six
// concurrent calls that each protect one task let exactly three through,
// whichever batch they land in. Repeated, so that the calls share batches.
func TestDeploymentBlockedUnderConcurrency(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	e.instance("c", "az-a")
	td := e.taskDef("web")
	e.service("c", "s", td, 3)
	for _, arn := range e.waitServiceTasks("c", "s", 3) {
		e.report("c", arn, "RUNNING")
	}
	// A new deployment starts three more; the old three stay (100% must
	// stay healthy and the new ones never report RUNNING here).
	must(e.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), ForceNewDeployment: true}))
	tasks := e.waitServiceTasks("c", "s", 6)

	for round := range 20 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, blocked, other := 0, 0, 0
		for _, arn := range tasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := e.ecs.UpdateTaskProtection(e.ctx, &ecs.UpdateTaskProtectionInput{
					Cluster: aws.String("c"), Tasks: []string{arn}, ProtectionEnabled: true})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					other++
				case len(out.ProtectedTasks) == 1 && len(out.Failures) == 0:
					ok++
				case len(out.Failures) == 1 && aws.ToString(out.Failures[0].Reason) == "DEPLOYMENT_BLOCKED":
					blocked++
				default:
					other++
				}
			}()
		}
		wg.Wait()
		if ok != 3 || blocked != 3 || other != 0 {
			t.Fatalf("round %d: %d protected, %d DEPLOYMENT_BLOCKED, %d other; want 3, 3, 0", round, ok, blocked, other)
		}
		if n := len(e.getProtection("c").ProtectedTasks); n != 3 {
			t.Fatalf("round %d: GetTaskProtection lists %d protected tasks, want 3", round, n)
		}
		e.protect("c", false, nil, tasks...)
	}
}
