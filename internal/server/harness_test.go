package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/testutil"
)

// hfCreds are the control plane's only credentials.
var hfCreds = testutil.Credentials{AccessKeyID: hfKeyID, SecretAccessKey: hfSecret}

const (
	hfRegion  = testutil.Region
	hfAccount = "123456789012"
	hfKeyID   = "AKIDHOLDFASTTEST"
	hfSecret  = "holdfast-test-secret"
	ecsTarget = "AmazonEC2ContainerServiceV20141113."
)

var deploymentIDRE = regexp.MustCompile(`^ecs-svc/[0-9]{19}$`)

// hfOpts configures an in-process control plane.
type hfOpts struct {
	DataDir          string
	Clock            clock.Clock
	HeartbeatTimeout time.Duration
	// Reconciled is installed as Controller.Reconciled before Run.
	Reconciled func(key string, plan scheduler.Plan)
	// MetricsPeriod is --metrics-period (0: the default, 60 s).
	MetricsPeriod time.Duration
	// Ticked is installed as Autoscaling.Ticked before Run.
	Ticked func(now time.Time)
	// Configure, if set, edits the server config before server.New.
	Configure func(*server.Config)
	// IdentityClock and TaskCredentialsDuration are passed on.
	IdentityClock           clock.Clock
	TaskCredentialsDuration time.Duration
}

// hfEnv is a control plane running on loopback plus an ECS client for it.
type hfEnv struct {
	t    *testing.T
	srv  *server.Server
	addr string
	ecs  *ecs.Client
	ctx  context.Context
}

// hfStart runs a real control plane (server.New + Listen + Run) on
// 127.0.0.1:0 until the test ends.
func hfStart(t *testing.T, o hfOpts) *hfEnv {
	t.Helper()
	prev := hfT
	hfT = t
	t.Cleanup(func() { hfT = prev })
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = 1000 * time.Hour
	}
	cfg := server.Config{
		DataDir:          o.DataDir,
		Listen:           "127.0.0.1:0",
		Region:           hfRegion,
		AccountID:        hfAccount,
		AccessKeyID:      hfKeyID,
		SecretAccessKey:  hfSecret,
		HeartbeatTimeout: o.HeartbeatTimeout,
		MetricsPeriod:    o.MetricsPeriod,
		Clock:            o.Clock,
		Logger:           slog.New(slog.DiscardHandler),

		IdentityClock:           o.IdentityClock,
		TaskCredentialsDuration: o.TaskCredentialsDuration,
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if o.Reconciled != nil {
		srv.Controller.Reconciled = o.Reconciled
	}
	if o.Ticked != nil {
		srv.Autoscaling.Ticked = o.Ticked
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not shut down")
		}
	})
	return &hfEnv{t: t, srv: srv, addr: addr, ecs: hfClient(addr), ctx: context.Background()}
}

func hfClient(addr string) *ecs.Client {
	return testutil.ECSClient("http://"+addr, hfCreds, func(o *ecs.Options) { o.RetryMaxAttempts = 1 })
}

// hfRaw sends a signed AWS JSON 1.1 request and returns status and body.
func hfRaw(t *testing.T, addr, target string, body []byte) (int, []byte) {
	t.Helper()
	return hfRawAs(t, addr, target, body, hfCreds)
}

// hfRawAs is hfRaw signed with c.
func hfRawAs(t *testing.T, addr, target string, body []byte, c testutil.Credentials) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	testutil.Sign(t, req, body, c, "ecs", hfRegion, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type hfWireError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// wantRawError asserts a raw response is an AWS JSON error.
func wantRawError(t *testing.T, status int, body []byte, wantStatus int, wantType, msgContains string) {
	t.Helper()
	var we hfWireError
	if err := json.Unmarshal(body, &we); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if status != wantStatus || we.Type != wantType || !strings.Contains(we.Message, msgContains) {
		t.Fatalf("got %d %s %q, want %d %s containing %q", status, we.Type, we.Message, wantStatus, wantType, msgContains)
	}
}

// wantAPIError asserts err is the modelled ECS error code with a message
// (exact when exact is true, else containing msg).
func wantAPIError(t *testing.T, err error, code, msg string, exact bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v (%T), want API error %s", err, err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("got %s %q, want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if exact && ae.ErrorMessage() != msg || !exact && !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("%s message %q, want %q (exact=%v)", code, ae.ErrorMessage(), msg, exact)
	}
}

// hfT is the test that the running hfStart belongs to (these tests do not
// run in parallel), so that must can fail it: Go cannot pass a call's two
// results and a *testing.T to one function.
var hfT *testing.T

// must returns v, failing the current test if err is set. Only for the
// test's own goroutine.
func must[T any](v T, err error) T {
	if err != nil {
		hfT.Helper()
		hfT.Fatalf("unexpected error: %v", err)
	}
	return v
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.EventuallyTrue(t, 30*time.Second, 2*time.Millisecond, what, cond)
}

// --- fixtures ---

func (e *hfEnv) cluster(name string) string {
	e.t.Helper()
	out := must(e.ecs.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}))
	return aws.ToString(out.Cluster.ClusterArn)
}

func (e *hfEnv) taskDef(family string) string {
	e.t.Helper()
	out := must(e.ecs.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Essential: aws.Bool(true),
			Command: []string{"sleep", "3600"},
		}},
	}))
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// instance registers a container instance in the given AZ, acting as an
// agent, and returns its ARN.
func (e *hfEnv) instance(cluster, az string) string {
	e.t.Helper()
	out := must(e.ecs.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{
		Cluster:    aws.String(cluster),
		Attributes: []types.Attribute{{Name: aws.String("availability-zone"), Value: aws.String(az)}},
	}))
	return aws.ToString(out.ContainerInstance.ContainerInstanceArn)
}

func (e *hfEnv) service(cluster, name, td string, desired int32) *types.Service {
	e.t.Helper()
	out := must(e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(desired),
	}))
	return out.Service
}

func (e *hfEnv) describeService(cluster, name string) types.Service {
	e.t.Helper()
	out := must(e.ecs.DescribeServices(e.ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}}))
	if len(out.Services) != 1 {
		e.t.Fatalf("service %s: %+v", name, out.Failures)
	}
	return out.Services[0]
}

func (e *hfEnv) listTasks(in *ecs.ListTasksInput) []string {
	e.t.Helper()
	var all []string
	for {
		out := must(e.ecs.ListTasks(e.ctx, in))
		all = append(all, out.TaskArns...)
		if out.NextToken == nil {
			return all
		}
		cp := *in
		cp.NextToken = out.NextToken
		in = &cp
	}
}

func (e *hfEnv) serviceTasks(cluster, name string) []string {
	e.t.Helper()
	return e.listTasks(&ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(name)})
}

// waitServiceTasks waits until the service has exactly n tasks desired RUNNING.
func (e *hfEnv) waitServiceTasks(cluster, name string, n int) []string {
	e.t.Helper()
	var arns []string
	eventually(e.t, "service "+name+" tasks", func() bool {
		arns = e.serviceTasks(cluster, name)
		return len(arns) == n
	})
	return arns
}

func (e *hfEnv) task(cluster, arn string) types.Task {
	e.t.Helper()
	out := must(e.ecs.DescribeTasks(e.ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}}))
	if len(out.Tasks) != 1 {
		e.t.Fatalf("task %s: %+v", arn, out.Failures)
	}
	return out.Tasks[0]
}

// report sends SubmitTaskStateChange for a task, acting as its agent.
func (e *hfEnv) report(cluster, arn, status string) {
	e.t.Helper()
	must(e.ecs.SubmitTaskStateChange(e.ctx, &ecs.SubmitTaskStateChangeInput{
		Cluster: aws.String(cluster), Task: aws.String(arn), Status: aws.String(status),
	}))
}

// poll is one agent long poll (HoldfastAgentV1.Poll) with waitSeconds 0
// and no known revision.
func (e *hfEnv) poll(cluster, instanceARN string) agentapi.PollOutput {
	e.t.Helper()
	return e.pollFrom(cluster, instanceARN, 0)
}

func (e *hfEnv) protect(cluster string, enable bool, minutes *int32, tasks ...string) *ecs.UpdateTaskProtectionOutput {
	e.t.Helper()
	return must(e.ecs.UpdateTaskProtection(e.ctx, &ecs.UpdateTaskProtectionInput{
		Cluster: aws.String(cluster), Tasks: tasks, ProtectionEnabled: enable, ExpiresInMinutes: minutes,
	}))
}

func (e *hfEnv) getProtection(cluster string, tasks ...string) *ecs.GetTaskProtectionOutput {
	e.t.Helper()
	return must(e.ecs.GetTaskProtection(e.ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String(cluster), Tasks: tasks}))
}

// reconcileLog records the controller's plans.
type reconcileLog struct {
	mu    sync.Mutex
	plans []scheduler.Plan
	keys  []string
}

func (l *reconcileLog) hook(key string, plan scheduler.Plan) {
	l.mu.Lock()
	l.plans = append(l.plans, plan)
	l.keys = append(l.keys, key)
	l.mu.Unlock()
}

func (l *reconcileLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.plans)
}

// since reports whether a plan for key recorded at index >= from matches.
func (l *reconcileLog) since(from int, key string, match func(scheduler.Plan) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; i < len(l.plans); i++ {
		if l.keys[i] == key && match(l.plans[i]) {
			return true
		}
	}
	return false
}

func shortID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// waitSteady waits until the service reports a steady state with its
// PRIMARY deployment COMPLETED (the controller is quiet after that).
func (e *hfEnv) waitSteady(cluster, name string) {
	e.t.Helper()
	eventually(e.t, name+" steady", func() bool {
		sv := e.describeService(cluster, name)
		return len(sv.Deployments) == 1 && sv.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted &&
			len(sv.Events) > 0 && strings.HasSuffix(aws.ToString(sv.Events[0].Message), "has reached a steady state.")
	})
}

// serviceDigest is what a failed request must not change.
func serviceDigest(sv types.Service) string {
	type dep struct {
		ID, Status, TD, Rollout string
		Desired                 int32
	}
	d := struct {
		Status, TD     string
		Desired        int32
		MaxPct, MinPct int32
		Deps           []dep
		Events         int
	}{Status: aws.ToString(sv.Status), TD: aws.ToString(sv.TaskDefinition), Desired: sv.DesiredCount, Events: len(sv.Events)}
	if dc := sv.DeploymentConfiguration; dc != nil {
		d.MaxPct, d.MinPct = aws.ToInt32(dc.MaximumPercent), aws.ToInt32(dc.MinimumHealthyPercent)
	}
	for _, x := range sv.Deployments {
		d.Deps = append(d.Deps, dep{aws.ToString(x.Id), aws.ToString(x.Status), aws.ToString(x.TaskDefinition), string(x.RolloutState), x.DesiredCount})
	}
	b, _ := json.Marshal(d)
	return string(b)
}
