package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

const (
	accessKeyID     = "AKIDHOLDFASTE2E"
	secretAccessKey = "holdfast-e2e-secret"
	clusterName     = "default"
	// deadline is the generous bound of every eventually-style wait.
	deadline = 20 * time.Second
)

// skipUnlessE2E skips under -short and where the process runtime cannot run.
func skipUnlessE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("e2e test: needs Linux (process runtime, /proc)")
	}
	if binary == "" {
		t.Fatal("holdfast binary was not built")
	}
}

// eventually polls cond every 50 ms until it reports true, failing the test
// with cond's last detail after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ---------------------------------------------------------------------------
// daemons

// daemon is one holdfast process (up, server or agent).
type daemon struct {
	name    string
	args    []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

func (d *daemon) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== e2e: starting %s %s\n", binary, strings.Join(d.args, " "))
	cmd := exec.Command(binary, d.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOLDFAST_E2E=1")
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", d.name, err)
	}
	d.cmd = cmd
	d.done = make(chan struct{})
	done := d.done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
}

func (d *daemon) running() bool {
	if d == nil || d.done == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

func (d *daemon) pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// kill9 SIGKILLs the daemon and waits for it.
func (d *daemon) kill9(t *testing.T) {
	t.Helper()
	if !d.running() {
		t.Fatalf("%s is not running", d.name)
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(deadline):
		t.Fatalf("%s did not die after SIGKILL", d.name)
	}
}

// stop sends SIGINT and waits, then SIGKILLs. It reports whether the daemon
// exited on SIGINT.
func (d *daemon) stop(wait time.Duration) bool {
	if !d.running() {
		return true
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
		return true
	case <-time.After(wait):
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	return false
}

func (d *daemon) logTail(n int) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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
	main      *daemon // up, or server
	agent     *daemon // split mode only
	ecs       *ecs.Client
	http      *http.Client
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
		apiAddr:   freeAddr(t),
		agentAddr: freeAddr(t),
		http:      &http.Client{Timeout: 30 * time.Second},
	}
	s.ecs = ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + s.apiAddr),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
	})
	t.Cleanup(s.cleanup)
	return s
}

// startUp runs `holdfast up` and waits for /healthz.
func startUp(t *testing.T) *system {
	t.Helper()
	s := newSystem(t)
	s.main = &daemon{
		name:    "holdfast up",
		logPath: filepath.Join(s.root, "up.log"),
		args: []string{"up", "--data-dir", s.dataDir, "--listen", s.apiAddr, "--agent-listen", s.agentAddr,
			"--access-key-id", accessKeyID, "--secret-access-key", secretAccessKey},
	}
	s.main.start(t)
	s.waitHealthy(t, "http://"+s.apiAddr+"/healthz", s.main)
	return s
}

// startSplit runs `holdfast server` and `holdfast agent` as two processes.
func startSplit(t *testing.T) *system {
	t.Helper()
	s := newSystem(t)
	s.main = &daemon{
		name:    "holdfast server",
		logPath: filepath.Join(s.root, "server.log"),
		args: []string{"server", "--data-dir", s.dataDir, "--listen", s.apiAddr, "--heartbeat-timeout", "2m",
			"--access-key-id", accessKeyID, "--secret-access-key", secretAccessKey},
	}
	s.agent = &daemon{
		name:    "holdfast agent",
		logPath: filepath.Join(s.root, "agent.log"),
		args: []string{"agent", "--cluster", clusterName, "--server", "http://" + s.apiAddr, "--listen", s.agentAddr,
			"--data-dir", s.agentDir, "--access-key-id", accessKeyID, "--secret-access-key", secretAccessKey},
	}
	s.startServer(t)
	s.startAgent(t)
	return s
}

func (s *system) startServer(t *testing.T) {
	t.Helper()
	s.main.start(t)
	s.waitHealthy(t, "http://"+s.apiAddr+"/healthz", s.main)
}

func (s *system) startAgent(t *testing.T) {
	t.Helper()
	s.agent.start(t)
	s.waitHealthy(t, "http://"+s.agentAddr+"/healthz", s.agent)
}

func (s *system) waitHealthy(t *testing.T, url string, d *daemon) {
	t.Helper()
	eventually(t, deadline, d.name+" "+url+" to answer 200", func() (bool, string) {
		if !d.running() {
			t.Fatalf("%s exited during start:\n%s", d.name, d.logTail(40))
		}
		resp, err := s.http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

func (s *system) daemons() []*daemon {
	var out []*daemon
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
			t.Logf("--- last lines of %s log:\n%s", d.name, d.logTail(60))
		}
		t.Logf("--- task files:\n%s", s.taskFiles())
	}
	if s.main.running() && (s.agent == nil || s.agent.running()) {
		s.stopAllTasks()
	}
	for _, d := range s.daemons() {
		if !d.stop(10 * time.Second) {
			t.Errorf("%s did not exit within 10 s of SIGINT", d.name)
		}
	}
	if left := markerProcs(s.root); len(left) > 0 {
		t.Errorf("processes left running after the test (killing them): %v", describeProcs(left))
		for _, pid := range left {
			killGroup(pid)
		}
		end := time.Now().Add(5 * time.Second)
		for time.Now().Before(end) && len(markerProcs(s.root)) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if left := markerProcs(s.root); len(left) > 0 {
			t.Errorf("processes still alive after SIGKILL: %v", describeProcs(left))
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

// stopAllTasks scales every service to 0 and stops every task, then waits
// until no task process of this system is left.
func (s *system) stopAllTasks() {
	t := s.t
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if svcs, err := s.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String(clusterName)}); err == nil {
		for _, arn := range svcs.ServiceArns {
			_, _ = s.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(clusterName),
				Service: aws.String(arn), DesiredCount: aws.Int32(0)})
		}
	} else {
		t.Logf("cleanup: ListServices: %v", err)
	}
	daemonPids := map[int]bool{}
	for _, d := range s.daemons() {
		daemonPids[d.pid()] = true
	}
	taskProcs := func() []int {
		var out []int
		for _, pid := range markerProcs(s.root) {
			if !daemonPids[pid] {
				out = append(out, pid)
			}
		}
		return out
	}
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		tasks, err := s.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(clusterName),
			DesiredStatus: ecstypes.DesiredStatusRunning})
		if err != nil {
			t.Logf("cleanup: ListTasks: %v", err)
			return
		}
		for _, arn := range tasks.TaskArns {
			_, _ = s.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(clusterName), Task: aws.String(arn),
				Reason: aws.String("e2e cleanup")})
		}
		if len(tasks.TaskArns) == 0 && len(taskProcs()) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("cleanup: task processes still running after StopTask: %v", describeProcs(taskProcs()))
}

// markerProcs lists the live processes whose argv or environment mention
// marker (daemons carry it in their flags, shims in their state dir, task
// programs in E2E_DIR).
func markerProcs(marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && bytes.Contains(b, []byte(marker)) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func describeProcs(pids []int) []string {
	var out []string
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("%d:%q", pid, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")))
	}
	return out
}

// killGroup SIGKILLs pid's process group (never the test's own), and pid.
func killGroup(pid int) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid != syscall.Getpgrp() && pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
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

// taskDef registers a task definition running taskScript; its tasks write
// their files into the returned directory.
func (s *system) taskDef(t *testing.T, family string) (arn, dir string) {
	t.Helper()
	dir = filepath.Join(s.root, "tasks", family)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := s.ecs.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
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

type reply struct {
	status int
	ctype  string
	body   string
}

func (s *system) do(t *testing.T, method, url, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return reply{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(b)}
}

func expectReply(t *testing.T, what string, got reply, status int, ctype, body string) {
	t.Helper()
	if got.status != status || got.ctype != ctype || got.body != body {
		t.Errorf("%s:\n got  %d %q %q\n want %d %q %q", what, got.status, got.ctype, got.body, status, ctype, body)
	}
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
