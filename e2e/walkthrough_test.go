package e2e_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/testutil"
)

var deploymentIDRe = regexp.MustCompile(`^ecs-svc/\d{19}$`)

func blockedMessage(service, deploymentID string, n int) string {
	return fmt.Sprintf("(service %s) was unable to reach steady state because (taskSet %s) was unable to scale in due to (reason %d tasks under protection)",
		service, deploymentID, n)
}

// protectedBodyRe matches a 200 protection body with an expiry.
func protectedBodyRe(arn string) *regexp.Regexp {
	return regexp.MustCompile(`^\{"protection":\{"ExpirationDate":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z)","ProtectionEnabled":true,"TaskArn":"` +
		regexp.QuoteMeta(arn) + `"\}\}$`)
}

func unprotectedBody(arn string) string {
	return `{"protection":{"ExpirationDate":null,"ProtectionEnabled":false,"TaskArn":"` + arn + `"}}`
}

// releaseFromInside makes task k release its protection with curl and
// returns the time from the release call returning to the task's SIGTERM.
func releaseFromInside(t *testing.T, k task) time.Duration {
	t.Helper()
	touch(t, k.file(".release"))
	waitFile(t, k.file(".released"))
	waitFile(t, k.file(".term"))
	released, ok1 := readNanos(k.file(".released"))
	termed, ok2 := readNanos(k.file(".term"))
	if !ok1 || !ok2 {
		t.Fatalf("unreadable timestamps in %s / %s", k.file(".released"), k.file(".term"))
	}
	if out := waitFile(t, k.file(".release.out")); out != unprotectedBody(k.arn) {
		t.Errorf("release answer through the task endpoint:\n got  %s\n want %s", out, unprotectedBody(k.arn))
	}
	latency := termed.Sub(released)
	if latency < 0 {
		t.Logf("task %d: SIGTERM arrived while its release call was still returning (%v before curl exited)", k.pid, -latency)
	} else {
		t.Logf("task %d: release call returned -> SIGTERM: %v", k.pid, latency)
	}
	if latency > time.Second {
		t.Errorf("task %d got SIGTERM %v after its release call returned; want <= 1s", k.pid, latency)
	}
	return latency
}

// TestLaunchPostWalkthrough is the launch blog post's walkthrough: a service
// of three, two tasks protected, scale to zero.
func TestLaunchPostWalkthrough(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	ctx := context.Background()
	td, dir := s.taskDef(t, "walkthrough")
	const name = "queue-workers"
	dep := s.createService(t, name, td, 3)
	if !deploymentIDRe.MatchString(dep) {
		t.Fatalf("deployment id %q does not look like ecs-svc/<19 digits>", dep)
	}
	tasks := s.waitTasks(t, dir, 3)
	self, viaAPI, victim := tasks[0], tasks[1], tasks[2]
	for _, k := range tasks {
		got := s.describeTask(t, k.arn)
		if by := aws.ToString(got.StartedBy); by != dep {
			t.Errorf("task %s startedBy %q, want %q", k.arn, by, dep)
		}
		if g := aws.ToString(got.Group); g != "service:"+name {
			t.Errorf("task %s group %q, want service:%s", k.arn, g, name)
		}
	}

	// One task protects itself through $ECS_AGENT_URI, one is protected by
	// the operator through the API.
	touch(t, self.file(".protect"))
	if body := waitFile(t, self.file(".protected")); !protectedBodyRe(self.arn).MatchString(body) {
		t.Fatalf("self-protection answer: %s", body)
	}
	s.setProtection(t, true, viaAPI.arn)
	prot := s.getProtection(t, self.arn, viaAPI.arn, victim.arn)
	if !prot[self.arn].ProtectionEnabled || !prot[viaAPI.arn].ProtectionEnabled || prot[victim.arn].ProtectionEnabled {
		t.Fatalf("protection before scale-in: %+v", prot)
	}

	if _, err := s.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(clusterName),
		Service: aws.String(name), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatalf("UpdateService: %v", err)
	}

	// The unprotected task is the only one stopped.
	stopped := s.waitTaskStatus(t, victim.arn, "STOPPED")
	if stopped.StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated {
		t.Errorf("stopCode %q, want ServiceSchedulerInitiated", stopped.StopCode)
	}
	if got, want := aws.ToString(stopped.StoppedReason), "Scaling activity initiated by (deployment "+dep+")"; got != want {
		t.Errorf("stoppedReason %q, want %q", got, want)
	}
	waitFile(t, victim.file(".term"))

	blocked2 := blockedMessage(name, dep, 2)
	s.waitEvent(t, name, blocked2)
	for _, k := range []task{self, viaAPI} {
		if !s.undisturbed(k) {
			t.Errorf("protected task %d was stopped", k.pid)
		}
		if got := s.describeTask(t, k.arn); aws.ToString(got.LastStatus) != "RUNNING" || aws.ToString(got.DesiredStatus) != "RUNNING" {
			t.Errorf("protected task %s: last %s desired %s", k.arn, aws.ToString(got.LastStatus), aws.ToString(got.DesiredStatus))
		}
	}
	sv := s.describeService(t, name)
	if n := countEvents(sv, blocked2); n != 1 {
		t.Errorf("event %q appears %d times, want once (duplicates are suppressed)", blocked2, n)
	}
	if sv.RunningCount != 2 || sv.DesiredCount != 0 {
		t.Errorf("service running %d desired %d, want 2 and 0", sv.RunningCount, sv.DesiredCount)
	}

	// The self-protected task releases itself: it gets SIGTERM at once.
	releaseFromInside(t, self)
	st := s.waitTaskStatus(t, self.arn, "STOPPED")
	if st.StopCode != ecstypes.TaskStopCodeServiceSchedulerInitiated {
		t.Errorf("released task stopCode %q", st.StopCode)
	}
	blocked1 := blockedMessage(name, dep, 1)
	s.waitEvent(t, name, blocked1)
	if !s.alive(viaAPI.pid) || exists(viaAPI.file(".term")) {
		t.Fatalf("the still protected task %d was stopped", viaAPI.pid)
	}

	// The last one releases too; the service reaches a steady state at 0.
	releaseFromInside(t, viaAPI)
	s.waitTaskStatus(t, viaAPI.arn, "STOPPED")
	steady := "(service " + name + ") has reached a steady state."
	eventually(t, deadline, "running 0 and a new steady-state event", func() (bool, string) {
		sv := s.describeService(t, name)
		iSteady, iBlocked := -1, -1
		var msgs []string
		for i, e := range sv.Events {
			m := aws.ToString(e.Message)
			msgs = append(msgs, m)
			if m == steady && iSteady < 0 {
				iSteady = i
			}
			if m == blocked1 && iBlocked < 0 {
				iBlocked = i
			}
		}
		ok := sv.RunningCount == 0 && sv.PendingCount == 0 && iSteady >= 0 && iSteady < iBlocked
		return ok, fmt.Sprintf("running %d pending %d events %s", sv.RunningCount, sv.PendingCount, strings.Join(msgs, " | "))
	})
}

func countEvents(sv ecstypes.Service, msg string) int {
	n := 0
	for _, e := range sv.Events {
		if aws.ToString(e.Message) == msg {
			n++
		}
	}
	return n
}
