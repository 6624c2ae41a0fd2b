package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/agent"
	"github.com/holdfast/holdfast/internal/testutil"
)

// runAgent runs a real agent (real shims) on dir until the test ends or
// stop is called.
func runAgent(t *testing.T, e *hfEnv, dir, shim string) (stop func()) {
	t.Helper()
	ag, err := agent.New(agent.Config{
		Cluster: "c", ServerURL: "http://" + e.addr, Listen: testutil.FreeAddr(t), DataDir: dir,
		Region: hfRegion, AccessKeyID: hfKeyID, SecretAccessKey: hfSecret,
		Shim: []string{shim, "shim"}, PollWait: time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ag.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	<-ag.Ready()
	return stop
}

// An agent that died in the middle of starting a task (its record says
// PENDING, the container was never started) starts it when it comes back,
// instead of leaving it PENDING for ever.
func TestAgentResumesUnfinishedStart(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	shim := testutil.BuildHoldfast(t)
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	dir := t.TempDir()
	stop := runAgent(t, e, dir, shim)
	out := must(e.ecs.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("resume"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String("busybox"), Command: []string{"sleep", "60"},
		}},
	}))
	r := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: out.TaskDefinition.TaskDefinitionArn}))
	arn := aws.ToString(r.Tasks[0].TaskArn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	testutil.EventuallyTrue(t, 20*time.Second, 20*time.Millisecond, "task RUNNING", func() bool {
		return aws.ToString(e.task("c", arn).LastStatus) == "RUNNING"
	})
	stop()

	// Make it look as if the agent died before starting the container:
	// no process, no runtime state, the record back at PENDING.
	recPath := filepath.Join(dir, "tasks", id+".json")
	var rec map[string]any
	b, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	c := rec["containers"].([]any)[0].(map[string]any)
	oldPID := int(c["pid"].(float64))
	runtimeDir := filepath.Join(dir, "containers", c["runtimeId"].(string))
	// Kill the task's process group, then wait for its shim (recorded in
	// the runtime's state.json) to finish, before erasing the runtime state.
	var st struct {
		ShimPID int `json:"shimPid"`
	}
	if b, err := os.ReadFile(filepath.Join(runtimeDir, "state.json")); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	_ = syscall.Kill(-oldPID, syscall.SIGKILL)
	testutil.EventuallyTrue(t, 10*time.Second, 20*time.Millisecond, "old process and shim gone", func() bool {
		return syscall.Kill(oldPID, 0) != nil && (st.ShimPID == 0 || syscall.Kill(st.ShimPID, 0) != nil)
	})
	if err := os.RemoveAll(runtimeDir); err != nil {
		t.Fatal(err)
	}
	rec["knownStatus"] = "PENDING"
	rec["reported"] = "PENDING"
	c["status"] = "PENDING"
	delete(c, "pid")
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(recPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	runAgent(t, e, dir, shim)
	var newPID int
	testutil.EventuallyTrue(t, 20*time.Second, 50*time.Millisecond, "the container started again", func() bool {
		b, err := os.ReadFile(recPath)
		if err != nil {
			return false
		}
		var now struct {
			KnownStatus string `json:"knownStatus"`
			Containers  []struct {
				PID    int    `json:"pid"`
				Status string `json:"status"`
			} `json:"containers"`
		}
		if json.Unmarshal(b, &now) != nil || len(now.Containers) != 1 {
			return false
		}
		newPID = now.Containers[0].PID
		return now.KnownStatus == "RUNNING" && now.Containers[0].Status == "RUNNING" && newPID != 0 && newPID != oldPID
	})
	if err := syscall.Kill(newPID, 0); err != nil {
		t.Fatalf("restarted process %d is not alive: %v", newPID, err)
	}
	if got := aws.ToString(e.task("c", arn).LastStatus); got != "RUNNING" {
		t.Fatalf("control plane sees %s", got)
	}
	must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(arn)}))
	testutil.EventuallyTrue(t, 20*time.Second, 20*time.Millisecond, "task STOPPED", func() bool {
		return aws.ToString(e.task("c", arn).LastStatus) == "STOPPED"
	})
}
