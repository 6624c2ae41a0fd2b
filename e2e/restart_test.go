package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestAgentKill9AndRestart: tasks survive a SIGKILLed agent, and the
// restarted agent (same data dir) still tracks them, serves their endpoint
// ids and stops them.
func TestAgentKill9AndRestart(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startSplit(t)
	td, dir := s.taskDef(t, "agent-restart")
	s.createService(t, "survivors", td, 2)
	tasks := s.waitTasks(t, dir, 2)

	s.agent.Kill9(t, deadline)
	// Tasks keep running without their agent (they live under shims in
	// their own sessions).
	time.Sleep(300 * time.Millisecond) // let any wrongly propagated signal land
	s.requireUndisturbed(t, tasks, "did not survive the agent's SIGKILL")

	s.startAgent(t)
	for _, k := range tasks {
		if !s.undisturbed(k) {
			t.Fatalf("task %d was stopped by the agent restart", k.pid)
		}
		if got := s.describeTask(t, k.arn); aws.ToString(got.LastStatus) != "RUNNING" || aws.ToString(got.DesiredStatus) != "RUNNING" {
			t.Errorf("task %s after agent restart: last %s desired %s", k.arn, aws.ToString(got.LastStatus), aws.ToString(got.DesiredStatus))
		}
		// The endpoint id in the task's environment still resolves, to
		// this task.
		r := s.do(t, http.MethodGet, k.stateURL(), "")
		testutil.ExpectReply(t, "GET after agent restart", r, 200, "application/json", unprotectedBody(k.arn))
	}
	// Still exactly these two tasks: the restart started no replacements.
	list, err := s.ecs.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(clusterName)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) != 2 {
		t.Errorf("after agent restart the cluster has %d tasks, want 2: %v", len(list.TaskArns), list.TaskArns)
	}

	// The adopted task is still stoppable, with its exit code reported.
	victim := tasks[0]
	if _, err := s.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String(clusterName),
		Task: aws.String(victim.arn), Reason: aws.String("e2e: stop an adopted task")}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	waitFile(t, victim.file(".term"))
	got := s.waitTaskStatus(t, victim.arn, "STOPPED")
	if got.StopCode != "UserInitiated" {
		t.Errorf("stopCode %q, want UserInitiated", got.StopCode)
	}
	if len(got.Containers) != 1 || got.Containers[0].ExitCode == nil {
		t.Fatalf("stopped adopted task has no container exit code: %+v", got.Containers)
	}
	if code := *got.Containers[0].ExitCode; code != 0 {
		t.Errorf("exit code %d, want 0 (the script exits 0 on SIGTERM)", code)
	}
	eventually(t, deadline, "the stopped task's process to be gone", func() (bool, string) {
		return !s.alive(victim.pid), ""
	})
	if !s.alive(tasks[1].pid) {
		t.Errorf("the other task %d died", tasks[1].pid)
	}
}

// TestServerKill9AndRestart: a SIGKILLed control plane comes back from its
// data dir with the tasks and their protection intact, and the task
// processes are never stopped.
func TestServerKill9AndRestart(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	serverKill9AndRestart(t)
}

// TestServerKill9AndRestartOnEtcd: the same with the control plane's state
// in etcd (`--store etcd`): the agent protocol, protection and the restart
// work on etcd's revisions, and the restarted server waits for the killed
// one's owner lock to expire.
func TestServerKill9AndRestartOnEtcd(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	serverKill9AndRestart(t, "--store", "etcd", "--etcd-endpoints", etcdServer.Endpoint(),
		"--etcd-prefix", fmt.Sprintf("/e2e/%s/%d/", t.Name(), time.Now().UnixNano()))
}

func serverKill9AndRestart(t *testing.T, serverArgs ...string) {
	s := startSplit(t, serverArgs...)
	td, dir := s.taskDef(t, "server-restart")
	s.createService(t, "durable", td, 2)
	tasks := s.waitTasks(t, dir, 2)

	// One protects itself through its endpoint, one is protected by the API.
	touch(t, tasks[0].file(".protect"))
	if body := waitFile(t, tasks[0].file(".protected")); !protectedBodyRe(tasks[0].arn).MatchString(body) {
		t.Fatalf("self-protection answer: %s", body)
	}
	s.setProtection(t, true, tasks[1].arn)
	before := s.getProtection(t, tasks[0].arn, tasks[1].arn)

	s.main.Kill9(t, deadline)
	s.startServer(t)

	after := s.getProtection(t, tasks[0].arn, tasks[1].arn)
	for _, k := range tasks {
		b, a := before[k.arn], after[k.arn]
		if !a.ProtectionEnabled || a.ExpirationDate == nil || b.ExpirationDate == nil || !a.ExpirationDate.Equal(*b.ExpirationDate) {
			t.Errorf("task %s protection before %v %v, after restart %v %v", k.arn,
				b.ProtectionEnabled, b.ExpirationDate, a.ProtectionEnabled, a.ExpirationDate)
		}
		if got := s.describeTask(t, k.arn); aws.ToString(got.LastStatus) != "RUNNING" || aws.ToString(got.DesiredStatus) != "RUNNING" {
			t.Errorf("task %s after restart: last %s desired %s", k.arn, aws.ToString(got.LastStatus), aws.ToString(got.DesiredStatus))
		}
	}
	// The agent reconnects: the endpoint answers through the new server.
	for _, k := range tasks {
		var r testutil.Reply
		eventually(t, deadline, "the task endpoint to reach the restarted server", func() (bool, string) {
			r = s.do(t, http.MethodGet, k.stateURL(), "")
			return r.Status == 200, r.Body
		})
		if !protectedBodyRe(k.arn).MatchString(r.Body) {
			t.Errorf("GET after server restart: %s", r.Body)
		}
	}
	for _, k := range tasks {
		if !s.undisturbed(k) {
			t.Errorf("task %d was stopped across the control-plane restart", k.pid)
		}
	}
	list, err := s.ecs.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(clusterName)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) != 2 {
		t.Errorf("after the restart the cluster has %d tasks, want 2: %v", len(list.TaskArns), list.TaskArns)
	}
}

// TestControlPlaneDown504: with the control plane gone, a protection call
// through the task endpoint answers 504 RequestCanceled after the 4 s
// budget, and the task keeps running.
func TestControlPlaneDown504(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startSplit(t)
	td, dir := s.taskDef(t, "cp-down")
	s.createService(t, "lonely", td, 1)
	k := s.waitTasks(t, dir, 1)[0]

	if !s.main.Stop(os.Interrupt, 10*time.Second) {
		t.Fatal("the server did not exit on SIGINT")
	}
	start := time.Now()
	r := s.do(t, http.MethodPut, k.stateURL(), `{"ProtectionEnabled":true}`)
	took := time.Since(start)
	t.Logf("PUT with the control plane down answered %d after %v", r.Status, took)
	testutil.ExpectReply(t, "PUT with the control plane down", r, 504, "application/json",
		`{"error":{"Arn":"`+k.arn+`","Code":"RequestCanceled","Message":"Timed out calling ECS Task Protection API"}}`)
	if took < 3500*time.Millisecond || took > 10*time.Second {
		t.Errorf("the 504 came after %v, want about 4 s (3.5 s - 10 s)", took)
	}
	start = time.Now()
	r = s.do(t, http.MethodGet, k.stateURL(), "")
	took = time.Since(start)
	t.Logf("GET with the control plane down answered %d after %v", r.Status, took)
	testutil.ExpectReply(t, "GET with the control plane down", r, 504, "application/json",
		`{"error":{"Arn":"`+k.arn+`","Code":"RequestCanceled","Message":"Timed out calling ECS Task Protection API"}}`)
	if took < 3500*time.Millisecond || took > 10*time.Second {
		t.Errorf("the 504 came after %v, want about 4 s (3.5 s - 10 s)", took)
	}
	if !s.undisturbed(k) {
		t.Fatalf("task %d stopped while the control plane was down", k.pid)
	}

	// Back up: the task is still running and tracked.
	s.startServer(t)
	eventually(t, deadline, "the endpoint to work again", func() (bool, string) {
		r = s.do(t, http.MethodGet, k.stateURL(), "")
		return r.Status == 200, r.Body
	})
	testutil.ExpectReply(t, "GET after the control plane returned", r, 200, "application/json", unprotectedBody(k.arn))
	if !s.undisturbed(k) {
		t.Fatalf("task %d stopped after the control plane returned", k.pid)
	}
}

// TestUpCtrlCAndRestart: Ctrl-C (SIGINT) stops `holdfast up` cleanly and
// leaves its tasks running; `holdfast up` again on the same data dir
// resumes everything: the same tasks, still protected, still reachable
// through their endpoint ids, with no replacements.
func TestUpCtrlCAndRestart(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	td, dir := s.taskDef(t, "up-restart")
	s.createService(t, "resumed", td, 2)
	tasks := s.waitTasks(t, dir, 2)
	prot := s.setProtection(t, true, tasks[0].arn)
	until := aws.ToTime(prot.ProtectedTasks[0].ExpirationDate)

	if !s.main.Stop(os.Interrupt, 10*time.Second) {
		t.Fatal("holdfast up did not exit within 10 s of SIGINT")
	}
	s.requireUndisturbed(t, tasks, "did not outlive holdfast up")

	s.startServer(t)
	for _, k := range tasks {
		if !s.undisturbed(k) {
			t.Fatalf("task %d was stopped by the restart", k.pid)
		}
		if got := s.describeTask(t, k.arn); aws.ToString(got.LastStatus) != "RUNNING" {
			t.Errorf("task %s after restart: %s", k.arn, aws.ToString(got.LastStatus))
		}
		if r := s.do(t, http.MethodGet, k.stateURL(), ""); r.Status != 200 {
			t.Errorf("endpoint of %s after restart: %d %s", k.arn, r.Status, r.Body)
		}
	}
	got, err := s.ecs.GetTaskProtection(context.Background(), &ecs.GetTaskProtectionInput{Cluster: aws.String(clusterName), Tasks: []string{tasks[0].arn}})
	if err != nil || len(got.ProtectedTasks) != 1 || !got.ProtectedTasks[0].ProtectionEnabled || !aws.ToTime(got.ProtectedTasks[0].ExpirationDate).Equal(until) {
		t.Fatalf("protection after restart: %+v %v, want enabled until %v", got, err, until)
	}
	list, err := s.ecs.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(clusterName)})
	if err != nil || len(list.TaskArns) != 2 {
		t.Fatalf("after restart: %v %v, want the same 2 tasks", list, err)
	}
}
