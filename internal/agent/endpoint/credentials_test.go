package endpoint

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"

	"github.com/holdfast/holdfast/internal/testutil"
)

// fakeCreds is a Credentials store backed by maps.
type fakeCreds struct {
	mu     sync.Mutex
	byID   map[string]credEntry
	byTask map[string]RoleCredentials
}

type credEntry struct {
	c     RoleCredentials
	token string
}

func newFakeCreds() *fakeCreds {
	return &fakeCreds{byID: map[string]credEntry{}, byTask: map[string]RoleCredentials{}}
}

func (f *fakeCreds) ByID(id string) (RoleCredentials, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.byID[id]
	return e.c, e.token, ok
}

func (f *fakeCreds) ForTask(arn string) (RoleCredentials, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.byTask[arn]
	return c, ok
}

var taskCreds = RoleCredentials{RoleARN: "arn:aws:iam::123456789012:role/worker", AccessKeyID: "ASIATASKROLE00000001",
	SecretAccessKey: "task-secret", SessionToken: "task-token", Expiration: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}

const taskCredsBody = `{"RoleArn":"arn:aws:iam::123456789012:role/worker","AccessKeyId":"ASIATASKROLE00000001",` +
	`"SecretAccessKey":"task-secret","Token":"task-token","Expiration":"2026-11-25T12:00:00Z"}`

// The credentials endpoint answers as the ECS agent's, serves an id that
// needs a token only with it, and is what aws-sdk-go-v2's container
// credentials provider reads.
func TestCredentialsEndpoint(t *testing.T) {
	store := newFakeCreds()
	store.byID["relative-id"] = credEntry{c: taskCreds}
	store.byID["full-id"] = credEntry{c: taskCreds, token: "the-token"}
	store.byID["pending-id"] = credEntry{}
	env := newEnv(t, envOpts{creds: store})

	const (
		noID     = `{"code":"NoIdInRequest","message":"CredentialsV2Request: No ID in the request","HTTPErrorCode":400}`
		notFound = `{"code":"InvalidIdInRequest","message":"CredentialsV2Request: Credentials not found","HTTPErrorCode":400}`
		pending  = `{"code":"CredentialsUninitialized","message":"CredentialsV2Request: Credentials uninitialized for ID","HTTPErrorCode":503}`
	)
	for _, tc := range []struct {
		name, path string
		hdr        []string
		status     int
		body       string
	}{
		{"no id", "/v2/credentials", nil, 400, noID},
		{"no id, slash", "/v2/credentials/", nil, 400, noID},
		{"unknown id", "/v2/credentials/nope", nil, 400, notFound},
		{"relative", "/v2/credentials/relative-id", nil, 200, taskCredsBody},
		{"full without the token", "/v2/credentials/full-id", nil, 400, notFound},
		{"full with another token", "/v2/credentials/full-id", []string{"Authorization", "the-token2"}, 400, notFound},
		{"full with the token", "/v2/credentials/full-id", []string{"Authorization", "the-token"}, 200, taskCredsBody},
		{"not obtained yet", "/v2/credentials/pending-id", nil, 503, pending},
	} {
		testutil.ExpectReply(t, tc.name, do(t, http.MethodGet, env.url+tc.path, "", tc.hdr...), tc.status, jsonCT, tc.body)
	}

	// The SDK's own provider, with and without the token.
	for _, tc := range []struct{ id, token string }{{"relative-id", ""}, {"full-id", "the-token"}} {
		p := endpointcreds.New(env.url+"/v2/credentials/"+tc.id, func(o *endpointcreds.Options) { o.AuthorizationToken = tc.token })
		got, err := p.Retrieve(context.Background())
		if err != nil {
			t.Fatalf("%s: the SDK's provider: %v", tc.id, err)
		}
		if got.AccessKeyID != taskCreds.AccessKeyID || got.SecretAccessKey != taskCreds.SecretAccessKey ||
			got.SessionToken != taskCreds.SessionToken || !got.Expires.Equal(taskCreds.Expiration) || !got.CanExpire {
			t.Fatalf("%s: the SDK read %+v", tc.id, got)
		}
	}
	if _, err := endpointcreds.New(env.url + "/v2/credentials/full-id").Retrieve(context.Background()); err == nil {
		t.Fatal("the SDK got token-bound credentials without the token")
	}
}

// The task protection API calls ECS as the task's role, as the ECS agent
// does; a task without role credentials gets the ECS agent's 403, and ECS
// is not called.
func TestProtectionAsTaskRole(t *testing.T) {
	store := newFakeCreds()
	env := newEnv(t, envOpts{creds: store})
	env.ecs.setReply(always(200, `{"protectedTasks":[{"taskArn":"`+testARN+`","protectionEnabled":false}],"failures":[]}`))
	url := env.url + env.path(env.id)
	noRole := `{"error":{"Arn":"` + testARN + `","Code":"AccessDeniedException","Message":"Invalid Request: no task IAM role credentials available for task"}}`

	testutil.ExpectReply(t, "GET without a role", do(t, http.MethodGet, url, ""), 403, jsonCT, noRole)
	testutil.ExpectReply(t, "PUT without a role", do(t, http.MethodPut, url, `{"ProtectionEnabled":true}`), 403, jsonCT, noRole)
	// The missing-field check comes first, as in the ECS agent.
	testutil.ExpectReply(t, "PUT {} without a role", do(t, http.MethodPut, url, `{}`), 400, jsonCT, bodyMissing)
	if n := len(env.ecs.getCalls()); n != 0 {
		t.Fatalf("ECS was called %d times for a task without a role", n)
	}

	store.mu.Lock()
	store.byTask[testARN] = taskCreds
	store.mu.Unlock()
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		env.ecs.reset()
		r := do(t, m, url, `{"ProtectionEnabled":false}`)
		if r.Status != 200 {
			t.Fatalf("%s with a role: %d %s", m, r.Status, r.Body)
		}
		signers := env.ecs.getSigners()
		if len(signers) != 1 || !strings.Contains(signers[0].auth, "Credential="+taskCreds.AccessKeyID+"/") || signers[0].token != taskCreds.SessionToken {
			t.Fatalf("%s: ECS was not called as the task's role: %+v", m, signers)
		}
	}
}
