package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/testutil"
)

const (
	targetGet    = "AmazonEC2ContainerServiceV20141113.GetTaskProtection"
	targetUpdate = "AmazonEC2ContainerServiceV20141113.UpdateTaskProtection"

	bodyDecodeErr   = `{"error":{"Code":"InvalidParameterException","Message":"UpdateTaskProtection: failed to decode request"}}`
	bodyNotFound    = `{"error":{"Code":"ResourceNotFoundException","Message":"Failed to find a task for the request"}}`
	bodyFetchFailed = `{"error":{"Code":"ServerException","Message":"Failed to find a task for the request"}}`
	bodyMissing     = `{"error":{"Arn":"` + testARN + `","Code":"InvalidParameterException","Message":"Invalid request: does not contain 'ProtectionEnabled' field"}}`
	bodyUnexpected  = `{"error":{"Arn":"` + testARN + `","Code":"ServerException","Message":"Unexpected error occurred"}}`
	bodyTimedOut    = `{"error":{"Arn":"` + testARN + `","Code":"RequestCanceled","Message":"Timed out calling ECS Task Protection API"}}`
	bodyExpiresErr  = `{"error":{"Arn":"` + testARN + `","Code":"InvalidParameterException","Message":"ExpiresInMinutes must be between 1 and 2880"}}`

	ecsProtected  = `{"protectedTasks":[{"taskArn":"` + testARN + `","protectionEnabled":true,"expirationDate":1666205527}],"failures":[]}`
	bodyProtected = `{"protection":{"ExpirationDate":"2022-10-19T18:52:07Z","ProtectionEnabled":true,"TaskArn":"` + testARN + `"}}`
	ecsWireGet    = `{"cluster":"` + testCluster + `","tasks":["` + testARN + `"]}`
)

func ecsWireUpdate(fields string) string {
	return `{"cluster":"` + testCluster + `",` + fields + `"tasks":["` + testARN + `"]}`
}

// expectCalls checks the exact calls the fake ECS received.
func expectCalls(t *testing.T, what string, f *fakeECS, want ...ecsCall) {
	t.Helper()
	got := f.getCalls()
	if len(got) != len(want) {
		t.Errorf("%s: ECS got %d calls %v, want %d %v", what, len(got), got, len(want), want)
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: ECS call %d:\n got  %+v\n want %+v", what, i, got[i], want[i])
		}
	}
}

// Cases 1, 2, 3, 7, 34.
func TestGetProtection(t *testing.T) {
	env := newEnv(t, envOpts{})
	u := env.url + env.path(env.id)
	cases := []struct {
		name, url, body, ecs, want string
	}{
		{"1 protected", u, "", ecsProtected, bodyProtected},
		{"2 unprotected", u, "", `{"protectedTasks":[{"taskArn":"` + testARN + `","protectionEnabled":false}],"failures":[]}`,
			`{"protection":{"ExpirationDate":null,"ProtectionEnabled":false,"TaskArn":"` + testARN + `"}}`},
		{"3 fractional", u, "", `{"protectedTasks":[{"taskArn":"` + testARN + `","protectionEnabled":true,"expirationDate":1.666205527123E9}],"failures":[]}`,
			`{"protection":{"ExpirationDate":"2022-10-19T18:52:07.123Z","ProtectionEnabled":true,"TaskArn":"` + testARN + `"}}`},
		{"7 query ignored", u + "?x=1", "", ecsProtected, bodyProtected},
		{"34 GET body ignored", u, "garbage", ecsProtected, bodyProtected},
	}
	for _, c := range cases {
		env.ecs.setReply(always(200, c.ecs))
		got := do(t, http.MethodGet, c.url, c.body)
		testutil.ExpectReply(t, c.name, got, 200, jsonCT, c.want)
		expectCalls(t, c.name, env.ecs, ecsCall{targetGet, ecsWireGet})
	}
}

// Cases 4, 5, 6.
func TestRouting(t *testing.T) {
	env := newEnv(t, envOpts{})
	p := env.path(env.id)
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions} {
		got := do(t, m, env.url+p, `{"ProtectionEnabled":true}`)
		testutil.ExpectReply(t, "4 "+m, got, http.StatusMethodNotAllowed, "", "")
	}
	expectCalls(t, "4", env.ecs)

	notFound := []string{
		p + "/",                // 5: trailing slash
		"/api/" + env.id,       // the bare agent URI
		"/api/" + env.id + "/", // ...with a slash
		"/api/" + env.id + "/task-protection/v1/state/x",
		"/api/" + env.id + "/task-protection/v2/state",
		"/api",
		"/",
		"/v4/" + env.id + "/stats",
		"/v4/" + env.id + "/task/",
	}
	for _, np := range notFound {
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			got := do(t, m, env.url+np, "")
			testutil.ExpectReply(t, "5 "+m+" "+np, got, http.StatusNotFound, "text/plain; charset=utf-8", "404 page not found\n")
		}
	}
	expectCalls(t, "5", env.ecs)

	redirects := []struct{ path, loc string }{
		{"/api//task-protection/v1/state", "/api/task-protection/v1/state"}, // 6
		{"/api//task-protection/v1/state?x=1", "/api/task-protection/v1/state?x=1"},
		{"//api/" + env.id + "/task-protection/v1/state", p},
		{"/api/" + env.id + "/./task-protection/v1/state", p},
		{"/api/" + env.id + "/task-protection/v1/../v1/state", p},
		{"/api/" + env.id + "//task-protection/v1/state/", p + "/"},
	}
	for _, r := range redirects {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost} {
			got := do(t, m, env.url+r.path, "")
			if got.Status != http.StatusMovedPermanently || got.Header.Get("Location") != r.loc || got.Body != "" {
				t.Errorf("6 %s %s: got %d Location %q body %q, want 301 %q", m, r.path, got.Status, got.Header.Get("Location"), got.Body, r.loc)
			}
		}
	}
	// Following the redirect of case 6 gives 404.
	got := do(t, http.MethodGet, env.url+"/api/task-protection/v1/state", "")
	testutil.ExpectReply(t, "6 follow", got, http.StatusNotFound, "text/plain; charset=utf-8", "404 page not found\n")
	expectCalls(t, "6", env.ecs)
}

// Case 8, with a frozen clock: exactly the burst passes, per endpoint id.
func TestRateLimitPerEndpointID(t *testing.T) {
	frozen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var now atomic.Pointer[time.Time]
	now.Store(&frozen)
	env := newEnv(t, envOpts{limit: DefaultRateLimit, burst: DefaultBurst, now: func() time.Time { return *now.Load() }})
	other := newEndpointID(t)
	env.state.add(other, TaskMetadata{TaskARN: testARN + "-other"}, "app")

	// 405s are cheap and count like every other request.
	for i := 0; i < DefaultBurst; i++ {
		got := do(t, http.MethodPost, env.url+env.path(env.id), "")
		if got.Status != http.StatusMethodNotAllowed {
			t.Fatalf("request %d: got %d %q, want 405", i+1, got.Status, got.Body)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodPut} {
		got := do(t, m, env.url+env.path(env.id), "")
		testutil.ExpectReply(t, "8 over limit "+m, got, http.StatusTooManyRequests, "text/plain; charset=utf-8", "You have reached maximum request limit.")
	}
	got := do(t, http.MethodGet, env.url+"/v4/"+env.id, "")
	testutil.ExpectReply(t, "8 over limit v4", got, http.StatusTooManyRequests, "text/plain; charset=utf-8", "You have reached maximum request limit.")
	expectCalls(t, "8", env.ecs)

	// Another endpoint id has its own bucket.
	got = do(t, http.MethodPost, env.url+env.path(other), "")
	testutil.ExpectReply(t, "8 other id", got, http.StatusMethodNotAllowed, "", "")

	// 40 req/s: after 100 ms, 4 more requests pass, the fifth does not.
	later := frozen.Add(100 * time.Millisecond)
	now.Store(&later)
	for i := 0; i < 4; i++ {
		got := do(t, http.MethodPost, env.url+env.path(env.id), "")
		testutil.ExpectReply(t, fmt.Sprintf("8 refill %d", i), got, http.StatusMethodNotAllowed, "", "")
	}
	got = do(t, http.MethodPost, env.url+env.path(env.id), "")
	testutil.ExpectReply(t, "8 refill exhausted", got, http.StatusTooManyRequests, "text/plain; charset=utf-8", "You have reached maximum request limit.")

	// Buckets of ids idle for a full refill period are dropped.
	muchLater := later.Add(2 * sweepEvery)
	now.Store(&muchLater)
	got = do(t, http.MethodPost, env.url+env.path(other), "")
	testutil.ExpectReply(t, "8 after idle", got, http.StatusMethodNotAllowed, "", "")
	env.h.limits.mu.Lock()
	n := len(env.h.limits.buckets)
	env.h.limits.mu.Unlock()
	if n != 1 {
		t.Errorf("after sweep: %d buckets, want 1", n)
	}
}

// Case 8 on the real clock, with a low rate so that timing cannot matter.
func TestRateLimitRealClock(t *testing.T) {
	env := newEnv(t, envOpts{limit: 1, burst: 5})
	limited := 0
	for i := 0; i < 20; i++ {
		got := do(t, http.MethodPost, env.url+env.path(env.id), "")
		switch got.Status {
		case http.StatusTooManyRequests:
			limited++
			testutil.ExpectReply(t, "8 real clock", got, http.StatusTooManyRequests, "text/plain; charset=utf-8", "You have reached maximum request limit.")
		case http.StatusMethodNotAllowed:
		default:
			t.Fatalf("unexpected %d", got.Status)
		}
		if i < 5 && limited > 0 {
			t.Fatalf("request %d limited within the burst", i+1)
		}
	}
	if limited == 0 {
		t.Error("no request was limited")
	}
}

// Cases 9, 10, 22, 23 and stop-resolving ids.
func TestLookup(t *testing.T) {
	env := newEnv(t, envOpts{})
	unknown := env.url + env.path("unknown-id")
	testutil.ExpectReply(t, "9 GET", do(t, http.MethodGet, unknown, ""), 404, jsonCT, bodyNotFound)
	testutil.ExpectReply(t, "9 PUT", do(t, http.MethodPut, unknown, `{"ProtectionEnabled":true}`), 404, jsonCT, bodyNotFound)
	testutil.ExpectReply(t, "22", do(t, http.MethodPut, unknown, `{`), 400, jsonCT, bodyDecodeErr)
	testutil.ExpectReply(t, "23", do(t, http.MethodPut, unknown, `{}`), 404, jsonCT, bodyNotFound)

	noARN := newEndpointID(t)
	env.state.add(noARN, TaskMetadata{}, "app")
	testutil.ExpectReply(t, "10 GET", do(t, http.MethodGet, env.url+env.path(noARN), ""), 500, jsonCT, bodyFetchFailed)
	testutil.ExpectReply(t, "10 PUT", do(t, http.MethodPut, env.url+env.path(noARN), `{"ProtectionEnabled":true}`), 500, jsonCT, bodyFetchFailed)
	expectCalls(t, "9/10", env.ecs)

	// A stopped task's id stops resolving.
	env.ecs.setReply(always(200, ecsProtected))
	testutil.ExpectReply(t, "before stop", do(t, http.MethodGet, env.url+env.path(env.id), ""), 200, jsonCT, bodyProtected)
	env.state.remove(env.id)
	testutil.ExpectReply(t, "after stop GET", do(t, http.MethodGet, env.url+env.path(env.id), ""), 404, jsonCT, bodyNotFound)
	testutil.ExpectReply(t, "after stop PUT", do(t, http.MethodPut, env.url+env.path(env.id), `{"ProtectionEnabled":true}`), 404, jsonCT, bodyNotFound)
	testutil.ExpectReply(t, "after stop v4", do(t, http.MethodGet, env.url+"/v4/"+env.id+"/task", ""), 404, jsonCT,
		`"V4 task metadata handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: `+env.id+`"`)
	if n := len(env.ecs.getCalls()); n != 1 {
		t.Errorf("ECS calls: %d, want 1", n)
	}
}

// Cases 12-21: decode and validation errors; ECS is never called.
func TestUpdateBodyValidation(t *testing.T) {
	env := newEnv(t, envOpts{})
	u := env.url + env.path(env.id)
	cases := []struct {
		name, body, want string
	}{
		{"12 unknown field", `{"ProtectionEnabled":true,"Foo":1}`, bodyDecodeErr},
		{"12 unknown field, HT-U4", `{"ExpiresInMinutes":5,"ProtectionEnabled":true,"Unknown":2}`, bodyDecodeErr},
		{"13 empty body", ``, bodyDecodeErr},
		{"13 whitespace body", "  \n", bodyDecodeErr},
		{"14 invalid JSON", `{`, bodyDecodeErr},
		{"14 invalid JSON 2", `{"ProtectionEnabled":tru}`, bodyDecodeErr},
		{"15 array", `[]`, bodyDecodeErr},
		{"15 string", `"bad"`, bodyDecodeErr},
		{"15 number", `5`, bodyDecodeErr},
		{"16 string bool", `{"ProtectionEnabled":"true"}`, bodyDecodeErr},
		{"16 number bool", `{"ProtectionEnabled":1}`, bodyDecodeErr},
		{"16 HT-U5", `{"ProtectionEnabled":"bad"}`, bodyDecodeErr},
		{"17 string minutes", `{"ProtectionEnabled":true,"ExpiresInMinutes":"5"}`, bodyDecodeErr},
		{"17 ST-U13", `{"ExpiresInMinutes":"bad","ProtectionEnabled":true}`, bodyDecodeErr},
		{"18 5.5", `{"ProtectionEnabled":true,"ExpiresInMinutes":5.5}`, bodyDecodeErr},
		{"18 5.0", `{"ProtectionEnabled":true,"ExpiresInMinutes":5.0}`, bodyDecodeErr},
		{"18 1e2", `{"ProtectionEnabled":true,"ExpiresInMinutes":1e2}`, bodyDecodeErr},
		{"18 beyond int64", `{"ProtectionEnabled":true,"ExpiresInMinutes":9223372036854775808}`, bodyDecodeErr},
		{"19 empty object", `{}`, bodyMissing},
		{"20 null", `null`, bodyMissing},
		{"21 null field", `{"ProtectionEnabled":null,"ExpiresInMinutes":5}`, bodyMissing},
		{"21 only minutes", `{"ExpiresInMinutes":5}`, bodyMissing},
		{"32 beyond int32", `{"ProtectionEnabled":true,"ExpiresInMinutes":4294967297}`, bodyExpiresErr},
		{"32 2^31", `{"ProtectionEnabled":true,"ExpiresInMinutes":2147483648}`, bodyExpiresErr},
		{"32 below int32", `{"ProtectionEnabled":false,"ExpiresInMinutes":-2147483649}`, bodyExpiresErr},
		{"body limit", `{"ProtectionEnabled":true,"ExpiresInMinutes":` + strings.Repeat(" ", maxUpdateBodyBytes) + `5}`, bodyDecodeErr},
	}
	for _, c := range cases {
		got := do(t, http.MethodPut, u, c.body, "Content-Type", "application/json")
		want := 400
		testutil.ExpectReply(t, c.name, got, want, jsonCT, c.want)
	}
	expectCalls(t, "12-21", env.ecs)
}

// Cases 24-33: what is forwarded to ECS.
func TestUpdateForwarding(t *testing.T) {
	env := newEnv(t, envOpts{})
	u := env.url + env.path(env.id)
	cases := []struct {
		name   string
		body   string
		hdr    []string
		wire   string
		status int
	}{
		{"24", `{"ProtectionEnabled":true,"ExpiresInMinutes":60}`, []string{"Content-Type", "application/json"},
			ecsWireUpdate(`"expiresInMinutes":60,"protectionEnabled":true,`), 200},
		{"25 no content type", `{"ProtectionEnabled":true}`, nil,
			ecsWireUpdate(`"protectionEnabled":true,`), 200},
		{"26 text/plain, false", `{"ProtectionEnabled":false}`, []string{"Content-Type", "text/plain"},
			ecsWireUpdate(`"protectionEnabled":false,`), 200},
		{"27 lowercase keys", `{"protectionEnabled":true,"expiresInMinutes":5}`, nil,
			ecsWireUpdate(`"expiresInMinutes":5,"protectionEnabled":true,`), 200},
		{"27 odd case keys", `{"PROTECTIONENABLED":true,"expiresinminutes":7}`, nil,
			ecsWireUpdate(`"expiresInMinutes":7,"protectionEnabled":true,`), 200},
		{"28 trailing data", `{"ProtectionEnabled":true} xyz`, nil,
			ecsWireUpdate(`"protectionEnabled":true,`), 200},
		{"29 duplicate keys", `{"ProtectionEnabled":false,"ProtectionEnabled":true}`, nil,
			ecsWireUpdate(`"protectionEnabled":true,`), 200},
		{"30 null minutes", `{"ProtectionEnabled":true,"ExpiresInMinutes":null}`, nil,
			ecsWireUpdate(`"protectionEnabled":true,`), 200},
		{"31 zero", `{"ProtectionEnabled":true,"ExpiresInMinutes":0}`, nil,
			ecsWireUpdate(`"expiresInMinutes":0,"protectionEnabled":true,`), 200},
		{"31 negative", `{"ProtectionEnabled":true,"ExpiresInMinutes":-5}`, nil,
			ecsWireUpdate(`"expiresInMinutes":-5,"protectionEnabled":true,`), 200},
		{"32 max int32 as is", `{"ProtectionEnabled":true,"ExpiresInMinutes":2147483647}`, nil,
			ecsWireUpdate(`"expiresInMinutes":2147483647,"protectionEnabled":true,`), 200},
		{"32 min int32 as is", `{"ProtectionEnabled":true,"ExpiresInMinutes":-2147483648}`, nil,
			ecsWireUpdate(`"expiresInMinutes":-2147483648,"protectionEnabled":true,`), 200},
		{"33 disable with minutes", `{"ProtectionEnabled":false,"ExpiresInMinutes":10}`, nil,
			ecsWireUpdate(`"expiresInMinutes":10,"protectionEnabled":false,`), 200},
	}
	for _, c := range cases {
		env.ecs.setReply(always(200, ecsProtected))
		got := do(t, http.MethodPut, u, c.body, c.hdr...)
		testutil.ExpectReply(t, c.name, got, c.status, jsonCT, bodyProtected)
		expectCalls(t, c.name, env.ecs, ecsCall{targetUpdate, c.wire})
	}

	// 31: ECS rejects the value; its answer is passed through.
	env.ecs.setReply(func(int, ecsCall) ecsReply {
		return ecsReply{status: 400, body: `{"__type":"InvalidParameterException","message":"expiresInMinutes must be between 1 and 2880."}`, rid: "R31"}
	})
	got := do(t, http.MethodPut, u, `{"ProtectionEnabled":true,"ExpiresInMinutes":0}`)
	testutil.ExpectReply(t, "31 ECS rejects", got, 400, jsonCT,
		`{"requestID":"R31","error":{"Arn":"`+testARN+`","Code":"InvalidParameterException","Message":"expiresInMinutes must be between 1 and 2880."}}`)
}

// Cases 35-41: validating the ECS answer, for GET and PUT.
func TestECSAnswers(t *testing.T) {
	env := newEnv(t, envOpts{})
	fail := func(reason string) string { return `{"arn":"` + testARN + `","reason":"` + reason + `"}` }
	prot := `{"taskArn":"` + testARN + `","protectionEnabled":true}`
	cases := []struct {
		name, ecs string
		status    int
		want      string
	}{
		{"35 one failure", `{"failures":[` + fail("TASK_NOT_VALID") + `]}`, 200,
			`{"failure":{"Arn":"` + testARN + `","Detail":null,"Reason":"TASK_NOT_VALID"}}`},
		{"36 failure with detail", `{"failures":[{"arn":"` + testARN + `","reason":"DEPLOYMENT_BLOCKED","detail":"d <&> 1"}],"protectedTasks":[]}`, 200,
			`{"failure":{"Arn":"` + testARN + `","Detail":"d \u003c\u0026\u003e 1","Reason":"DEPLOYMENT_BLOCKED"}}`},
		{"36 MISSING", `{"failures":[` + fail("MISSING") + `]}`, 200,
			`{"failure":{"Arn":"` + testARN + `","Detail":null,"Reason":"MISSING"}}`},
		{"36 failure without fields", `{"failures":[{}]}`, 200,
			`{"failure":{"Arn":null,"Detail":null,"Reason":null}}`},
		{"37 task and failure", `{"protectedTasks":[` + prot + `],"failures":[` + fail("MISSING") + `]}`, 200,
			`{"failure":{"Arn":"` + testARN + `","Detail":null,"Reason":"MISSING"}}`},
		{"38 two failures", `{"failures":[` + fail("A") + `,` + fail("B") + `]}`, 500, bodyUnexpected},
		{"38 two failures and a task", `{"protectedTasks":[` + prot + `],"failures":[` + fail("A") + `,` + fail("B") + `]}`, 500, bodyUnexpected},
		{"39 two tasks", `{"protectedTasks":[` + prot + `,` + prot + `],"failures":[]}`, 500, bodyUnexpected},
		{"40 empty (difference: no panic)", `{"protectedTasks":[],"failures":[]}`, 500, bodyUnexpected},
		{"40 empty object", `{}`, 500, bodyUnexpected},
		{"HT-G11 task without date", `{"protectedTasks":[` + prot + `]}`, 200,
			`{"protection":{"ExpirationDate":null,"ProtectionEnabled":true,"TaskArn":"` + testARN + `"}}`},
		{"task without arn", `{"protectedTasks":[{"protectionEnabled":false}]}`, 200,
			`{"protection":{"ExpirationDate":null,"ProtectionEnabled":false,"TaskArn":null}}`},
	}
	for _, c := range cases {
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			env.ecs.setReply(always(200, c.ecs))
			got := do(t, m, env.url+env.path(env.id), `{"ProtectionEnabled":true}`)
			testutil.ExpectReply(t, c.name+" "+m, got, c.status, jsonCT, c.want)
		}
	}

	// 41: invalid JSON from ECS. The text after "deserialization failed, "
	// is the SDK's; ours says "unexpected end of JSON input" where the ECS
	// agent's vendored SDK says "failed to decode response body, unexpected EOF".
	for _, m := range []struct{ method, op string }{{http.MethodGet, "GetTaskProtection"}, {http.MethodPut, "UpdateTaskProtection"}} {
		env.ecs.setReply(func(int, ecsCall) ecsReply { return ecsReply{status: 200, body: `{"protectedTasks":[`, rid: "rid-bad"} })
		got := do(t, m.method, env.url+env.path(env.id), `{"ProtectionEnabled":true}`)
		want := `{"error":{"Arn":"` + testARN + `","Code":"ServerException","Message":"operation error ECS: ` + m.op +
			`, https response error StatusCode: 200, RequestID: rid-bad, deserialization failed, unexpected end of JSON input"}}`
		testutil.ExpectReply(t, "41 "+m.method, got, 500, jsonCT, want)
	}
}

// Cases 42-47 and 52: ECS exceptions.
func TestECSExceptions(t *testing.T) {
	env := newEnv(t, envOpts{})
	const notAuth = "User: arn:aws:sts::123456789012:assumed-role/x is not authorized to perform: ecs:UpdateTaskProtection"
	errJSON := func(rid, code, msg string) string {
		return `{"requestID":"` + rid + `","error":{"Arn":"` + testARN + `","Code":"` + code + `","Message":"` + msg + `"}}`
	}
	cases := []struct {
		name   string
		reply  ecsReply
		status int
		want   string
	}{
		{"42 AccessDenied", ecsReply{status: 400, rid: "R", body: `{"__type":"AccessDeniedException","message":"` + notAuth + `"}`},
			400, errJSON("R", "AccessDeniedException", notAuth)},
		{"43 no request id", ecsReply{status: 400, noRID: true, body: `{"__type":"AccessDeniedException","message":"` + notAuth + `"}`},
			400, errJSON("", "AccessDeniedException", notAuth)},
		// Spec case 44 expects "" (a quirk of the ECS agent's vendored SDK);
		// the aws-sdk-go-v2/service/ecs in our go.mod reads "Message" too.
		{"44 capitalised Message", ecsReply{status: 400, rid: "R", body: `{"__type":"AccessDeniedException","Message":"` + notAuth + `"}`},
			400, errJSON("R", "AccessDeniedException", notAuth)},
		{"45 namespaced type", ecsReply{status: 400, rid: "R", body: `{"__type":"com.amazonaws.ecs#ClusterNotFoundException","message":"Cluster not found."}`},
			400, errJSON("R", "ClusterNotFoundException", "Cluster not found.")},
		{"45 X-Amzn-ErrorType", ecsReply{status: 400, rid: "R", body: `{"message":"nope"}`,
			headers: map[string]string{"X-Amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"}},
			400, errJSON("R", "AccessDeniedException", "nope")},
		{"46 unmodeled 403", ecsReply{status: 403, rid: "R", body: `{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}`},
			403, errJSON("R", "UnrecognizedClientException", "The security token included in the request is invalid.")},
		{"46 unmodeled, capitalised Message", ecsReply{status: 400, rid: "R", body: `{"__type":"UnrecognizedClientException","Message":"M"}`},
			400, errJSON("R", "UnrecognizedClientException", "M")},
		{"47 unmodeled without message", ecsReply{status: 400, rid: "R", body: `{"__type":"SomethingException"}`},
			400, errJSON("R", "SomethingException", "UnknownError")},
		{"ST-G5 InvalidParameter", ecsReply{status: 400, rid: "reqid", body: `{"__type":"InvalidParameterException","message":"ecs error message"}`},
			400, errJSON("reqid", "InvalidParameterException", "ecs error message")},
		{"52 HTML escaping", ecsReply{status: 400, rid: "R", body: `{"__type":"ClientException","message":"a <b> & c"}`},
			400, errJSON("R", "ClientException", `a \u003cb\u003e \u0026 c`)},
	}
	for _, c := range cases {
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			rep := c.reply
			env.ecs.setReply(func(int, ecsCall) ecsReply { return rep })
			got := do(t, m, env.url+env.path(env.id), `{"ProtectionEnabled":true}`)
			testutil.ExpectReply(t, c.name+" "+m, got, c.status, jsonCT, c.want)
			if n := len(env.ecs.getCalls()); n != 1 {
				t.Errorf("%s %s: %d ECS calls, want 1 (not retried)", c.name, m, n)
			}
		}
	}
}

// Case 49, second half: a 500 followed by a success is retried by the SDK.
func TestECSRetryThenSuccess(t *testing.T) {
	env := newEnv(t, envOpts{})
	env.ecs.setReply(func(n int, _ ecsCall) ecsReply {
		if n == 1 {
			return ecsReply{status: 500, rid: "R", body: `{"__type":"ServerException","message":"boom"}`}
		}
		return ecsReply{status: 200, body: ecsProtected}
	})
	got := do(t, http.MethodGet, env.url+env.path(env.id), "")
	testutil.ExpectReply(t, "49 retry", got, 200, jsonCT, bodyProtected)
	expectCalls(t, "49 retry", env.ecs, ecsCall{targetGet, ecsWireGet}, ecsCall{targetGet, ecsWireGet})
}

// Cases 48, 49 and 51 with the SDK standard retryer: either outcome the
// spec allows. The budget is shortened to keep the test quick.
func TestECSRetryableFailures(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	cases := []struct {
		name   string
		reply  ecsReply
		ecsURL string
		status int
		want   string
	}{
		{"48 throttling", ecsReply{status: 400, rid: "R", body: `{"__type":"ThrottlingException","message":"Rate exceeded"}`}, "",
			400, `{"requestID":"R","error":{"Arn":"` + testARN + `","Code":"ThrottlingException","Message":"Rate exceeded"}}`},
		{"49 server exception", ecsReply{status: 500, rid: "R", body: `{"__type":"ServerException","message":"M"}`}, "",
			500, `{"requestID":"R","error":{"Arn":"` + testARN + `","Code":"ServerException","Message":"M"}}`},
		{"51 unreachable", ecsReply{}, deadURL,
			500, `{"error":{"Arn":"` + testARN + `","Code":"ServerException","Message":"operation error ECS: GetTaskProtection, exceeded maximum number of attempts, 3, https response error StatusCode: 0, RequestID: , request send failed, Post \"` + deadURL + `/\": dial tcp ` + closed.Addr().String() + `: connect: connection refused"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, envOpts{callTimeout: time.Second, ecsURL: c.ecsURL})
			rep := c.reply
			env.ecs.setReply(func(int, ecsCall) ecsReply { return rep })
			got := do(t, http.MethodGet, env.url+env.path(env.id), "")
			if got.Status == http.StatusGatewayTimeout {
				testutil.ExpectReply(t, c.name+" (timed out)", got, 504, jsonCT, bodyTimedOut)
			} else {
				testutil.ExpectReply(t, c.name, got, c.status, jsonCT, c.want)
			}
		})
	}
}

// Cases 48, 49 and 51 without retries: the mapping is deterministic.
func TestECSFailuresNoRetry(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	noRetry := func(o *ecs.Options) { o.Retryer = aws.NopRetryer{} }

	env := newEnv(t, envOpts{clientOpts: []func(*ecs.Options){noRetry}})
	env.ecs.setReply(always(400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`))
	testutil.ExpectReply(t, "48", do(t, http.MethodGet, env.url+env.path(env.id), ""), 400, jsonCT,
		`{"requestID":"rid-1","error":{"Arn":"`+testARN+`","Code":"ThrottlingException","Message":"Rate exceeded"}}`)
	env.ecs.setReply(always(500, `{"__type":"ServerException","message":"ecs error message"}`))
	testutil.ExpectReply(t, "49 / ST-G4", do(t, http.MethodPut, env.url+env.path(env.id), `{"ProtectionEnabled":true}`), 500, jsonCT,
		`{"requestID":"rid-1","error":{"Arn":"`+testARN+`","Code":"ServerException","Message":"ecs error message"}}`)

	dead := newEnv(t, envOpts{ecsURL: deadURL, clientOpts: []func(*ecs.Options){noRetry}})
	testutil.ExpectReply(t, "51", do(t, http.MethodPut, dead.url+dead.path(dead.id), `{"ProtectionEnabled":true}`), 500, jsonCT,
		`{"error":{"Arn":"`+testARN+`","Code":"ServerException","Message":"operation error ECS: UpdateTaskProtection, https response error StatusCode: 0, RequestID: , request send failed, Post \"`+deadURL+`/\": dial tcp `+closed.Addr().String()+`: connect: connection refused"}}`)
}

// Case 50: ECS does not answer within the call budget.
func TestECSTimeout(t *testing.T) {
	env := newEnv(t, envOpts{callTimeout: 200 * time.Millisecond})
	env.ecs.setReply(func(int, ecsCall) ecsReply { return ecsReply{hang: true} })
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		got := do(t, m, env.url+env.path(env.id), `{"ProtectionEnabled":true}`)
		testutil.ExpectReply(t, "50 "+m, got, 504, jsonCT, bodyTimedOut)
	}
}

// Cases 53/54 and isolation: an id only ever acts on its own task.
func TestIsolation(t *testing.T) {
	env := newEnv(t, envOpts{})
	const arnB = "arn:aws:ecs:us-east-1:123456789012:task/holdfast-test/bbbbbbbbbbbbbbbb"
	idA2 := newEndpointID(t) // second container of task A
	idB := newEndpointID(t)
	env.state.add(idA2, TaskMetadata{TaskARN: testARN}, "sidecar")
	env.state.add(idB, TaskMetadata{TaskARN: arnB}, "app")
	env.ecs.setReply(func(_ int, c ecsCall) ecsReply {
		// Echo the task the request named.
		arn := testARN
		if strings.Contains(c.body, arnB) {
			arn = arnB
		}
		return ecsReply{status: 200, body: `{"protectedTasks":[{"taskArn":"` + arn + `","protectionEnabled":true}]}`}
	})
	for _, tc := range []struct{ id, arn string }{{env.id, testARN}, {idA2, testARN}, {idB, arnB}, {env.id, testARN}} {
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			env.ecs.reset()
			got := do(t, m, env.url+env.path(tc.id), `{"ProtectionEnabled":true,"ExpiresInMinutes":5}`)
			testutil.ExpectReply(t, "isolation "+m, got, 200, jsonCT, `{"protection":{"ExpirationDate":null,"ProtectionEnabled":true,"TaskArn":"`+tc.arn+`"}}`)
			calls := env.ecs.getCalls()
			if len(calls) != 1 {
				t.Fatalf("%d calls", len(calls))
			}
			wantBody := `{"cluster":"` + testCluster + `","tasks":["` + tc.arn + `"]}`
			if m == http.MethodPut {
				wantBody = `{"cluster":"` + testCluster + `","expiresInMinutes":5,"protectionEnabled":true,"tasks":["` + tc.arn + `"]}`
			}
			if calls[0].body != wantBody {
				t.Errorf("id %s %s: ECS body %s, want %s", tc.id, m, calls[0].body, wantBody)
			}
		}
	}
	// An id that is a prefix, suffix or case variant of a valid id resolves to nothing.
	for _, bad := range []string{env.id[:len(env.id)-1], env.id + "0", strings.ToUpper(env.id), env.id + "%00"} {
		env.ecs.reset()
		got := do(t, http.MethodPut, env.url+env.path(bad), `{"ProtectionEnabled":true}`)
		testutil.ExpectReply(t, "bad id "+bad, got, 404, jsonCT, bodyNotFound)
		expectCalls(t, "bad id", env.ecs)
	}
}

// stubECS returns scripted errors that a real HTTP exchange cannot produce.
type stubECS struct {
	err error
	get *ecs.GetTaskProtectionInput
	upd *ecs.UpdateTaskProtectionInput
	out []ecstypes.ProtectedTask
}

func (s *stubECS) GetTaskProtection(_ context.Context, in *ecs.GetTaskProtectionInput, _ ...func(*ecs.Options)) (*ecs.GetTaskProtectionOutput, error) {
	s.get = in
	if s.err != nil {
		return nil, s.err
	}
	return &ecs.GetTaskProtectionOutput{ProtectedTasks: s.out}, nil
}

func (s *stubECS) UpdateTaskProtection(_ context.Context, in *ecs.UpdateTaskProtectionInput, _ ...func(*ecs.Options)) (*ecs.UpdateTaskProtectionOutput, error) {
	s.upd = in
	if s.err != nil {
		return nil, s.err
	}
	return &ecs.UpdateTaskProtectionOutput{ProtectedTasks: s.out}, nil
}

// HT-G6..G8 / ST-G6..G8: error mapping for errors without an HTTP exchange.
func TestErrorMappingStub(t *testing.T) {
	st := newFakeState()
	st.add("id", TaskMetadata{TaskARN: "t1"}, "app")
	stub := &stubECS{}
	h := newHandler(Config{Cluster: "default", State: st, RateLimit: 1e9, Burst: 1e9}, stub)
	cases := []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"RequestCanceledError", &aws.RequestCanceledError{Err: context.Canceled}, 504,
			`{"error":{"Arn":"t1","Code":"RequestCanceled","Message":"Timed out calling ECS Task Protection API"}}`},
		{"smithy.CanceledError", &smithy.CanceledError{Err: context.DeadlineExceeded}, 504,
			`{"error":{"Arn":"t1","Code":"RequestCanceled","Message":"Timed out calling ECS Task Protection API"}}`},
		{"bare deadline", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), 504,
			`{"error":{"Arn":"t1","Code":"RequestCanceled","Message":"Timed out calling ECS Task Protection API"}}`},
		{"bare API error", &ecstypes.InvalidParameterException{Message: aws.String("ecs error message")}, 500,
			`{"error":{"Arn":"t1","Code":"InvalidParameterException","Message":"ecs error message"}}`},
		{"generic API error", &smithy.GenericAPIError{Code: "X", Message: "<m>"}, 500,
			`{"error":{"Arn":"t1","Code":"X","Message":"\u003cm\u003e"}}`},
		{"other", errors.New("some error"), 500,
			`{"error":{"Arn":"t1","Code":"ServerException","Message":"some error"}}`},
	}
	for _, c := range cases {
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			stub.err = c.err
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, "/api/id/task-protection/v1/state", strings.NewReader(`{"ProtectionEnabled":true,"ExpiresInMinutes":5}`)))
			got := testutil.Reply{Status: rec.Code, ContentType: rec.Header().Get("Content-Type"), Body: rec.Body.String()}
			testutil.ExpectReply(t, c.name+" "+m, got, c.status, jsonCT, c.want)
		}
	}
	if stub.get == nil || aws.ToString(stub.get.Cluster) != "default" || len(stub.get.Tasks) != 1 || stub.get.Tasks[0] != "t1" {
		t.Errorf("GetTaskProtection input: %+v", stub.get)
	}
	if stub.upd == nil || aws.ToString(stub.upd.Cluster) != "default" || len(stub.upd.Tasks) != 1 || stub.upd.Tasks[0] != "t1" ||
		!stub.upd.ProtectionEnabled || aws.ToInt32(stub.upd.ExpiresInMinutes) != 5 {
		t.Errorf("UpdateTaskProtection input: %+v", stub.upd)
	}

	// No ECS client configured.
	h = newHandler(Config{Cluster: "default", State: st}, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/id/task-protection/v1/state", nil))
	testutil.ExpectReply(t, "no client", testutil.Reply{Status: rec.Code, ContentType: rec.Header().Get("Content-Type"), Body: rec.Body.String()}, 500, jsonCT,
		`{"error":{"Arn":"t1","Code":"ServerException","Message":"Task protection is not available: the agent has no ECS client"}}`)
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":            "/",
		"a":           "/a",
		"/":           "/",
		"//":          "/",
		"/a//b/":      "/a/b/",
		"/a/./b/../c": "/a/c",
		"/a/b":        "/a/b",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}
