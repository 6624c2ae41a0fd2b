package endpoint

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"golang.org/x/time/rate"

	"github.com/holdfast/holdfast/internal/testutil"
)

const (
	testCluster = "holdfast-test"
	testARN     = "arn:aws:ecs:us-east-1:123456789012:task/holdfast-test/0123456789abcdef"
)

// newEndpointID returns a random id like the agent's (128 random bits).
func newEndpointID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// fakeState is a State backed by a map.
type fakeState struct {
	mu      sync.Mutex
	entries map[string]stateEntry
}

type stateEntry struct {
	task      TaskMetadata
	container string
}

func newFakeState() *fakeState { return &fakeState{entries: map[string]stateEntry{}} }

func (s *fakeState) Lookup(id string) (TaskMetadata, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	return e.task, e.container, ok
}

func (s *fakeState) add(id string, task TaskMetadata, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[id] = stateEntry{task: task, container: container}
}

func (s *fakeState) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, id)
}

// ecsReply is one scripted answer of the fake control plane.
type ecsReply struct {
	status  int
	body    string
	rid     string // x-amzn-RequestId; omitted when noRID
	noRID   bool
	headers map[string]string
	hang    bool // never answer; wait for the client to give up
}

type ecsCall struct {
	target string
	body   string
}

// ecsSigner is who signed a call: its Authorization and
// X-Amz-Security-Token headers.
type ecsSigner struct{ auth, token string }

// fakeECS is a scripted ECS control plane on loopback.
type fakeECS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []ecsCall
	signers []ecsSigner
	reply   func(n int, c ecsCall) ecsReply
}

func newFakeECS(t testing.TB, reply func(n int, c ecsCall) ecsReply) *fakeECS {
	t.Helper()
	f := &fakeECS{reply: reply}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := ecsCall{target: r.Header.Get("X-Amz-Target"), body: string(b)}
		f.mu.Lock()
		f.calls = append(f.calls, c)
		f.signers = append(f.signers, ecsSigner{r.Header.Get("Authorization"), r.Header.Get("X-Amz-Security-Token")})
		n := len(f.calls)
		rep := f.reply
		f.mu.Unlock()
		var rr ecsReply
		if rep != nil {
			rr = rep(n, c)
		} else {
			rr = ecsReply{status: 200, body: `{"protectedTasks":[],"failures":[]}`}
		}
		if rr.hang {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if !rr.noRID {
			rid := rr.rid
			if rid == "" {
				rid = "rid-1"
			}
			w.Header().Set("x-amzn-RequestId", rid)
		}
		for k, v := range rr.headers {
			w.Header().Set(k, v)
		}
		if rr.status == 0 {
			rr.status = 200
		}
		w.WriteHeader(rr.status)
		_, _ = io.WriteString(w, rr.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeECS) setReply(reply func(n int, c ecsCall) ecsReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = reply
	f.calls, f.signers = nil, nil
}

// reset forgets the recorded calls.
func (f *fakeECS) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.signers = nil, nil
}

func (f *fakeECS) getSigners() []ecsSigner {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ecsSigner(nil), f.signers...)
}

func (f *fakeECS) getCalls() []ecsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ecsCall(nil), f.calls...)
}

// always answers every call the same way.
func always(status int, body string) func(int, ecsCall) ecsReply {
	return func(int, ecsCall) ecsReply { return ecsReply{status: status, body: body, rid: "rid-1"} }
}

// newECSClient builds the client exactly as the agent does.
func newECSClient(baseURL string, optFns ...func(*ecs.Options)) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(baseURL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}, optFns...)
}

// testEnv is an endpoint served on loopback in front of a fake ECS.
type testEnv struct {
	url   string
	ecs   *fakeECS
	state *fakeState
	id    string // resolves to testARN
	h     *handler
}

type envOpts struct {
	callTimeout time.Duration
	limit       rate.Limit
	burst       int
	ecsURL      string // overrides the fake's URL (unreachable endpoint)
	clientOpts  []func(*ecs.Options)
	now         func() time.Time
	creds       Credentials
}

func newEnv(t testing.TB, o envOpts) *testEnv {
	t.Helper()
	env := &testEnv{ecs: newFakeECS(t, nil), state: newFakeState(), id: newEndpointID(t)}
	env.state.add(env.id, TaskMetadata{TaskARN: testARN, Containers: []ContainerMetadata{{Name: "app"}}}, "app")
	ecsURL := env.ecs.srv.URL
	if o.ecsURL != "" {
		ecsURL = o.ecsURL
	}
	if o.limit == 0 {
		o.limit = rate.Inf
	}
	cfg := Config{
		Cluster:     testCluster,
		ECS:         newECSClient(ecsURL, o.clientOpts...),
		State:       env.state,
		CallTimeout: o.callTimeout,
		RateLimit:   o.limit,
		Burst:       o.burst,
		Credentials: o.creds,
	}
	env.h = newHandler(cfg, cfg.ECS)
	if o.now != nil {
		env.h.limits.now = o.now
	}
	srv := httptest.NewServer(env.h)
	t.Cleanup(srv.Close)
	env.url = srv.URL
	return env
}

func (e *testEnv) path(id string) string { return "/api/" + id + "/task-protection/v1/state" }

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DialContext: (&net.Dialer{}).DialContext},
}

func do(t testing.TB, method, url, body string, hdr ...string) testutil.Reply {
	t.Helper()
	return testutil.Do(t, noRedirect, method, url, body, hdr...)
}

const jsonCT = "application/json"
