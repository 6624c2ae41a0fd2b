package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/testutil"
)

// registerRaw sends body, a RegisterTaskDefinition request as
// `aws ecs register-task-definition --cli-input-json` sends it, signed.
func (s *system) registerRaw(t *testing.T, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.apiAddr+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition")
	testutil.Sign(t, req, body, creds, "ecs", testutil.Region, time.Now())
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 {
		t.Fatalf("RegisterTaskDefinition: %d %s", resp.StatusCode, b)
	}
}

// procsWithArgv0 lists the processes carrying marker (see
// testutil.MarkerProcs) whose argv starts with argv0 and, if given, arg1.
func procsWithArgv0(marker, argv0, arg1 string) []int {
	var out []int
	for _, pid := range testutil.MarkerProcs(marker) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) == argv0 && (arg1 == "" || len(argv) > 1 && argv[1] == arg1) {
			out = append(out, pid)
		}
	}
	return out
}

// TestWalkthroughWorkerReleasesThroughARestart: the walkthrough's worker
// (examples/walkthrough/worker.json, as is) calls its task endpoint while
// holdfast up restarts and gets connection refused; its curl retries
// (--retry --retry-connrefused) until holdfast up is back, so its release
// is not lost: the scheduler then stops the task, as the walkthrough says.
// The worker's job is ended by the test (its sleep is killed) while
// holdfast up is down, so the release call always meets the restart.
func TestWalkthroughWorkerReleasesThroughARestart(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	raw, err := os.ReadFile("../examples/walkthrough/worker.json")
	if err != nil {
		t.Fatal(err)
	}
	var td map[string]any
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	const jobSeconds = "86399" // ended by the test, never by time
	cd := td["containerDefinitions"].([]any)[0].(map[string]any)
	cd["environment"] = []any{map[string]any{"name": "JOB_SECONDS", "value": jobSeconds}}
	body, _ := json.Marshal(td)
	// Its task role, from the walkthrough's files, as the README creates it.
	policy, err := os.ReadFile("../examples/walkthrough/task-protection-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	s.createTaskRole(t, "queue-worker", string(policy))
	s.registerRaw(t, body)
	ctx := context.Background()
	if _, err := s.ecs.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("worker"),
		TaskDefinition: aws.String("queue-worker"), DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var arn string
	eventually(t, deadline, "the worker protected", func() (bool, string) {
		l, err := s.ecs.ListTasks(ctx, &ecs.ListTasksInput{ServiceName: aws.String("worker")})
		if err != nil || len(l.TaskArns) != 1 {
			return false, fmt.Sprint(l, err)
		}
		arn = l.TaskArns[0]
		p := s.getProtection(t, arn)
		return p[arn].ProtectionEnabled, fmt.Sprint(p)
	})
	// Scale in: the protected worker stays.
	if _, err := s.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("worker"), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}

	// holdfast up goes down; the job ends; the release meets a closed port.
	if !s.main.Stop(syscall.SIGTERM, deadline) {
		t.Fatal("holdfast up did not stop on SIGTERM")
	}
	sleeps := procsWithArgv0(s.agentAddr, "sleep", jobSeconds)
	if len(sleeps) != 1 {
		t.Fatalf("want the worker's one job sleep, found %v", testutil.DescribeProcs(sleeps))
	}
	if err := syscall.Kill(sleeps[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, deadline, "the worker's release call retrying", func() (bool, string) {
		c := procsWithArgv0(s.agentAddr, "curl", "")
		return len(c) == 1, fmt.Sprint(testutil.DescribeProcs(c))
	})

	// holdfast up comes back: the retried release lands and the scheduler
	// stops the task.
	s.startServer(t)
	st := s.waitTaskStatus(t, arn, "STOPPED")
	if aws.ToString((*string)(&st.StopCode)) != "ServiceSchedulerInitiated" {
		t.Fatalf("worker stopped with %q (%s), want ServiceSchedulerInitiated", st.StopCode, aws.ToString(st.StoppedReason))
	}
	if c := procsWithArgv0(s.agentAddr, "curl", ""); len(c) != 0 {
		t.Fatalf("a curl of the worker is still running: %v", testutil.DescribeProcs(c))
	}
}
