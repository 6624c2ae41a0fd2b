package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/testutil"
)

// awsCLI runs the AWS CLI against the system as its root, as the README
// has the reader do after `eval "$(bin/holdfast env)"` (with
// --endpoint-url too, for CLI releases older than AWS_ENDPOINT_URL), from
// the repository's root, and returns its standard output.
func (s *system) awsCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"--endpoint-url", "http://" + s.apiAddr}, args...)...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey,
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL=http://"+s.apiAddr,
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_PAGER=")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// The README's walkthrough, with the AWS CLI and the files it names: the
// task role, the worker, a service of three that protect themselves, and
// scale-in held back by their protection until they are released.
func TestREADMEWalkthrough(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	if _, err := exec.LookPath("aws"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the AWS CLI is not installed (.ci/run installs it)")
		}
		t.Skip("the AWS CLI is not installed")
	}
	s := startUp(t)
	ctx := context.Background()
	s.awsCLI(t, "ecs", "list-clusters")
	s.awsCLI(t, "iam", "create-role", "--role-name", "queue-worker",
		"--assume-role-policy-document", "file://examples/walkthrough/task-role-trust.json")
	s.awsCLI(t, "iam", "put-role-policy", "--role-name", "queue-worker", "--policy-name", "task-protection",
		"--policy-document", "file://examples/walkthrough/task-protection-policy.json")
	s.awsCLI(t, "ecs", "register-task-definition", "--cli-input-json", "file://examples/walkthrough/worker.json")
	s.awsCLI(t, "ecs", "create-service", "--service-name", "worker", "--task-definition", "queue-worker", "--desired-count", "3")

	var tasks []string
	eventually(t, deadline, "three tasks protected by themselves", func() (bool, string) {
		out, err := s.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(clusterName), ServiceName: aws.String("worker")})
		if err != nil || len(out.TaskArns) != 3 {
			return false, "not three tasks yet"
		}
		tasks = out.TaskArns
		n := 0
		for _, p := range s.getProtection(t, tasks...) {
			if p.ProtectionEnabled {
				n++
			}
		}
		return n == 3, "protected: " + string(rune('0'+n))
	})
	for _, a := range tasks {
		// What curl printed: the endpoint's answer.
		eventually(t, deadline, "task "+a+" logs its protection", func() (bool, string) {
			logs, err := os.ReadFile(filepath.Join(s.dataDir, "agent", "logs", a[strings.LastIndex(a, "/")+1:], "worker.log"))
			return err == nil && strings.Contains(string(logs), `{"protection":{"ExpirationDate":"`), string(logs)
		})
	}

	s.awsCLI(t, "ecs", "update-service", "--service", "worker", "--desired-count", "0")
	eventually(t, deadline, "the 'tasks under protection' event", func() (bool, string) {
		var msg string
		_ = json.Unmarshal([]byte(s.awsCLI(t, "ecs", "describe-services", "--services", "worker", "--query", "services[0].events[0].message")), &msg)
		return strings.Contains(msg, "was unable to scale in due to (reason 3 tasks under protection)"), msg
	})
	for _, a := range tasks {
		s.awsCLI(t, "ecs", "update-task-protection", "--cluster", "default", "--tasks", a, "--no-protection-enabled")
		if st := s.waitTaskStatus(t, a, "STOPPED"); st.StopCode != "ServiceSchedulerInitiated" {
			t.Errorf("released task %s: stopCode %s", a, st.StopCode)
		}
	}
	s.waitEvent(t, "worker", "(service worker) has reached a steady state.")
}
