// Package agent is holdfast's node agent: it registers its machine as a
// container instance, keeps a long poll open to the control plane (its
// heartbeat and its source of desired tasks), runs tasks through a
// container runtime (internal/agent/ctr: the process runtime, Docker, or a
// fake in tests), reports every status change, and serves the task
// endpoint (internal/agent/endpoint) that tasks call to protect
// themselves.
//
// Known status (what the containers are doing) and desired status (what the
// control plane wants) are kept apart per task, as amazon-ecs-agent does.
// Everything the agent knows is persisted in its data dir, one file per
// task, so that a restarted agent adopts its running tasks and still
// reports their exits.
//
// The agent is split along its seams:
//
//	agent.go    configuration, New, Run and the goroutines it owns
//	records.go  the task records: what is kept, loading and adoption at
//	            start, durable writes
//	poll.go     registration, the long poll, and applying desired state
//	task.go     each task's runner goroutine: start, stop, teardown, and
//	            the task's state machine fed by runtime events
//	reports.go  status reports to the control plane, retried until acked
//	state.go    the task endpoint's view (lookup, TMDS metadata) and logs
//
// # Locking
//
// One mutex, Agent.mu, guards the agent's memory: the task records and the
// indexes by runtime id and endpoint id. The task endpoint's Lookup takes it
// on every request, so it is never held across I/O: no fsync, no runtime
// call, no network call. Mutations change memory under mu and wake the
// task's runner; the runner (the only writer of its task's record file, and
// the only caller of the runtime for its task) persists and acts outside
// the lock.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/agent/runtime/process"
)

// Version is reported to the control plane at registration.
const Version = "holdfast-agent/0.1.0"

// Config configures an agent.
type Config struct {
	Cluster string
	// ServerURL is the control plane's API URL (http://host:port, or
	// https:// when it serves TLS).
	ServerURL string
	// CABundle, when set, is a PEM file of certificates the agent trusts
	// for the control plane, besides the system's (a self-signed one).
	CABundle string
	// Listen is the host:port the task endpoint is served on; tasks get
	// ECS_AGENT_URI=http://<Listen>/api/<endpoint-id>.
	Listen          string
	DataDir         string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// Attributes are registered on the container instance, e.g.
	// availability-zone=a.
	Attributes map[string]string
	// Runtime runs the containers; the agent owns it from New on and closes
	// it when Run returns (or when New fails). Nil means the process
	// runtime over <DataDir>/containers, with Shim.
	Runtime ctr.Runtime
	// Shim is the argv prefix that runs the process runtime's shim (used
	// only when Runtime is nil).
	Shim []string
	// PollWait is how long one long poll may wait (default 20 s).
	PollWait time.Duration
	// CallTimeout is the task endpoint's ECS-call budget (default 4 s).
	CallTimeout time.Duration
	// ProtectionCredentials, when set, are what the task endpoint calls
	// ECS with for every task's protection, instead of the task's role
	// (holdfast up --task-credentials=none gives the root's). Tasks with
	// a role still get their credentials.
	ProtectionCredentials aws.CredentialsProvider
	// LogLimits cap each container's log (the zero value means
	// DefaultLogLimits; a MaxBytes below zero means no cap).
	LogLimits logfile.Limits
	Logger    *slog.Logger
}

// DefaultLogLimits is the log cap of each container unless Config says
// otherwise: 10 MiB per file, 2 files (at most 20 MiB on disk).
var DefaultLogLimits = logfile.Limits{MaxBytes: 10 << 20, MaxFiles: 2}

// Agent is a running node agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	rt     ctr.Runtime
	raw    *rawClient
	httpTr *http.Transport // the agent's own connections to the control plane
	taskEP http.Handler
	// writeFile writes a file durably; tests replace it to observe fsyncs.
	writeFile func(path string, b []byte) error
	// afterStart, if set (by tests, before Run), is called by a runner
	// between the runtime's Start and recording it.
	afterStart func(runtimeID string)
	// wg joins every goroutine Run starts: the event loop, the report
	// loop and one runner per task.
	wg sync.WaitGroup

	mu          sync.Mutex
	instanceARN string
	tasks       map[string]*localTask // by task id
	byRuntime   map[string]containerRef
	byEndpoint  map[string]containerRef
	// byCredentials resolves credentials ids to task ids (credentials.go).
	byCredentials map[string]string
	// key derives the tasks' credentials ids and tokens.
	key []byte
	// creds are what the agent signs with (identity.go); ownIdentity:
	// they are the instance's own identity. Only New and Run's goroutine
	// change them.
	creds       *switchableCredentials
	ownIdentity bool
	runners     map[string]*runner // by task id, while Run runs
	runCtx      context.Context    // Run's context; nil before Run
	reportWake  chan struct{}
	ready       chan struct{}
	readyOnce   sync.Once
}

type containerRef struct {
	task      string
	container string
}

// New prepares an agent: it opens the runtime, loads its records and
// adopts the containers a previous agent left running.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 20 * time.Second
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.LogLimits == (logfile.Limits{}) {
		cfg.LogLimits = DefaultLogLimits
	}
	rt := cfg.Runtime
	closeRT := func() {
		if rt != nil {
			_ = rt.Close()
		}
	}
	for _, d := range []string{"tasks", "logs", "containers", "work"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o755); err != nil {
			closeRT()
			return nil, err
		}
	}
	if rt == nil {
		p, err := process.New(process.Options{
			StateDir:   filepath.Join(cfg.DataDir, "containers"),
			WorkDir:    filepath.Join(cfg.DataDir, "work"),
			Shim:       cfg.Shim,
			InheritEnv: []string{"PATH", "HOME"},
			Logger:     cfg.Logger.With("part", "runtime"),
		})
		if err != nil {
			return nil, err
		}
		rt = p
	}
	key, err := loadAgentKey(cfg.DataDir)
	if err != nil {
		closeRT()
		return nil, err
	}
	creds := &switchableCredentials{}
	creds.set(cfg.AccessKeyID, cfg.SecretAccessKey)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	roots, err := caPool(cfg.CABundle)
	if err != nil {
		closeRT()
		return nil, err
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	a := &Agent{
		cfg:    cfg,
		log:    cfg.Logger,
		rt:     rt,
		httpTr: tr,
		raw: &rawClient{endpoint: cfg.ServerURL, region: cfg.Region, creds: creds,
			http: &http.Client{Timeout: cfg.PollWait + 20*time.Second, Transport: tr}, signer: v4.NewSigner()},
		writeFile:     writeFileSync,
		tasks:         map[string]*localTask{},
		byRuntime:     map[string]containerRef{},
		byEndpoint:    map[string]containerRef{},
		byCredentials: map[string]string{},
		creds:         creds,
		key:           key,
		runners:       map[string]*runner{},
		reportWake:    make(chan struct{}, 1),
		ready:         make(chan struct{}),
	}
	epCfg := endpoint.Config{
		Cluster:     cfg.Cluster,
		ECS:         newEndpointECS(cfg, creds, roots),
		State:       lookup{a},
		Credentials: credentialStore{a},
		CallTimeout: cfg.CallTimeout,
		Logger:      cfg.Logger.With("part", "endpoint"),
	}
	if cfg.ProtectionCredentials != nil {
		// Every protection call as the given identity, whatever the
		// task's role; no credentials are looked up for it.
		epCfg.ECS = newEndpointECS(cfg, cfg.ProtectionCredentials, roots)
		epCfg.ProtectWithClientCredentials = true
	}
	a.taskEP = endpoint.New(epCfg)
	a.loadIdentity()
	if err := a.load(); err != nil {
		closeRT()
		return nil, err
	}
	return a, nil
}

// Ready is closed once the agent has registered and polled once.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// RuntimeName is the name of the runtime running the tasks ("process",
// "docker", ...).
func (a *Agent) RuntimeName() string { return a.rt.Name() }

// InstanceARN returns the registered container instance ARN ("" before).
func (a *Agent) InstanceARN() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.instanceARN
}

// Handler serves the task endpoint and the agent's own read-only paths.
func (a *Agent) Handler() http.Handler {
	own := http.NewServeMux()
	own.HandleFunc("GET /holdfast/v1/logs/{task}", a.serveLogs)
	own.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.ready:
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("ok\n"))
		default:
			http.Error(w, "agent not registered yet", http.StatusServiceUnavailable)
		}
	})
	// Everything else goes to the task endpoint untouched: a ServeMux in
	// front of it would clean non-canonical paths with its own 307, where
	// the ECS agent (and so the endpoint) answers 301.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/holdfast/") {
			own.ServeHTTP(w, r)
			return
		}
		a.taskEP.ServeHTTP(w, r)
	})
}

// Run registers, then polls and reports until ctx ends. Tasks keep running
// when Run returns: stopping the agent never stops its tasks. Run returns
// once every goroutine it started has ended, and closes the runtime.
func (a *Agent) Run(ctx context.Context) error {
	defer a.rt.Close()
	defer a.httpTr.CloseIdleConnections()
	defer a.wg.Wait()
	a.wg.Go(func() { a.eventLoop(ctx) })
	a.wg.Go(func() { a.reportLoop(ctx) })
	a.mu.Lock()
	a.runCtx = ctx
	for id := range a.tasks {
		a.spawnLocked(id)
	}
	a.mu.Unlock()
	backoff := newBackoff()
	for ctx.Err() == nil {
		if err := a.register(ctx); err != nil {
			a.log.Warn("register with the control plane failed; retrying", "err", err, "server", a.cfg.ServerURL)
			backoff.sleep(ctx)
			continue
		}
		backoff.reset()
		err := a.pollLoop(ctx)
		if ctx.Err() != nil {
			break
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.Type == "ResourceNotFoundException" {
			a.log.Warn("control plane does not know this instance; registering again")
			a.mu.Lock()
			a.instanceARN = ""
			a.mu.Unlock()
			continue
		}
		a.log.Warn("poll failed; retrying", "err", err)
		backoff.sleep(ctx)
	}
	return nil
}

// backoff is a capped exponential backoff.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }
func (b *backoff) reset()  { b.d = 100 * time.Millisecond }
func (b *backoff) sleep(ctx context.Context) {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(b.d*2, 5*time.Second)
}

// caPool is the system's certificate pool plus the PEM file's
// certificates; nil (the system's) without a file.
func caPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}
