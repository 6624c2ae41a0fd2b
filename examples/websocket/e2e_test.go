package main

// End-to-end test of the WebSocket example through real binaries: the real
// `holdfast up`, the server binary as a task process, and a real client,
// driven by demo.sh. Skipped under -short.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdfastUp builds and runs the real `holdfast up`; it returns the API URL
// and the data dir.
func holdfastUp(t *testing.T) (endpoint, dataDir string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "holdfast")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/holdfast/holdfast/cmd/holdfast").CombinedOutput(); err != nil {
		t.Fatalf("go build holdfast: %v\n%s", err, b)
	}
	dataDir = t.TempDir()
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "up", "--data-dir", dataDir, "--listen", api, "--agent-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	logf, err := os.Create(filepath.Join(t.TempDir(), "holdfast.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	endpoint = "http://" + api
	waitFor(t, "holdfast up", 60*time.Second, func() bool {
		r, err := http.Get(endpoint + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	return endpoint, dataDir
}

var logLine = regexp.MustCompile(`^(\S+)    (.*)$`)

type entry struct {
	at  time.Time
	msg string
}

func readLog(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m[1])
		if err != nil {
			t.Fatalf("bad timestamp in %q", sc.Text())
		}
		out = append(out, entry{at, m[2]})
	}
	return out
}

// TestDemo runs demo.sh against the real `holdfast up` with a client that
// stays 3 s, and checks the story: the post's log lines in order, the
// service event, the client not being dropped, and the task stopping within
// 1 s of the release.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped under -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the process runtime is Linux-only")
	}
	endpoint, dataDir := holdfastUp(t)
	work := t.TempDir()
	cmd := exec.Command("bash", "demo.sh", endpoint)
	cmd.Env = append(os.Environ(), "HOLDFAST_DATA_DIR="+dataDir, "DEMO_WORKDIR="+work, "DEMO_CLIENT_SECONDS=3",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	out, err := cmd.CombinedOutput()
	t.Logf("demo.sh output:\n%s", out)
	if err != nil {
		t.Fatalf("demo.sh: %v", err)
	}
	if !regexp.MustCompile(`\(service websocket-\d+\) was unable to reach steady state because \(taskSet ecs-svc/\d{19}\) was unable to scale in due to \(reason 1 tasks under protection\)`).Match(out) {
		t.Fatal("the demo did not show the 'tasks under protection' event")
	}
	m := regexp.MustCompile(`task ([0-9a-f]{32}) is RUNNING`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no task id in the demo output")
	}
	taskID := string(m[1])

	// The post's lines, in order (pings in between).
	want := []string{"New client connection opened. There are 1 connections", "Task protection acquired",
		"received: ping", "Client connection closed. There are 0 connections", "Task protection released"}
	lines := readLog(t, filepath.Join(work, "server.log"))
	i := 0
	var released time.Time
	for _, l := range lines {
		if i < len(want) && l.msg == want[i] {
			i++
			if i == len(want) {
				released = l.at
			}
		}
	}
	if i != len(want) {
		t.Fatalf("server log lacks %q (in order %q); log: %v", want[i], want, lines)
	}
	for _, l := range lines {
		if strings.Contains(l.msg, "rejected") {
			t.Fatalf("unexpected %q", l.msg)
		}
	}

	b, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cr struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(b, &cr); err != nil {
		t.Fatal(err)
	}
	c := ecs.New(ecs.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, "")})
	dt, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("default"), Tasks: []string{taskID}})
	if err != nil || len(dt.Tasks) != 1 {
		t.Fatalf("DescribeTasks: %v", err)
	}
	task := dt.Tasks[0]
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StoppedAt == nil || task.StopCode != "ServiceSchedulerInitiated" {
		t.Fatalf("task %s: status %s stopCode %s", taskID, aws.ToString(task.LastStatus), task.StopCode)
	}
	latency := task.StoppedAt.Sub(released)
	t.Logf("task stopped %v after the server logged 'Task protection released'", latency)
	if latency > time.Second {
		t.Fatalf("the task stopped %v after the release, want within 1s", latency)
	}
}
