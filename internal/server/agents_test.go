package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/testutil"
)

// agentCall is one agent-protocol call signed with c: status and body.
func (e *hfEnv) agentCall(c testutil.Credentials, target string, in any) (int, hfWireError, []byte) {
	e.t.Helper()
	body, _ := json.Marshal(in)
	status, b := hfRawAs(e.t, e.addr, target, body, c)
	var we hfWireError
	if status != http.StatusOK {
		_ = json.Unmarshal(b, &we)
	}
	return status, we, b
}

// registerAs registers a container instance in cluster as c (naming arn
// when re-registering) and returns the answer.
func (e *hfEnv) registerAs(c testutil.Credentials, cluster, arn string) (int, hfWireError, agentapi.RegisterOutput) {
	e.t.Helper()
	in := map[string]any{"cluster": cluster}
	if arn != "" {
		in["containerInstanceArn"] = arn
	}
	status, we, b := e.agentCall(c, ecsTarget+"RegisterContainerInstance", in)
	var out agentapi.RegisterOutput
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatal(err)
		}
	}
	return status, we, out
}

// Agents do not hold the root's keys: the agents' bootstrap identity may
// only register instances; each instance registered with it gets its own
// identity, which may speak the agent protocol for that instance only
// (polls, its tasks' reports and credentials, its re-registration); a
// deregistered instance's identity is deleted.
func TestAgentIdentities(t *testing.T) {
	dir := t.TempDir()
	e := hfStart(t, hfOpts{DataDir: dir})
	e.cluster("c")
	id, secret, created, err := e.srv.AgentCredentials(e.ctx)
	if err != nil || !created {
		t.Fatalf("AgentCredentials: %v created=%v", err, created)
	}
	fi, err := os.Stat(filepath.Join(dir, "agent-credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent-credentials.json: %v %v", fi, err)
	}
	if id2, _, again, err := e.srv.AgentCredentials(e.ctx); err != nil || again || id2 != id {
		t.Fatalf("AgentCredentials again: %s %v %v, want the saved %s", id2, again, err, id)
	}
	bootstrap := testutil.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	const bootstrapARN = "arn:aws:iam::" + hfAccount + ":user/holdfast/holdfast-agent"

	// Two agents register with the bootstrap identity; each gets its own.
	status, we, a := e.registerAs(bootstrap, "c", "")
	if status != 200 || a.AgentCredentials == nil {
		t.Fatalf("register a: %d %+v %+v", status, we, a)
	}
	status, we, b := e.registerAs(bootstrap, "c", "")
	if status != 200 || b.AgentCredentials == nil || b.AgentCredentials.AccessKeyID == a.AgentCredentials.AccessKeyID {
		t.Fatalf("register b: %d %+v %+v", status, we, b)
	}
	agentA := testutil.Credentials{AccessKeyID: a.AgentCredentials.AccessKeyID, SecretAccessKey: a.AgentCredentials.SecretAccessKey}
	agentB := testutil.Credentials{AccessKeyID: b.AgentCredentials.AccessKeyID, SecretAccessKey: b.AgentCredentials.SecretAccessKey}
	instA, instB := a.ContainerInstance.ContainerInstanceARN, b.ContainerInstance.ContainerInstanceARN
	agentAARN := "arn:aws:iam::" + hfAccount + ":user/holdfast/agents/agent-" + shortID(instA)
	users := must(e.rootIAM().ListUsers(e.ctx, &awsiam.ListUsersInput{PathPrefix: aws.String("/holdfast/agents/")}))
	if len(users.Users) != 2 {
		t.Fatalf("agent identities: %+v", users.Users)
	}

	// The bootstrap identity may do nothing else.
	status, we, _ = e.agentCall(bootstrap, agentapi.PollTarget, agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instA})
	if status != 400 || we.Type != "AccessDeniedException" || !strings.HasPrefix(we.Message, "User: "+bootstrapARN+" is not authorized to perform: ecs:Poll") {
		t.Fatalf("poll as the bootstrap identity: %d %+v", status, we)
	}
	boot := e.fixture(bootstrap)
	_, err = boot.ecs.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantDenied(t, err, bootstrapARN, "ecs:ListClusters", "*", false)

	// Each instance's identity speaks for its own instance only.
	role := e.iamRole("worker", trustTasks, protectSelf)
	td := e.taskDefWithRole("worker", role)
	e.service("c", "svc", td, 2)
	tasks := e.waitServiceTasks("c", "svc", 2)
	taskOn := map[string]string{}
	for _, tk := range tasks {
		taskOn[aws.ToString(e.task("c", tk).ContainerInstanceArn)] = tk
	}
	if taskOn[instA] == "" || taskOn[instB] == "" {
		t.Fatalf("want a task on each instance: %v", taskOn)
	}
	if status, we, _ := e.agentCall(agentA, agentapi.PollTarget, agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instA}); status != 200 {
		t.Fatalf("a polls its instance: %d %+v", status, we)
	}
	status, we, _ = e.agentCall(agentA, agentapi.PollTarget, agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instB})
	if status != 400 || we.Type != "AccessDeniedException" || !strings.HasPrefix(we.Message, "User: "+agentAARN+" is not authorized to perform: ecs:Poll on resource: "+instB) {
		t.Fatalf("a polls b's instance: %d %+v", status, we)
	}
	status, we, _ = e.agentCall(agentA, agentapi.SubmitTaskStateChangeTarget, agentapi.SubmitTaskStateChangeInput{Cluster: "c",
		Task: taskOn[instA], Status: "RUNNING"})
	if status != 200 {
		t.Fatalf("a reports its task: %d %+v", status, we)
	}
	status, we, _ = e.agentCall(agentA, agentapi.SubmitTaskStateChangeTarget, agentapi.SubmitTaskStateChangeInput{Cluster: "c",
		Task: taskOn[instB], Status: "STOPPED"})
	if status != 400 || we.Type != "AccessDeniedException" {
		t.Fatalf("a reports b's task: %d %+v", status, we)
	}
	if tk := e.task("c", taskOn[instB]); aws.ToString(tk.LastStatus) == "STOPPED" {
		t.Fatalf("b's task stopped by a's report")
	}
	status, we, _ = e.agentCall(agentA, agentapi.TaskCredentialsTarget, agentapi.TaskCredentialsInput{Cluster: "c",
		ContainerInstanceARN: instA, TaskARN: taskOn[instA]})
	if status != 200 {
		t.Fatalf("a gets its task's credentials: %d %+v", status, we)
	}
	for _, in := range []agentapi.TaskCredentialsInput{
		{Cluster: "c", ContainerInstanceARN: instB, TaskARN: taskOn[instB]}, // naming b's instance
		{Cluster: "c", ContainerInstanceARN: instA, TaskARN: taskOn[instB]}, // naming its own
	} {
		status, we, _ = e.agentCall(agentA, agentapi.TaskCredentialsTarget, in)
		if status != 400 || (we.Type != "AccessDeniedException" && we.Message != "The task is not running on this container instance.") {
			t.Fatalf("a gets b's task's credentials (%+v): %d %+v", in, status, we)
		}
	}
	_, err = e.fixture(agentA).ecs.ListClusters(e.ctx, &ecs.ListClustersInput{})
	wantDenied(t, err, agentAARN, "ecs:ListClusters", "*", false)

	// Re-registration: by the instance's own identity, without new
	// credentials; not by another identity.
	if status, we, again := e.registerAs(agentA, "c", instA); status != 200 || again.AgentCredentials != nil ||
		again.ContainerInstance.ContainerInstanceARN != instA {
		t.Fatalf("a re-registers: %d %+v %+v", status, we, again)
	}
	for who, c := range map[string]testutil.Credentials{"bootstrap": bootstrap, "b": agentB} {
		if status, we, _ := e.registerAs(c, "c", instA); status != 400 || we.Type != "AccessDeniedException" {
			t.Fatalf("%s re-registers a's instance: %d %+v", who, status, we)
		}
	}

	// An instance the root registered is claimed by the first agent
	// identity that registers it.
	rootInst := e.instance("c", "az-1")
	status, we, claimed := e.registerAs(bootstrap, "c", rootInst)
	if status != 200 || claimed.AgentCredentials == nil || claimed.ContainerInstance.ContainerInstanceARN != rootInst {
		t.Fatalf("claim a root-registered instance: %d %+v %+v", status, we, claimed)
	}

	// Deregistering an instance deletes its identity.
	must(e.ecs.DeregisterContainerInstance(e.ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("c"),
		ContainerInstance: aws.String(instA), Force: aws.Bool(true)}))
	status, we, _ = e.agentCall(agentA, agentapi.PollTarget, agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instA})
	if status != 400 || we.Type != "UnrecognizedClientException" {
		t.Fatalf("a deregistered instance's identity: %d %+v", status, we)
	}
}
