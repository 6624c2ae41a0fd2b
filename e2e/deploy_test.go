package e2e_test

// Issue 4 end to end: rolling deployments with a protected old task,
// DEPLOYMENT_BLOCKED, container health checks and the circuit breaker, with
// the real binary (`holdfast up`), real task processes and aws-sdk-go-v2.
// Helpers here are prefixed dep so they cannot clash with the shared e2e
// helpers; the system under test is the shared one (helpers_test.go).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/testutil"
)

// depSystem is a `holdfast up` (the shared startUp, logging at warn) with
// the shortcuts of these tests.
type depSystem struct {
	*system
	ctx context.Context
}

func depUp(t *testing.T) *depSystem {
	t.Helper()
	testutil.SkipUnlessE2E(t)
	return &depSystem{system: startUp(t, "--log-level", "warn"), ctx: context.Background()}
}

// listTasks lists the desired-RUNNING tasks of service ("" = all).
func (s *depSystem) listTasks(ctx context.Context, service string) []string {
	in := &ecs.ListTasksInput{Cluster: aws.String("default")}
	if service != "" {
		in.ServiceName = aws.String(service)
	}
	var arns []string
	p := ecs.NewListTasksPaginator(s.ecs, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return arns
		}
		arns = append(arns, out.TaskArns...)
	}
	return arns
}

func (s *depSystem) describeTasks(arns []string) []ecstypes.Task {
	s.t.Helper()
	var out []ecstypes.Task
	for i := 0; i < len(arns); i += 100 {
		res, err := s.ecs.DescribeTasks(s.ctx, &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: arns[i:min(i+100, len(arns))]})
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, res.Tasks...)
	}
	return out
}

func (s *depSystem) service(name string) ecstypes.Service {
	s.t.Helper()
	out, err := s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Cluster: aws.String("default"), Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		s.t.Fatalf("DescribeServices %s: %v", name, err)
	}
	return out.Services[0]
}

func depEvents(sv ecstypes.Service) []string {
	var out []string
	for _, e := range sv.Events {
		out = append(out, aws.ToString(e.Message))
	}
	return out
}

func (s *depSystem) taskDef(family string, env string, hc *ecstypes.HealthCheck, command ...string) string {
	s.t.Helper()
	if len(command) == 0 {
		command = []string{"/bin/sh", "-c", "touch healthy; exec sleep 3600"}
	}
	out, err := s.ecs.RegisterTaskDefinition(s.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Essential: aws.Bool(true),
			Command: command, StopTimeout: aws.Int32(2), HealthCheck: hc,
			Environment: []ecstypes.KeyValuePair{{Name: aws.String("VERSION"), Value: aws.String(env)}},
		}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (s *depSystem) protect(enable bool, arns ...string) *ecs.UpdateTaskProtectionOutput {
	s.t.Helper()
	in := &ecs.UpdateTaskProtectionInput{Cluster: aws.String("default"), Tasks: arns, ProtectionEnabled: enable}
	if enable {
		in.ExpiresInMinutes = aws.Int32(30)
	}
	out, err := s.ecs.UpdateTaskProtection(s.ctx, in)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// runningByDeployment maps deployment id -> RUNNING tasks of the service.
func (s *depSystem) runningByDeployment(service string) map[string][]ecstypes.Task {
	m := map[string][]ecstypes.Task{}
	for _, t := range s.describeTasks(s.listTasks(s.ctx, service)) {
		if aws.ToString(t.LastStatus) == "RUNNING" && aws.ToString(t.DesiredStatus) == "RUNNING" {
			m[aws.ToString(t.StartedBy)] = append(m[aws.ToString(t.StartedBy)], t)
		}
	}
	return m
}

func TestDeployProtectedTaskEndToEnd(t *testing.T) {
	s := depUp(t)
	td1 := s.taskDef("dep-web", "1", nil)
	td2 := s.taskDef("dep-web", "2", nil)
	created, err := s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("default"), ServiceName: aws.String("dep-web"), TaskDefinition: aws.String(td1),
		DesiredCount: aws.Int32(3),
		// desired 3 x 150% = at most 4 tasks: the protected old task takes
		// one of the 4 slots.
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(150)},
	})
	if err != nil {
		t.Fatal(err)
	}
	oldID := aws.ToString(created.Service.Deployments[0].Id)
	eventually(t, 60*time.Second, "3 tasks running and the first deployment COMPLETED", func() (bool, string) {
		sv := s.service("dep-web")
		return sv.RunningCount == 3 && len(sv.Deployments) == 1 && sv.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted,
			fmt.Sprintf("running %d deployments %d", sv.RunningCount, len(sv.Deployments))
	})
	old := s.runningByDeployment("dep-web")[oldID]
	keep := aws.ToString(old[0].TaskArn)
	if out := s.protect(true, keep); len(out.Failures) != 0 {
		t.Fatalf("protect: %+v", out.Failures)
	}

	upd, err := s.ecs.UpdateService(s.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("default"), Service: aws.String("dep-web"), TaskDefinition: aws.String(td2)})
	if err != nil {
		t.Fatal(err)
	}
	newID := aws.ToString(upd.Service.Deployments[0].Id)
	if upd.Service.Deployments[0].Status == nil || *upd.Service.Deployments[0].Status != "PRIMARY" || aws.ToString(upd.Service.Deployments[1].Status) != "ACTIVE" {
		t.Fatalf("UpdateService deployments: %+v", upd.Service.Deployments)
	}
	blocked := "(service dep-web) was unable to reach steady state because (taskSet " + oldID + ") was unable to scale in due to (reason 1 tasks under protection)"
	peak := 0
	eventually(t, 90*time.Second, "3 new tasks, only the protected old one left, and the protection event", func() (bool, string) {
		by := s.runningByDeployment("dep-web")
		peak = max(peak, len(s.listTasks(s.ctx, "dep-web")))
		sv := s.service("dep-web")
		ok := len(by[newID]) == 3 && len(by[oldID]) == 1 && aws.ToString(by[oldID][0].TaskArn) == keep && slices.Contains(depEvents(sv), blocked)
		return ok, fmt.Sprintf("new %d old %d events %q", len(by[newID]), len(by[oldID]), depEvents(sv)[:min(3, len(sv.Events))])
	})
	if peak > 4 {
		t.Fatalf("%d tasks at once, above maximumPercent", peak)
	}
	for _, o := range old[1:] {
		st := s.describeTasks([]string{aws.ToString(o.TaskArn)})[0]
		if aws.ToString(st.LastStatus) == "STOPPED" && (st.StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated ||
			aws.ToString(st.StoppedReason) != "Scaling activity initiated by (deployment "+newID+")") {
			t.Fatalf("old task stopped with %s %q", st.StopCode, aws.ToString(st.StoppedReason))
		}
	}
	sv := s.service("dep-web")
	if len(sv.Deployments) != 2 || sv.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateInProgress {
		t.Fatalf("deployments while blocked: %+v", sv.Deployments)
	}

	// DEPLOYMENT_BLOCKED: one protected + 2 new = 3 = desired; one more is
	// one too many, while renewing the live protection is accepted.
	fresh := s.runningByDeployment("dep-web")[newID]
	if out := s.protect(true, aws.ToString(fresh[0].TaskArn), aws.ToString(fresh[1].TaskArn)); len(out.Failures) != 0 {
		t.Fatalf("protect 2 new: %+v", out.Failures)
	}
	out := s.protect(true, aws.ToString(fresh[2].TaskArn), keep)
	if len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "DEPLOYMENT_BLOCKED" || aws.ToString(out.Failures[0].Arn) != aws.ToString(fresh[2].TaskArn) {
		t.Fatalf("one too many: %+v", out.Failures)
	}
	if len(out.ProtectedTasks) != 1 || aws.ToString(out.ProtectedTasks[0].TaskArn) != keep || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("renewal: %+v", out.ProtectedTasks)
	}
	s.protect(false, aws.ToString(fresh[0].TaskArn), aws.ToString(fresh[1].TaskArn))

	// Release: the deployment completes.
	s.protect(false, keep)
	done := "(service dep-web) (deployment " + newID + ") deployment completed."
	steady := "(service dep-web) has reached a steady state."
	eventually(t, 60*time.Second, "the deployment to complete", func() (bool, string) {
		sv := s.service("dep-web")
		ev := depEvents(sv)
		ok := len(sv.Deployments) == 1 && aws.ToString(sv.Deployments[0].Id) == newID &&
			sv.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted &&
			len(ev) >= 2 && ev[0] == steady && ev[1] == done
		return ok, fmt.Sprintf("deployments %d events %q", len(sv.Deployments), ev[:min(3, len(ev))])
	})
	sv = s.service("dep-web")
	if aws.ToString(sv.TaskDefinition) != td2 || aws.ToString(sv.Deployments[0].RolloutStateReason) != "ECS deployment "+newID+" completed." {
		t.Fatalf("final service: %s %q", aws.ToString(sv.TaskDefinition), aws.ToString(sv.Deployments[0].RolloutStateReason))
	}
	st := s.describeTasks([]string{keep})[0]
	if aws.ToString(st.LastStatus) != "STOPPED" || aws.ToString(st.StoppedReason) != "Scaling activity initiated by (deployment "+newID+")" {
		t.Fatalf("released task: %s %q", aws.ToString(st.LastStatus), aws.ToString(st.StoppedReason))
	}
}

func TestDeployHealthCheckEndToEnd(t *testing.T) {
	s := depUp(t)
	hc := &ecstypes.HealthCheck{Command: []string{"CMD-SHELL", "test -f healthy"}, Interval: aws.Int32(1), Timeout: aws.Int32(2), Retries: aws.Int32(2)}
	td := s.taskDef("dep-hc", "1", hc)
	if _, err := s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("default"), ServiceName: aws.String("dep-hc"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2),
	}); err != nil {
		t.Fatal(err)
	}
	var tasks []ecstypes.Task
	eventually(t, 60*time.Second, "2 HEALTHY tasks and a COMPLETED deployment", func() (bool, string) {
		tasks = s.describeTasks(s.listTasks(s.ctx, "dep-hc"))
		healthy := 0
		for _, k := range tasks {
			if k.HealthStatus == ecstypes.HealthStatusHealthy && k.Containers[0].HealthStatus == ecstypes.HealthStatusHealthy {
				healthy++
			}
		}
		sv := s.service("dep-hc")
		return healthy == 2 && sv.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted,
			fmt.Sprintf("healthy %d rollout %s", healthy, sv.Deployments[0].RolloutState)
	})
	sick := tasks[0]
	arn := aws.ToString(sick.TaskArn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	// Protect it, then make its health check fail: protection does not
	// keep an unhealthy task.
	if out := s.protect(true, arn); len(out.Failures) != 0 {
		t.Fatalf("protect: %+v", out.Failures)
	}
	if err := os.Remove(filepath.Join(s.dataDir, "agent", "work", id, "app", "healthy")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the unhealthy protected task to be replaced", func() (bool, string) {
		st := s.describeTasks([]string{arn})[0]
		return aws.ToString(st.LastStatus) == "STOPPED", fmt.Sprintf("%s health %s", aws.ToString(st.LastStatus), st.HealthStatus)
	})
	st := s.describeTasks([]string{arn})[0]
	if st.StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated || aws.ToString(st.StoppedReason) != "Task failed container health checks" ||
		st.HealthStatus != ecstypes.HealthStatusUnhealthy {
		t.Fatalf("stopped task: %s %q %s", st.StopCode, aws.ToString(st.StoppedReason), st.HealthStatus)
	}
	eventually(t, 60*time.Second, "the service back at 2 healthy tasks", func() (bool, string) {
		sv := s.service("dep-hc")
		ev := depEvents(sv)
		ok := sv.RunningCount == 2 && slices.Contains(ev, "(service dep-hc) (task "+id+") failed container health checks.") &&
			slices.Contains(ev, "(service dep-hc) has stopped 1 running tasks: (task "+id+").") &&
			slices.ContainsFunc(ev, func(e string) bool {
				return strings.HasSuffix(e, "Amazon ECS replaced 1 tasks due to an unhealthy status.")
			})
		return ok, fmt.Sprintf("running %d events %q", sv.RunningCount, ev)
	})
}

func TestDeployCircuitBreakerEndToEnd(t *testing.T) {
	s := depUp(t)
	good := s.taskDef("dep-cb", "1", nil)
	bad := s.taskDef("dep-cb", "2", nil, "holdfast-e2e-no-such-program")
	if _, err := s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("default"), ServiceName: aws.String("dep-cb"), TaskDefinition: aws.String(good), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}); err != nil {
		t.Fatal(err)
	}
	var goodID string
	eventually(t, 60*time.Second, "the first deployment to complete", func() (bool, string) {
		sv := s.service("dep-cb")
		goodID = aws.ToString(sv.Deployments[0].Id)
		return sv.RunningCount == 2 && sv.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted, ""
	})
	upd, err := s.ecs.UpdateService(s.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("default"), Service: aws.String("dep-cb"), TaskDefinition: aws.String(bad)})
	if err != nil {
		t.Fatal(err)
	}
	badID := aws.ToString(upd.Service.Deployments[0].Id)
	eventually(t, 60*time.Second, "the circuit breaker to roll back", func() (bool, string) {
		sv := s.service("dep-cb")
		ev := depEvents(sv)
		ok := aws.ToString(sv.TaskDefinition) == good && len(sv.Deployments) == 1 && aws.ToString(sv.Deployments[0].Id) == goodID &&
			sv.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted &&
			slices.Contains(ev, "(service dep-cb) (deployment "+badID+") deployment failed: tasks failed to start.") &&
			slices.Contains(ev, "(service dep-cb) rolling back to deployment "+goodID+".")
		return ok, fmt.Sprintf("td %s events %q", aws.ToString(sv.TaskDefinition), ev)
	})
	stopped, err := s.ecs.ListTasks(s.ctx, &ecs.ListTasksInput{Cluster: aws.String("default"), StartedBy: aws.String(badID), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil || len(stopped.TaskArns) < 3 {
		t.Fatalf("failed tasks: %v %d", err, len(stopped.TaskArns))
	}
	// Tasks still starting when the breaker tripped are stopped by the
	// scheduler; the others failed to start.
	failed := 0
	for _, k := range s.describeTasks(stopped.TaskArns) {
		switch k.StopCode {
		case ecstypes.TaskStopCodeTaskFailedToStart:
			failed++
			if !strings.HasPrefix(aws.ToString(k.StoppedReason), "CannotStartContainerError") {
				t.Fatalf("failed task reason %q", aws.ToString(k.StoppedReason))
			}
		case ecstypes.TaskStopCodeServiceSchedulerInitiated:
		default:
			t.Fatalf("task of the failed deployment: %s %q", k.StopCode, aws.ToString(k.StoppedReason))
		}
	}
	if failed < 3 {
		t.Fatalf("%d tasks failed to start, want at least 3", failed)
	}
	if sv := s.service("dep-cb"); sv.RunningCount != 2 {
		t.Fatalf("running %d after the rollback", sv.RunningCount)
	}
}
