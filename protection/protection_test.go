package protection_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/protection"
)

// TestLeasesAgainstEndpoint: the first lease protects, further leases do not
// call the endpoint, the task stays protected until the last release, which
// unprotects it.
func TestLeasesAgainstEndpoint(t *testing.T) {
	e := newEnv(t)
	arn := e.startService(1)[0]
	c := &counter{}
	p := newProtector(t, e.agentURI(e.proxy(c), arn), protection.WithClock(fakeClock{e.clk}), protection.WithExpiry(5))
	ctx := context.Background()
	t0 := e.clk.Now()

	l1, err := p.Acquire(ctx, "job-1")
	if err != nil {
		t.Fatalf("Acquire job-1: %v", err)
	}
	pt := e.protection(arn)
	if !pt.ProtectionEnabled || pt.ExpirationDate == nil || !pt.ExpirationDate.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("after first lease: enabled=%v expiration=%v, want true %v", pt.ProtectionEnabled, pt.ExpirationDate, t0.Add(5*time.Minute))
	}
	l2, err := p.Acquire(ctx, "job-2")
	if err != nil {
		t.Fatalf("Acquire job-2: %v", err)
	}
	if got := c.puts.Load(); got != 1 {
		t.Fatalf("PUTs after two leases = %d, want 1 (only the first lease protects)", got)
	}
	if p.Held() != 2 || l2.Name() != "job-2" {
		t.Fatalf("Held=%d name=%q", p.Held(), l2.Name())
	}
	if err := l1.Release(ctx); err != nil {
		t.Fatalf("Release job-1: %v", err)
	}
	if !e.protection(arn).ProtectionEnabled {
		t.Fatal("task unprotected while job-2 still holds a lease")
	}
	if err := l1.Release(ctx); err != nil { // twice: no-op
		t.Fatalf("second Release: %v", err)
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatalf("Release job-2: %v", err)
	}
	if pt := e.protection(arn); pt.ProtectionEnabled || pt.ExpirationDate != nil {
		t.Fatalf("after last release: enabled=%v expiration=%v", pt.ProtectionEnabled, pt.ExpirationDate)
	}
	if got := c.puts.Load(); got != 2 {
		t.Fatalf("PUTs = %d, want 2 (protect, unprotect)", got)
	}
	st, err := p.Get(ctx)
	if err != nil || st.Enabled || st.TaskArn != arn {
		t.Fatalf("Get = %+v, %v", st, err)
	}
}

// TestRenewal: with a 1-minute expiry, a held lease is renewed at half the
// expiry, so the task is still protected after the first expiry instant;
// once released, renewal stops.
func TestRenewal(t *testing.T) {
	e := newEnv(t)
	arn := e.startService(1)[0]
	c := &counter{}
	renewed := make(chan error, 10)
	p := newProtector(t, e.agentURI(e.proxy(c), arn), protection.WithClock(fakeClock{e.clk}), protection.WithExpiry(1),
		protection.WithRenewHook(func(_ protection.Status, err error) { renewed <- err }))
	ctx := context.Background()
	t0 := e.clk.Now()
	l, err := p.Acquire(ctx, "long-job")
	if err != nil {
		t.Fatal(err)
	}
	expiry := func() time.Time {
		pt := e.protection(arn)
		if !pt.ProtectionEnabled || pt.ExpirationDate == nil {
			t.Fatalf("task not protected at %v", e.clk.Now().Sub(t0))
		}
		return *pt.ExpirationDate
	}
	if got := expiry(); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("expiration %v, want %v", got, t0.Add(time.Minute))
	}
	for i := 1; i <= 3; i++ {
		e.clk.Advance(30 * time.Second)
		if err := <-renewed; err != nil {
			t.Fatalf("renewal %d: %v", i, err)
		}
		if want := t0.Add(time.Duration(i)*30*time.Second + time.Minute); !expiry().Equal(want) {
			t.Fatalf("renewal %d: expiration %v, want %v", i, expiry(), want)
		}
	}
	// 90 s after acquiring, past the first 1-minute expiry, still protected.
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	puts := c.puts.Load()
	if puts != 5 { // protect, 3 renewals, unprotect
		t.Fatalf("PUTs = %d, want 5", puts)
	}
	e.clk.Advance(5 * time.Minute)
	if pt := e.protection(arn); pt.ProtectionEnabled {
		t.Fatal("protected after release")
	}
	if c.puts.Load() != puts {
		t.Fatal("renewed after the last release")
	}
}

// TestBackoffOn429: the agent's rate limiter answers 429 text/plain; the
// library backs off and retries, then succeeds. Past the attempt budget the
// error is an *APIError that reports Throttled.
func TestBackoffOn429(t *testing.T) {
	e := newEnv(t)
	arn := e.startService(1)[0]
	tooMany := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, "You have reached maximum request limit.")
	}
	throttled := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"requestID":"rid-7","error":{"Arn":"`+arn+`","Code":"ThrottlingException","Message":"Rate exceeded"}}`)
	}
	c := &counter{answers: []func(http.ResponseWriter){tooMany, tooMany, throttled, tooMany}}
	uri := e.agentURI(e.proxy(c), arn)
	p := newProtector(t, uri, protection.WithRetry(10, time.Millisecond, 4*time.Millisecond))
	ctx := context.Background()
	l, err := p.Acquire(ctx, "job")
	if err != nil {
		t.Fatalf("Acquire through 4 throttled answers: %v", err)
	}
	if got := c.n.Load(); got != 5 {
		t.Fatalf("requests = %d, want 5 (4 throttled + 1)", got)
	}
	if !e.protection(arn).ProtectionEnabled {
		t.Fatal("not protected")
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// Budget exhausted: 3 attempts, 3 throttled answers.
	c2 := &counter{answers: []func(http.ResponseWriter){tooMany, tooMany, tooMany, tooMany}}
	p2 := newProtector(t, e.agentURI(e.proxy(c2), arn), protection.WithRetry(3, time.Millisecond, 2*time.Millisecond))
	_, err = p2.Acquire(ctx, "job")
	var ae *protection.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || !ae.Throttled() || ae.Message != "You have reached maximum request limit." {
		t.Fatalf("err = %#v, want *APIError 429 throttled", err)
	}
	if c2.n.Load() != 3 || p2.Held() != 0 {
		t.Fatalf("requests=%d held=%d", c2.n.Load(), p2.Held())
	}

	// A ThrottlingException that persists surfaces with its fields.
	c3 := &counter{answers: []func(http.ResponseWriter){throttled, throttled}}
	p3 := newProtector(t, e.agentURI(e.proxy(c3), arn), protection.WithRetry(2, time.Millisecond, 2*time.Millisecond))
	_, err = p3.Acquire(ctx, "job")
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "ThrottlingException" || ae.Message != "Rate exceeded" || ae.RequestID != "rid-7" || ae.Arn != arn {
		t.Fatalf("err = %#v", err)
	}
}

// TestDeploymentBlocked: a deployment replaces the service's only task
// while the old one is protected; the new task asking for protection gets
// 200 {"failure":{"Reason":"DEPLOYMENT_BLOCKED"}} from the endpoint, which
// must be an error, and no lease.
func TestDeploymentBlocked(t *testing.T) {
	e := newEnv(t)
	old := e.startService(1)[0]
	ctx := context.Background()
	// The old task protects itself (through the library, too).
	pOld := newProtector(t, e.agentURI(e.epSrv.URL, old))
	lOld, err := pOld.Acquire(ctx, "old-job")
	if err != nil {
		t.Fatal(err)
	}
	td2 := e.registerTD()
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(tCluster), Service: aws.String("svc"), TaskDefinition: aws.String(td2)}); err != nil {
		t.Fatal(err)
	}
	fresh := e.runNew([]string{old}, 1)[0]
	p := newProtector(t, e.agentURI(e.epSrv.URL, fresh))
	l, err := p.Acquire(ctx, "new-job")
	if l != nil || err == nil {
		t.Fatalf("Acquire on a blocked task = %v, %v; want an error", l, err)
	}
	if !errors.Is(err, protection.ErrDeploymentBlocked) {
		t.Fatalf("err = %v, want ErrDeploymentBlocked", err)
	}
	var fe *protection.FailureError
	if !errors.As(err, &fe) || fe.Reason != "DEPLOYMENT_BLOCKED" || fe.Arn != fresh {
		t.Fatalf("err = %#v", err)
	}
	if p.Held() != 0 || e.protection(fresh).ProtectionEnabled {
		t.Fatal("blocked acquire left a lease or a protection")
	}
	// Scale-in and deployments cannot stop the old task; once it releases,
	// the new task may protect itself.
	if err := lOld.Release(ctx); err != nil {
		t.Fatal(err)
	}
	e.eventually("new task can protect", func() bool {
		l, err := p.Acquire(ctx, "new-job")
		if err != nil {
			return false
		}
		return l.Release(ctx) == nil
	})
}

// TestFailureIsNotSuccess covers answers that a status-code-only client
// gets wrong, without a control plane.
func TestDecodeAnswers(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		check  func(error) bool
	}{
		{"failure 200", 200, `{"failure":{"Arn":"arn:t","Detail":null,"Reason":"TASK_NOT_VALID"}}`, func(err error) bool {
			var fe *protection.FailureError
			return errors.Is(err, protection.ErrTaskNotValid) && errors.As(err, &fe) && fe.Arn == "arn:t" && !errors.Is(err, protection.ErrDeploymentBlocked)
		}},
		{"error 404", 404, `{"error":{"Code":"ResourceNotFoundException","Message":"Failed to find a task for the request"}}`, func(err error) bool {
			var ae *protection.APIError
			return errors.As(err, &ae) && ae.Status == 404 && ae.Code == "ResourceNotFoundException"
		}},
		{"error 200", 200, `{"error":{"Code":"X","Message":"m"}}`, func(err error) bool {
			var ae *protection.APIError
			return errors.As(err, &ae) && ae.Code == "X"
		}},
		{"not json", 404, "404 page not found\n", func(err error) bool {
			var ae *protection.APIError
			return errors.As(err, &ae) && ae.Status == 404 && ae.Message == "404 page not found"
		}},
		{"empty 200", 200, ``, func(err error) bool {
			var ae *protection.APIError
			return errors.As(err, &ae)
		}},
		{"epoch seconds", 200, `{"protection":{"ExpirationDate":1666205527.123,"ProtectionEnabled":true,"TaskArn":"arn:t"}}`, func(err error) bool { return err == nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: tc.status, Body: io.NopCloser(strings.NewReader(tc.body)), Header: http.Header{}}, nil
			})}
			p := newProtector(t, "http://agent/api/x", protection.WithHTTPClient(hc), protection.WithRetry(1, 0, 0))
			st, err := p.Set(context.Background(), 5)
			if !tc.check(err) {
				t.Fatalf("err = %#v (%v)", err, err)
			}
			if tc.name == "epoch seconds" && !st.ExpirationDate.Equal(time.UnixMilli(1666205527123)) {
				t.Fatalf("ExpirationDate %v", st.ExpirationDate)
			}
		})
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNoOp: without ECS_AGENT_URI every call succeeds, nothing is sent, and
// the mode is logged once.
func TestNoOp(t *testing.T) {
	t.Setenv("ECS_AGENT_URI", "")
	var buf bytes.Buffer
	sent := false
	hc := &http.Client{Transport: roundTrip(func(*http.Request) (*http.Response, error) { sent = true; return nil, errors.New("no") })}
	p, err := protection.New(protection.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), protection.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if !p.NoOp() {
		t.Fatal("not in no-op mode")
	}
	ctx := context.Background()
	for range 3 {
		l, err := p.Acquire(ctx, "job")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Get(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if sent {
		t.Fatal("no-op mode sent a request")
	}
	if n := strings.Count(buf.String(), "ECS_AGENT_URI is not set"); n != 1 {
		t.Fatalf("logged %d times: %q", n, buf.String())
	}
	// The package-level functions behave the same.
	if err := protection.Acquire(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := protection.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
