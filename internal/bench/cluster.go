package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// cluster is a control plane and one agent, each a child process of the
// bench (the holdfast binary re-executed as `holdfast server` and
// `holdfast agent`), on a temporary directory and free loopback ports.
// Everything it starts is stopped by close.
type cluster struct {
	self      string // the holdfast binary
	serverBin string // the binary of `holdfast server`; self when ""
	dir       string
	serverDir string
	agentDir  string
	apiAddr   string
	agentAddr string
	server    *exec.Cmd
	agent     *exec.Cmd
	httpc     *http.Client
	services  []string
	arns      map[string]bool // every task ARN seen, for the cleanup
	// apiRetries counts API calls that failed in transport and were
	// sent again.
	apiRetries int
	healthy    bool // both parts answered /healthz
	logf       func(format string, args ...any)
	roleARN    string // the tasks' role (taskRole)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startCluster starts `holdfast server` and `holdfast agent` from self and
// waits until both answer /healthz. logf (may be nil) gets progress lines.
func startCluster(ctx context.Context, self string, logf func(string, ...any)) (c *cluster, err error) {
	return startClusterWith(ctx, self, logf)
}

// startClusterWith is startCluster with more flags for `holdfast server`.
func startClusterWith(ctx context.Context, self string, logf func(string, ...any), serverArgs ...string) (c *cluster, err error) {
	c, err = startControlPlane(ctx, self, "", logf, serverArgs...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	if c.agentAddr, err = freePort(); err != nil {
		return c, err
	}
	// The agent has the agents' identity (the server creates it), as
	// operators run it, not the root's keys.
	c.agent, err = c.spawn(c.self, "agent.log", "agent", "--cluster", "default", "--server", "http://"+c.apiAddr,
		"--listen", c.agentAddr, "--data-dir", c.agentDir, "--credentials-file", filepath.Join(c.serverDir, "agent-credentials.json"),
		"--log-level", "warn")
	if err != nil {
		return c, err
	}
	if err := c.waitHealthy(ctx, c.agentAddr, "agent.log"); err != nil {
		return c, err
	}
	c.healthy = true
	return c, nil
}

// startControlPlane starts `holdfast server` (from serverBin, else self,
// with serverArgs added) on a temporary directory and waits until it
// answers /healthz.
func startControlPlane(ctx context.Context, self, serverBin string, logf func(string, ...any), serverArgs ...string) (c *cluster, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if serverBin == "" {
		serverBin = self
	}
	dir, err := os.MkdirTemp("", "holdfast-procbench-")
	if err != nil {
		return nil, err
	}
	c = &cluster{
		self: self, serverBin: serverBin, dir: dir,
		serverDir: filepath.Join(dir, "server"),
		agentDir:  filepath.Join(dir, "agent"),
		arns:      map[string]bool{},
		logf:      logf,
		httpc:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 64}},
	}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	if c.apiAddr, err = freePort(); err != nil {
		return c, err
	}
	args := append([]string{"server", "--data-dir", c.serverDir, "--listen", c.apiAddr,
		"--access-key-id", benchKey, "--heartbeat-timeout", "1h", "--log-level", "warn"}, serverArgs...)
	c.server, err = c.spawn(serverBin, "server.log", args...)
	if err != nil {
		return c, err
	}
	if err := c.waitHealthy(ctx, c.apiAddr, "server.log"); err != nil {
		return c, err
	}
	c.healthy = true
	return c, nil
}

// spawn starts bin with args, its stderr and stdout in dir/logName, and
// the bench's secret access key in its environment (never on its command
// line). The child has its own process group, so a ^C at the terminal
// reaches the bench (which then cleans up) and not the parts under
// measurement.
func (c *cluster) spawn(bin, logName string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(filepath.Join(c.dir, logName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOLDFAST_SECRET_ACCESS_KEY="+benchSecret)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

func (c *cluster) waitHealthy(ctx context.Context, addr, logName string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become healthy: %s", addr, c.tail(logName))
}

func (c *cluster) tail(logName string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, logName))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// call sends one ECS API operation (AWS JSON 1.1, SigV4) and decodes the
// answer into out. The bench speaks the wire protocol itself rather than
// through the SDK so that what it measures is the server, not the client.
// A transport error is retried (the operations the benches send are safe
// to repeat), and counted in apiRetries.
func (c *cluster) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		r, err := presign("http://"+c.apiAddr+"/", "AmazonEC2ContainerServiceV20141113."+op, body)
		if err != nil {
			return err
		}
		code, b, err := r.doCtx(ctx, c.httpc)
		if err != nil {
			if ctx.Err() != nil || attempt == 5 {
				return fmt.Errorf("%s: %w", op, err)
			}
			c.apiRetries++
			c.logf("%s failed, retrying: %v", op, err)
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s: status %d: %s", op, code, bytes.TrimSpace(b))
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: decoding the answer: %w", op, err)
		}
		return nil
	}
}

type keyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// registerTaskDefinition registers family with one essential container.
func (c *cluster) registerTaskDefinition(ctx context.Context, family string, command []string, env map[string]string) error {
	type container struct {
		Name        string     `json:"name"`
		Image       string     `json:"image"`
		Command     []string   `json:"command"`
		Essential   bool       `json:"essential"`
		Environment []keyValue `json:"environment,omitempty"`
	}
	cd := container{Name: "app", Image: "bench", Command: command, Essential: true}
	for k, v := range env {
		cd.Environment = append(cd.Environment, keyValue{k, v})
	}
	role, err := c.taskRole(ctx)
	if err != nil {
		return err
	}
	return c.call(ctx, "RegisterTaskDefinition", map[string]any{"family": family, "taskRoleArn": role, "containerDefinitions": []container{cd}}, nil)
}

// taskRole creates (once) the role the benches' tasks run as, as an ECS
// user would: trusted by ECS tasks and allowed their own protection (what
// the AWS CDK's grantTaskProtection grants), so that the task endpoint
// calls ECS as the task's role, as it does by default.
func (c *cluster) taskRole(ctx context.Context) (string, error) {
	if c.roleARN != "" {
		return c.roleARN, nil
	}
	ic := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + c.apiAddr),
		Credentials: credentials.NewStaticCredentialsProvider(benchKey, benchSecret, "")})
	out, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("bench-task"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		return "", fmt.Errorf("CreateRole: %w", err)
	}
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("bench-task"), PolicyName: aws.String("task-protection"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"*"}]}`)}); err != nil {
		return "", fmt.Errorf("PutRolePolicy: %w", err)
	}
	c.roleARN = aws.ToString(out.Role.Arn)
	return c.roleARN, nil
}

func (c *cluster) createService(ctx context.Context, name, family string, desired int) error {
	c.services = append(c.services, name)
	return c.call(ctx, "CreateService", map[string]any{
		"cluster": "default", "serviceName": name, "taskDefinition": family, "desiredCount": desired,
	}, nil)
}

func (c *cluster) scale(ctx context.Context, service string, desired int) error {
	return c.call(ctx, "UpdateService", map[string]any{"cluster": "default", "service": service, "desiredCount": desired}, nil)
}

// serviceCounts returns the running and pending counts of a service.
func (c *cluster) serviceCounts(ctx context.Context, service string) (running, pending int, err error) {
	var out struct {
		Services []struct {
			RunningCount int `json:"runningCount"`
			PendingCount int `json:"pendingCount"`
		} `json:"services"`
	}
	if err := c.call(ctx, "DescribeServices", map[string]any{"cluster": "default", "services": []string{service}}, &out); err != nil {
		return 0, 0, err
	}
	if len(out.Services) != 1 {
		return 0, 0, fmt.Errorf("service %s not found", service)
	}
	return out.Services[0].RunningCount, out.Services[0].PendingCount, nil
}

// waitRunning waits until the service's runningCount is at least n, polling
// every poll.
func (c *cluster) waitRunning(ctx context.Context, service string, n int, poll, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		running, _, err := c.serviceCounts(ctx, service)
		if err != nil {
			return err
		}
		if running >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s: %d of %d tasks RUNNING after %s; agent log: %s", service, running, n, timeout, c.tail("agent.log"))
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return err
		}
	}
}

// listTasks returns the ARNs of the service's tasks whose desired status is
// RUNNING.
func (c *cluster) listTasks(ctx context.Context, service string) ([]string, error) {
	var arns []string
	token := ""
	for {
		in := map[string]any{"cluster": "default", "serviceName": service}
		if token != "" {
			in["nextToken"] = token
		}
		var out struct {
			TaskARNs  []string `json:"taskArns"`
			NextToken string   `json:"nextToken"`
		}
		if err := c.call(ctx, "ListTasks", in, &out); err != nil {
			return nil, err
		}
		arns = append(arns, out.TaskARNs...)
		if out.NextToken == "" {
			break
		}
		token = out.NextToken
	}
	for _, a := range arns {
		c.arns[a] = true
	}
	return arns, nil
}

// epoch is an AWS JSON timestamp (epoch seconds, fractional).
type epoch float64

func (e epoch) Time() time.Time {
	return time.UnixMilli(int64(math.Round(float64(e) * 1000)))
}

// taskInfo is the part of a described task the benches read.
type taskInfo struct {
	TaskARN    string `json:"taskArn"`
	LastStatus string `json:"lastStatus"`
	CreatedAt  epoch  `json:"createdAt"`
	StartedAt  epoch  `json:"startedAt"`
}

// describeTasks describes any number of tasks, 100 per call.
func (c *cluster) describeTasks(ctx context.Context, arns []string) ([]taskInfo, error) {
	var tasks []taskInfo
	for i := 0; i < len(arns); i += 100 {
		var out struct {
			Tasks []taskInfo `json:"tasks"`
		}
		if err := c.call(ctx, "DescribeTasks", map[string]any{"cluster": "default", "tasks": arns[i:min(i+100, len(arns))]}, &out); err != nil {
			return nil, err
		}
		tasks = append(tasks, out.Tasks...)
	}
	return tasks, nil
}

// setProtection protects or releases tasks through the API, 10 per call,
// and returns the per-task failures as an error unless ignoreFailures.
func (c *cluster) setProtection(ctx context.Context, arns []string, enabled, ignoreFailures bool) error {
	for i := 0; i < len(arns); i += 10 {
		in := map[string]any{"cluster": "default", "tasks": arns[i:min(i+10, len(arns))], "protectionEnabled": enabled}
		if enabled {
			in["expiresInMinutes"] = 60
		}
		var out struct {
			Failures []struct {
				Arn    string `json:"arn"`
				Reason string `json:"reason"`
			} `json:"failures"`
		}
		if err := c.call(ctx, "UpdateTaskProtection", in, &out); err != nil {
			return err
		}
		if len(out.Failures) > 0 && !ignoreFailures {
			f := out.Failures[0]
			return fmt.Errorf("UpdateTaskProtection: %d failures, first %s %s", len(out.Failures), f.Arn, f.Reason)
		}
	}
	return nil
}

// agentRecord is the part of the agent's task record (tasks/<id>.json) the
// benches read.
type agentRecord struct {
	ARN        string `json:"arn"`
	Containers []struct {
		EndpointID string `json:"endpointId"`
		PID        int    `json:"pid"`
	} `json:"containers"`
}

// taskRecord reads the agent's record of the task.
func (c *cluster) taskRecord(arn string) (agentRecord, error) {
	var r agentRecord
	id := arn[strings.LastIndex(arn, "/")+1:]
	b, err := os.ReadFile(filepath.Join(c.agentDir, "tasks", id+".json"))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if len(r.Containers) == 0 || r.Containers[0].EndpointID == "" {
		return r, fmt.Errorf("task %s: record has no endpoint id", id)
	}
	return r, nil
}

// endpointURL is the task protection URL of a task, as the task sees it.
func (c *cluster) endpointURL(endpointID string) string {
	return "http://" + c.agentAddr + "/api/" + endpointID + "/task-protection/v1/state"
}

// putProtection sends the task's own PUT through the task endpoint and
// checks the answer. It returns the HTTP status; err is set for an answer
// that is not what a successful call gives (transport error, non-200, or a
// 200 body that is not a {"protection":...} with the requested state).
func putProtection(hc *http.Client, url string, body []byte, enabled bool) (int, error) {
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var out struct {
		Protection *struct {
			ProtectionEnabled bool
			TaskArn           *string
		} `json:"protection"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Protection == nil || out.Protection.TaskArn == nil {
		return resp.StatusCode, fmt.Errorf("200 without a protection body: %s", bytes.TrimSpace(b))
	}
	if out.Protection.ProtectionEnabled != enabled {
		return resp.StatusCode, fmt.Errorf("protectionEnabled=%v, want %v", out.Protection.ProtectionEnabled, enabled)
	}
	return resp.StatusCode, nil
}

// CleanupError is returned by a bench whose measurement succeeded but which
// could not stop cleanly everything it started; its figures are valid.
type CleanupError struct{ Err error }

func (e *CleanupError) Error() string { return "cleanup: " + e.Err.Error() }
func (e *CleanupError) Unwrap() error { return e.Err }

// Measured reports whether a bench that returned err has figures: it
// succeeded, or only its cleanup failed.
func Measured(err error) bool {
	var ce *CleanupError
	return err == nil || errors.As(err, &ce)
}

// closeInto closes c and merges a cleanup failure into *err, as a
// *CleanupError when the measurement itself succeeded.
func (c *cluster) closeInto(err *error) {
	cerr := c.close()
	switch {
	case cerr == nil:
	case *err == nil:
		*err = &CleanupError{cerr}
	default:
		*err = errors.Join(*err, cerr)
	}
}

// close stops every task (scale to 0, unprotect, wait for STOPPED), then
// the agent and the server (SIGINT, SIGKILL after 10 s), and removes the
// directory. It reports what it could not clean up.
func (c *cluster) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if c.healthy {
		if err := c.stopAllTasks(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Anything the control plane could not stop (should be nothing) is
	// killed here, so that no task outlives the bench.
	if n := killShims(c.agentDir); n > 0 {
		errs = append(errs, fmt.Errorf("killed %d shim processes that were still running", n))
	}
	for _, cmd := range []*exec.Cmd{c.agent, c.server} {
		if cmd == nil || cmd.Process == nil {
			continue
		}
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			errs = append(errs, fmt.Errorf("%s did not stop on SIGINT; killed", cmd.Args[1]))
		}
	}
	if c.dir != "" {
		if os.Getenv("HOLDFAST_BENCH_KEEP") != "" {
			c.logf("kept %s", c.dir)
		} else if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) stopAllTasks(ctx context.Context) error {
	for _, s := range c.services {
		if err := c.scale(ctx, s, 0); err != nil {
			return fmt.Errorf("scale %s to 0: %w", s, err)
		}
		if _, err := c.listTasks(ctx, s); err != nil {
			return err
		}
	}
	all := make([]string, 0, len(c.arns))
	for a := range c.arns {
		all = append(all, a)
	}
	sort.Strings(all)
	// Releasing a stopped task fails per task, not per call: ignore those.
	if err := c.setProtection(ctx, all, false, true); err != nil {
		return err
	}
	for {
		tasks, err := c.describeTasks(ctx, all)
		if err != nil {
			return err
		}
		live := 0
		for _, t := range tasks {
			if t.LastStatus != "STOPPED" {
				live++
			}
		}
		if live == 0 {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("%d tasks not STOPPED: %w", live, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// shimPIDs finds the shim processes of the agent on agentDir: processes
// whose argv is `<binary> shim <agentDir>/containers/...`.
func shimPIDs(agentDir string) []int {
	prefix := filepath.Join(agentDir, "containers") + "/"
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		// `holdfast shim DIR ...` or `holdfast-shim DIR ...`
		if len(argv) >= 3 && argv[1] == "shim" && strings.HasPrefix(argv[2], prefix) ||
			len(argv) >= 2 && filepath.Base(argv[0]) == "holdfast-shim" && strings.HasPrefix(argv[1], prefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killShims SIGKILLs leftover shims (their programs die with them, by
// PR_SET_PDEATHSIG) and returns how many there were.
func killShims(agentDir string) int {
	pids := shimPIDs(agentDir)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return len(pids)
}

// Memory of a process, in bytes: VmRSS and VmHWM from /proc/<pid>/status,
// Pss from /proc/<pid>/smaps_rollup.
type Memory struct{ RSS, HWM, PSS int64 }

func procMemory(pid int) (Memory, error) {
	var m Memory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	m.RSS = kbField(status, "VmRSS:")
	m.HWM = kbField(status, "VmHWM:")
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return m, err
	}
	m.PSS = kbField(rollup, "Pss:")
	return m, nil
}

func kbField(b []byte, name string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == name {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// memAvailable is MemAvailable from /proc/meminfo, in bytes.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return kbField(b, "MemAvailable:")
}

// LoadAverage is the first three fields of /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
