package netguard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/hostile"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a netguard Server for h on loopback until the test ends.
func serve(t *testing.T, h http.Handler, o Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, o)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return s, ln.Addr().String()
}

const guard = time.Minute

type conn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr, src string) *conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(guard))
	return &conn{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *conn) get(path string) *http.Response {
	c.t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// closed reports whether the server closed the connection; a connection
// still open at the guard fails the test.
func (c *conn) closed() bool {
	c.t.Helper()
	if err := hostile.WaitClosed(c.r); err != nil {
		c.t.Fatal(err)
	}
	return true
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestClientOf(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.2:4567":                    "127.0.0.2",
		"[::ffff:10.1.2.3]:80":              "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:443":        "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1%eth0]:1":     "2001:db8:1:2::/64",
		"[fe80::1]:1":                       "fe80::/64",
		"not an address":                    "not an address",
		"10.0.0.1":                          "10.0.0.1",
		"[2001:db8:1:3:3:4:5:6]:443":        "2001:db8:1:3::/64",
		"[2001:db8:1:2:aaaa:bbbb:cccc:1]:9": "2001:db8:1:2::/64",
	} {
		if got := ClientOf(in); got != want {
			t.Errorf("ClientOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConnShareFollowsTheFileLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skip(err)
	}
	want := max(16, int(min(rl.Cur/2, 65536)))
	if got := ConnShare(2); got != want {
		t.Errorf("ConnShare(2) = %d with RLIMIT_NOFILE %d, want %d", got, rl.Cur, want)
	}
	if a, b := APIDefaults(), ConnShare(2); a.MaxConns != b || a.MaxConnsPerClient != max(1, b/2) {
		t.Errorf("APIDefaults connections %d/%d, share %d", a.MaxConns, a.MaxConnsPerClient, b)
	}
}

func TestWithDefaults(t *testing.T) {
	d := Limits{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4, MaxHeaderBytes: 5, MaxConns: 6, MaxConnsPerClient: 7}
	if got := (Limits{}).WithDefaults(d); got != d {
		t.Errorf("zero limits with defaults = %+v", got)
	}
	own := Limits{ReadTimeout: 9, MaxConns: 10}
	got := own.WithDefaults(d)
	if got.ReadTimeout != 9 || got.MaxConns != 10 || got.WriteTimeout != 3 || got.MaxConnsPerClient != 7 {
		t.Errorf("set fields must win: %+v", got)
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(100, 60)
	relA, ok := b.Acquire("a", 60)
	if !ok {
		t.Fatal("a's first 60 refused")
	}
	if _, ok := b.Acquire("a", 1); ok {
		t.Fatal("a got more than its share")
	}
	relB, ok := b.Acquire("b", 40)
	if !ok {
		t.Fatal("b's 40 refused")
	}
	if _, ok := b.Acquire("c", 1); ok {
		t.Fatal("c got a byte over the total")
	}
	if b.InUse() != 100 || b.Refused() != 2 {
		t.Fatalf("in use %d refused %d", b.InUse(), b.Refused())
	}
	relA()
	relA() // idempotent
	if b.InUse() != 40 {
		t.Fatalf("after release: %d", b.InUse())
	}
	if _, ok := b.Acquire("c", 60); !ok {
		t.Fatal("c refused after a released")
	}
	relB()
	if rel, ok := b.Acquire("d", 0); !ok || rel == nil {
		t.Fatal("an empty body is always admitted")
	}
	if _, ok := NewBudget(10, 100).Acquire("e", 11); ok {
		t.Fatal("per-client share above the total")
	}
}

// TestEvictionPrefersTheBiggestHolderAndSparesActive: at the global limit,
// the victim is the oldest connection serving no request of the client
// holding the most; a client whose connections all serve requests is not
// touched, and with nothing evictable the new connection is refused.
func TestEvictionPrefersTheBiggestHolderAndSparesActive(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	busy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	s, addr := serve(t, busy, Options{Limits: Limits{MaxConns: 5, MaxConnsPerClient: 5}})
	// .3 holds two connections serving requests.
	var held []*conn
	for range 2 {
		c := dial(t, addr, "127.0.0.3")
		if _, err := io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// .2 holds three that send nothing.
	var idle []*conn
	for range 3 {
		idle = append(idle, dial(t, addr, "127.0.0.2"))
	}
	waitFor(t, "five connections", func() bool { return s.OpenConns() == 5 })
	// .4 arrives: .2 (three) is the biggest holder with something to evict.
	newcomer := dial(t, addr, "127.0.0.4")
	if !idle[0].closed() {
		t.Fatal("oldest idle connection of the biggest holder survived")
	}
	if r := newcomer.get("/"); r.StatusCode != 200 {
		t.Fatalf("newcomer: %d", r.StatusCode)
	}
	// Newcomer is now idle; .2 has two, .3 two busy, .4 one: the next
	// victims are .2's, then the newcomer's.
	for _, c := range idle[1:] {
		dial(t, addr, "127.0.0.5")
		if !c.closed() {
			t.Fatal("idle connection of .2 survived")
		}
	}
	if s.EvictedConns() != 3 {
		t.Fatalf("evicted %d, want 3", s.EvictedConns())
	}
	// .3's busy connections were never chosen: their requests complete.
	once.Do(func() { close(release) })
	for _, c := range held {
		if r, err := http.ReadResponse(c.r, nil); err != nil || r.StatusCode != 200 {
			t.Fatalf("held request: %v", err)
		}
	}
}

// TestRefusedWhenNothingIsEvictable: when every connection serves a
// request, a new one is closed at once and counted.
func TestRefusedWhenNothingIsEvictable(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }),
		Options{Limits: Limits{MaxConns: 2, MaxConnsPerClient: 2}})
	for range 2 {
		c := dial(t, addr, "127.0.0.2")
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two busy connections", func() bool { return s.OpenConns() == 2 })
	// Wait until both requests are being served (ConnState active).
	waitFor(t, "both active", func() bool {
		s.conns.mu.Lock()
		defer s.conns.mu.Unlock()
		n := 0
		for _, cs := range s.conns.clients {
			for c := range cs {
				if !c.evictable() {
					n++
				}
			}
		}
		return n == 2
	})
	late := dial(t, addr, "127.0.0.9")
	if !late.closed() {
		t.Fatal("a connection over the limit was kept")
	}
	if s.RefusedConns() != 1 || s.OpenConns() != 2 {
		t.Fatalf("refused %d open %d", s.RefusedConns(), s.OpenConns())
	}
}

// TestReadDeadlineLiftedOnceTheBodyIsRead: a handler that has read its
// body (or got none) keeps its context past ReadTimeout. net/http lifts the
// deadline when it starts its background read; if it did not, the deadline
// would fire on that read and cancel the request's context, and every call
// slower than ReadTimeout would fail. holdfast relies on it.
func TestReadDeadlineLiftedOnceTheBodyIsRead(t *testing.T) {
	const readTimeout = 50 * time.Millisecond
	result := make(chan string, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			result <- "read: " + err.Error()
			return
		}
		select {
		case <-r.Context().Done():
			result <- "cancelled"
		case <-time.After(8 * readTimeout):
			result <- "ok"
		}
	})
	_, addr := serve(t, h, Options{Limits: Limits{ReadTimeout: readTimeout, ReadHeaderTimeout: readTimeout}})
	for _, req := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c := dial(t, addr, "127.0.0.2")
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		if got := <-result; got != "ok" {
			t.Fatalf("%q: handler %s", strings.SplitN(req, "\r\n", 2)[0], got)
		}
		if r, err := http.ReadResponse(c.r, nil); err != nil || r.StatusCode != 200 {
			t.Fatalf("response: %v", err)
		}
	}
}

// TestStreamHeartbeatsAndOutlivesTheWriteTimeout: a Stream sends its
// heartbeats, then its answer, long after the WriteTimeout would have cut
// a plain response.
func TestStreamHeartbeatsAndOutlivesTheWriteTimeout(t *testing.T) {
	const writeTimeout = 50 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		st := StartStream(w, r, 200, JSONHeartbeat(writeTimeout/5))
		<-time.After(8 * writeTimeout)
		_ = st.Close()
		_, _ = st.Write([]byte(`{"done":true}`))
	})
	_, addr := serve(t, h, Options{Limits: Limits{ReadTimeout: writeTimeout, WriteTimeout: writeTimeout}})
	c := dial(t, addr, "127.0.0.2")
	r := c.get("/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("stream body: %v (%q)", err, body)
	}
	trimmed := strings.TrimLeft(string(body), "\n")
	if trimmed != `{"done":true}` || len(body) == len(trimmed) {
		t.Fatalf("stream body %q: want heartbeats then the answer", body)
	}
}

// TestStreamCutWhenTheClientStopsReading: a client that stops reading a
// stream does not hold its handler for ever: once a write has been blocked
// for WriteTimeout it fails.
func TestStreamCutWhenTheClientStopsReading(t *testing.T) {
	failed := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := StartStream(w, r, 200, Heartbeat{})
		defer st.Close()
		chunk := make([]byte, 64<<10)
		for {
			if _, err := st.Write(chunk); err != nil {
				failed <- err
				return
			}
		}
	})
	_, addr := serve(t, h, Options{Limits: Limits{WriteTimeout: 100 * time.Millisecond}})
	c := dial(t, addr, "127.0.0.2")
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("stream write failed with %v, want a timeout", err)
		}
	case <-time.After(guard):
		t.Fatal("a stream to a client that reads nothing kept writing")
	}
}

// TestStreamingRequestsPushTheWriteDeadline: a request that Options.Streaming
// names (a log follow) keeps writing past WriteTimeout.
func TestStreamingRequestsPushTheWriteDeadline(t *testing.T) {
	const writeTimeout = 50 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
			<-time.After(writeTimeout / 2)
		}
	})
	_, addr := serve(t, h, Options{
		Limits:    Limits{WriteTimeout: writeTimeout, ReadTimeout: writeTimeout},
		Streaming: func(r *http.Request) bool { return r.URL.Query().Get("follow") != "" },
	})
	c := dial(t, addr, "127.0.0.2")
	r := c.get("/logs?follow=1")
	body, err := io.ReadAll(r.Body)
	if err != nil || strings.Count(string(body), "\n") != 8 {
		t.Fatalf("followed %q: %v", body, err)
	}
}

// TestBodyLimitRefusesBeforeReading: with Options.Bodies, a request whose
// body does not fit its client's share is refused without its body being
// read, and the connection is closed; other clients are served.
func TestBodyLimitRefusesBeforeReading(t *testing.T) {
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = io.Copy(io.Discard, r.Body)
	})
	b := NewBudget(1000, 100)
	_, addr := serve(t, h, Options{Bodies: &BodyLimit{
		Budget: b, Max: 64,
		Refuse: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }),
	}})
	// .2 announces 64 + 64 bytes (its share is 100): the second is refused.
	c1 := dial(t, addr, "127.0.0.2")
	if _, err := io.WriteString(c1, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	c2 := dial(t, addr, "127.0.0.2")
	if _, err := io.WriteString(c2, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(c2.r, nil)
	if err != nil || r.StatusCode != http.StatusTooManyRequests || !r.Close {
		t.Fatalf("over the share: %v %v", r, err)
	}
	// A chunked body reserves Max: .3 gets 64 of its 100.
	c3 := dial(t, addr, "127.0.0.3")
	if _, err := io.WriteString(c3, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	if got := b.InUse(); got != 128 {
		t.Fatalf("in use %d, want 64 + 64", got)
	}
}

// TestShutdownLeavesNothing: connections are untracked once closed.
func TestShutdownLeavesNothing(t *testing.T) {
	s, addr := serve(t, http.NotFoundHandler(), Options{Limits: Limits{MaxConns: 10, MaxConnsPerClient: 10}})
	for range 3 {
		c := dial(t, addr, "127.0.0.2")
		c.get("/")
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no open connections", func() bool { return s.OpenConns() == 0 })
}
