package e2e_test

// Deployment benchmark (issue 4), gated: HOLDFAST_BENCH=1 go test -run
// TestDeployBench -v ./e2e/
//
//  1. a rolling deployment of a 500-task service on one machine (process
//     runtime, `sleep` tasks, default 100/200 percents), nothing protected:
//     time from UpdateService to the deployment's COMPLETED (target <= 60 s);
//  2. the same with 50 old tasks protected and released at once at the end
//     (five concurrent UpdateTaskProtection calls of 10 tasks): time from the
//     release to COMPLETED (target <= 2 s).

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestDeployBench(t *testing.T) {
	if os.Getenv("HOLDFAST_BENCH") != "1" {
		t.Skip("set HOLDFAST_BENCH=1 to run the deployment benchmark")
	}
	const n, nProtected = 500, 50
	s := depUp(t)
	tds := []string{
		s.taskDef("dep-bench", "1", nil, "sleep", "3600"),
		s.taskDef("dep-bench", "2", nil, "sleep", "3600"),
		s.taskDef("dep-bench", "3", nil, "sleep", "3600"),
	}
	start := time.Now()
	if _, err := s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("default"), ServiceName: aws.String("dep-bench"), TaskDefinition: aws.String(tds[0]),
		DesiredCount: aws.Int32(n),
	}); err != nil {
		t.Fatal(err)
	}
	completed := func(what string, timeout time.Duration) {
		t.Helper()
		eventually(t, timeout, what, func() (bool, string) {
			sv := s.service("dep-bench")
			d := sv.Deployments[0]
			return len(sv.Deployments) == 1 && d.RolloutState == ecstypes.DeploymentRolloutStateCompleted && sv.RunningCount == n,
				fmt.Sprintf("deployments %d running %d primary running %d", len(sv.Deployments), sv.RunningCount, d.RunningCount)
		})
	}
	completed("the service to start", 5*time.Minute)
	t.Logf("BENCH create: %d tasks RUNNING and COMPLETED in %v", n, time.Since(start).Round(time.Millisecond))

	// 1. Nothing protected.
	start = time.Now()
	if _, err := s.ecs.UpdateService(s.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("default"), Service: aws.String("dep-bench"), TaskDefinition: aws.String(tds[1])}); err != nil {
		t.Fatal(err)
	}
	completed("the unprotected rolling deployment", 5*time.Minute)
	d1 := time.Since(start)
	t.Logf("BENCH deploy: rolling deployment of %d tasks, nothing protected: COMPLETED in %v (target <= 60s)", n, d1.Round(time.Millisecond))

	// 2. 50 protected, released at once.
	arns := s.listTasks(s.ctx, "dep-bench")
	protected := arns[:nProtected]
	for i := 0; i < nProtected; i += 10 {
		if out := s.protect(true, protected[i:i+10]...); len(out.Failures) != 0 {
			t.Fatalf("protect: %+v", out.Failures)
		}
	}
	upd, err := s.ecs.UpdateService(s.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("default"), Service: aws.String("dep-bench"), TaskDefinition: aws.String(tds[2])})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	newID := aws.ToString(upd.Service.Deployments[0].Id)
	eventually(t, 5*time.Minute, "the rollout to be held by the protected tasks only", func() (bool, string) {
		sv := s.service("dep-bench")
		if len(sv.Deployments) != 2 {
			return false, fmt.Sprintf("deployments %d", len(sv.Deployments))
		}
		var fresh, old ecstypes.Deployment
		for _, d := range sv.Deployments {
			if aws.ToString(d.Id) == newID {
				fresh = d
			} else {
				old = d
			}
		}
		return fresh.RunningCount == n && old.RunningCount == nProtected && old.PendingCount == 0,
			fmt.Sprintf("new %d old %d", fresh.RunningCount, old.RunningCount)
	})
	t.Logf("BENCH deploy with %d protected: %d new tasks RUNNING and only the protected old ones left after %v", nProtected, n, time.Since(start).Round(time.Millisecond))
	var wg sync.WaitGroup
	release := time.Now()
	for i := 0; i < nProtected; i += 10 {
		wg.Add(1)
		go func(batch []string) {
			defer wg.Done()
			s.protect(false, batch...)
		}(protected[i : i+10])
	}
	wg.Wait()
	released := time.Since(release)
	var done time.Duration
	eventually(t, time.Minute, "the deployment to complete after the release", func() (bool, string) {
		sv := s.service("dep-bench")
		ok := len(sv.Deployments) == 1 && sv.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted
		if ok {
			done = time.Since(release)
		}
		return ok, fmt.Sprintf("deployments %d", len(sv.Deployments))
	})
	t.Logf("BENCH release: %d protected tasks released (calls took %v): deployment COMPLETED %v after the release (target <= 2s; polled every 100 ms)",
		nProtected, released.Round(time.Millisecond), done.Round(time.Millisecond))
}
