// Package bench holds the measurements behind `holdfast bench`: each one
// starts real parts (HTTP server on loopback, bbolt on disk with fsync) in a
// temporary directory and reports what it measured. Nothing here asserts a
// threshold; docs/benchmarks.md records the figures.
package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/store/etcd"
	"github.com/holdfast/holdfast/internal/store/storecfg"
)

const (
	benchKey    = "BENCHKEY"
	benchSecret = "BENCHSECRET"
)

// Latencies summarizes a set of durations.
type Latencies struct {
	N             int
	P50, P99, Max time.Duration
}

func summarize(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Latencies{N: len(ds), P50: at(0.50), P99: at(0.99), Max: ds[len(ds)-1]}
}

func (l Latencies) String() string {
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", l.N, l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.Max.Round(time.Microsecond))
}

// openServer opens a control plane on dir (loading the store) without
// serving it. sc selects the store; its zero value is bolt in dir.
func openServer(dir string, sc storecfg.Config) (*server.Server, error) {
	return server.New(server.Config{
		Store:            sc,
		DataDir:          dir,
		Listen:           "127.0.0.1:0",
		Region:           "us-east-1",
		AccountID:        "000000000000",
		AccessKeyID:      benchKey,
		SecretAccessKey:  benchSecret,
		HeartbeatTimeout: 24 * time.Hour,
		DefaultCluster:   "default",
		Logger:           slog.New(slog.DiscardHandler),
	})
}

// startServer serves a control plane on dir until ctx ends; done is closed
// once it has stopped and released the store.
func startServer(ctx context.Context, dir string, sc storecfg.Config) (srv *server.Server, addr string, done <-chan struct{}, err error) {
	srv, err = openServer(dir, sc)
	if err != nil {
		return nil, "", nil, err
	}
	addr, err = srv.Listen()
	if err != nil {
		return nil, "", nil, err
	}
	stopped := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(stopped) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return srv, addr, stopped, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, "", nil, fmt.Errorf("server did not become healthy")
}

// seedService registers one instance and a service of n tasks, and waits
// until the controller has created them all. It returns their ARNs.
func seedService(ctx context.Context, srv *server.Server, name string, n int) ([]string, error) {
	st := srv.ECS
	if _, err := st.RegisterTaskDefinition(ctx, control.RegisterTaskDefinitionInput{
		Family: "bench",
		ContainerDefinitions: []domain.ContainerDefinition{{
			Name: "app", Image: "bench", Command: []string{"sleep", "3600"},
		}},
	}); err != nil {
		return nil, err
	}
	az := "a"
	if _, err := srv.Agents.RegisterContainerInstance(ctx, control.RegisterContainerInstanceInput{
		Cluster: "default", Attributes: []domain.Attribute{{Name: "availability-zone", Value: &az}},
	}); err != nil {
		return nil, err
	}
	if _, err := st.CreateService(ctx, control.CreateServiceInput{ServiceName: name, TaskDefinition: "bench", DesiredCount: &n}); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, err := st.DescribeServices(ctx, control.DescribeServicesInput{Services: []string{name}})
		if err != nil {
			return nil, err
		}
		if len(out.Services) == 1 && out.Services[0].PendingCount+out.Services[0].RunningCount >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("service %s did not reach %d tasks", name, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var arns []string
	in := control.ListTasksInput{ServiceName: name}
	for {
		out, err := st.ListTasks(ctx, in)
		if err != nil {
			return nil, err
		}
		arns = append(arns, out.TaskARNs...)
		if out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return arns, nil
}

// signedRequest is a request signed once and replayed: SigV4 accepts the
// same signature for 15 minutes, so the load generator spends its CPU on
// sending, not on signing.
type signedRequest struct {
	url    string
	body   []byte
	header http.Header
}

func presign(url, target string, body []byte) (*signedRequest, error) {
	return presignAs(aws.Credentials{AccessKeyID: benchKey, SecretAccessKey: benchSecret}, url, target, body)
}

// presignAs is presign with other credentials.
func presignAs(creds aws.Credentials, url, target string, body []byte) (*signedRequest, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	return &signedRequest{url: url, body: body, header: req.Header}, nil
}

func (r *signedRequest) do(c *http.Client) (int, []byte, error) {
	return r.doCtx(context.Background(), c)
}

func (r *signedRequest) doCtx(ctx context.Context, c *http.Client) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = r.header.Clone()
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// emptyEtcdPrefix checks that sc's etcd prefix holds nothing (a bench
// never runs on someone's data), or with clear deletes what the bench
// wrote there.
func emptyEtcdPrefix(ctx context.Context, sc storecfg.Config, clear bool) error {
	b, err := sc.Open(ctx, storecfg.OpenOptions{})
	if err != nil {
		return err
	}
	defer b.Close()
	s := b.(*etcd.Store)
	if clear {
		_, err := s.Client().Delete(ctx, s.Prefix(), clientv3.WithPrefix())
		return err
	}
	resp, err := s.Client().Get(ctx, s.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if resp.Count > 0 {
		return fmt.Errorf("etcd prefix %s holds %d keys; the bench needs an empty prefix", s.Prefix(), resp.Count)
	}
	return nil
}

// ProtectResult is the outcome of Protect.
type ProtectResult struct {
	As                    string
	Clients, TasksPerCall int
	Calls                 int
	Errors                int
	Elapsed               time.Duration
	Latency               Latencies
	// CPU is the process's user+system CPU time over the run (the load
	// generator's and the server's: one process), a steadier figure than
	// the throughput on a shared machine.
	CPU time.Duration
}

// CPUPerCall is the CPU time per call.
func (r ProtectResult) CPUPerCall() time.Duration {
	if r.Calls == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Calls)
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CallsPerSecond is the throughput.
func (r ProtectResult) CallsPerSecond() float64 { return float64(r.Calls) / r.Elapsed.Seconds() }

// Who Protect's clients sign as.
const (
	AsRoot = "root" // the account's root: allowed everything, no policy evaluated
	AsUser = "user" // an IAM user with operatorPolicy: every call authorized
)

// operatorPolicy is a realistic policy of a person who operates services
// and their protection: what the calls need, scoped to the cluster, among
// statements that do not match them, and a deny.
const operatorPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Read","Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"},
 {"Sid":"Deploy","Effect":"Allow","Action":["ecs:UpdateService","ecs:RegisterTaskDefinition"],"Resource":"*",
  "Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:000000000000:cluster/default"}}},
 {"Sid":"Protect","Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],
  "Resource":"arn:aws:ecs:us-east-1:000000000000:task/default/*",
  "Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:000000000000:cluster/default"}}},
 {"Sid":"Tags","Effect":"Allow","Action":["ecs:TagResource","ecs:UntagResource"],"Resource":"*",
  "Condition":{"StringEquals":{"aws:RequestTag/team":"ops"}}},
 {"Sid":"Self","Effect":"Allow","Action":["iam:GetUser","iam:ListAccessKeys"],"Resource":"arn:aws:iam::000000000000:user/${aws:username}"},
 {"Sid":"NoStop","Effect":"Deny","Action":["ecs:StopTask","ecs:DeleteService","ecs:DeleteCluster"],"Resource":"*"}]}`

// Protect measures UpdateTaskProtection through the real HTTP server and
// the durable store: clients goroutines, each owning tasksPerCall tasks,
// alternately protect and release them for duration, signing as as (AsRoot
// or AsUser). sc selects the store (zero: bolt in a temporary dir); an etcd
// store's prefix must be empty.
func Protect(ctx context.Context, as string, clients, tasksPerCall int, duration time.Duration, sc storecfg.Config) (ProtectResult, error) {
	if as != AsRoot && as != AsUser {
		return ProtectResult{}, fmt.Errorf("sign as %q: want %s or %s", as, AsRoot, AsUser)
	}
	dir, err := os.MkdirTemp("", "holdfast-bench-")
	if err != nil {
		return ProtectResult{}, err
	}
	defer os.RemoveAll(dir)
	if sc.IsEtcd() {
		if err := emptyEtcdPrefix(ctx, sc, false); err != nil {
			return ProtectResult{}, err
		}
		defer emptyEtcdPrefix(context.WithoutCancel(ctx), sc, true)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, addr, stopped, err := startServer(ctx, dir, sc)
	if err != nil {
		return ProtectResult{}, err
	}
	defer func() {
		cancel()
		<-stopped // the store is closed (and an etcd owner lock released)
	}()
	arns, err := seedService(ctx, srv, "bench", clients*tasksPerCall)
	if err != nil {
		return ProtectResult{}, err
	}
	creds := aws.Credentials{AccessKeyID: benchKey, SecretAccessKey: benchSecret}
	if as == AsUser {
		k, err := srv.IAM.CreateServiceUser(ctx, "/", "operator", "operator", operatorPolicy)
		if err != nil {
			return ProtectResult{}, err
		}
		creds = aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}
	}
	url := "http://" + addr + "/"
	target := "AmazonEC2ContainerServiceV20141113.UpdateTaskProtection"
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2, MaxIdleConns: clients * 2}}
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	start := time.Now()
	cpu0 := processCPU()
	stop := start.Add(duration)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		mine := arns[c*tasksPerCall : (c+1)*tasksPerCall]
		quoted := make([]string, len(mine))
		for i, a := range mine {
			quoted[i] = strconv.Quote(a)
		}
		list := strings.Join(quoted, ",")
		on, err := presignAs(creds, url, target, []byte(`{"cluster":"default","tasks":[`+list+`],"protectionEnabled":true,"expiresInMinutes":60}`))
		if err != nil {
			return ProtectResult{}, err
		}
		off, err := presignAs(creds, url, target, []byte(`{"cluster":"default","tasks":[`+list+`],"protectionEnabled":false}`))
		if err != nil {
			return ProtectResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			bad := 0
			for i := 0; time.Now().Before(stop); i++ {
				r := on
				if i%2 == 1 {
					r = off
				}
				t0 := time.Now()
				code, body, err := r.do(httpc)
				local = append(local, time.Since(t0))
				if err != nil || code != 200 || bytes.Contains(body, []byte(`"reason"`)) {
					bad++
				}
			}
			mu.Lock()
			all = append(all, local...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return ProtectResult{As: as, Clients: clients, TasksPerCall: tasksPerCall, Calls: len(all), Errors: errs, Elapsed: elapsed,
		Latency: summarize(all), CPU: processCPU() - cpu0}, nil
}
