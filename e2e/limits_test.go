package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/hostile"
	"github.com/holdfast/holdfast/internal/testutil"
)

// hangGuard bounds raw reads: without the limit under test the server
// would never answer; the guard turns that into a failure.
const hangGuard = time.Minute

// rawDial opens a raw connection to addr from src with the hang guard.
func rawDial(t *testing.T, addr, src string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := hostile.Dial(context.Background(), addr, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	return c, bufio.NewReader(c)
}

// TestTaskEndpointBoundsHeadersAndBodiesPerEndpointID: the agent's
// listener answers 431 to oversized headers, and a task that holds
// request bodies open through its endpoint id is refused (the endpoint's
// 429) once its share is spent, before its next body is read, while
// another task's calls go through.
func TestTaskEndpointBoundsHeadersAndBodiesPerEndpointID(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	td, dir := s.taskDef(t, "bounded")
	s.createService(t, "bounded", td, 2)
	tasks := s.waitTasks(t, dir, 2)
	a, b := tasks[0], tasks[1]
	u, err := url.Parse(a.stateURL())
	if err != nil {
		t.Fatal(err)
	}

	// Headers: 16 KiB is fine, 64 KiB is 431 before the handler.
	for _, tc := range []struct {
		pad    int
		status int
	}{{16 << 10, 200}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		c, r := rawDial(t, u.Host, "127.0.0.1")
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\n\r\n", u.Path, u.Host, strings.Repeat("p", tc.pad))
		resp, err := hostile.ReadResponse(r)
		if err != nil || resp.Status != tc.status {
			t.Fatalf("GET with %d bytes of headers: %d %v, want %d", tc.pad, resp.Status, err, tc.status)
		}
	}

	// Bodies: a's share is four 64 KiB bodies. Five PUTs announce 64 KiB
	// and send one byte: four are read (slowly), one is refused at once.
	const bodyLen = 64 << 10
	type held struct {
		c    net.Conn
		resp chan hostile.Response
	}
	var puts []held
	first := make(chan int, 5)
	for i := range 5 {
		c, r := rawDial(t, u.Host, "127.0.0.1")
		fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n{", u.Path, u.Host, bodyLen)
		h := held{c: c, resp: make(chan hostile.Response, 1)}
		go func() {
			resp, err := hostile.ReadResponse(r)
			if err != nil {
				resp.Status = -1
				resp.Body = []byte(err.Error())
			}
			h.resp <- resp
			first <- i
		}()
		puts = append(puts, h)
	}
	refused := <-first
	got := <-puts[refused].resp
	if got.Status != http.StatusTooManyRequests || string(got.Body) != "You have reached maximum request limit." || !got.Close {
		t.Fatalf("first answer among five held PUTs: %d %v %q, want the 429 of a spent share", got.Status, got.Header, got.Body)
	}
	// Another task is served meanwhile.
	if r := s.do(t, http.MethodPut, b.stateURL(), `{"ProtectionEnabled":false}`); r.Status != 200 {
		t.Fatalf("b's PUT while a's share is spent: %d %s", r.Status, r.Body)
	}
	// The four held bodies complete and are answered normally.
	tail := `"ProtectionEnabled":false` + strings.Repeat(" ", bodyLen-len(`{"ProtectionEnabled":false}`)) + "}"
	for i, h := range puts {
		if i == refused {
			continue
		}
		if _, err := h.c.Write([]byte(tail)); err != nil {
			t.Fatal(err)
		}
		if r := <-h.resp; r.Status != 200 {
			t.Fatalf("held PUT %d once complete: %d %s", i, r.Status, r.Body)
		}
	}
	// The share is back.
	if r := s.do(t, http.MethodPut, a.stateURL(), `{"ProtectionEnabled":false}`); r.Status != 200 {
		t.Fatalf("a's PUT after its bodies completed: %d %s", r.Status, r.Body)
	}
}

// TestIdleFloodDoesNotExhaustFileDescriptors: the scenario. With a
// file limit of 256 (ulimit -n, as a small container would have), 400
// kept-alive connections that make one request and then idle would take
// every descriptor of the server, and a valid signed call would wait for
// ever; the listener's connection limits (shares of RLIMIT_NOFILE) close
// the oldest idle ones instead, and the call is answered. The flood comes
// from the caller's own address.
func TestIdleFloodDoesNotExhaustFileDescriptors(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := newSystem(t)
	bin := testutil.BuildHoldfast(t)
	s.main = &testutil.Daemon{Name: "holdfast server (ulimit -n 256)", Bin: "/bin/sh",
		Args: []string{"-c", `ulimit -n 256 && exec "$0" "$@"`, bin, "server", "--data-dir", s.dataDir, "--listen", s.apiAddr,
			"--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey},
		LogPath: filepath.Join(s.root, "server.log"), Env: []string{"HOLDFAST_E2E=1"}}
	s.startServer(t)

	// Each flood connection makes one request and then idles, kept alive:
	// without limits nothing ever closes it.
	for i := range 400 {
		c, err := net.Dial("tcp", s.apiAddr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	client := testutil.ECSClient("http://"+s.apiAddr, creds, func(o *ecs.Options) { o.RetryMaxAttempts = 1 })
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("after-flood")}); err != nil {
		t.Fatalf("signed call during an idle flood: %v\nserver log:\n%s", err, s.main.LogTail(20))
	}
	r := testutil.Do(t, s.http, http.MethodGet, "http://"+s.apiAddr+"/metrics", "")
	evicted := -1.0
	for line := range strings.SplitSeq(r.Body, "\n") {
		if strings.HasPrefix(line, `holdfast_http_connections_evicted_total{listener="api"}`) {
			evicted, _ = strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		}
	}
	if evicted < 1 {
		t.Fatalf("holdfast_http_connections_evicted_total = %v after 400 idle connections under a 256-descriptor limit", evicted)
	}
	// The oldest flood connections were the ones closed.
	c, err := net.Dial("tcp", s.apiAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := hostile.ReadResponse(bufio.NewReader(c))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || err == nil && resp.Status != 200 {
		t.Fatalf("GET /healthz during the flood: %v %d", err, resp.Status)
	}
}
