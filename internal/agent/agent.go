// Package agent is holdfast's node agent: it registers its machine as a
// container instance, keeps a long poll open to the control plane (its
// heartbeat and its source of desired tasks), runs tasks as host processes
// through internal/agent/runtime/process, reports every status change, and serves
// the task endpoint (internal/agent/endpoint) that tasks call to protect
// themselves.
//
// Known status (what the processes are doing) and desired status (what the
// control plane wants) are kept apart per task, as amazon-ecs-agent does.
// Everything the agent knows is persisted in its data dir, one file per
// task, so that a restarted agent adopts its running tasks and still
// reports their exits.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/agent/runtime/process"
	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
)

// Version is reported to the control plane at registration.
const Version = "holdfast-agent/0.1.0"

// Config configures an agent.
type Config struct {
	Cluster string
	// ServerURL is the control plane's API URL (http://host:port).
	ServerURL string
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
	// Shim is the argv prefix that runs the runtime's shim.
	Shim []string
	// PollWait is how long one long poll may wait (default 20 s).
	PollWait time.Duration
	// CallTimeout is the task endpoint's ECS-call budget (default 4 s).
	CallTimeout time.Duration
	Logger      *slog.Logger
}

// Agent is a running node agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	rt     *process.Runtime
	ecs    *ecs.Client
	raw    *rawClient
	taskEP http.Handler

	mu          sync.Mutex
	instanceARN string
	tasks       map[string]*localTask // by task id
	byRuntime   map[string]containerRef
	byEndpoint  map[string]containerRef
	// resume lists tasks whose start an earlier agent did not finish.
	resume []string
	// monitors holds the runtime ids of the containers whose health check
	// is being run (see health.go).
	monitors   map[string]bool
	reportWake chan struct{}
	ready      chan struct{}
	readyOnce  sync.Once
}

type containerRef struct {
	task      string
	container string
}

// localTask is the agent's record of one task.
type localTask struct {
	ARN           string                 `json:"arn"`
	ID            string                 `json:"id"`
	ServiceName   string                 `json:"serviceName,omitempty"`
	TaskDef       *domain.TaskDefinition `json:"taskDefinition"`
	DesiredStatus string                 `json:"desiredStatus"`
	KnownStatus   string                 `json:"knownStatus"`
	// Reported is the last status the control plane acknowledged.
	Reported   string           `json:"reported"`
	StopReason string           `json:"stopReason,omitempty"`
	Containers []localContainer `json:"containers"`
	CreatedAt  time.Time        `json:"createdAt"`
	StartedAt  time.Time        `json:"startedAt,omitzero"`
	StoppedAt  time.Time        `json:"stoppedAt,omitzero"`
	// reportDirty: a change not yet reported (memory only; at start every
	// task whose Reported differs from KnownStatus is reported again).
	reportDirty bool
	// starting: startTask is still starting its containers (memory only);
	// the task cannot be STOPPED until it is done.
	starting bool
}

type localContainer struct {
	Name        string        `json:"name"`
	RuntimeID   string        `json:"runtimeId"`
	EndpointID  string        `json:"endpointId"`
	Essential   bool          `json:"essential"`
	Status      string        `json:"status"`
	ExitCode    *int          `json:"exitCode,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	StopTimeout time.Duration `json:"stopTimeout"`
	PID         int           `json:"pid,omitempty"`
	StartedAt   time.Time     `json:"startedAt,omitzero"`
	FinishedAt  time.Time     `json:"finishedAt,omitzero"`
	// HealthStatus is the result of the container's health check
	// (HEALTHY, UNHEALTHY; "" or UNKNOWN before the first verdict, and
	// for containers without one).
	HealthStatus string `json:"healthStatus,omitempty"`
}

// New prepares an agent: it opens the runtime, loads its records and
// adopts the processes a previous agent left running.
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
	for _, d := range []string{"tasks", "logs", "containers", "work"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	rt, err := process.New(filepath.Join(cfg.DataDir, "containers"), cfg.Shim, cfg.Logger.With("part", "runtime"))
	if err != nil {
		return nil, err
	}
	creds := credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	httpc := &http.Client{Timeout: cfg.PollWait + 20*time.Second}
	a := &Agent{
		cfg: cfg,
		log: cfg.Logger,
		rt:  rt,
		ecs: ecs.New(ecs.Options{
			Region:       cfg.Region,
			BaseEndpoint: aws.String(cfg.ServerURL),
			Credentials:  creds,
			HTTPClient:   &http.Client{Timeout: 30 * time.Second},
		}),
		raw:        &rawClient{endpoint: cfg.ServerURL, region: cfg.Region, creds: creds, http: httpc, signer: v4.NewSigner()},
		tasks:      map[string]*localTask{},
		byRuntime:  map[string]containerRef{},
		byEndpoint: map[string]containerRef{},
		reportWake: make(chan struct{}, 1),
		ready:      make(chan struct{}),
	}
	a.taskEP = endpoint.New(endpoint.Config{
		Cluster:     cfg.Cluster,
		ECS:         newEndpointECS(cfg, creds),
		State:       lookup{a},
		CallTimeout: cfg.CallTimeout,
		Logger:      cfg.Logger.With("part", "endpoint"),
	})
	if err := a.load(); err != nil {
		rt.Close()
		return nil, err
	}
	return a, nil
}

// Ready is closed once the agent has registered and polled once.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// InstanceARN returns the registered container instance ARN ("" before).
func (a *Agent) InstanceARN() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.instanceARN
}

func (a *Agent) load() error {
	if b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "instance-arn")); err == nil {
		a.instanceARN = strings.TrimSpace(string(b))
	}
	entries, err := os.ReadDir(filepath.Join(a.cfg.DataDir, "tasks"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "tasks", e.Name()))
		if err != nil {
			return err
		}
		var t localTask
		if err := json.Unmarshal(b, &t); err != nil {
			a.log.Warn("skipping unreadable task record", "file", e.Name(), "err", err)
			continue
		}
		t.reportDirty = t.Reported != t.KnownStatus
		a.tasks[t.ID] = &t
		for _, c := range t.Containers {
			a.byRuntime[c.RuntimeID] = containerRef{t.ID, c.Name}
			a.byEndpoint[c.EndpointID] = containerRef{t.ID, c.Name}
		}
	}
	adopted, err := a.rt.Adopt()
	if err != nil {
		return fmt.Errorf("adopt running containers: %w", err)
	}
	alive := map[string]bool{}
	for _, id := range adopted {
		alive[id] = true
		if _, ok := a.byRuntime[id]; !ok {
			a.log.Warn("adopted a container with no task record; stopping it", "container", id)
			_ = a.rt.Stop(id, 5*time.Second)
		}
	}
	// A task whose start the previous agent did not finish (it died or
	// was stopped in the middle) is started again: containers the runtime
	// knows are kept, the others are started.
	for id, lt := range a.tasks {
		if lt.KnownStatus != domain.StatusPending || lt.DesiredStatus != domain.StatusRunning {
			continue
		}
		for i := range lt.Containers {
			if alive[lt.Containers[i].RuntimeID] {
				lt.Containers[i].Status = domain.StatusRunning
			}
		}
		a.resume = append(a.resume, id)
	}
	if len(a.tasks) > 0 {
		a.log.Info("resumed tasks from the data dir", "tasks", len(a.tasks), "live containers", len(adopted))
	}
	return nil
}

// save writes a task record durably (tmp + fsync + rename). Caller holds a.mu.
func (a *Agent) save(t *localTask) {
	path := filepath.Join(a.cfg.DataDir, "tasks", t.ID+".json")
	if t.KnownStatus == domain.StatusStopped && t.Reported == domain.StatusStopped {
		_ = os.Remove(path)
		return
	}
	b, err := json.Marshal(t)
	if err != nil {
		a.log.Error("encode task record", "task", t.ID, "err", err)
		return
	}
	if err := writeFileSync(path, b); err != nil {
		a.log.Error("save task record", "task", t.ID, "err", err)
	}
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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
// when Run returns: stopping the agent never stops its tasks.
func (a *Agent) Run(ctx context.Context) error {
	defer a.rt.Close()
	go a.exitLoop(ctx)
	go a.reportLoop(ctx)
	// Health checks of adopted tasks resume where they were.
	a.mu.Lock()
	var live []string
	for id, lt := range a.tasks {
		if lt.KnownStatus == domain.StatusRunning {
			live = append(live, id)
		}
	}
	a.mu.Unlock()
	for _, id := range live {
		a.startHealthChecks(ctx, id)
	}
	for _, id := range a.resume {
		go a.startTask(ctx, id)
	}
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

func (a *Agent) register(ctx context.Context) error {
	attrs := []ecstypes.Attribute{{Name: aws.String("holdfast.agent-url"), Value: aws.String("http://" + a.cfg.Listen)}}
	keys := make([]string, 0, len(a.cfg.Attributes))
	for k := range a.cfg.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, ecstypes.Attribute{Name: aws.String(k), Value: aws.String(a.cfg.Attributes[k])})
	}
	in := &ecs.RegisterContainerInstanceInput{
		Cluster:     aws.String(a.cfg.Cluster),
		Attributes:  attrs,
		VersionInfo: &ecstypes.VersionInfo{AgentVersion: aws.String(Version)},
	}
	if arn := a.InstanceARN(); arn != "" {
		in.ContainerInstanceArn = aws.String(arn)
	}
	out, err := a.ecs.RegisterContainerInstance(ctx, in)
	if err != nil {
		return err
	}
	arn := aws.ToString(out.ContainerInstance.ContainerInstanceArn)
	a.mu.Lock()
	a.instanceARN = arn
	a.mu.Unlock()
	if err := writeFileSync(filepath.Join(a.cfg.DataDir, "instance-arn"), []byte(arn+"\n")); err != nil {
		return err
	}
	a.log.Info("registered container instance", "arn", arn, "cluster", a.cfg.Cluster)
	return nil
}

func (a *Agent) pollLoop(ctx context.Context) error {
	var known int64
	for ctx.Err() == nil {
		var out agentapi.PollOutput
		err := a.raw.call(ctx, agentapi.PollTarget, agentapi.PollInput{
			Cluster:              a.cfg.Cluster,
			ContainerInstanceARN: a.InstanceARN(),
			KnownRevision:        known,
			WaitSeconds:          int(a.cfg.PollWait / time.Second),
		}, &out)
		if err != nil {
			return err
		}
		known = out.Revision
		a.apply(ctx, out)
		a.readyOnce.Do(func() { close(a.ready) })
	}
	return ctx.Err()
}

// apply makes the local tasks match what the control plane wants.
func (a *Agent) apply(ctx context.Context, out agentapi.PollOutput) {
	a.mu.Lock()
	defer a.mu.Unlock()
	want := map[string]bool{}
	for _, arn := range out.TaskARNs {
		want[taskID(arn)] = true
	}
	for _, d := range out.Tasks {
		if d.Task == nil || d.TaskDefinition == nil {
			continue
		}
		id := taskID(d.Task.TaskARN)
		lt := a.tasks[id]
		if lt == nil {
			if d.Task.DesiredStatus != domain.StatusRunning {
				if want[id] {
					// Stopped before it ever reached this agent: nothing
					// runs, but only our STOPPED report ends it.
					lt = a.newLocalTask(d)
					lt.DesiredStatus = domain.StatusStopped
					lt.StopReason = d.Task.StoppedReason
					for i := range lt.Containers {
						lt.Containers[i].Status = domain.StatusStopped
					}
					a.tasks[id] = lt
					a.finishIfDone(lt)
				}
				continue
			}
			lt = a.newLocalTask(d)
			a.tasks[id] = lt
			a.markDirty(lt) // reports PENDING
			go a.startTask(ctx, id)
			continue
		}
		if d.Task.DesiredStatus == domain.StatusStopped && lt.DesiredStatus != domain.StatusStopped {
			lt.DesiredStatus = domain.StatusStopped
			lt.StopReason = d.Task.StoppedReason
			a.save(lt)
			a.stopLocked(lt)
		}
	}
	for id, lt := range a.tasks {
		if !want[id] && lt.KnownStatus != domain.StatusStopped && lt.DesiredStatus != domain.StatusStopped {
			// The control plane no longer lists it (it was stopped while we
			// were away): stop it.
			lt.DesiredStatus = domain.StatusStopped
			a.save(lt)
			a.stopLocked(lt)
		}
	}
}

func taskID(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

func newEndpointID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (a *Agent) newLocalTask(d agentapi.DesiredTask) *localTask {
	id := taskID(d.Task.TaskARN)
	lt := &localTask{
		ARN:           d.Task.TaskARN,
		ID:            id,
		ServiceName:   d.ServiceName,
		TaskDef:       d.TaskDefinition,
		DesiredStatus: domain.StatusRunning,
		KnownStatus:   domain.StatusPending,
		Reported:      domain.StatusProvisioning,
		CreatedAt:     time.Now(),
	}
	for _, cd := range d.TaskDefinition.ContainerDefinitions {
		stop := 30 * time.Second
		if cd.StopTimeout != nil {
			stop = time.Duration(*cd.StopTimeout) * time.Second
		}
		c := localContainer{
			Name:        cd.Name,
			RuntimeID:   id + "-" + cd.Name,
			EndpointID:  newEndpointID(),
			Essential:   cd.IsEssential(),
			Status:      domain.StatusPending,
			StopTimeout: stop,
		}
		lt.Containers = append(lt.Containers, c)
		a.byRuntime[c.RuntimeID] = containerRef{id, cd.Name}
		a.byEndpoint[c.EndpointID] = containerRef{id, cd.Name}
	}
	return lt
}

// env builds a container's environment: the agent's PATH and HOME, the
// task definition's environment, then the injected ECS variables.
func (a *Agent) env(cd domain.ContainerDefinition, c localContainer) []string {
	var base []string
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			base = append(base, k+"="+v)
		}
	}
	var over []string
	for _, kv := range cd.Environment {
		over = append(over, kv.Name+"="+kv.Value)
	}
	host := "http://" + a.cfg.Listen
	over = append(over,
		"ECS_AGENT_URI="+host+"/api/"+c.EndpointID,
		"ECS_CONTAINER_METADATA_URI_V4="+host+"/v4/"+c.EndpointID,
		"ECS_CONTAINER_METADATA_URI="+host+"/v4/"+c.EndpointID,
		"AWS_REGION="+a.cfg.Region,
		"AWS_DEFAULT_REGION="+a.cfg.Region,
	)
	return process.MergeEnv(base, over)
}

func (a *Agent) logPath(taskID, container string) string {
	return filepath.Join(a.cfg.DataDir, "logs", taskID, container+".log")
}

// startTask starts every container of a task; if one cannot start, the
// task stops with the runtime's reason.
func (a *Agent) startTask(ctx context.Context, id string) {
	a.mu.Lock()
	lt := a.tasks[id]
	if lt == nil || lt.DesiredStatus != domain.StatusRunning {
		a.mu.Unlock()
		return
	}
	td := lt.TaskDef
	containers := append([]localContainer(nil), lt.Containers...)
	lt.starting = true
	a.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(a.cfg.DataDir, "logs", id), 0o755); err != nil {
		a.failStart(id, err.Error())
		return
	}
	for i, c := range containers {
		if a.abortStart(id, i) {
			return
		}
		if c.Status == domain.StatusRunning {
			continue // adopted: it was started before an agent restart
		}
		cd := td.ContainerDefinitions[i]
		argv := append(append([]string{}, cd.EntryPoint...), cd.Command...)
		if len(argv) == 0 {
			a.failStart(id, "CannotStartContainerError: container "+cd.Name+" has no entryPoint or command (the process runtime does not read images)")
			return
		}
		dir := a.containerDir(id, cd)
		if cd.WorkingDirectory == "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				a.failStart(id, err.Error())
				return
			}
		}
		pid, err := a.rt.Start(ctx, process.Spec{
			ID:          c.RuntimeID,
			Argv:        argv,
			Env:         a.env(cd, c),
			Dir:         dir,
			LogPath:     a.logPath(id, cd.Name),
			StopTimeout: c.StopTimeout,
		})
		if err != nil {
			if ctx.Err() != nil {
				// The agent is shutting down, not the task failing: the
				// next agent finishes the start.
				return
			}
			a.failStart(id, err.Error())
			return
		}
		a.mu.Lock()
		if lt := a.tasks[id]; lt != nil {
			lt.Containers[i].Status = domain.StatusRunning
			lt.Containers[i].PID = pid
			lt.Containers[i].StartedAt = time.Now()
			a.save(lt)
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	lt = a.tasks[id]
	if lt == nil {
		a.mu.Unlock()
		return
	}
	lt.starting = false
	if lt.KnownStatus == domain.StatusPending {
		lt.KnownStatus = domain.StatusRunning
		lt.StartedAt = time.Now()
	}
	if lt.DesiredStatus == domain.StatusStopped {
		a.stopLocked(lt)
	}
	a.markDirty(lt)
	a.mu.Unlock()
	a.startHealthChecks(ctx, id)
}

// abortStart stops a start in progress before container i when the task
// was told to stop meanwhile: the containers not started yet never will be,
// and those already started are stopped.
func (a *Agent) abortStart(id string, i int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt == nil || lt.DesiredStatus != domain.StatusStopped {
		return false
	}
	lt.starting = false
	for j := i; j < len(lt.Containers); j++ {
		if lt.Containers[j].Status == domain.StatusPending {
			lt.Containers[j].Status = domain.StatusStopped
		}
	}
	a.stopLocked(lt)
	a.finishIfDone(lt)
	a.markDirty(lt)
	return true
}

func (a *Agent) failStart(id, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt == nil {
		return
	}
	lt.starting = false
	a.log.Warn("task failed to start", "task", id, "reason", reason)
	lt.StopReason = reason
	lt.DesiredStatus = domain.StatusStopped
	for i := range lt.Containers {
		if lt.Containers[i].Status == domain.StatusPending {
			lt.Containers[i].Status = domain.StatusStopped
			lt.Containers[i].Reason = reason
		}
	}
	a.stopLocked(lt)
	a.finishIfDone(lt)
	a.markDirty(lt)
}

// stopLocked asks the runtime to stop every live container of lt. A task
// that was RUNNING is STOPPING until its last container has exited.
func (a *Agent) stopLocked(lt *localTask) {
	live := false
	for _, c := range lt.Containers {
		if c.Status == domain.StatusRunning {
			live = true
			if err := a.rt.Stop(c.RuntimeID, c.StopTimeout); err != nil && !errors.Is(err, process.ErrNotFound) {
				a.log.Warn("stop container", "container", c.RuntimeID, "err", err)
			}
		}
	}
	if live && lt.KnownStatus == domain.StatusRunning {
		lt.KnownStatus = domain.StatusStopping
		a.markDirty(lt)
	}
	if lt.KnownStatus != domain.StatusStopped {
		a.finishIfDone(lt)
	}
}

// finishIfDone moves lt to STOPPED once no container is running.
func (a *Agent) finishIfDone(lt *localTask) {
	if lt.starting {
		return // startTask finishes it
	}
	for _, c := range lt.Containers {
		if c.Status == domain.StatusRunning {
			return
		}
	}
	if lt.KnownStatus == domain.StatusStopped {
		return
	}
	if lt.KnownStatus == domain.StatusPending && lt.DesiredStatus == domain.StatusRunning {
		return // still starting
	}
	lt.KnownStatus = domain.StatusStopped
	lt.StoppedAt = time.Now()
	for _, c := range lt.Containers {
		delete(a.byEndpoint, c.EndpointID)
	}
	a.markDirty(lt)
}

func (a *Agent) exitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-a.rt.Exits():
			if !ok {
				return
			}
			a.onExit(e)
		}
	}
}

func (a *Agent) onExit(e process.Exit) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ref, ok := a.byRuntime[e.ID]
	if !ok {
		_ = a.rt.Forget(e.ID)
		return
	}
	lt := a.tasks[ref.task]
	if lt == nil {
		return
	}
	for i := range lt.Containers {
		c := &lt.Containers[i]
		if c.Name != ref.container {
			continue
		}
		c.Status = domain.StatusStopped
		c.ExitCode = e.ExitCode
		c.Reason = e.Reason
		if c.ExitCode == nil && e.Signal != "" {
			// A signalled process reports 128+n, as a shell would.
			code := 128 + signalNumber(e.Signal)
			c.ExitCode = &code
		}
		c.FinishedAt = e.At
		if c.Essential && lt.DesiredStatus == domain.StatusRunning {
			lt.DesiredStatus = domain.StatusStopped
			lt.StopReason = "Essential container in task exited"
		}
	}
	// A non-essential container may exit and the task goes on; an
	// essential one (or a stop already under way) stops the rest.
	if lt.DesiredStatus == domain.StatusStopped {
		a.stopLocked(lt)
	}
	a.finishIfDone(lt)
	// Report the container's exit even while the task goes on.
	a.markDirty(lt)
}

func (a *Agent) markDirty(lt *localTask) {
	lt.reportDirty = true
	a.save(lt)
	select {
	case a.reportWake <- struct{}{}:
	default:
	}
}

// reportLoop sends each task's newest status until the control plane
// acknowledges it; while the control plane is unreachable it keeps trying,
// so the agent catches up when it returns.
func (a *Agent) reportLoop(ctx context.Context) {
	backoff := newBackoff()
	for {
		pending := a.pendingReports()
		failed := false
		for i, r := range pending {
			if err := a.report(ctx, r); err != nil {
				a.log.Warn("status report failed; will retry", "task", r.ID, "status", r.KnownStatus, "err", err)
				failed = true
				// pendingReports cleared their dirty flags: queue this one
				// and the rest again, or a change that left the status as
				// it was (health, a container's exit) is never retried.
				a.mu.Lock()
				for _, u := range pending[i:] {
					if lt := a.tasks[u.ID]; lt != nil {
						lt.reportDirty = true
					}
				}
				a.mu.Unlock()
				break
			}
		}
		if failed {
			backoff.sleep(ctx)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		backoff.reset()
		select {
		case <-ctx.Done():
			return
		case <-a.reportWake:
		}
	}
}

// pendingReports copies the tasks whose status is not yet acknowledged.
func (a *Agent) pendingReports() []localTask {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []localTask
	for _, lt := range a.tasks {
		if lt.reportDirty || lt.Reported != lt.KnownStatus {
			lt.reportDirty = false
			c := *lt
			c.Containers = append([]localContainer(nil), lt.Containers...)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

func (a *Agent) report(ctx context.Context, t localTask) error {
	// The report goes to ECS's SubmitTaskStateChange through the raw signed
	// client, with holdfast's extension: containers[].healthStatus (the SDK's
	// ContainerStateChange has no such member). See docs/architecture.md.
	in := agentapi.SubmitTaskStateChangeInput{
		Cluster: a.cfg.Cluster,
		Task:    t.ARN,
		Status:  t.KnownStatus,
	}
	if t.StopReason != "" && t.KnownStatus == domain.StatusStopped {
		in.Reason = t.StopReason
	}
	if !t.StoppedAt.IsZero() {
		in.ExecutionStoppedAt = domain.TimePtr(t.StoppedAt)
	}
	if !t.StartedAt.IsZero() {
		in.PullStartedAt = domain.TimePtr(t.CreatedAt)
		in.PullStoppedAt = domain.TimePtr(t.CreatedAt)
	}
	for _, c := range t.Containers {
		cs := agentapi.ContainerStateChange{
			ContainerName: c.Name,
			Status:        c.Status,
			RuntimeID:     c.RuntimeID,
			ExitCode:      c.ExitCode,
			Reason:        c.Reason,
		}
		if c.Status == domain.StatusRunning && c.HealthStatus != "" {
			cs.HealthStatus = c.HealthStatus
		}
		in.Containers = append(in.Containers, cs)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ack agentapi.AckOutput
	if err := a.raw.call(rctx, agentapi.SubmitTaskStateChangeTarget, in, &ack); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Type == "InvalidParameterException" {
			// The control plane no longer knows this task: nothing to report.
			a.log.Warn("control plane rejected a status report; dropping it", "task", t.ID, "err", err)
		} else {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if lt := a.tasks[t.ID]; lt != nil {
		lt.Reported = t.KnownStatus
		if lt.KnownStatus == domain.StatusStopped && lt.Reported == domain.StatusStopped {
			for _, c := range lt.Containers {
				_ = a.rt.Forget(c.RuntimeID)
				delete(a.byRuntime, c.RuntimeID)
			}
			a.save(lt) // removes the record
			delete(a.tasks, t.ID)
		} else {
			a.save(lt)
		}
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

func signalNumber(name string) int {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "QUIT":
		return 3
	case "KILL":
		return 9
	case "TERM":
		return 15
	default:
		return 0
	}
}
