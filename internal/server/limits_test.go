package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/hostile"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/testutil"
)

// These tests drive the real control plane's API listener with raw
// connections that stop half way, from their own loopback addresses
// (127.0.0.2 and up are other clients than the SDK's 127.0.0.1). None
// measures time: where a limit is a timeout, the test configures a short
// one and checks what the client sees.

// hangGuard bounds every raw read: on a server without the limit under
// test, the read would wait for ever; the guard turns that into a failure.
const hangGuard = time.Minute

var rootSigner = hostile.Signer{AccessKeyID: hfKeyID, SecretAccessKey: hfSecret, Region: hfRegion}

// rawConn is a raw connection to the API with a reader kept for its life.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialFrom(t *testing.T, addr, src string) *rawConn {
	t.Helper()
	c, err := hostile.Dial(context.Background(), addr, src)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes the head of a root-signed request for target announcing n
// body bytes, its signature computed over signed, then sent (part or all
// of the body, or nothing). extra headers are added unsigned.
func (c *rawConn) send(target string, n int64, signed, sent []byte, extra ...string) {
	c.t.Helper()
	head, err := rootSigner.Head(c.c.RemoteAddr().String(), target, n, signed, time.Now(), extra...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(append(head, sent...))
}

// startPoll registers an instance in a new cluster "c" and opens, from src,
// a long poll that waits up to wait seconds for a change.
func (e *hfEnv) startPoll(src string, wait int) (poll *rawConn, instanceARN string, known int64) {
	e.t.Helper()
	e.cluster("c")
	instanceARN = e.instance("c", "az-a")
	known = e.pollFrom("c", instanceARN, 0).Revision
	poll = dialFrom(e.t, e.addr, src)
	body, _ := json.Marshal(agentapi.PollInput{Cluster: "c", ContainerInstanceARN: instanceARN, KnownRevision: known, WaitSeconds: wait})
	poll.send(agentapi.PollTarget, int64(len(body)), body, body)
	return poll, instanceARN, known
}

func (c *rawConn) write(p []byte) {
	c.t.Helper()
	if _, err := c.c.Write(p); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawConn) response() hostile.Response {
	c.t.Helper()
	resp, err := hostile.ReadResponse(c.r)
	if err != nil {
		c.t.Fatalf("reading the response: %v", err)
	}
	return resp
}

// closedByServer reports whether the server has closed the connection;
// a connection still open at the hang guard fails t.
func (c *rawConn) closedByServer() bool {
	c.t.Helper()
	if err := hostile.WaitClosed(c.r); err != nil {
		c.t.Fatal(err)
	}
	return true
}

func wireErr(t *testing.T, resp hostile.Response) (status int, typ, msg string) {
	t.Helper()
	var we hfWireError
	if err := json.Unmarshal(resp.Body, &we); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	return resp.Status, we.Type, we.Message
}

// metric reads one sample of the API listener's metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	r := testutil.Do(t, http.DefaultClient, http.MethodGet, "http://"+addr+"/metrics", "")
	for line := range strings.SplitSeq(r.Body, "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, `listener="api"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s{listener=\"api\"} in /metrics", name)
	return 0
}

func limitsEnv(t *testing.T, edit func(*server.Config)) *hfEnv {
	return hfStart(t, hfOpts{Configure: edit})
}

// TestAPIRefusesOversizedContentLengthBeforeTheBody: a request that
// announces more than 1 MiB is answered before a byte of its body is sent,
// in AWS's front end's words, and the connection is closed (its body is
// never read).
func TestAPIRefusesOversizedContentLengthBeforeTheBody(t *testing.T) {
	e := limitsEnv(t, nil)
	c := dialFrom(t, e.addr, "127.0.0.2")
	c.send(ecsTarget+"ListClusters", 2<<20, nil, nil)
	status, typ, msg := wireErr(t, c.response())
	if status != 400 || typ != api.TypeSerializationException || msg != "HTTP content length exceeded 1048576 bytes." {
		t.Fatalf("got %d %s %q", status, typ, msg)
	}
	if !c.closedByServer() {
		t.Fatal("connection kept open after refusing its body")
	}
}

// TestAPIRefusesUnknownKeyAndWrongScopeBeforeTheBody: the Authorization
// header's access key and scope are checked before the body is read (this
// held before the limits work too; it is the first line of defence).
func TestAPIRefusesUnknownKeyAndWrongScopeBeforeTheBody(t *testing.T) {
	e := limitsEnv(t, nil)
	for _, tc := range []struct {
		name   string
		signer hostile.Signer
		typ    string
	}{
		{"unknown key", hostile.Signer{AccessKeyID: "AKIDNOBODY", SecretAccessKey: "x", Region: hfRegion}, api.TypeUnrecognizedClient},
		{"other service", hostile.Signer{AccessKeyID: hfKeyID, SecretAccessKey: hfSecret, Region: hfRegion, Service: "s3"}, api.TypeInvalidSignature},
		{"other region", hostile.Signer{AccessKeyID: hfKeyID, SecretAccessKey: hfSecret, Region: "eu-west-1"}, api.TypeInvalidSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, e.addr, "127.0.0.2")
			head, err := tc.signer.Head(e.addr, ecsTarget+"ListClusters", 1<<20, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			c.write(head)
			if status, typ, msg := wireErr(t, c.response()); status != 400 || typ != tc.typ {
				t.Fatalf("got %d %s %q, want 400 %s", status, typ, msg, tc.typ)
			}
		})
	}
}

// TestAPIBodyMustArriveBeforeTheReadTimeout: a body that stops half way is
// answered RequestTimeoutException once the read deadline passes, and the
// connection is closed.
func TestAPIBodyMustArriveBeforeTheReadTimeout(t *testing.T) {
	e := limitsEnv(t, func(c *server.Config) { c.Limits.ReadTimeout = 300 * time.Millisecond })
	c := dialFrom(t, e.addr, "127.0.0.2")
	body := []byte(`{"clusterName":"slow"}`)
	c.send(ecsTarget+"CreateCluster", int64(len(body)), body, body[:5])
	status, typ, _ := wireErr(t, c.response())
	if status != 400 || typ != api.TypeRequestTimeout {
		t.Fatalf("got %d %s, want 400 %s", status, typ, api.TypeRequestTimeout)
	}
	if !c.closedByServer() {
		t.Fatal("connection kept open after a body timeout")
	}
	// The cluster was not created, and the server still answers.
	out := must(e.ecs.DescribeClusters(e.ctx, &ecs.DescribeClustersInput{Clusters: []string{"slow"}}))
	if len(out.Clusters) != 0 {
		t.Fatalf("a request whose body never arrived created %v", out.Clusters)
	}
}

// TestAPIHeadersAreBounded: a request whose headers exceed 32 KiB is
// answered 431 by net/http before any handler runs; 16 KiB is fine.
func TestAPIHeadersAreBounded(t *testing.T) {
	e := limitsEnv(t, nil)
	send := func(pad int) hostile.Response {
		c := dialFrom(t, e.addr, "127.0.0.2")
		c.send(ecsTarget+"ListClusters", 0, nil, nil, "X-Pad", strings.Repeat("p", pad))
		return c.response()
	}
	if r := send(16 << 10); r.Status != 200 {
		t.Fatalf("16 KiB of headers: %d %s", r.Status, r.Body)
	}
	if r := send(64 << 10); r.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %d %s, want 431", r.Status, r.Body)
	}
}

// TestAPIClosesIdleConnections: a keep-alive connection that sends no
// further request is closed after the idle timeout.
func TestAPIClosesIdleConnections(t *testing.T) {
	e := limitsEnv(t, func(c *server.Config) { c.Limits.IdleTimeout = 200 * time.Millisecond })
	c := dialFrom(t, e.addr, "127.0.0.2")
	c.send(ecsTarget+"ListClusters", 0, nil, nil)
	if r := c.response(); r.Status != 200 || r.Header.Get("Connection") == "close" {
		t.Fatalf("first request: %d %v", r.Status, r.Header)
	}
	if !c.closedByServer() {
		t.Fatal("idle connection not closed")
	}
}

// TestAPICutsSlowHeaders: a client that trickles its headers is cut once
// the header timeout passes, without an answer.
func TestAPICutsSlowHeaders(t *testing.T) {
	e := limitsEnv(t, func(c *server.Config) { c.Limits.ReadHeaderTimeout = 200 * time.Millisecond })
	c := dialFrom(t, e.addr, "127.0.0.2")
	c.write([]byte("POST / HTTP/1.1\r\nHost: x\r\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = hostile.Trickle(ctx, c.c, []byte("X-Slow: "+strings.Repeat("s", 10000)), 20*time.Millisecond)
	}()
	if !c.closedByServer() {
		t.Fatal("slow-header connection not cut")
	}
}

// TestAPIBodyBytesInFlightPerClient: one client that holds bodies open
// (valid key, bodies announced and never finished) is refused once its
// share of in-flight body bytes is spent (ThrottlingException, before its
// next body is read), while another client is served; the share comes back
// when a held request ends.
func TestAPIBodyBytesInFlightPerClient(t *testing.T) {
	const share = 64 << 10
	e := limitsEnv(t, func(c *server.Config) {
		c.BodyBytesInFlightPerClient = share
		c.BodyBytesInFlight = 4 * share
	})
	var held []*rawConn
	for range 2 {
		c := dialFrom(t, e.addr, "127.0.0.2")
		c.send(ecsTarget+"CreateCluster", share/2, []byte("not the body"), []byte{'{'})
		held = append(held, c)
	}
	testutil.Eventually(t, hangGuard, 5*time.Millisecond, "both held bodies reserved", func() (bool, string) {
		v := metric(t, e.addr, "holdfast_http_body_bytes_in_flight")
		return v == share, strconv.FormatFloat(v, 'f', 0, 64)
	})
	// The same client: refused before its body is read.
	c := dialFrom(t, e.addr, "127.0.0.2")
	c.send(ecsTarget+"CreateCluster", 100, nil, nil)
	if status, typ, msg := wireErr(t, c.response()); status != 400 || typ != api.TypeThrottling || msg != "Rate exceeded" {
		t.Fatalf("third body of a client at its share: %d %s %q", status, typ, msg)
	}
	// Another client is served meanwhile.
	must(e.ecs.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String("other-client")}))
	// A held request that completes (wrong signature) gives its share back.
	held[0].write([]byte(strings.Repeat(" ", share/2-2) + "}"))
	if status, typ, _ := wireErr(t, held[0].response()); status != 400 || typ != api.TypeInvalidSignature {
		t.Fatalf("held body with a wrong signature: %d %s", status, typ)
	}
	testutil.Eventually(t, hangGuard, 5*time.Millisecond, "share released", func() (bool, string) {
		v := metric(t, e.addr, "holdfast_http_body_bytes_in_flight")
		return v == share/2, strconv.FormatFloat(v, 'f', 0, 64)
	})
}

// TestAPIBodyShareOfVerifiedConnections: a flood that claims a client's own
// key from the client's own address spends that key's share there, but not
// the share of the client's kept-alive connections on which the key's
// signature was already verified (the flood cannot verify one without the
// secret).
func TestAPIBodyShareOfVerifiedConnections(t *testing.T) {
	const share = 64 << 10
	e := limitsEnv(t, func(c *server.Config) {
		c.BodyBytesInFlightPerClient = share
		c.BodyBytesInFlight = 4 * share
	})
	// The client's kept-alive connection, verified by a first call.
	own := dialFrom(t, e.addr, "127.0.0.2")
	own.send(ecsTarget+"ListClusters", 2, []byte("{}"), []byte("{}"))
	if r := own.response(); r.Status != 200 {
		t.Fatalf("first call: %d %s", r.Status, r.Body)
	}
	// The flood, same key, same address, fresh connections: one body takes
	// the whole share.
	flood := dialFrom(t, e.addr, "127.0.0.2")
	flood.send(ecsTarget+"CreateCluster", share, []byte("not the body"), []byte{'{'})
	testutil.Eventually(t, hangGuard, 5*time.Millisecond, "the flood's body reserved", func() (bool, string) {
		v := metric(t, e.addr, "holdfast_http_body_bytes_in_flight")
		return v == share, strconv.FormatFloat(v, 'f', 0, 64)
	})
	fresh := dialFrom(t, e.addr, "127.0.0.2")
	fresh.send(ecsTarget+"ListClusters", 2, []byte("{}"), []byte("{}"))
	if status, typ, _ := wireErr(t, fresh.response()); status != 400 || typ != api.TypeThrottling {
		t.Fatalf("a fresh connection under the flood's share: %d %s", status, typ)
	}
	// The verified connection is served.
	body := []byte(`{"clusterName":"verified"}`)
	own.send(ecsTarget+"CreateCluster", int64(len(body)), body, body)
	if r := own.response(); r.Status != 200 {
		t.Fatalf("the client's verified connection during the flood: %d %s", r.Status, r.Body)
	}
}

// TestAPIBodyBytesInFlightTotal: clients that are each within their share
// still cannot hold more than the total between them.
func TestAPIBodyBytesInFlightTotal(t *testing.T) {
	const share = 64 << 10
	e := limitsEnv(t, func(c *server.Config) {
		c.BodyBytesInFlightPerClient = share
		c.BodyBytesInFlight = 2 * share
	})
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		c := dialFrom(t, e.addr, src)
		c.send(ecsTarget+"CreateCluster", share, nil, nil)
	}
	testutil.Eventually(t, hangGuard, 5*time.Millisecond, "two shares reserved", func() (bool, string) {
		v := metric(t, e.addr, "holdfast_http_body_bytes_in_flight")
		return v == 2*share, strconv.FormatFloat(v, 'f', 0, 64)
	})
	c := dialFrom(t, e.addr, "127.0.0.4")
	c.send(ecsTarget+"CreateCluster", 100, nil, nil)
	if status, typ, _ := wireErr(t, c.response()); status != 400 || typ != api.TypeThrottling {
		t.Fatalf("a body over the total: %d %s", status, typ)
	}
	if v := metric(t, e.addr, "holdfast_http_bodies_refused_total"); v != 1 {
		t.Fatalf("holdfast_http_bodies_refused_total = %v, want 1", v)
	}
}

// TestAPIConnectionLimitEvictsTheBiggestIdleHolder: at the connection
// limit, a new client's connection is admitted by closing the oldest
// connection that serves no request of the client holding the most; a
// connection serving a request (a long poll) is never the one closed.
func TestAPIConnectionLimitEvictsTheBiggestIdleHolder(t *testing.T) {
	e := limitsEnv(t, func(c *server.Config) {
		c.Limits.MaxConns = 4
		c.Limits.MaxConnsPerClient = 4
		c.Limits.ReadHeaderTimeout = time.Hour // only eviction closes the idle ones
	})
	// 127.0.0.2 holds a long poll (serving a request) and three connections
	// that send nothing.
	poll, _, _ := e.startPoll("127.0.0.2", 30)
	testutil.Eventually(t, hangGuard, 5*time.Millisecond, "the poll connection open", func() (bool, string) {
		v := metric(t, e.addr, "holdfast_http_open_connections")
		return v >= 1, strconv.FormatFloat(v, 'f', 0, 64)
	})
	var idle []*rawConn
	for range 3 {
		idle = append(idle, dialFrom(t, e.addr, "127.0.0.2"))
	}
	testutil.Eventually(t, hangGuard, 5*time.Millisecond, "four connections open", func() (bool, string) {
		// The scrape's own connection may push one of them out: count
		// evictions too.
		v := metric(t, e.addr, "holdfast_http_open_connections") + metric(t, e.addr, "holdfast_http_connections_evicted_total")
		return v >= 4, strconv.FormatFloat(v, 'f', 0, 64)
	})
	// Another client's calls are admitted: idle connections of 127.0.0.2
	// make room, the oldest first.
	must(e.ecs.CreateCluster(e.ctx, &ecs.CreateClusterInput{ClusterName: aws.String("admitted")}))
	if !idle[0].closedByServer() {
		t.Fatal("the oldest idle connection of the biggest holder was not evicted")
	}
	if v := metric(t, e.addr, "holdfast_http_connections_evicted_total"); v < 1 {
		t.Fatalf("holdfast_http_connections_evicted_total = %v", v)
	}
	// The long poll was never evicted: a change answers it.
	must(e.ecs.RunTask(e.ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(e.taskDef("web"))}))
	r := poll.response()
	var out agentapi.PollOutput
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil || len(out.TaskARNs) != 1 {
		t.Fatalf("long poll across the evictions: %d %q", r.Status, r.Body)
	}
}

// TestAPIConnectionLimitPerClient: one client cannot hold more than its
// share of connections: its own oldest idle ones make room for its new
// ones, and other clients are not touched.
func TestAPIConnectionLimitPerClient(t *testing.T) {
	e := limitsEnv(t, func(c *server.Config) {
		c.Limits.MaxConns = 100
		c.Limits.MaxConnsPerClient = 3
		c.Limits.ReadHeaderTimeout = time.Hour
	})
	bystander := dialFrom(t, e.addr, "127.0.0.3")
	var flood []*rawConn
	for range 5 {
		flood = append(flood, dialFrom(t, e.addr, "127.0.0.2"))
	}
	for i, c := range flood[:2] {
		if !c.closedByServer() {
			t.Fatalf("connection %d of a client over its share stayed open", i)
		}
	}
	// The bystander's connection, older than all of them, still works.
	bystander.send(ecsTarget+"ListClusters", 0, nil, nil)
	if r := bystander.response(); r.Status != 200 {
		t.Fatalf("bystander: %d %s", r.Status, r.Body)
	}
	// The newest three of the flood are open: each still answers.
	for i, c := range flood[2:] {
		c.send(ecsTarget+"ListClusters", 0, nil, nil)
		if r := c.response(); r.Status != 200 {
			t.Fatalf("flood connection %d: %d %s", i+2, r.Status, r.Body)
		}
	}
}

// TestLongPollOutlivesDeadlinesWithHeartbeats: the agent's long poll is
// exempt from the listener's read and write deadlines (here 300 ms, far
// below its 2 s wait) and sends heartbeats (whitespace) until its answer,
// which decodes unchanged.
func TestLongPollOutlivesDeadlinesWithHeartbeats(t *testing.T) {
	e := limitsEnv(t, func(c *server.Config) {
		c.Limits.ReadTimeout = 300 * time.Millisecond
		c.Limits.WriteTimeout = 300 * time.Millisecond
		c.Heartbeat = 50 * time.Millisecond
	})
	c, _, known := e.startPoll("127.0.0.2", 2)
	r := c.response()
	if r.Status != 200 || r.Header.Get("Content-Type") != api.ContentType || r.Header.Get("X-Amzn-Requestid") == "" {
		t.Fatalf("long poll: %d %v %q", r.Status, r.Header, r.Body)
	}
	beats := len(r.Body) - len(strings.TrimLeft(string(r.Body), "\n"))
	if beats == 0 {
		t.Fatalf("no heartbeat before the answer: %q", r.Body)
	}
	var out agentapi.PollOutput
	if err := json.Unmarshal(r.Body, &out); err != nil || out.Revision != known || out.Full {
		t.Fatalf("answer after %d heartbeats: %v %q", beats, err, r.Body)
	}
	// The connection stays usable (keep-alive) after a streamed answer.
	c.send(ecsTarget+"ListClusters", 0, nil, nil)
	if r := c.response(); r.Status != 200 {
		t.Fatalf("request after the long poll: %d %s", r.Status, r.Body)
	}
}
