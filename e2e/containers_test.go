package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestNonEssentialContainerExit: a non-essential container that exits
// leaves its task running, with the container's exit code reported; when
// the essential container exits, the task stops with
// EssentialContainerExited.
func TestNonEssentialContainerExit(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	ctx := context.Background()
	_, err := s.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("sidecar"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: aws.String("init"), Image: aws.String("busybox"), Essential: aws.Bool(false),
				EntryPoint: []string{"/bin/sh", "-c"}, Command: []string{"sleep 0.5; exit 3"}},
			{Name: aws.String("main"), Image: aws.String("busybox"), Essential: aws.Bool(true),
				EntryPoint: []string{"/bin/sh", "-c"}, Command: []string{"sleep 3; exit 5"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(clusterName), TaskDefinition: aws.String("sidecar")})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	container := func(tk ecstypes.Task, name string) ecstypes.Container {
		for _, c := range tk.Containers {
			if aws.ToString(c.Name) == name {
				return c
			}
		}
		t.Fatalf("no container %s in %+v", name, tk.Containers)
		return ecstypes.Container{}
	}
	// The init container exits at once; the task must still be RUNNING
	// while main sleeps.
	eventually(t, 20*time.Second, "init container reported exited", func() (bool, string) {
		tk := s.describeTask(t, arn)
		c := container(tk, "init")
		if aws.ToString(tk.LastStatus) == "STOPPED" {
			t.Fatalf("task stopped when a non-essential container exited: %s", aws.ToString(tk.StoppedReason))
		}
		return c.ExitCode != nil && aws.ToString(tk.LastStatus) == "RUNNING", aws.ToString(c.LastStatus)
	})
	tk := s.waitTaskStatus(t, arn, "STOPPED")
	if got := string(tk.StopCode); got != string(ecstypes.TaskStopCodeEssentialContainerExited) {
		t.Errorf("stopCode = %q, want EssentialContainerExited", got)
	}
	if c := container(tk, "init"); c.ExitCode == nil || *c.ExitCode != 3 {
		t.Errorf("init exit code = %v, want 3", c.ExitCode)
	}
	if c := container(tk, "main"); c.ExitCode == nil || *c.ExitCode != 5 {
		t.Errorf("main exit code = %v, want 5", c.ExitCode)
	}
}

// TestStoppingIsReported: a task that takes its time to exit after SIGTERM
// shows lastStatus STOPPING until its process is gone, then STOPPED.
func TestStoppingIsReported(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	ctx := context.Background()
	_, err := s.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("slowstop"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String("busybox"), Essential: aws.Bool(true), StopTimeout: aws.Int32(10),
			EntryPoint: []string{"/bin/sh", "-c"},
			Command:    []string{"trap 'sleep 2; exit 0' TERM; while :; do sleep 0.1; done"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(clusterName), TaskDefinition: aws.String("slowstop")})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	s.waitTaskStatus(t, arn, "RUNNING")
	if _, err := s.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(clusterName), Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	s.waitTaskStatus(t, arn, "STOPPING")
	tk := s.waitTaskStatus(t, arn, "STOPPED")
	if tk.Containers[0].ExitCode == nil || *tk.Containers[0].ExitCode != 0 {
		t.Errorf("exit code = %v, want 0 (the trap's)", tk.Containers[0].ExitCode)
	}
}
