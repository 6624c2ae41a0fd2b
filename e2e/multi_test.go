package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestTwoAgentsInstanceLoss runs a control plane and two agents (two
// "machines" in availability zones a and b): a service spreads over both;
// when agent a is killed and stays silent past the heartbeat timeout, its
// tasks are marked STOPPED (InfrastructureHealth) and replaced on b; when
// agent a comes back it stops the processes it had left running, and new
// tasks go to it again.
func TestTwoAgentsInstanceLoss(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := newSystem(t)
	s.main = s.daemon("holdfast server", "server.log", "server", "--data-dir", s.dataDir, "--listen", s.apiAddr,
		"--heartbeat-timeout", "3s", "--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey)
	agentArgs := func(listen, dir, az string) []string {
		return []string{"agent", "--cluster", clusterName, "--server", "http://" + s.apiAddr, "--listen", listen,
			"--data-dir", dir, "--credentials-file", filepath.Join(s.dataDir, "agent-credentials.json"),
			"--attribute", "availability-zone=" + az}
	}
	s.agent = s.daemon("holdfast agent a", "agent-a.log", agentArgs(s.agentAddr, s.agentDir, "a")...)
	addrB := testutil.FreeAddr(t)
	agentB := s.daemon("holdfast agent b", "agent-b.log", agentArgs(addrB, filepath.Join(s.root, "agent-b"), "b")...)
	s.startServer(t)
	s.startAgent(t)
	agentB.Start(t)
	agentB.WaitHealthy(t, "http://"+addrB+"/healthz", deadline)
	ctx := context.Background()

	// instance id -> availability zone
	azOf := map[string]string{}
	eventually(t, deadline, "two container instances", func() (bool, string) {
		l, err := s.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(clusterName)})
		if err != nil || len(l.ContainerInstanceArns) != 2 {
			return false, fmt.Sprint(l, err)
		}
		d, err := s.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(clusterName), ContainerInstances: l.ContainerInstanceArns})
		if err != nil {
			return false, err.Error()
		}
		for _, ci := range d.ContainerInstances {
			for _, a := range ci.Attributes {
				if aws.ToString(a.Name) == "availability-zone" {
					azOf[aws.ToString(ci.ContainerInstanceArn)] = aws.ToString(a.Value)
				}
			}
		}
		return len(azOf) == 2, fmt.Sprint(azOf)
	})
	running := func() map[string][]ecstypes.Task { // az -> RUNNING tasks
		l, err := s.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(clusterName), ServiceName: aws.String("multi")})
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		out := map[string][]ecstypes.Task{}
		if len(l.TaskArns) == 0 {
			return out
		}
		d, err := s.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(clusterName), Tasks: l.TaskArns})
		if err != nil {
			t.Fatalf("DescribeTasks: %v", err)
		}
		for _, tk := range d.Tasks {
			if aws.ToString(tk.LastStatus) == "RUNNING" {
				az := azOf[aws.ToString(tk.ContainerInstanceArn)]
				out[az] = append(out[az], tk)
			}
		}
		return out
	}
	td, dir := s.taskDef(t, "multi")
	s.createService(t, "multi", td, 4)
	var before map[string][]ecstypes.Task
	eventually(t, deadline, "4 tasks spread 2+2 over a and b", func() (bool, string) {
		before = running()
		return len(before["a"]) == 2 && len(before["b"]) == 2, fmt.Sprintf("a=%d b=%d", len(before["a"]), len(before["b"]))
	})
	livePIDs := func() int {
		n := 0
		files, _ := filepath.Glob(filepath.Join(dir, "*.uri"))
		for _, f := range files {
			if pid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".uri")); err == nil && s.alive(pid) {
				n++
			}
		}
		return n
	}
	eventually(t, deadline, "4 task processes", func() (bool, string) { n := livePIDs(); return n == 4, strconv.Itoa(n) })

	t0 := time.Now()
	t.Logf("spread 2+2")
	// Machine a goes silent.
	s.agent.Kill9(t, 10*time.Second)
	for _, tk := range before["a"] {
		got := s.waitTaskStatus(t, aws.ToString(tk.TaskArn), "STOPPED")
		if string(got.StopCode) != "InfrastructureHealth" {
			t.Errorf("task on the lost instance: stopCode %q, want InfrastructureHealth (%s)", got.StopCode, aws.ToString(got.StoppedReason))
		}
	}
	eventually(t, deadline, "4 tasks running on b", func() (bool, string) {
		now := running()
		return len(now["b"]) == 4 && len(now["a"]) == 0, fmt.Sprintf("a=%d b=%d", len(now["a"]), len(now["b"]))
	})
	t.Logf("replaced on b after %s", time.Since(t0).Round(time.Millisecond))
	// a's two processes are still running: its agent is dead, not its machine.
	if n := livePIDs(); n != 6 {
		t.Errorf("%d task processes while agent a is down, want 6 (4 on b, 2 orphaned on a)", n)
	}

	// Agent a comes back: it stops what the control plane no longer lists.
	s.startAgent(t)
	t.Logf("agent a back after %s", time.Since(t0).Round(time.Millisecond))
	eventually(t, deadline, "a's orphaned processes stopped", func() (bool, string) { n := livePIDs(); return n == 4, strconv.Itoa(n) })
	if _, err := s.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(clusterName), Service: aws.String("multi"), DesiredCount: aws.Int32(6)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, deadline, "the two new tasks placed on a", func() (bool, string) {
		now := running()
		return len(now["a"]) == 2 && len(now["b"]) == 4, fmt.Sprintf("a=%d b=%d", len(now["a"]), len(now["b"]))
	})

	t.Logf("scaled onto a after %s", time.Since(t0).Round(time.Millisecond))
	// Stop the tasks while agent b still runs them (the system's own cleanup
	// knows only agent a), then agent b.
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := testutil.StopAllTasks(sctx, s.ecs, clusterName); err != nil {
		t.Errorf("stopping the tasks: %v", err)
	}
	t.Logf("all stopped after %s", time.Since(t0).Round(time.Millisecond))
	if !agentB.Stop(os.Interrupt, 10*time.Second) {
		t.Errorf("agent b did not exit within 10 s of SIGINT")
	}
}
