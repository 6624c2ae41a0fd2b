package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// EndpointConfig configures Endpoint.
type EndpointConfig struct {
	Self     string        // the holdfast binary (os.Executable())
	Tasks    int           // tasks of the concurrent phase
	Duration time.Duration // length of each phase
	Rate     float64       // calls per second per task (the endpoint allows 40/s, burst 60)
	Logf     func(format string, args ...any)
}

// Floor is the cost of the parts every durable protection call must pay
// at least once: a loopback HTTP round trip and an fsync.
type Floor struct {
	RTT   Latencies // GET of a trivial handler over a kept-alive loopback connection
	Fsync Latencies // write + fdatasync of a small file in the control plane's data dir
}

// P50 is the floor: p50 RTT + p50 fsync.
func (f Floor) P50() time.Duration { return f.RTT.P50 + f.Fsync.P50 }

// EndpointPhase is the outcome of one load phase.
type EndpointPhase struct {
	Tasks    int
	Calls    int // answered 200 with the expected {"protection":...} body
	Limited  int // answered 429 (endpoint rate limit)
	Errors   int // anything else
	FirstErr string
	Elapsed  time.Duration
	Latency  Latencies // of the successful calls
}

// CallsPerSecond is the throughput of successful calls.
func (p EndpointPhase) CallsPerSecond() float64 { return float64(p.Calls) / p.Elapsed.Seconds() }

// LimitedPerSecond is the rate of 429 answers.
func (p EndpointPhase) LimitedPerSecond() float64 { return float64(p.Limited) / p.Elapsed.Seconds() }

// EndpointResult is the outcome of Endpoint.
type EndpointResult struct {
	Floor  Floor
	Phases []EndpointPhase // 1 task, then cfg.Tasks tasks
	// API is the 1-task load sent straight to the control plane's
	// UpdateTaskProtection (no task endpoint, no agent): the breakdown.
	API EndpointPhase
}

// Endpoint measures protect/release through the task endpoint, durable end
// to end: the bench plays the tasks, each PUTting to its own endpoint id
// on a real agent process, which calls a real control plane process, which
// fsyncs the store before answering. It runs a phase with one task and one
// with cfg.Tasks tasks, each worker alternating enable/disable at cfg.Rate
// calls per second, and measures the floor in the same run.
func Endpoint(ctx context.Context, cfg EndpointConfig) (res EndpointResult, err error) {
	if cfg.Tasks < 1 {
		cfg.Tasks = 1
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 35
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c, err := startCluster(ctx, cfg.Self, logf)
	if err != nil {
		return res, err
	}
	defer c.closeInto(&err)

	if err := c.registerTaskDefinition(ctx, "sleeper", []string{"sleep", "3600"}, nil); err != nil {
		return res, err
	}
	if err := c.createService(ctx, "endpoint", "sleeper", cfg.Tasks); err != nil {
		return res, err
	}
	if err := c.waitRunning(ctx, "endpoint", cfg.Tasks, 20*time.Millisecond, 2*time.Minute); err != nil {
		return res, err
	}
	arns, err := c.listTasks(ctx, "endpoint")
	if err != nil {
		return res, err
	}
	if len(arns) < cfg.Tasks {
		return res, fmt.Errorf("service has %d tasks, want %d", len(arns), cfg.Tasks)
	}
	urls := make([]string, cfg.Tasks)
	for i := range urls {
		rec, err := c.taskRecord(arns[i])
		if err != nil {
			return res, err
		}
		urls[i] = c.endpointURL(rec.Containers[0].EndpointID)
	}
	logf("%d tasks RUNNING; measuring the floor", cfg.Tasks)

	if res.Floor, err = measureFloor(c.serverDir); err != nil {
		return res, err
	}
	calls, done := endpointCallers(urls)
	defer done()
	for _, n := range []int{1, cfg.Tasks} {
		logf("phase: %d task(s) for %s", n, cfg.Duration)
		p, err := endpointPhase(ctx, calls[:n], cfg.Duration, cfg.Rate)
		if err != nil {
			return res, err
		}
		res.Phases = append(res.Phases, p)
		if n == cfg.Tasks {
			break // --tasks 1: one phase is enough
		}
	}
	// The breakdown: the same single-task load straight to the control
	// plane's API, without the task endpoint and the agent.
	api, done2, err := apiCaller(c.apiAddr, arns[0])
	if err != nil {
		return res, err
	}
	defer done2()
	logf("phase: UpdateTaskProtection straight to the API, 1 task for %s", cfg.Duration)
	if res.API, err = endpointPhase(ctx, []caller{api}, cfg.Duration, cfg.Rate); err != nil {
		return res, err
	}
	return res, nil
}

// caller makes one protect (enabled) or release call and reports the HTTP
// status, and an error unless the call succeeded as expected.
type caller func(enabled bool) (int, error)

// endpointCallers returns one caller per task URL, PUTting through the task
// endpoint over one kept-alive client.
func endpointCallers(urls []string) ([]caller, func()) {
	hc := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: len(urls) + 4, MaxIdleConns: len(urls) + 4},
	}
	on := []byte(`{"ProtectionEnabled":true}`)
	off := []byte(`{"ProtectionEnabled":false}`)
	calls := make([]caller, len(urls))
	for i, url := range urls {
		calls[i] = func(enabled bool) (int, error) {
			body := off
			if enabled {
				body = on
			}
			return putProtection(hc, url, body, enabled)
		}
	}
	return calls, hc.CloseIdleConnections
}

// apiCaller calls UpdateTaskProtection for one task directly on the control
// plane (presigned, so signing is not measured), for the breakdown.
func apiCaller(apiAddr, arn string) (caller, func(), error) {
	url := "http://" + apiAddr + "/"
	target := "AmazonEC2ContainerServiceV20141113.UpdateTaskProtection"
	on, err := presign(url, target, []byte(`{"cluster":"default","tasks":["`+arn+`"],"protectionEnabled":true}`))
	if err != nil {
		return nil, nil, err
	}
	off, err := presign(url, target, []byte(`{"cluster":"default","tasks":["`+arn+`"],"protectionEnabled":false}`))
	if err != nil {
		return nil, nil, err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	return func(enabled bool) (int, error) {
		r := off
		if enabled {
			r = on
		}
		code, body, err := r.do(hc)
		if err != nil {
			return code, err
		}
		if code != http.StatusOK || !bytes.Contains(body, []byte(`"protectedTasks":[{`)) {
			return code, fmt.Errorf("status %d: %s", code, bytes.TrimSpace(body))
		}
		return code, nil
	}, hc.CloseIdleConnections, nil
}

func endpointPhase(ctx context.Context, calls []caller, d time.Duration, rate float64) (EndpointPhase, error) {
	p := EndpointPhase{Tasks: len(calls)}
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	var all []time.Duration
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for w, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			ok, limited, errs := 0, 0, 0
			firstErr := ""
			// Stagger the workers over one interval so they do not all
			// fire in the same instant.
			next := start.Add(time.Duration(w) * interval / time.Duration(len(calls)))
			for i := 0; ctx.Err() == nil; i++ {
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				}
				if !time.Now().Before(stop) {
					break
				}
				enabled := i%2 == 0
				t0 := time.Now()
				code, err := call(enabled)
				lat := time.Since(t0)
				switch {
				case err == nil:
					ok++
					local = append(local, lat)
				case code == http.StatusTooManyRequests:
					limited++
				default:
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				}
				// Each worker waits for its answer, then for its next
				// slot at rate; a late call does not cause a burst of
				// catch-up calls (which the rate limit would answer 429).
				next = next.Add(interval)
				if now := time.Now(); next.Before(now) {
					next = now
				}
			}
			mu.Lock()
			all = append(all, local...)
			p.Calls += ok
			p.Limited += limited
			p.Errors += errs
			if p.FirstErr == "" {
				p.FirstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.Elapsed = time.Since(start)
	p.Latency = summarize(all)
	return p, ctx.Err()
}

// measureFloor measures one loopback HTTP round trip (p50 of many GETs over
// a kept-alive connection to a trivial handler in this process) and one
// fsync on the disk of dir (p50 of write + fdatasync of a small file).
func measureFloor(dir string) (Floor, error) {
	var f Floor
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return f, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	url := "http://" + ln.Addr().String() + "/"
	const warm, n = 200, 2000
	rtts := make([]time.Duration, 0, n)
	for i := 0; i < warm+n; i++ {
		t0 := time.Now()
		resp, err := hc.Get(url)
		if err != nil {
			return f, err
		}
		var buf [16]byte
		_, _ = resp.Body.Read(buf[:])
		resp.Body.Close()
		if i >= warm {
			rtts = append(rtts, time.Since(t0))
		}
	}
	f.RTT = summarize(rtts)

	path := filepath.Join(dir, "bench-fsync-probe")
	file, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return f, err
	}
	defer os.Remove(path)
	defer file.Close()
	block := make([]byte, 512)
	const fwarm, fn = 10, 200
	syncs := make([]time.Duration, 0, fn)
	for i := 0; i < fwarm+fn; i++ {
		block[0] = byte(i)
		t0 := time.Now()
		if _, err := file.WriteAt(block, 0); err != nil {
			return f, err
		}
		if err := unix.Fdatasync(int(file.Fd())); err != nil {
			return f, err
		}
		if i >= fwarm {
			syncs = append(syncs, time.Since(t0))
		}
	}
	f.Fsync = summarize(syncs)
	return f, nil
}
