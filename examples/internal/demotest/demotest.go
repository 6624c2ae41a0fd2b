// Package demotest runs an example's demo.sh end to end against the real
// `holdfast up` and checks what every demo shows. It is for the examples'
// tests only.
package demotest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/examples/internal/demolog"
	"github.com/holdfast/holdfast/internal/testutil"
)

// Demo is one run of demo.sh.
type Demo struct {
	Up     *testutil.Up // the `holdfast up` it ran against
	Work   string       // its DEMO_WORKDIR
	Output []byte       // its stdout and stderr
	TaskID string       // the id of the service's task
}

// Run starts `holdfast up`, runs demo.sh of the current directory against
// it (credentials from the data dir only, env added), and checks that it
// succeeds, shows the 'tasks under protection' event of its service (named
// service-<seconds>) and names its RUNNING task.
func Run(t *testing.T, service string, env ...string) *Demo {
	t.Helper()
	d := &Demo{Up: testutil.StartUp(t, testutil.UpConfig{}), Work: t.TempDir()}
	cmd := exec.Command("bash", "demo.sh", d.Up.Endpoint)
	cmd.Env = append(os.Environ(), "HOLDFAST_DATA_DIR="+d.Up.DataDir, "DEMO_WORKDIR="+d.Work, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	d.Output = out
	t.Logf("demo.sh output:\n%s", out)
	if err != nil {
		t.Fatalf("demo.sh: %v", err)
	}
	if !regexp.MustCompile(`\(service ` + regexp.QuoteMeta(service) + `-\d+\) was unable to reach steady state because \(taskSet ecs-svc/\d{19}\) was unable to scale in due to \(reason 1 tasks under protection\)`).Match(out) {
		t.Fatal("the demo did not show the 'tasks under protection' event")
	}
	m := regexp.MustCompile(`task ([0-9a-f]{32}) is RUNNING`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no task id in the demo output")
	}
	d.TaskID = string(m[1])
	return d
}

// CheckStoppedAfterRelease checks that the scheduler stopped the demo's
// task within 1 s of released, when the example logged 'Task protection
// released'.
func (d *Demo) CheckStoppedAfterRelease(t *testing.T, released time.Time) {
	t.Helper()
	c := testutil.ECSClient(d.Up.Endpoint, testutil.ReadCredentials(t, d.Up.DataDir))
	dt, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: []string{d.TaskID}})
	if err != nil || len(dt.Tasks) != 1 {
		t.Fatalf("DescribeTasks: %v", err)
	}
	task := dt.Tasks[0]
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StoppedAt == nil || task.StopCode != "ServiceSchedulerInitiated" {
		t.Fatalf("task %s: status %s stopCode %s", d.TaskID, aws.ToString(task.LastStatus), task.StopCode)
	}
	latency := task.StoppedAt.Sub(released)
	t.Logf("task stopped %v after the example logged 'Task protection released' (stoppingAt %v after)", latency, aws.ToTime(task.StoppingAt).Sub(released))
	if latency > time.Second {
		t.Fatalf("the task stopped %v after the release, want within 1s", latency)
	}
}

var logLine = regexp.MustCompile(`^(\S+)    (.*)$`)

// Entry is one line of a demolog log.
type Entry struct {
	At  time.Time
	Msg string
}

// ReadLog reads the lines of a demolog log file (DEMO_LOG).
func ReadLog(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.Parse(demolog.TimeFormat, m[1])
		if err != nil {
			t.Fatalf("bad timestamp in %q", sc.Text())
		}
		out = append(out, Entry{at, m[2]})
	}
	return out
}
