package server_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/agent"
	"github.com/holdfast/holdfast/internal/testutil"
)

// A task that is stopped before its agent ever started it (scaled in while
// PROVISIONING, or StopTask, while the agent was restarting) comes down to
// the agent with desiredStatus STOPPED. Nothing runs, but only the agent can
// move it to STOPPED: it must report it, or the task stays PROVISIONING
// forever (and a DRAINING service never becomes INACTIVE).
func TestReviewTaskStoppedBeforeAgentSawIt(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	inst := e.instance("c", "az-a") // registered; its agent is away
	td := e.taskDef("web")
	r := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)}))
	arn := aws.ToString(r.Tasks[0].TaskArn)
	must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(arn)}))

	// The agent comes back (same instance ARN, as after a restart).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "instance-arn"), []byte(inst+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{
		Cluster: "c", ServerURL: "http://" + e.addr, Listen: "127.0.0.1:1", DataDir: dir,
		Region: hfRegion, AccessKeyID: hfKeyID, SecretAccessKey: hfSecret,
		Shim: []string{"/bin/true"}, PollWait: time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ag.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-ag.Ready()

	testutil.EventuallyTrue(t, 10*time.Second, 20*time.Millisecond, "task reported STOPPED", func() bool {
		return aws.ToString(e.task("c", arn).LastStatus) == "STOPPED"
	})
	if got := e.task("c", arn); aws.ToString(got.StoppedReason) != "Task stopped by user" {
		t.Fatalf("stoppedReason %q", aws.ToString(got.StoppedReason))
	}
}
