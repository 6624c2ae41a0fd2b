package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/holdfast/holdfast/internal/testutil"
)

// creds are the fixed credentials of every system under test.
var creds = testutil.Credentials{AccessKeyID: "AKIDHOLDFASTE2E", SecretAccessKey: "holdfast-e2e-secret"}

const (
	clusterName = "default"
	// deadline is the generous bound of every eventually-style wait.
	deadline = 20 * time.Second
)

// eventually polls cond every 50 ms until it reports true, failing the test
// with cond's last detail after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, timeout, 50*time.Millisecond, what, cond)
}

// ---------------------------------------------------------------------------
// the system under test

// system is one holdfast installation: either `holdfast up`, or a
// `holdfast server` plus a `holdfast agent`.
type system struct {
	t         *testing.T
	root      string // every path of this system, and the cleanup marker
	dataDir   string // up's or server's data dir
	agentDir  string // split mode: the agent's data dir
	apiAddr   string
	agentAddr string
	main      *testutil.Daemon // up, or server
	agent     *testutil.Daemon // split mode only
	ecs       *ecs.Client
	http      *http.Client
	roleARN   string // the tasks' role, once created (taskRole)
	// tlsPool, when set, is what clients trust: the API serves TLS.
	tlsPool *x509.CertPool
}

// iamClient is an IAM client for the system, as its root.
func (s *system) iamClient() *iam.Client {
	if s.tlsPool == nil {
		return testutil.IAMClient("http://"+s.apiAddr, creds)
	}
	return iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + s.apiAddr), Credentials: creds.Provider(),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: s.tlsPool}
		})})
}

func newSystem(t *testing.T) *system {
	root, err := os.MkdirTemp("", "hfe2e-")
	if err != nil {
		t.Fatal(err)
	}
	s := &system{
		t:         t,
		root:      root,
		dataDir:   filepath.Join(root, "data"),
		agentDir:  filepath.Join(root, "agent"),
		apiAddr:   testutil.FreeAddr(t),
		agentAddr: testutil.FreeAddr(t),
		http:      &http.Client{Timeout: 30 * time.Second},
	}
	s.ecs = testutil.ECSClient("http://"+s.apiAddr, creds)
	t.Cleanup(s.cleanup)
	return s
}

// daemon describes one holdfast process of this system; it logs to
// root/<log>.
func (s *system) daemon(name, log string, args ...string) *testutil.Daemon {
	return &testutil.Daemon{Name: name, Bin: testutil.BuildHoldfast(s.t), Args: args,
		LogPath: filepath.Join(s.root, log), Env: []string{"HOLDFAST_E2E=1"}}
}

// startUp runs `holdfast up` (with extra flags, if any) and waits for
// /healthz.
func startUp(t *testing.T, extra ...string) *system {
	t.Helper()
	s := newSystem(t)
	s.main = s.daemon("holdfast up", "up.log", append([]string{"up", "--data-dir", s.dataDir, "--listen", s.apiAddr, "--agent-listen", s.agentAddr,
		"--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey}, extra...)...)
	s.startServer(t)
	return s
}

// startSplit runs `holdfast server` (with extra flags, if any) and
// `holdfast agent` as two processes.
func startSplit(t *testing.T, serverArgs ...string) *system {
	t.Helper()
	s := newSystem(t)
	s.main = s.daemon("holdfast server", "server.log", append([]string{"server", "--data-dir", s.dataDir, "--listen", s.apiAddr, "--heartbeat-timeout", "2m",
		"--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey}, serverArgs...)...)
	// The agent has the agents' identity, which the server creates at its
	// first start, not the root's keys.
	s.agent = s.daemon("holdfast agent", "agent.log", "agent", "--cluster", clusterName, "--server", "http://"+s.apiAddr, "--listen", s.agentAddr,
		"--data-dir", s.agentDir, "--credentials-file", filepath.Join(s.dataDir, "agent-credentials.json"))
	s.startServer(t)
	s.startAgent(t)
	return s
}

// startServer starts (or restarts) up or the server and waits for /healthz.
func (s *system) startServer(t *testing.T) {
	t.Helper()
	s.main.Start(t)
	s.main.WaitHealthy(t, "http://"+s.apiAddr+"/healthz", deadline)
}

func (s *system) startAgent(t *testing.T) {
	t.Helper()
	s.agent.Start(t)
	s.agent.WaitHealthy(t, "http://"+s.agentAddr+"/healthz", deadline)
}

func (s *system) daemons() []*testutil.Daemon {
	var out []*testutil.Daemon
	if s.agent != nil {
		out = append(out, s.agent)
	}
	if s.main != nil {
		out = append(out, s.main)
	}
	return out
}

// cleanup stops every task (through the API while the system is up), stops
// the daemons with SIGINT, then kills whatever still carries this system's
// marker (its temp dir in argv or environment), so nothing leaks.
func (s *system) cleanup() {
	t := s.t
	if t.Failed() {
		for _, d := range s.daemons() {
			t.Logf("--- last lines of %s log:\n%s", d.Name, d.LogTail(60))
		}
		t.Logf("--- task files:\n%s", s.taskFiles())
	}
	if s.main.Running() && (s.agent == nil || s.agent.Running()) {
		s.stopAllTasks()
	}
	for _, d := range s.daemons() {
		if !d.Stop(os.Interrupt, 10*time.Second) {
			t.Errorf("%s did not exit within 10 s of SIGINT", d.Name)
		}
	}
	if left := testutil.MarkerProcs(s.root); len(left) > 0 {
		t.Errorf("processes left running after the test (killing them): %v", testutil.DescribeProcs(left))
		for _, pid := range left {
			testutil.KillGroup(pid)
		}
		end := time.Now().Add(5 * time.Second)
		for time.Now().Before(end) && len(testutil.MarkerProcs(s.root)) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if left := testutil.MarkerProcs(s.root); len(left) > 0 {
			t.Errorf("processes still alive after SIGKILL: %v", testutil.DescribeProcs(left))
		}
	}
	if !t.Failed() || os.Getenv("HOLDFAST_E2E_KEEP") == "" {
		_ = os.RemoveAll(s.root)
	} else {
		t.Logf("kept %s", s.root)
	}
}

// taskFiles lists the files the task scripts wrote, with short contents.
func (s *system) taskFiles() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.root, "tasks", "*", "*"))
	for _, f := range files {
		c, _ := os.ReadFile(f)
		if len(c) > 300 {
			c = c[:300]
		}
		fmt.Fprintf(&b, "%s: %q\n", strings.TrimPrefix(f, s.root+"/tasks/"), c)
	}
	return b.String()
}

// stopAllTasks stops every task through the API, then waits until no task
// process of this system (anything with its marker but the daemons) is
// left.
func (s *system) stopAllTasks() {
	t := s.t
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := testutil.StopAllTasks(ctx, s.ecs, clusterName); err != nil {
		t.Logf("cleanup: %v", err)
	}
	daemonPids := map[int]bool{}
	for _, d := range s.daemons() {
		daemonPids[d.Pid()] = true
	}
	var left []int
	for ctx.Err() == nil {
		left = left[:0]
		for _, pid := range testutil.MarkerProcs(s.root) {
			if !daemonPids[pid] {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("cleanup: task processes still running after StopTask: %v", testutil.DescribeProcs(left))
}

// undisturbed reports whether task k is still running and never got
// SIGTERM (its trap writes <pid>.term).
func (s *system) undisturbed(k task) bool { return s.alive(k.pid) && !exists(k.file(".term")) }

// requireUndisturbed fails the test at once unless every task is
// undisturbed; what says what they should have outlived.
func (s *system) requireUndisturbed(t *testing.T, tasks []task, what string) {
	t.Helper()
	for _, k := range tasks {
		if !s.undisturbed(k) {
			t.Fatalf("task %d %s", k.pid, what)
		}
	}
}

// alive reports whether pid is a live (non-zombie) process of this system.
func (s *system) alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !bytes.Contains(b, []byte(s.root)) {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
		return false
	}
	return true
}

// ---------------------------------------------------------------------------
// task definitions and task processes

// taskScript is the body of every test task. It writes $E2E_DIR/<pid>.uri
// (its ECS_AGENT_URI), records the SIGTERM it gets in <pid>.term (a
// nanosecond timestamp), and when the test creates <pid>.protect or
// <pid>.release it calls its task endpoint with curl, writing the answer to
// <pid>.protected or <pid>.release.out and, after a release, the time the
// call returned to <pid>.released. The calls run under setsid, outside the
// task's process group, so the group SIGTERM that a release triggers cannot
// cut them short (the shell runs its trap once the call has returned).
const taskScript = `d="$E2E_DIR"; stop=
trap 'date +%s%N >> "$d/$$.term"; stop=1' TERM
echo "$ECS_AGENT_URI" > "$d/$$.tmp" && mv "$d/$$.tmp" "$d/$$.uri"
while [ -z "$stop" ]; do
  if [ -e "$d/$$.protect" ]; then
    rm -f "$d/$$.protect"
    setsid curl -s -X PUT --data '{"ProtectionEnabled":true}' "$ECS_AGENT_URI/task-protection/v1/state" > "$d/$$.ptmp"
    mv "$d/$$.ptmp" "$d/$$.protected"
  fi
  if [ -e "$d/$$.release" ]; then
    rm -f "$d/$$.release"
    setsid sh -c 'curl -s -X PUT --data "$2" "$ECS_AGENT_URI/task-protection/v1/state" > "$1.release.out"; date +%s%N > "$1.released"' \
      sh "$d/$$" '{"ProtectionEnabled":false}'
  fi
  [ -n "$stop" ] || sleep 0.1
done
exit 0`

// The tasks' role, as an ECS user makes it: trusted by ECS tasks, allowed
// what the AWS CDK's grantTaskProtection allows.
const (
	taskRoleTrust  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	taskRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"*"}]}`
)

// taskRole creates the tasks' role (once) and returns its ARN.
func (s *system) taskRole(t *testing.T) string {
	t.Helper()
	if s.roleARN != "" {
		return s.roleARN
	}
	ctx := context.Background()
	c := s.iamClient()
	if out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("e2e-task")}); err == nil {
		s.roleARN = aws.ToString(out.Role.Arn)
		return s.roleARN
	}
	s.roleARN = s.createTaskRole(t, "e2e-task", taskRolePolicy)
	return s.roleARN
}

// taskDef registers a task definition running taskScript; its tasks write
// their files into the returned directory.
func (s *system) taskDef(t *testing.T, family string) (arn, dir string) {
	t.Helper()
	dir = filepath.Join(s.root, "tasks", family)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := s.ecs.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family),
		TaskRoleArn: aws.String(s.taskRole(t)),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name:        aws.String("main"),
			Image:       aws.String("busybox"),
			Essential:   aws.Bool(true),
			EntryPoint:  []string{"/bin/sh", "-c"},
			Command:     []string{taskScript},
			StopTimeout: aws.Int32(10),
			Memory:      aws.Int32(64),
			Environment: []ecstypes.KeyValuePair{{Name: aws.String("E2E_DIR"), Value: aws.String(dir)}},
		}},
	})
	if err != nil {
		t.Fatalf("RegisterTaskDefinition: %v", err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), dir
}

// createService creates a service and returns its PRIMARY deployment id.
func (s *system) createService(t *testing.T, name, taskDef string, count int32) string {
	t.Helper()
	out, err := s.ecs.CreateService(context.Background(), &ecs.CreateServiceInput{
		Cluster:        aws.String(clusterName),
		ServiceName:    aws.String(name),
		TaskDefinition: aws.String(taskDef),
		DesiredCount:   aws.Int32(count),
	})
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	if len(out.Service.Deployments) == 0 {
		t.Fatalf("CreateService: no deployment in %+v", out.Service)
	}
	return aws.ToString(out.Service.Deployments[0].Id)
}

// task is one running task process as the test sees it.
type task struct {
	pid        int
	uri        string // its ECS_AGENT_URI
	arn        string
	dir        string
	endpointID string
}

func (k task) file(suffix string) string { return filepath.Join(k.dir, strconv.Itoa(k.pid)+suffix) }

// stateURL is the task's protection endpoint.
func (k task) stateURL() string { return k.uri + "/task-protection/v1/state" }

// waitTasks waits until exactly n task processes run from dir (ignoring
// ones that got SIGTERM) and resolves their task ARNs through the agent's
// metadata endpoint. Tasks are sorted by pid.
func (s *system) waitTasks(t *testing.T, dir string, n int) []task {
	t.Helper()
	var got []task
	eventually(t, deadline, fmt.Sprintf("%d running tasks in %s", n, filepath.Base(dir)), func() (bool, string) {
		got = got[:0]
		files, _ := filepath.Glob(filepath.Join(dir, "*.uri"))
		for _, f := range files {
			pid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".uri"))
			if err != nil || !s.alive(pid) {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(pid)+".term")); err == nil {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return false, err.Error()
			}
			k := task{pid: pid, uri: strings.TrimSpace(string(b)), dir: dir}
			k.endpointID = k.uri[strings.LastIndex(k.uri, "/")+1:]
			arn, err := s.metadataARN(k)
			if err != nil {
				return false, err.Error()
			}
			k.arn = arn
			got = append(got, k)
		}
		return len(got) == n, fmt.Sprintf("have %d: %+v", len(got), got)
	})
	sort.Slice(got, func(i, j int) bool { return got[i].pid < got[j].pid })
	return append([]task(nil), got...)
}

// metadataARN reads the task ARN from the task metadata endpoint (v4).
func (s *system) metadataARN(k task) (string, error) {
	u := strings.Replace(k.uri, "/api/", "/v4/", 1) + "/task"
	resp, err := s.http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var md struct{ TaskARN string }
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || resp.StatusCode != 200 || md.TaskARN == "" {
		return "", fmt.Errorf("GET %s: %s %v", u, resp.Status, err)
	}
	return md.TaskARN, nil
}

// readNanos reads a `date +%s%N` file written by the task script.
func readNanos(path string) (time.Time, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// touch creates an empty file (the task script's trigger files).
func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFile waits for a non-empty file and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	var content string
	eventually(t, deadline, "file "+filepath.Base(path), func() (bool, string) {
		b, err := os.ReadFile(path)
		content = string(b)
		return err == nil && len(b) > 0, fmt.Sprint(err)
	})
	return content
}

// ---------------------------------------------------------------------------
// HTTP against the task endpoint

func (s *system) do(t *testing.T, method, url, body string) testutil.Reply {
	t.Helper()
	return testutil.Do(t, s.http, method, url, body)
}

// ---------------------------------------------------------------------------
// ECS API shortcuts

func (s *system) describeTask(t *testing.T, arn string) ecstypes.Task {
	t.Helper()
	out, err := s.ecs.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{
		Cluster: aws.String(clusterName), Tasks: []string{arn}})
	if err != nil {
		t.Fatalf("DescribeTasks: %v", err)
	}
	if len(out.Tasks) != 1 {
		t.Fatalf("DescribeTasks %s: %d tasks, failures %+v", arn, len(out.Tasks), out.Failures)
	}
	return out.Tasks[0]
}

func (s *system) waitTaskStatus(t *testing.T, arn, status string) ecstypes.Task {
	t.Helper()
	var last ecstypes.Task
	eventually(t, deadline, "task "+arn+" "+status, func() (bool, string) {
		last = s.describeTask(t, arn)
		return aws.ToString(last.LastStatus) == status, "lastStatus " + aws.ToString(last.LastStatus)
	})
	return last
}

func (s *system) describeService(t *testing.T, name string) ecstypes.Service {
	t.Helper()
	out, err := s.ecs.DescribeServices(context.Background(), &ecs.DescribeServicesInput{
		Cluster: aws.String(clusterName), Services: []string{name}})
	if err != nil {
		t.Fatalf("DescribeServices: %v", err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("DescribeServices %s: %+v", name, out.Failures)
	}
	return out.Services[0]
}

// waitEvent waits for a service event with exactly msg and returns it.
func (s *system) waitEvent(t *testing.T, service, msg string) ecstypes.ServiceEvent {
	t.Helper()
	var ev ecstypes.ServiceEvent
	eventually(t, deadline, "service event "+strconv.Quote(msg), func() (bool, string) {
		sv := s.describeService(t, service)
		var msgs []string
		for _, e := range sv.Events {
			if aws.ToString(e.Message) == msg {
				ev = e
				return true, ""
			}
			msgs = append(msgs, aws.ToString(e.Message))
		}
		return false, "events: " + strings.Join(msgs, " | ")
	})
	return ev
}

func (s *system) setProtection(t *testing.T, enabled bool, arns ...string) *ecs.UpdateTaskProtectionOutput {
	t.Helper()
	out, err := s.ecs.UpdateTaskProtection(context.Background(), &ecs.UpdateTaskProtectionInput{
		Cluster: aws.String(clusterName), Tasks: arns, ProtectionEnabled: enabled})
	if err != nil {
		t.Fatalf("UpdateTaskProtection: %v", err)
	}
	if len(out.Failures) > 0 {
		t.Fatalf("UpdateTaskProtection failures: %+v", out.Failures)
	}
	return out
}

func (s *system) getProtection(t *testing.T, arns ...string) map[string]ecstypes.ProtectedTask {
	t.Helper()
	out, err := s.ecs.GetTaskProtection(context.Background(), &ecs.GetTaskProtectionInput{
		Cluster: aws.String(clusterName), Tasks: arns})
	if err != nil {
		t.Fatalf("GetTaskProtection: %v", err)
	}
	if len(out.Failures) > 0 {
		t.Fatalf("GetTaskProtection failures: %+v", out.Failures)
	}
	m := map[string]ecstypes.ProtectedTask{}
	for _, p := range out.ProtectedTasks {
		m[aws.ToString(p.TaskArn)] = p
	}
	return m
}
