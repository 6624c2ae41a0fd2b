package e2e_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/testutil"
)

const (
	jsonType      = "application/json"
	notFoundBody  = `{"error":{"Code":"ResourceNotFoundException","Message":"Failed to find a task for the request"}}`
	decodeErrBody = `{"error":{"Code":"InvalidParameterException","Message":"UpdateTaskProtection: failed to decode request"}}`
)

func missingFieldBody(arn string) string {
	return `{"error":{"Arn":"` + arn + `","Code":"InvalidParameterException","Message":"Invalid request: does not contain 'ProtectionEnabled' field"}}`
}

func failureBody(arn, detail, reason string) string {
	return `{"failure":{"Arn":"` + arn + `","Detail":"` + detail + `","Reason":"` + reason + `"}}`
}

// TestEndpointIDIsolationAndStop: an endpoint id reads its own task only,
// and stops resolving once its task has stopped.
func TestEndpointIDIsolationAndStop(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	td, dir := s.taskDef(t, "ids")
	s.createService(t, "pair", td, 2)
	tasks := s.waitTasks(t, dir, 2)
	a, b := tasks[0], tasks[1]
	if a.arn == b.arn || a.endpointID == b.endpointID {
		t.Fatalf("two tasks share an ARN or an endpoint id: %+v %+v", a, b)
	}
	if len(strings.ReplaceAll(a.endpointID, "-", "")) < 32 {
		t.Errorf("endpoint id %q is shorter than a UUID", a.endpointID)
	}
	for _, k := range tasks {
		testutil.ExpectReply(t, "GET own protection", s.do(t, http.MethodGet, k.stateURL(), ""), 200, jsonType, unprotectedBody(k.arn))
	}

	// Protect a through the API: a's id reads it, b's id still reads b.
	s.setProtection(t, true, a.arn)
	if r := s.do(t, http.MethodGet, a.stateURL(), ""); r.Status != 200 || !protectedBodyRe(a.arn).MatchString(r.Body) {
		t.Errorf("GET through a's id: %d %s", r.Status, r.Body)
	}
	testutil.ExpectReply(t, "GET through b's id", s.do(t, http.MethodGet, b.stateURL(), ""), 200, jsonType, unprotectedBody(b.arn))
	// A release through b's id touches b only.
	testutil.ExpectReply(t, "PUT false through b's id", s.do(t, http.MethodPut, b.stateURL(), `{"ProtectionEnabled":false}`),
		200, jsonType, unprotectedBody(b.arn))
	if p := s.getProtection(t, a.arn); !p[a.arn].ProtectionEnabled {
		t.Errorf("a lost its protection through b's endpoint id: %+v", p)
	}

	// StopTask stops a even though it is protected; then its id is dead.
	if _, err := s.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String(clusterName),
		Task: aws.String(a.arn)}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	waitFile(t, a.file(".term"))
	s.waitTaskStatus(t, a.arn, "STOPPED")
	testutil.ExpectReply(t, "GET on a stopped task's id", s.do(t, http.MethodGet, a.stateURL(), ""), 404, jsonType, notFoundBody)
	testutil.ExpectReply(t, "PUT on a stopped task's id", s.do(t, http.MethodPut, a.stateURL(), `{"ProtectionEnabled":true}`), 404, jsonType, notFoundBody)
	testutil.ExpectReply(t, "GET through b's id after a stopped", s.do(t, http.MethodGet, b.stateURL(), ""), 200, jsonType, unprotectedBody(b.arn))
}

// TestEndpointBodies checks the task endpoint's answers byte for byte
// through the real stack: agent endpoint -> SDK -> control plane.
func TestEndpointBodies(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := startUp(t)
	ctx := context.Background()
	td, dir := s.taskDef(t, "bodies")
	standaloneTD, standaloneDir := s.taskDef(t, "standalone")
	const service = "web"
	s.createService(t, service, td, 1)
	k := s.waitTasks(t, dir, 1)[0]
	if _, err := s.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(clusterName),
		TaskDefinition: aws.String(standaloneTD), Count: aws.Int32(1)}); err != nil {
		t.Fatalf("RunTask: %v", err)
	}
	standalone := s.waitTasks(t, standaloneDir, 1)[0]
	url := k.stateURL()

	// Unprotected.
	testutil.ExpectReply(t, "GET unprotected", s.do(t, http.MethodGet, url, ""), 200, jsonType, unprotectedBody(k.arn))

	// Protected: the expiry is RFC 3339 UTC with at most milliseconds, the
	// same instant GetTaskProtection returns.
	before := time.Now()
	r := s.do(t, http.MethodPut, url, `{"ProtectionEnabled":true,"ExpiresInMinutes":60}`)
	m := protectedBodyRe(k.arn).FindStringSubmatch(r.Body)
	if r.Status != 200 || r.ContentType != jsonType || m == nil {
		t.Fatalf("PUT protect: %d %q %s", r.Status, r.ContentType, r.Body)
	}
	exp, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("ExpiresInMinutes 60 gave an expiry %v from now", d)
	}
	if p := s.getProtection(t, k.arn)[k.arn]; p.ExpirationDate == nil || !p.ExpirationDate.Equal(exp) {
		t.Errorf("GetTaskProtection expiry %v, endpoint said %v", p.ExpirationDate, exp)
	}
	testutil.ExpectReply(t, "GET protected", s.do(t, http.MethodGet, url, ""), 200, jsonType, r.Body)

	// Agent-side validation.
	for _, body := range []string{`{"ProtectionEnabled":"true"}`, ``, `{"ProtectionEnabled":true,"Unknown":1}`, `[]`, `{"ExpiresInMinutes":5.5,"ProtectionEnabled":true}`} {
		testutil.ExpectReply(t, "PUT "+body, s.do(t, http.MethodPut, url, body), 400, jsonType, decodeErrBody)
	}
	testutil.ExpectReply(t, "PUT {}", s.do(t, http.MethodPut, url, `{}`), 400, jsonType, missingFieldBody(k.arn))
	testutil.ExpectReply(t, "PUT null", s.do(t, http.MethodPut, url, `null`), 400, jsonType, missingFieldBody(k.arn))

	// Failures from the control plane are 200 {"failure":...}.
	notValid := failureBody(standalone.arn, "The task is not part of a service.", "TASK_NOT_VALID")
	testutil.ExpectReply(t, "PUT on a standalone task", s.do(t, http.MethodPut, standalone.stateURL(), `{"ProtectionEnabled":true}`), 200, jsonType, notValid)
	testutil.ExpectReply(t, "GET on a standalone task", s.do(t, http.MethodGet, standalone.stateURL(), ""), 200, jsonType, notValid)

	// DEPLOYMENT_BLOCKED: a new deployment starts a second task while the
	// protected one stays; protecting the new one too would leave 2
	// protected tasks for a desired count of 1.
	if _, err := s.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(clusterName),
		Service: aws.String(service), ForceNewDeployment: true}); err != nil {
		t.Fatalf("UpdateService forceNewDeployment: %v", err)
	}
	var fresh task
	for _, x := range s.waitTasks(t, dir, 2) {
		if x.arn != k.arn {
			fresh = x
		}
	}
	blocked := failureBody(fresh.arn, "Protecting this task would leave the service with more protected tasks than its desired count.", "DEPLOYMENT_BLOCKED")
	testutil.ExpectReply(t, "PUT protect beyond the desired count", s.do(t, http.MethodPut, fresh.stateURL(), `{"ProtectionEnabled":true}`), 200, jsonType, blocked)
	// Renewing the live protection is never blocked.
	if r := s.do(t, http.MethodPut, url, `{"ProtectionEnabled":true}`); r.Status != 200 || !protectedBodyRe(k.arn).MatchString(r.Body) {
		t.Errorf("renewing a live protection: %d %s", r.Status, r.Body)
	}
	if !s.undisturbed(k) {
		t.Errorf("the protected task was stopped by the deployment")
	}

	// Routing.
	for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch} {
		testutil.ExpectReply(t, method, s.do(t, method, url, `{"ProtectionEnabled":true}`), 405, "", "")
	}
	testutil.ExpectReply(t, "trailing slash", s.do(t, http.MethodGet, url+"/", ""), 404, "text/plain; charset=utf-8", "404 page not found\n")
	// A non-canonical path is redirected with the ECS agent's 301 (not
	// net/http's 307), to the cleaned path.
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/api//task-protection/v1/state", "/api/" + k.endpointID + "/./task-protection/v1/state"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.agentAddr+p, nil)
		req.URL.Opaque = p // send the path as is
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently {
			t.Errorf("GET %s: status %d, want 301", p, resp.StatusCode)
		}
	}
	unknown := "http://" + s.agentAddr + "/api/00000000-0000-4000-8000-000000000000/task-protection/v1/state"
	testutil.ExpectReply(t, "unknown id", s.do(t, http.MethodGet, unknown, ""), 404, jsonType, notFoundBody)

	// Rate limit: burst 60 per endpoint id, then 429. The fresh task's id
	// has used 2 tokens; at 40 tokens/s they are back after 50 ms.
	burstURL := fresh.stateURL()
	time.Sleep(100 * time.Millisecond)
	var mu sync.Mutex
	counts := map[int]int{}
	var bad []string
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				resp, err := s.http.Get(burstURL)
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					return
				}
				var b strings.Builder
				_, _ = io.Copy(&b, resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[resp.StatusCode]++
				switch resp.StatusCode {
				case 429:
					if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || b.String() != "You have reached maximum request limit." {
						bad = append(bad, "429: "+ct+" "+b.String())
					}
				case 200:
					if b.String() != unprotectedBody(fresh.arn) {
						bad = append(bad, "200: "+b.String())
					}
				default:
					bad = append(bad, resp.Status+" "+b.String())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("240 GETs in a burst: %v", counts)
	if counts[200] < 60 || counts[429] == 0 || len(bad) > 0 {
		t.Errorf("burst: counts %v (want >= 60 OK and some 429), unexpected answers %q", counts, bad)
	}
}
