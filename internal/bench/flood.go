package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/hostile"
)

// The hostile kinds of Flood. Each hostile connection plays one, from
// FloodConfig.HostileAddr, and plays it again (after Reconnect) whenever
// the server closes it.
const (
	// KindIdle connects and sends nothing.
	KindIdle = "idle"
	// KindSlowHeaders sends a request line, then a header byte a second.
	KindSlowHeaders = "slow-headers"
	// KindHeldBody announces a 1 MiB body signed with the bench's access
	// key but a wrong signature, sends all of it but the last byte, and
	// holds it: the attack.
	KindHeldBody = "held-body"
	// KindBadKey announces a 1 MiB body under an access key the server
	// does not know.
	KindBadKey = "bad-key"
	// KindKeepAlive makes one unauthenticated request (GET /healthz), then
	// idles on the kept-alive connection.
	KindKeepAlive = "keep-alive"
)

// FloodKinds is the default mix, in equal shares.
var FloodKinds = []string{KindIdle, KindSlowHeaders, KindHeldBody, KindBadKey, KindKeepAlive}

// FloodConfig configures Flood.
type FloodConfig struct {
	Self string // the holdfast binary
	// ServerBin runs `holdfast server` from another binary (say, an older
	// build, for a before/after); "" is Self.
	ServerBin string
	Hostile   int      // hostile connections held open
	Kinds     []string // hostile kinds, in equal shares; nil: FloodKinds
	LongPolls int      // agents, each holding the agent protocol's long poll
	// Duration is the length of each phase: without, then with the flood.
	Duration time.Duration
	Rate     float64 // valid signed calls per second, per operation
	// Reconnect is how long a hostile connection waits before it plays
	// again once the server has closed it.
	Reconnect   time.Duration
	HostileAddr string // source address of the hostile connections
	Logf        func(format string, args ...any)
}

// FloodPhase is what the legitimate clients saw in one phase.
type FloodPhase struct {
	Read, Write FloodCalls // DescribeClusters; TagResource (a durable write)
	Polls       int        // long polls answered with a valid PollOutput
	PollErrors  int
	FirstErr    string
	ServerRSS   int64 // the server's largest VmRSS sampled (every 250 ms)
	OpenConns   int   // the server's largest holdfast_http_open_connections sampled
}

// FloodCalls is one operation's outcome.
type FloodCalls struct {
	Errors  int
	Latency Latencies
}

// FloodHostile is what one hostile kind did during the flood.
type FloodHostile struct {
	Kind      string
	Conns     int            // hostile connections of this kind
	Opened    int64          // connections opened (first ones and reconnects)
	Answers   map[int]int64  // answers by HTTP status
	Closed    int64          // connections the server closed
	Unhandled map[string]int // other outcomes (dial errors, ...), by text
}

// FloodResult is the outcome of Flood.
type FloodResult struct {
	Hostile, LongPolls int
	Baseline, Flood    FloodPhase
	Kinds              []FloodHostile
	ServerStart        int64 // VmRSS once the long polls are running
	ServerHWM          int64 // VmHWM at the end
	// Server metrics at the end of the flood ("" when the server has none).
	Evicted, Refused, BodiesRefused string
}

// Flood measures the control plane under hostile clients: a real `holdfast
// server` process, LongPolls agents (registered container instances, each
// keeping a long poll open as the agent does), and a client making valid
// signed calls at Rate. The calls' latency, the polls' failures and the
// server's memory are measured for Duration without hostile clients, then
// for Duration with Hostile connections of the given kinds held open from
// HostileAddr.
func Flood(ctx context.Context, cfg FloodConfig) (res FloodResult, err error) {
	if cfg.Hostile < 0 {
		cfg.Hostile = 0
	}
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = FloodKinds
	}
	for _, k := range cfg.Kinds {
		if !slices.Contains(FloodKinds, k) {
			return res, fmt.Errorf("unknown hostile kind %q (want %s)", k, strings.Join(FloodKinds, ", "))
		}
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	if cfg.Reconnect <= 0 {
		cfg.Reconnect = time.Second
	}
	if cfg.HostileAddr == "" {
		cfg.HostileAddr = "127.0.0.2"
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res.Hostile, res.LongPolls = cfg.Hostile, cfg.LongPolls
	c, err := startControlPlane(ctx, cfg.Self, cfg.ServerBin, logf)
	if err != nil {
		return res, err
	}
	defer c.closeInto(&err)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	logf("registering %d container instances", cfg.LongPolls)
	instances := make([]string, cfg.LongPolls)
	for i := range instances {
		var out struct {
			ContainerInstance struct {
				ARN string `json:"containerInstanceArn"`
			} `json:"containerInstance"`
		}
		if err := c.call(ctx, "RegisterContainerInstance", map[string]any{"cluster": "default"}, &out); err != nil {
			return res, err
		}
		instances[i] = out.ContainerInstance.ARN
	}
	clusterARN, err := c.clusterARN(ctx)
	if err != nil {
		return res, err
	}
	polls := &pollStats{}
	var pollWG sync.WaitGroup
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer func() { stopPolls(); pollWG.Wait() }()
	pollClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.LongPolls + 8, MaxIdleConns: cfg.LongPolls + 8}}
	for _, arn := range instances {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			c.pollLoop(pollCtx, pollClient, arn, polls)
		}()
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return res, err
	}
	if m, err := procMemory(c.server.Process.Pid); err == nil {
		res.ServerStart = m.RSS
	}

	// One client per operation for both phases, as a long-lived program
	// keeps its connections: one call at a time, one kept-alive
	// connection each.
	clients := []*http.Client{
		{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
		{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
	}
	logf("baseline: %s of valid calls, %d long polls, no flood", cfg.Duration, cfg.LongPolls)
	if res.Baseline, err = c.floodPhase(ctx, cfg, clients, clusterARN, polls); err != nil {
		return res, err
	}

	logf("flood: %d hostile connections (%s) from %s", cfg.Hostile, strings.Join(cfg.Kinds, ", "), cfg.HostileAddr)
	kinds := make([]*hostileKind, len(cfg.Kinds))
	var hostileWG sync.WaitGroup
	hostileCtx, stopHostile := context.WithCancel(ctx)
	defer func() { stopHostile(); hostileWG.Wait() }()
	for i, k := range cfg.Kinds {
		kinds[i] = &hostileKind{kind: k, answers: map[int]int64{}, unhandled: map[string]int{}}
	}
	for i := range cfg.Hostile {
		hk := kinds[i%len(kinds)]
		hk.conns++
		hostileWG.Add(1)
		go func() {
			defer hostileWG.Done()
			hk.play(hostileCtx, c.apiAddr, cfg)
		}()
	}
	// Let the flood build up before measuring.
	if err := sleepCtx(ctx, 5*time.Second); err != nil {
		return res, err
	}
	if res.Flood, err = c.floodPhase(ctx, cfg, clients, clusterARN, polls); err != nil {
		return res, err
	}
	res.Evicted = c.metric("holdfast_http_connections_evicted_total")
	res.Refused = c.metric("holdfast_http_connections_refused_total")
	res.BodiesRefused = c.metric("holdfast_http_bodies_refused_total")
	stopHostile()
	hostileWG.Wait()
	for _, hk := range kinds {
		res.Kinds = append(res.Kinds, hk.result())
	}
	if m, err := procMemory(c.server.Process.Pid); err == nil {
		res.ServerHWM = m.HWM
	}
	return res, nil
}

// clusterARN is the default cluster's ARN (the target of TagResource).
func (c *cluster) clusterARN(ctx context.Context) (string, error) {
	var out struct {
		Clusters []struct {
			ARN string `json:"clusterArn"`
		} `json:"clusters"`
	}
	if err := c.call(ctx, "DescribeClusters", map[string]any{"clusters": []string{"default"}}, &out); err != nil {
		return "", err
	}
	if len(out.Clusters) != 1 {
		return "", fmt.Errorf("no default cluster")
	}
	return out.Clusters[0].ARN, nil
}

// metric returns the value of an unlabelled-but-for-listener sample of the
// server's /metrics, or "" when it has none.
func (c *cluster) metric(name string) string {
	resp, err := c.httpc.Get("http://" + c.apiAddr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, `listener="api"`) {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}

// floodPhase makes valid signed calls at cfg.Rate per operation for
// cfg.Duration, one at a time per operation, the first operation through
// clients[0] and the second through clients[1], while sampling the
// server's memory and connections.
func (c *cluster) floodPhase(ctx context.Context, cfg FloodConfig, clients []*http.Client, clusterARN string, polls *pollStats) (FloodPhase, error) {
	var ph FloodPhase
	polls.reset()
	url := "http://" + c.apiAddr + "/"
	read, err := presign(url, "AmazonEC2ContainerServiceV20141113.DescribeClusters", []byte(`{"clusters":["default"]}`))
	if err != nil {
		return ph, err
	}
	type op struct {
		calls *FloodCalls
		req   func(i int) (*signedRequest, error)
	}
	ops := []op{
		{&ph.Read, func(int) (*signedRequest, error) { return read, nil }},
		{&ph.Write, func(i int) (*signedRequest, error) {
			body := fmt.Sprintf(`{"resourceArn":%q,"tags":[{"key":"bench","value":"%d"}]}`, clusterARN, i)
			return presign(url, "AmazonEC2ContainerServiceV20141113.TagResource", []byte(body))
		}},
	}
	end := time.Now().Add(cfg.Duration)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, o := range ops {
		hc := clients[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			errs := 0
			next := time.Now()
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval)
				r, err := o.req(i)
				if err != nil {
					errs++
					continue
				}
				t0 := time.Now()
				code, body, err := r.doCtx(ctx, hc)
				lat = append(lat, time.Since(t0))
				if err != nil || code != http.StatusOK {
					errs++
					mu.Lock()
					if ph.FirstErr == "" {
						ph.FirstErr = fmt.Sprintf("%d %v %s", code, err, bytes.TrimSpace(body))
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			o.calls.Errors, o.calls.Latency = errs, summarize(lat)
			mu.Unlock()
		}()
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		if m, err := procMemory(c.server.Process.Pid); err == nil {
			ph.ServerRSS = max(ph.ServerRSS, m.RSS)
		}
		if v, err := strconv.ParseFloat(c.metric("holdfast_http_open_connections"), 64); err == nil {
			ph.OpenConns = max(ph.OpenConns, int(v))
		}
		_ = sleepCtx(ctx, 250*time.Millisecond)
	}
	wg.Wait()
	ph.Polls, ph.PollErrors, ph.FirstErr = polls.take(ph.FirstErr)
	return ph, ctx.Err()
}

// pollStats counts the long polls' outcomes.
type pollStats struct {
	mu       sync.Mutex
	ok, bad  int
	firstErr string
}

func (p *pollStats) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ok, p.bad, p.firstErr = 0, 0, ""
}

// take returns the counts since reset, and the first error (firstErr if
// already set).
func (p *pollStats) take(firstErr string) (ok, bad int, first string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if firstErr == "" && p.firstErr != "" {
		firstErr = "long poll: " + p.firstErr
	}
	return p.ok, p.bad, firstErr
}

func (p *pollStats) add(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.ok++
		return
	}
	p.bad++
	if p.firstErr == "" {
		p.firstErr = err.Error()
	}
}

// pollLoop is one agent's long poll, as internal/agent does it: poll with
// the revision it knows, wait up to 20 s, poll again.
func (c *cluster) pollLoop(ctx context.Context, hc *http.Client, instanceARN string, stats *pollStats) {
	var known int64
	url := "http://" + c.apiAddr + "/"
	for ctx.Err() == nil {
		body, _ := json.Marshal(agentapi.PollInput{Cluster: "default", ContainerInstanceARN: instanceARN, KnownRevision: known, WaitSeconds: 20})
		r, err := presign(url, agentapi.PollTarget, body)
		if err != nil {
			stats.add(err)
			return
		}
		code, b, err := r.doCtx(ctx, hc)
		if ctx.Err() != nil {
			return
		}
		var out agentapi.PollOutput
		switch {
		case err != nil:
		case code != http.StatusOK:
			err = fmt.Errorf("status %d: %s", code, bytes.TrimSpace(b))
		default:
			err = json.Unmarshal(b, &out)
		}
		stats.add(err)
		if err != nil {
			_ = sleepCtx(ctx, time.Second)
			continue
		}
		known = out.Revision
	}
}

// hostileKind is the connections of one hostile kind and what they saw.
type hostileKind struct {
	kind  string
	conns int

	opened, closed atomic.Int64
	mu             sync.Mutex
	answers        map[int]int64
	unhandled      map[string]int
}

func (h *hostileKind) result() FloodHostile {
	h.mu.Lock()
	defer h.mu.Unlock()
	return FloodHostile{Kind: h.kind, Conns: h.conns, Opened: h.opened.Load(), Closed: h.closed.Load(),
		Answers: maps.Clone(h.answers), Unhandled: maps.Clone(h.unhandled)}
}

func (h *hostileKind) note(status int, other string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if other != "" {
		h.unhandled[other]++
		return
	}
	h.answers[status]++
}

// play runs one hostile connection until ctx ends: connect, misbehave,
// wait for the server to close the connection, wait cfg.Reconnect, again.
func (h *hostileKind) play(ctx context.Context, addr string, cfg FloodConfig) {
	signer := hostile.Signer{AccessKeyID: benchKey, SecretAccessKey: benchSecret, Region: "us-east-1"}
	stranger := hostile.Signer{AccessKeyID: "AKIDNOBODYKNOWS", SecretAccessKey: "x", Region: "us-east-1"}
	for ctx.Err() == nil {
		conn, err := hostile.Dial(ctx, addr, cfg.HostileAddr)
		if err != nil {
			if ctx.Err() == nil {
				h.note(0, "dial: "+err.Error())
				_ = sleepCtx(ctx, cfg.Reconnect)
			}
			continue
		}
		h.opened.Add(1)
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		r := bufio.NewReader(conn)
		switch h.kind {
		case KindIdle:
		case KindSlowHeaders:
			_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: "+addr+"\r\n")
			_ = hostile.Trickle(ctx, conn, []byte("X-Slow: "+strings.Repeat("s", 4096)), time.Second)
		case KindKeepAlive:
			_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			h.answer(r)
		case KindHeldBody, KindBadKey:
			s := signer
			if h.kind == KindBadKey {
				s = stranger
			}
			h.heldBody(conn, r, s, addr)
		}
		// Hold the connection until the server closes it (or ctx ends).
		if err := hostile.WaitClosed(r); err == nil && ctx.Err() == nil {
			h.closed.Add(1)
		}
		stop()
		conn.Close()
		_ = sleepCtx(ctx, cfg.Reconnect)
	}
}

// heldBody announces a 1 MiB body signed wrongly. If the server answers
// before the body (refused), that answer is noted; else it sends all but
// the last byte and holds.
func (h *hostileKind) heldBody(conn net.Conn, r *bufio.Reader, s hostile.Signer, addr string) {
	const size = 1 << 20
	head, err := s.Head(addr, "AmazonEC2ContainerServiceV20141113.CreateCluster", size, []byte("not the body"), time.Now())
	if err != nil {
		h.note(0, err.Error())
		return
	}
	if _, err := conn.Write(head); err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = r.Peek(1)
	_ = conn.SetReadDeadline(time.Time{})
	if err == nil {
		h.answer(r)
		return
	}
	body := bytes.Repeat([]byte(" "), size-1)
	_, _ = conn.Write(body)
}

// answer reads one response and notes its status.
func (h *hostileKind) answer(r *bufio.Reader) {
	resp, err := hostile.ReadResponse(r)
	if err != nil {
		return
	}
	h.note(resp.Status, "")
}
