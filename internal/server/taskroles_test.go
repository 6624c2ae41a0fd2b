package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/testutil"
)

const (
	trustTasks = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	// protectSelf is what the AWS CDK's grantTaskProtection grants.
	protectSelf = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"*"}]}`
)

func cannotAssume(role string) string {
	return "ECS was unable to assume the role '" + role + "' that was provided for this task. Please verify that the role being " +
		"passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
}

// taskDefWithRole registers a task definition whose tasks run as role.
func (e *hfEnv) taskDefWithRole(family, role string) string {
	e.t.Helper()
	out := must(e.ecs.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family),
		TaskRoleArn: aws.String(role),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Essential: aws.Bool(true), Command: []string{"sleep", "3600"},
		}},
	}))
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// Starting tasks with a task role needs iam:PassRole on it, and the role
// must trust ecs-tasks.amazonaws.com: RunTask (and its taskRoleArn
// override), CreateService and UpdateService are refused otherwise, with
// AccessDeniedException or ECS's ClientException, and start nothing.
func TestTaskRolePassRoleAndTrust(t *testing.T) {
	e := hfStart(t, hfOpts{})
	e.cluster("c")
	e.instance("c", "az-1")
	good := e.iamRole("worker", trustTasks, protectSelf)
	untrusting := e.iamRole("admin", trustAccount, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	ghost := "arn:aws:iam::" + hfAccount + ":role/ghost"
	tdGood := e.taskDefWithRole("good", good)
	tdUntrusting := e.taskDefWithRole("untrusting", untrusting)
	tdGhost := e.taskDefWithRole("ghost", ghost)
	tdNone := e.taskDef("plain")

	// The root passes any role ECS can assume, and no other.
	must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdGood)}))
	for td, role := range map[string]string{tdUntrusting: untrusting, tdGhost: ghost} {
		_, err := e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)})
		wantAPIError(t, err, "ClientException", cannotAssume(role), true)
		_, err = e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("svc"),
			TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)})
		wantAPIError(t, err, "ClientException", cannotAssume(role), true)
	}
	_, err := e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdNone),
		Overrides: &types.TaskOverride{TaskRoleArn: aws.String(untrusting)}})
	wantAPIError(t, err, "ClientException", cannotAssume(untrusting), true)

	// A user allowed ECS but not iam:PassRole.
	deployer := e.iamUser("deployer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}`)
	const deployerARN = "arn:aws:iam::" + hfAccount + ":user/deployer"
	_, err = deployer.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdGood)})
	wantDenied(t, err, deployerARN, "iam:PassRole", good, false)
	_, err = deployer.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdNone),
		Overrides: &types.TaskOverride{TaskRoleArn: aws.String(good)}})
	wantDenied(t, err, deployerARN, "iam:PassRole", good, false)
	_, err = deployer.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("good"), DesiredCount: aws.Int32(1)})
	wantDenied(t, err, deployerARN, "iam:PassRole", good, false)
	// Without a role nothing is passed.
	must(deployer.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(tdNone), DesiredCount: aws.Int32(0)}))
	_, err = deployer.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("web"),
		TaskDefinition: aws.String(tdGood)})
	wantDenied(t, err, deployerARN, "iam:PassRole", good, false)
	must(deployer.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("web"),
		DesiredCount: aws.Int32(0)}))
	if sv := e.describeService("c", "web"); aws.ToString(sv.TaskDefinition) != tdNone {
		t.Fatalf("a refused UpdateService changed the task definition to %s", aws.ToString(sv.TaskDefinition))
	}
	if n := len(e.listTasks(&ecs.ListTasksInput{Cluster: aws.String("c")})); n != 1 {
		t.Fatalf("%d tasks, want only the root's one: refused calls started tasks", n)
	}

	// iam:PassRole for ECS tasks only (iam:PassedToService), on that role.
	must(e.rootIAM().PutUserPolicy(e.ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("deployer"), PolicyName: aws.String("pass"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"` + good + `",
			"Condition":{"StringEquals":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}}]}`)}))
	must(deployer.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdGood)}))
	must(deployer.ecs.UpdateService(e.ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("web"),
		TaskDefinition: aws.String(tdGood)}))
	_, err = deployer.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(tdUntrusting)})
	wantDenied(t, err, deployerARN, "iam:PassRole", untrusting, false)

}

// getTaskCredentials calls the agent protocol's GetTaskCredentials as the
// root and returns the status and the decoded answer or error.
func (e *hfEnv) getTaskCredentials(cluster, instance, task string) (int, agentapi.TaskCredentialsOutput, hfWireError) {
	e.t.Helper()
	body, _ := json.Marshal(agentapi.TaskCredentialsInput{Cluster: cluster, ContainerInstanceARN: instance, TaskARN: task})
	status, b := hfRaw(e.t, e.addr, agentapi.TaskCredentialsTarget, body)
	var out agentapi.TaskCredentialsOutput
	var we hfWireError
	if status == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("GetTaskCredentials answer %s: %v", b, err)
		}
	} else {
		_ = json.Unmarshal(b, &we)
	}
	return status, out, we
}

// The agent of the instance a task runs on gets a session of the task's
// role named after the task id: it is the assumed role on STS and ECS,
// allowed what the role allows and nothing else; no other instance gets
// it, nor a task without a role or after it stopped, nor a role that no
// longer trusts ECS tasks; and it expires.
func TestTaskCredentials(t *testing.T) {
	clk := clock.NewFake(time.Now())
	e := hfStart(t, hfOpts{IdentityClock: clk, TaskCredentialsDuration: 10 * time.Minute})
	e.cluster("c")
	inst := e.instance("c", "az-1")
	other := e.instance("c", "az-1")
	role := e.iamRole("worker", trustTasks, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"arn:aws:ecs:*:*:task/c/*"}]}`)
	e.service("c", "svc", e.taskDefWithRole("worker", role), 2)
	tasks := e.waitServiceTasks("c", "svc", 2)
	mine := map[string]bool{}
	for _, a := range tasks {
		e.report("c", a, "RUNNING")
		tk := e.task("c", a)
		mine[a] = aws.ToString(tk.ContainerInstanceArn) == inst
	}
	var task, elsewhere string
	for _, a := range tasks {
		if mine[a] {
			task = a
		} else {
			elsewhere = a
		}
	}
	if task == "" || elsewhere == "" {
		t.Fatalf("want one task on each instance: %v", mine)
	}

	status, c, we := e.getTaskCredentials("c", inst, task)
	if status != 200 || c.RoleARN != role || c.AccessKeyID == "" || c.SessionToken == "" {
		t.Fatalf("GetTaskCredentials: %d %+v %+v", status, c, we)
	}
	if d := c.Expiration.Sub(clk.Now()); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("the session lasts %v, want 10 minutes", d)
	}
	creds := testutil.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	id := must(testutil.STSClient(e.url(), creds).GetCallerIdentity(e.ctx, &sts.GetCallerIdentityInput{}))
	sessionARN := "arn:aws:sts::" + hfAccount + ":assumed-role/worker/" + shortID(task)
	if aws.ToString(id.Arn) != sessionARN {
		t.Fatalf("the task's identity is %s, want %s", aws.ToString(id.Arn), sessionARN)
	}
	asTask := e.fixture(creds)
	out := must(asTask.ecs.UpdateTaskProtection(e.ctx, &ecs.UpdateTaskProtectionInput{Cluster: aws.String("c"), Tasks: []string{task},
		ProtectionEnabled: true}))
	if len(out.ProtectedTasks) != 1 || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("protect as the task role: %+v", out)
	}
	_, err := asTask.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(task)})
	wantDenied(t, err, sessionARN, "ecs:StopTask", task, false)

	// Another instance's agent, and a task without a role, get nothing.
	status, _, we = e.getTaskCredentials("c", other, task)
	if status != 400 || we.Type != "ClientException" || we.Message != "The task is not running on this container instance." {
		t.Fatalf("another instance: %d %+v", status, we)
	}
	plain := must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(e.taskDef("plain"))}))
	pt := plain.Tasks[0]
	status, _, we = e.getTaskCredentials("c", aws.ToString(pt.ContainerInstanceArn), aws.ToString(pt.TaskArn))
	if status != 400 || we.Type != "ClientException" || we.Message != "The task has no task role." {
		t.Fatalf("a task without a role: %d %+v", status, we)
	}

	// A role that stops trusting ECS tasks gets no more sessions.
	must(e.rootIAM().UpdateAssumeRolePolicy(e.ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("worker"),
		PolicyDocument: aws.String(trustAccount)}))
	status, _, we = e.getTaskCredentials("c", inst, task)
	if status != 400 || we.Type != "ClientException" || we.Message != cannotAssume(role) {
		t.Fatalf("a role that no longer trusts ECS tasks: %d %+v", status, we)
	}
	must(e.rootIAM().UpdateAssumeRolePolicy(e.ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("worker"),
		PolicyDocument: aws.String(trustTasks)}))

	// The session expires (the identity clock stays within SigV4's window).
	clk.Advance(10 * time.Minute)
	_, err = asTask.ecs.GetTaskProtection(e.ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String("c"), Tasks: []string{task}})
	wantAPIError(t, err, "ExpiredTokenException", "The security token included in the request is expired", true)

	// A stopped task gets no more credentials.
	must(e.ecs.StopTask(e.ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(task)}))
	e.report("c", task, "STOPPED")
	status, _, we = e.getTaskCredentials("c", inst, task)
	if status != 400 || we.Message != "The task is not running on this container instance." {
		t.Fatalf("a stopped task: %d %+v", status, we)
	}

}
