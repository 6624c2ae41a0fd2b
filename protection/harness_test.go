package protection_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/time/rate"

	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/protection"
)

const (
	tCluster = "default"
	tKey     = "AK"
	tSecret  = "SK"
	tRegion  = testutil.Region
)

// fakeClock adapts internal/clock.Fake to protection.Clock, so that the
// library and the control plane share one fake time.
type fakeClock struct{ *clock.Fake }

func (f fakeClock) AfterFunc(d time.Duration, fn func()) func() bool {
	return f.Fake.AfterFunc(d, fn).Stop
}

// env is a real control plane (in process, fake clock) plus the real task
// endpoint handler in front of it, resolving endpoint ids to tasks that the
// test, acting as the agent, reported RUNNING.
type env struct {
	t        *testing.T
	ctx      context.Context
	clk      *clock.Fake
	ecs      *ecs.Client
	instance string
	state    *state
	ep       http.Handler
	epSrv    *httptest.Server
	service  string
}

type state struct {
	mu  sync.Mutex
	ids map[string]string // endpoint id -> task ARN
}

func (s *state) Lookup(id string) (endpoint.TaskMetadata, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn, ok := s.ids[id]
	if !ok {
		return endpoint.TaskMetadata{}, "", false
	}
	return endpoint.TaskMetadata{Cluster: tCluster, TaskARN: arn, KnownStatus: "RUNNING"}, "app", true
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a control plane; skipped under -short")
	}
	clk := clock.NewFake(time.Now().Truncate(time.Second))
	srv, err := server.New(server.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Region: tRegion, AccountID: "000000000000",
		AccessKeyID: tKey, SecretAccessKey: tSecret, Clock: clk,
		HeartbeatTimeout: 1000 * time.Hour, DefaultCluster: tCluster,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	client := testutil.ECSClient("http://"+addr, testutil.Credentials{AccessKeyID: tKey, SecretAccessKey: tSecret})
	e := &env{t: t, ctx: context.Background(), clk: clk, ecs: client, state: &state{ids: map[string]string{}}}
	e.eventually("control plane healthy", func() bool {
		r, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	// Act as the agent: register this "machine" as a container instance.
	ci, err := client.RegisterContainerInstance(e.ctx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String(tCluster)})
	if err != nil {
		t.Fatalf("RegisterContainerInstance: %v", err)
	}
	e.instance = *ci.ContainerInstance.ContainerInstanceArn
	// The library is tested against the endpoint acting with the test's
	// own (root) credentials, as `holdfast up --task-credentials=none`:
	// task roles are not what these tests are about.
	e.ep = endpoint.New(endpoint.Config{Cluster: tCluster, ECS: client, State: e.state, CallTimeout: 4 * time.Second, RateLimit: rate.Inf,
		ProtectWithClientCredentials: true})
	e.epSrv = httptest.NewServer(e.ep)
	t.Cleanup(e.epSrv.Close)
	return e
}

func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	testutil.EventuallyTrue(e.t, 30*time.Second, 5*time.Millisecond, what, cond)
}

// registerTD registers a task definition revision of family "app".
func (e *env) registerTD() string {
	e.t.Helper()
	out, err := e.ecs.RegisterTaskDefinition(e.ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("app"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("none"), Essential: aws.Bool(true),
			EntryPoint: []string{"/bin/true"},
		}},
	})
	if err != nil {
		e.t.Fatalf("RegisterTaskDefinition: %v", err)
	}
	return *out.TaskDefinition.TaskDefinitionArn
}

// startService creates service "svc" with desired tasks and returns their
// ARNs once they are placed and reported RUNNING.
func (e *env) startService(desired int32) []string {
	e.t.Helper()
	td := e.registerTD()
	e.service = "svc"
	if _, err := e.ecs.CreateService(e.ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(tCluster), ServiceName: aws.String("svc"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(desired),
	}); err != nil {
		e.t.Fatalf("CreateService: %v", err)
	}
	return e.runNew(nil, int(desired))
}

// runNew waits until n tasks other than old exist, reports them RUNNING
// and returns them.
func (e *env) runNew(old []string, n int) []string {
	e.t.Helper()
	skip := map[string]bool{}
	for _, a := range old {
		skip[a] = true
	}
	var fresh []string
	e.eventually("tasks placed", func() bool {
		out, err := e.ecs.ListTasks(e.ctx, &ecs.ListTasksInput{Cluster: aws.String(tCluster), ServiceName: aws.String(e.service)})
		if err != nil {
			e.t.Fatalf("ListTasks: %v", err)
		}
		fresh = fresh[:0]
		for _, a := range out.TaskArns {
			if !skip[a] {
				fresh = append(fresh, a)
			}
		}
		return len(fresh) >= n
	})
	for _, a := range fresh {
		if _, err := e.ecs.SubmitTaskStateChange(e.ctx, &ecs.SubmitTaskStateChangeInput{
			Cluster: aws.String(tCluster), Task: aws.String(a), Status: aws.String("RUNNING"),
		}); err != nil {
			e.t.Fatalf("SubmitTaskStateChange: %v", err)
		}
	}
	return fresh
}

// agentURI makes a fresh endpoint id for task arn and returns what
// ECS_AGENT_URI would hold, served by base (the endpoint or a proxy).
func (e *env) agentURI(base, arn string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	e.state.mu.Lock()
	e.state.ids[id] = arn
	e.state.mu.Unlock()
	return base + "/api/" + id
}

// protection returns the task's protection from the control plane.
func (e *env) protection(arn string) ecstypes.ProtectedTask {
	e.t.Helper()
	out, err := e.ecs.GetTaskProtection(e.ctx, &ecs.GetTaskProtectionInput{Cluster: aws.String(tCluster), Tasks: []string{arn}})
	if err != nil {
		e.t.Fatalf("GetTaskProtection: %v", err)
	}
	if len(out.ProtectedTasks) != 1 {
		e.t.Fatalf("GetTaskProtection: %+v", out)
	}
	return out.ProtectedTasks[0]
}

// counter is a proxy in front of the endpoint that counts requests and can
// answer the first few itself.
type counter struct {
	next    http.Handler
	n       atomic.Int64
	puts    atomic.Int64
	mu      sync.Mutex
	answers []func(w http.ResponseWriter) // answered in order before passing through
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	if r.Method == http.MethodPut {
		c.puts.Add(1)
	}
	c.mu.Lock()
	var a func(http.ResponseWriter)
	if len(c.answers) > 0 {
		a, c.answers = c.answers[0], c.answers[1:]
	}
	c.mu.Unlock()
	if a != nil {
		a(w)
		return
	}
	c.next.ServeHTTP(w, r)
}

func (e *env) proxy(c *counter) string {
	c.next = e.ep
	s := httptest.NewServer(c)
	e.t.Cleanup(s.Close)
	return s.URL
}

func newProtector(t *testing.T, uri string, opts ...protection.Option) *protection.Protector {
	t.Helper()
	p, err := protection.New(append([]protection.Option{protection.WithEndpoint(uri), protection.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
