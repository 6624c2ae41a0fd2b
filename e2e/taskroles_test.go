package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/holdfast/holdfast/internal/testutil"
)

// createTaskRole creates a role that ECS tasks may assume, with an inline
// policy (none when policy is "").
func (s *system) createTaskRole(t *testing.T, name, policy string) string {
	t.Helper()
	ctx := context.Background()
	c := s.iamClient()
	out, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(taskRoleTrust)})
	if err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
	if policy != "" {
		if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("p"),
			PolicyDocument: aws.String(policy)}); err != nil {
			t.Fatalf("PutRolePolicy %s: %v", name, err)
		}
	}
	return aws.ToString(out.Role.Arn)
}

// runService registers a task definition of one container running argv
// (with env and the task role, if any) and starts a service of one.
func (s *system) runService(t *testing.T, name, role string, env map[string]string, argv ...string) {
	t.Helper()
	ctx := context.Background()
	cd := ecstypes.ContainerDefinition{Name: aws.String("main"), Image: aws.String("busybox"), Essential: aws.Bool(true),
		EntryPoint: argv[:1], Command: argv[1:], StopTimeout: aws.Int32(5)}
	for k, v := range env {
		cd.Environment = append(cd.Environment, ecstypes.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
	}
	in := &ecs.RegisterTaskDefinitionInput{Family: aws.String(name), ContainerDefinitions: []ecstypes.ContainerDefinition{cd}}
	if role != "" {
		in.TaskRoleArn = aws.String(role)
	}
	td, err := s.ecs.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatalf("RegisterTaskDefinition %s: %v", name, err)
	}
	s.createService(t, name, aws.ToString(td.TaskDefinition.TaskDefinitionArn), 1)
}

// serviceTask waits for the service's task to run and returns its ARN.
func (s *system) serviceTask(t *testing.T, service string) string {
	t.Helper()
	var arn string
	eventually(t, deadline, service+" has a RUNNING task", func() (bool, string) {
		out, err := s.ecs.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(clusterName), ServiceName: aws.String(service)})
		if err != nil || len(out.TaskArns) != 1 {
			return false, "no task yet"
		}
		arn = out.TaskArns[0]
		st := aws.ToString(s.describeTask(t, arn).LastStatus)
		return st == "RUNNING", st
	})
	return arn
}

// protectOnce is a task that calls its task endpoint once, as the ECS
// agent's callers do, and records the status and the body.
const protectOnce = `curl -s -o "$OUT.body" -w '%{http_code}' -X PUT --data '{"ProtectionEnabled":true}' "$ECS_AGENT_URI/task-protection/v1/state" > "$OUT.tmp"
mv "$OUT.tmp" "$OUT.status"
exec sleep 3600`

// The task endpoint acts as the task's role, as the ECS agent does: a task
// whose role allows it protects itself; a task without a role gets the
// agent's 403; a task whose role lacks the permission gets ECS's
// AccessDeniedException, passed through with its status and text.
func TestTaskRolesThroughTheEndpoint(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	dir := filepath.Join(s.root, "roles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	allowed := s.createTaskRole(t, "protector", taskRolePolicy)
	weak := s.createTaskRole(t, "bystander", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeTasks","Resource":"*"}]}`)
	for name, role := range map[string]string{"with-role": allowed, "no-role": "", "weak-role": weak} {
		s.runService(t, name, role, map[string]string{"OUT": filepath.Join(dir, name)}, "/bin/sh", "-c", protectOnce)
	}
	answer := func(name string) (string, string, string) {
		arn := s.serviceTask(t, name)
		status := waitFile(t, filepath.Join(dir, name+".status"))
		body, err := os.ReadFile(filepath.Join(dir, name+".body"))
		if err != nil {
			t.Fatal(err)
		}
		return arn, status, string(body)
	}

	arn, status, body := answer("with-role")
	if status != "200" || !protectedBodyRe(arn).MatchString(body) {
		t.Errorf("a task whose role allows it: %s %s", status, body)
	}
	if p := s.getProtection(t, arn)[arn]; !p.ProtectionEnabled {
		t.Errorf("the task is not protected: %+v", p)
	}

	arn, status, body = answer("no-role")
	want := `{"error":{"Arn":"` + arn + `","Code":"AccessDeniedException","Message":"Invalid Request: no task IAM role credentials available for task"}}`
	if status != "403" || body != want {
		t.Errorf("a task without a role:\n got  %s %s\n want 403 %s", status, body, want)
	}

	arn, status, body = answer("weak-role")
	wantRe := regexp.MustCompile(`^\{"requestID":"[0-9a-f-]{36}","error":\{"Arn":"` + regexp.QuoteMeta(arn) + `","Code":"AccessDeniedException",` +
		`"Message":"User: arn:aws:sts::000000000000:assumed-role/bystander/` + regexp.QuoteMeta(arn[strings.LastIndex(arn, "/")+1:]) +
		` is not authorized to perform: ecs:UpdateTaskProtection on resource: ` + regexp.QuoteMeta(arn) +
		` because no identity-based policy allows the ecs:UpdateTaskProtection action"\}\}$`)
	if status != "400" || !wantRe.MatchString(body) {
		t.Errorf("a task whose role lacks the permission:\n got  %s %s\n want 400 matching %s", status, body, wantRe)
	}
	for _, name := range []string{"no-role", "weak-role"} {
		a := s.serviceTask(t, name)
		if p := s.getProtection(t, a)[a]; p.ProtectionEnabled {
			t.Errorf("%s: protected by a refused call", name)
		}
	}
}

// probeLine is one line of sdkprobe identity.
type probeLine struct {
	At          time.Time `json:"at"`
	ARN         string    `json:"arn"`
	AccessKeyID string    `json:"accessKeyId"`
	Error       string    `json:"error"`
}

func readProbe(t *testing.T, path string) []probeLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []probeLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l probeLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// An unmodified SDK program in a task is its task's role: STS names the
// assumed role with the task id as the session, it may protect its own
// task and nothing its role does not allow, and it keeps working across
// credential rotations (sessions of 20 s here, refreshed by the agent half
// way) without a single failed call. The AWS CLI in a task sees the same.
func TestSDKInATask(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t, "--task-credentials-duration", "20s")
	probe := testutil.GoBuild(t, filepath.Join(t.TempDir(), "sdkprobe"), "github.com/holdfast/holdfast/e2e/sdkprobe")
	dir := filepath.Join(s.root, "sdk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	role := s.createTaskRole(t, "app", taskRolePolicy)
	env := map[string]string{"AWS_ENDPOINT_URL": "http://" + s.apiAddr, "CLUSTER": clusterName}
	start := time.Now()
	s.runService(t, "identity", role, env, probe, "identity", filepath.Join(dir, "identity.jsonl"))
	s.runService(t, "protect", role, env, probe, "protect", filepath.Join(dir, "protect.json"))
	identityTask := s.serviceTask(t, "identity")
	protectTask := s.serviceTask(t, "protect")

	// The probe protects its own task and is refused StopTask.
	var result map[string]string
	eventually(t, deadline, "sdkprobe protect's result", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(dir, "protect.json"))
		return err == nil && json.Unmarshal(b, &result) == nil, "no result yet"
	})
	sessionOf := func(task string) string {
		return "arn:aws:sts::000000000000:assumed-role/app/" + task[strings.LastIndex(task, "/")+1:]
	}
	if result["task"] != protectTask || result["protect"] != "ok" ||
		!strings.Contains(result["stop"], "AccessDeniedException: User: "+sessionOf(protectTask)+" is not authorized to perform: ecs:StopTask") {
		t.Errorf("sdkprobe protect: %v", result)
	}
	if p := s.getProtection(t, protectTask)[protectTask]; !p.ProtectionEnabled {
		t.Errorf("the probe did not protect its task: %+v", p)
	}
	if st := aws.ToString(s.describeTask(t, protectTask).DesiredStatus); st != "RUNNING" {
		t.Errorf("the probe stopped its task: %s", st)
	}

	// Its identity, over 45 s and at least two rotations.
	var lines []probeLine
	eventually(t, 90*time.Second, "45 s of sdkprobe identity", func() (bool, string) {
		lines = readProbe(t, filepath.Join(dir, "identity.jsonl"))
		return len(lines) > 0 && lines[len(lines)-1].At.Sub(start) > 45*time.Second, "running"
	})
	keys := map[string]bool{}
	for _, l := range lines {
		if l.Error != "" || l.ARN != sessionOf(identityTask) {
			t.Fatalf("a call at %s: arn %q error %q, want %s", l.At.Format(time.RFC3339Nano), l.ARN, l.Error, sessionOf(identityTask))
		}
		keys[l.AccessKeyID] = true
	}
	if len(keys) < 3 {
		t.Errorf("%d calls over 45 s saw %d access keys; sessions of 20 s refreshed half way should give at least 3", len(lines), len(keys))
	}
	t.Logf("%d calls, %d sessions, no failure", len(lines), len(keys))

	// The AWS CLI in a task, when it is installed.
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Log("the AWS CLI is not installed: its check is skipped")
		return
	}
	out := filepath.Join(dir, "cli")
	cliEnv := map[string]string{"AWS_ENDPOINT_URL": "http://" + s.apiAddr, "OUT": out, "PATH": os.Getenv("PATH"), "AWS_CLI": aws}
	s.runService(t, "cli", role, cliEnv, "/bin/sh", "-c",
		`"$AWS_CLI" --endpoint-url "$AWS_ENDPOINT_URL" sts get-caller-identity --query Arn --output text > "$OUT.tmp" 2>&1; mv "$OUT.tmp" "$OUT"; exec sleep 3600`)
	cliTask := s.serviceTask(t, "cli")
	if got := strings.TrimSpace(waitFile(t, out)); got != sessionOf(cliTask) {
		t.Errorf("aws sts get-caller-identity in a task: %q, want %s", got, sessionOf(cliTask))
	}
}

// The local agent of `holdfast up` does not hold the root's keys: it
// registers with the agents' identity and then speaks as its instance's
// own, which it keeps across restarts and which may do nothing but the
// agent protocol for that instance.
func TestAgentHasItsOwnIdentity(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	ctx := context.Background()
	agentUsers := func() []string {
		out, err := testutil.IAMClient("http://"+s.apiAddr, creds).ListUsers(ctx, &iam.ListUsersInput{PathPrefix: aws.String("/holdfast/")})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range out.Users {
			names = append(names, aws.ToString(u.Path)+aws.ToString(u.UserName))
		}
		return names
	}
	before := agentUsers()
	if len(before) != 2 || before[0] != "/holdfast/agents/agent-"+strings.TrimPrefix(before[0], "/holdfast/agents/agent-") ||
		before[1] != "/holdfast/holdfast-agent" {
		t.Fatalf("identities under /holdfast/: %v, want the agents' and one instance's", before)
	}
	for _, f := range []string{filepath.Join(s.dataDir, "agent-credentials.json"), filepath.Join(s.dataDir, "agent", "identity.json")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, fi, err)
		}
	}
	var own testutil.Credentials
	b, _ := os.ReadFile(filepath.Join(s.dataDir, "agent", "identity.json"))
	if err := json.Unmarshal(b, &own); err != nil || own.AccessKeyID == "" || own.AccessKeyID == creds.AccessKeyID {
		t.Fatalf("identity.json: %s %v", b, err)
	}
	if _, err := testutil.ECSClient("http://"+s.apiAddr, own).ListClusters(ctx, &ecs.ListClustersInput{}); err == nil ||
		!strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("the agent's identity listed clusters: %v", err)
	}

	// A restart keeps the identity and the instance.
	if !s.main.Stop(os.Interrupt, 10*time.Second) {
		t.Fatal("holdfast up did not stop on SIGINT")
	}
	s.startServer(t)
	if after := agentUsers(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("identities after a restart: %v, before %v", after, before)
	}
	out, err := s.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Status: ecstypes.ContainerInstanceStatusActive})
	if err != nil || len(out.ContainerInstanceArns) != 1 ||
		!strings.HasSuffix(before[0], shortARN(out.ContainerInstanceArns[0])) {
		t.Fatalf("instances after a restart: %v %v", out, err)
	}
}

func shortARN(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// `holdfast up --task-credentials=none`: the escape hatch. It warns, and
// the task endpoint acts with the root's authority, so a task without a
// role protects itself.
func TestTaskCredentialsNone(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t, "--task-credentials=none")
	if log := s.main.LogTail(200); !strings.Contains(log, "WARNING: --task-credentials=none") {
		t.Fatalf("no warning in the log:\n%s", log)
	}
	dir := filepath.Join(s.root, "none")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.runService(t, "roleless", "", map[string]string{"OUT": filepath.Join(dir, "r")}, "/bin/sh", "-c", protectOnce)
	arn := s.serviceTask(t, "roleless")
	status := waitFile(t, filepath.Join(dir, "r.status"))
	body, _ := os.ReadFile(filepath.Join(dir, "r.body"))
	if status != "200" || !protectedBodyRe(arn).MatchString(string(body)) {
		t.Fatalf("a task without a role under --task-credentials=none: %s %s", status, body)
	}
}
