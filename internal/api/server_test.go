package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/domain"
)

// apiError asserts that err is an API error with the given code and message
// (message "" = not checked) and HTTP status, and returns it.
func apiError(t *testing.T, err error, code, message string, status int) smithy.APIError {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want smithy.APIError %s, got %T: %v", code, err, err)
	}
	if ae.ErrorCode() != code {
		t.Errorf("ErrorCode = %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	if message != "" && ae.ErrorMessage() != message {
		t.Errorf("ErrorMessage = %q, want %q", ae.ErrorMessage(), message)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("no HTTP response in %v", err)
	}
	if re.HTTPStatusCode() != status {
		t.Errorf("HTTP status = %d, want %d", re.HTTPStatusCode(), status)
	}
	if re.ServiceRequestID() == "" {
		t.Errorf("SDK saw no request id")
	}
	return ae
}

func TestSDKSignedCallSucceeds(t *testing.T) {
	_, hs, rc := startServer(t, baseConfig())
	c := ecsClient(hs.URL, testAKID, testSecret)
	out, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ClusterArns) != 1 || out.ClusterArns[0] != clusterARN {
		t.Fatalf("ClusterArns = %v", out.ClusterArns)
	}
	if len(rc.principals) != 1 || rc.principals[0].AccessKeyID != testAKID {
		t.Errorf("handler saw principals %v", rc.principals)
	}
	if len(rc.requestIDs) != 1 || !uuidRE.MatchString(rc.requestIDs[0]) {
		t.Errorf("handler saw request ids %v", rc.requestIDs)
	}

	// A struct with an int field round-trips through Decode.
	us, err := c.UpdateService(context.Background(), &ecs.UpdateServiceInput{
		Service: aws.String("web"), DesiredCount: aws.Int32(3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if us.Service == nil || aws.ToString(us.Service.ServiceName) != "web" || us.Service.DesiredCount != 3 {
		t.Fatalf("UpdateService answered %+v", us.Service)
	}
}

func TestSDKTemporaryCredentials(t *testing.T) {
	cfg := baseConfig()
	expires := time.Now().Add(5 * time.Minute) // within the signature's 15 minutes
	cfg.Identities = fakeIdentities{expires: expires}
	_, hs, rc := startServer(t, cfg)
	withCreds := func(id, secret, token string) *ecs.Client {
		return ecsClient(hs.URL, id, secret, func(o *ecs.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, token)
		})
	}
	ctx := context.Background()
	if _, err := withCreds(tempAKID, tempSecret, tempToken).ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatal(err)
	}
	if p := rc.principals[len(rc.principals)-1]; p.Type != PrincipalAssumedRole || p.ARN != tempARN || p.AccessKeyID != tempAKID {
		t.Errorf("handler saw %+v", p)
	}
	// An IAM user's long-term key resolves through the same source.
	if _, err := withCreds(userAKID, userSecret, "").ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatal(err)
	}
	if p := rc.principals[len(rc.principals)-1]; p.Type != PrincipalUser || p.UserName != "alice" {
		t.Errorf("handler saw %+v", p)
	}

	// A session token that is not the key's, a missing one, and a token on
	// a long-term key are all "invalid", as AWS says.
	for name, c := range map[string]*ecs.Client{
		"wrong token":         withCreds(tempAKID, tempSecret, "another-token"),
		"no token":            withCreds(tempAKID, tempSecret, ""),
		"token on root key":   withCreds(testAKID, testSecret, tempToken),
		"token on a user key": withCreds(userAKID, userSecret, tempToken),
	} {
		_, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
		t.Run(name, func(t *testing.T) {
			apiError(t, err, TypeUnrecognizedClient, "The security token included in the request is invalid.", 400)
		})
	}

	// At its expiry instant the session is refused as expired.
	cfg.Clock = func() time.Time { return expires }
	_, hs, _ = startServer(t, cfg)
	c := ecsClient(hs.URL, tempAKID, tempSecret, func(o *ecs.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(tempAKID, tempSecret, tempToken)
	})
	_, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
	apiError(t, err, TypeExpiredToken, "The security token included in the request is expired", 400)
}

func TestSDKWrongSecret(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	c := ecsClient(hs.URL, testAKID, "not-the-secret")
	_, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	apiError(t, err, TypeInvalidSignature, msgSignatureMismatch, 400)
}

func TestSDKUnknownAccessKey(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	c := ecsClient(hs.URL, "AKIDUNKNOWN", testSecret)
	_, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	apiError(t, err, TypeUnrecognizedClient, "The security token included in the request is invalid.", 400)
}

func TestSDKWrongRegion(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	c := ecsClient(hs.URL, testAKID, testSecret, func(o *ecs.Options) { o.Region = "eu-west-1" })
	_, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	apiError(t, err, TypeInvalidSignature, "Credential should be scoped to a valid region, not 'eu-west-1'.", 400)
}

func TestSDKClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset time.Duration
		prefix string
	}{
		{"server ahead", time.Hour, "Signature expired: "},
		{"server behind", -time.Hour, "Signature not yet current: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Clock = func() time.Time { return time.Now().Add(tc.offset) }
			_, hs, _ := startServer(t, cfg)
			c := ecsClient(hs.URL, testAKID, testSecret)
			_, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
			ae := apiError(t, err, TypeInvalidSignature, "", 400)
			if !strings.HasPrefix(ae.ErrorMessage(), tc.prefix) {
				t.Errorf("message %q does not start with %q", ae.ErrorMessage(), tc.prefix)
			}
		})
	}
}

func TestSkewMessageFormat(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 52, 51, 0, time.UTC)
	cfg := baseConfig()
	cfg.Clock = func() time.Time { return now }
	s := New(cfg)
	registerStubs(s, nil)
	req := newSignedRequest(t, "http://holdfast.test", ecsTarget("ListClusters"), nil,
		defaultSign(time.Date(2026, 11, 23, 14, 34, 53, 0, time.UTC)))
	w := serveRecorded(t, s, req)
	want := "Signature expired: 20261123T143453Z is now earlier than 20261123T143751Z (20261123T145251Z - 15 min.)"
	if w.errType != TypeInvalidSignature || w.message != want {
		t.Fatalf("got %s %q, want %q", w.errType, w.message, want)
	}
	// Exactly 15 minutes is still accepted.
	req = newSignedRequest(t, "http://holdfast.test", ecsTarget("ListClusters"), nil, defaultSign(now.Add(-maxClockSkew)))
	if w := serveRecorded(t, s, req); w.status != 200 {
		t.Fatalf("signature 15 min old refused: %s", w.raw)
	}
}

func TestUnsignedRawPost(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("X-Amz-Target", ecsTarget("ListClusters"))
	w := do(t, req)
	if w.status != 400 || w.errType != TypeMissingAuthToken || w.message != "Missing Authentication Token" {
		t.Fatalf("got %d %s", w.status, w.raw)
	}
}

func TestMalformedAuthorization(t *testing.T) {
	s := New(baseConfig())
	registerStubs(s, nil)
	for _, tc := range []struct {
		name, authz, typ, contains string
	}{
		{"other scheme", "Basic Zm9vOmJhcg==", TypeIncompleteSignature, "requires 'Credential' parameter"},
		{"no signature", "AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261123/us-east-1/ecs/aws4_request, SignedHeaders=host",
			TypeIncompleteSignature, "requires 'Signature' parameter"},
		{"short credential", "AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261123/us-east-1, SignedHeaders=host, Signature=00",
			TypeIncompleteSignature, "exactly 5 slash-delimited elements"},
		{"wrong service", "AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
			TypeInvalidSignature, "scoped to correct service: 'ecs'"},
		{"wrong terminator", "AWS4-HMAC-SHA256 Credential=" + testAKID + "/20261123/us-east-1/ecs/aws5_request, SignedHeaders=host, Signature=00",
			TypeInvalidSignature, "valid terminator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://holdfast.test/", strings.NewReader("{}"))
			req.Header.Set("X-Amz-Target", ecsTarget("ListClusters"))
			req.Header.Set("X-Amz-Date", time.Now().UTC().Format(amzDateFormat))
			req.Header.Set("Authorization", tc.authz)
			w := serveRecorded(t, s, req)
			if w.status != 400 || w.errType != tc.typ || !strings.Contains(w.message, tc.contains) {
				t.Fatalf("got %d %s", w.status, w.raw)
			}
		})
	}
}

// TestBotocoreStyleSigning signs only host, x-amz-date, x-amz-target and
// content-type (not content-length), as the AWS CLI does.
func TestBotocoreStyleSigning(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	req := newSignedRequest(t, hs.URL, ecsTarget("ListClusters"), []byte("{}"), defaultSign(time.Now()))
	if sh := req.Header.Get("Authorization"); !strings.Contains(sh, "SignedHeaders=content-type;host;x-amz-date;x-amz-target,") {
		t.Fatalf("test request does not sign what botocore signs: %s", sh)
	}
	req.Header.Set("User-Agent", "aws-cli/2.17.0 md/Botocore#1.35.0")
	w := do(t, req)
	if w.status != 200 || !strings.Contains(string(w.raw), clusterARN) {
		t.Fatalf("got %d %s", w.status, w.raw)
	}

	// With a session token, botocore also signs x-amz-security-token.
	cfg := baseConfig()
	cfg.Identities = fakeIdentities{expires: time.Now().Add(time.Hour)}
	_, hs, _ = startServer(t, cfg)
	so := defaultSign(time.Now())
	so.akid, so.secret, so.sessionToken = tempAKID, tempSecret, tempToken
	req = newSignedRequest(t, hs.URL, ecsTarget("ListClusters"), nil, so)
	if sh := req.Header.Get("Authorization"); !strings.Contains(sh, "x-amz-security-token") {
		t.Fatalf("token not signed: %s", sh)
	}
	if w := do(t, req); w.status != 200 {
		t.Fatalf("got %d %s", w.status, w.raw)
	}

	// Tampering with a signed header or the body breaks the signature.
	req = newSignedRequest(t, hs.URL, ecsTarget("ListClusters"), []byte("{}"), defaultSign(time.Now()))
	req.Header.Set("X-Amz-Target", ecsTarget("CreateCluster"))
	if w := do(t, req); w.errType != TypeInvalidSignature {
		t.Fatalf("tampered target: got %d %s", w.status, w.raw)
	}
	req = newSignedRequest(t, hs.URL, ecsTarget("UpdateService"), []byte(`{"service":"a"}`), defaultSign(time.Now()))
	req.Body = ioNopCloser(`{"service":"b"}`)
	if w := do(t, req); w.errType != TypeInvalidSignature {
		t.Fatalf("tampered body: got %d %s", w.status, w.raw)
	}
}

func TestSDKDomainErrors(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	c := ecsClient(hs.URL, testAKID, testSecret)
	typed := map[domain.ErrorKind]func(error) bool{
		domain.KindInternal:                 isA[*types.ServerException],
		domain.KindInvalidParameter:         isA[*types.InvalidParameterException],
		domain.KindClient:                   isA[*types.ClientException],
		domain.KindClusterNotFound:          isA[*types.ClusterNotFoundException],
		domain.KindServiceNotFound:          isA[*types.ServiceNotFoundException],
		domain.KindServiceNotActive:         isA[*types.ServiceNotActiveException],
		domain.KindResourceNotFound:         isA[*types.ResourceNotFoundException],
		domain.KindResourceInUse:            isA[*types.ResourceInUseException],
		domain.KindClusterContainsServices:  isA[*types.ClusterContainsServicesException],
		domain.KindClusterContainsTasks:     isA[*types.ClusterContainsTasksException],
		domain.KindClusterContainsInstances: isA[*types.ClusterContainsContainerInstancesException],
		domain.KindAccessDenied:             isA[*types.AccessDeniedException],
		domain.KindThrottling:               nil, // ECS does not model ThrottlingException
		domain.KindLimitExceeded:            isA[*types.LimitExceededException],
		domain.KindUnsupportedFeature:       isA[*types.UnsupportedFeatureException],
	}
	for kind, isTyped := range typed {
		wk := kindTable[kind]
		t.Run(wk.typ, func(t *testing.T) {
			_, err := c.ListServices(context.Background(), &ecs.ListServicesInput{Cluster: aws.String(strconv.Itoa(int(kind)))})
			want := kindMessage(kind)
			if wk.status >= 500 {
				want = MsgServerException // the handler's own text stays in the log
			}
			apiError(t, err, wk.typ, want, wk.status)
			if isTyped != nil && !isTyped(err) {
				t.Errorf("SDK did not surface a typed %s: %T", wk.typ, errors.Unwrap(err))
			}
		})
	}

	// The exact ECS texts users grep for.
	_, err := c.ListServices(context.Background(), &ecs.ListServicesInput{Cluster: aws.String(strconv.Itoa(int(domain.KindClusterNotFound)))})
	var cnf *types.ClusterNotFoundException
	if !errors.As(err, &cnf) || cnf.ErrorMessage() != "Cluster not found." {
		t.Fatalf("got %v", err)
	}

	// A plain Go error is a 500 ServerException with the generic text.
	_, err = c.ListServices(context.Background(), &ecs.ListServicesInput{Cluster: aws.String("not a number")})
	apiError(t, err, TypeServerException, MsgServerException, 500)
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func TestSDKUnknownOperation(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	c := ecsClient(hs.URL, testAKID, testSecret)
	_, err := c.ListTasks(context.Background(), &ecs.ListTasksInput{})
	apiError(t, err, TypeUnknownOperation, "", 400)

	req := newSignedRequest(t, hs.URL, "", []byte("{}"), defaultSign(time.Now()))
	if w := do(t, req); w.status != 400 || w.errType != TypeUnknownOperation {
		t.Fatalf("missing target: got %d %s", w.status, w.raw)
	}
}

func TestSerializationErrors(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	for _, tc := range []struct {
		name, body, message string
	}{
		{"malformed", `{"service":`, ""},
		{"trailing garbage", `{"service":"a"} x`, ""},
		{"string for int", `{"service":"a","desiredCount":"x"}`, "STRING_VALUE cannot be converted to Integer"},
		{"object for int", `{"service":"a","desiredCount":{}}`, "Start of structure or map found where not expected."},
		{"list for string", `{"service":["a"]}`, "Start of list found where not expected."},
		{"number for string", `{"service":1}`, "NUMBER_VALUE cannot be converted to String"},
		{"list body", `[]`, "Start of list found where not expected."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newSignedRequest(t, hs.URL, ecsTarget("UpdateService"), []byte(tc.body), defaultSign(time.Now()))
			w := do(t, req)
			if w.status != 400 || w.errType != TypeSerializationException {
				t.Fatalf("got %d %s", w.status, w.raw)
			}
			if tc.message != "" && w.message != tc.message {
				t.Errorf("message = %q, want %q", w.message, tc.message)
			}
		})
	}
	// Unknown fields are ignored and an empty body is {}.
	req := newSignedRequest(t, hs.URL, ecsTarget("UpdateService"), []byte(`{"service":"a","somethingNew":{"x":[1]}}`), defaultSign(time.Now()))
	if w := do(t, req); w.status != 200 {
		t.Fatalf("unknown field: got %d %s", w.status, w.raw)
	}
	req = newSignedRequest(t, hs.URL, ecsTarget("ListClusters"), nil, defaultSign(time.Now()))
	if w := do(t, req); w.status != 200 {
		t.Fatalf("empty body: got %d %s", w.status, w.raw)
	}
}

func TestBodyLimit(t *testing.T) {
	cfg := baseConfig()
	cfg.MaxBodyBytes = 64
	_, hs, _ := startServer(t, cfg)
	body := []byte(`{"service":"` + strings.Repeat("a", 100) + `"}`)
	w := do(t, newSignedRequest(t, hs.URL, ecsTarget("UpdateService"), body, defaultSign(time.Now())))
	if w.status != 400 || w.errType != TypeSerializationException || !strings.Contains(w.message, "64 bytes") {
		t.Fatalf("got %d %s", w.status, w.raw)
	}
	body = []byte(`{"service":"a"}`)
	if w := do(t, newSignedRequest(t, hs.URL, ecsTarget("UpdateService"), body, defaultSign(time.Now()))); w.status != 200 {
		t.Fatalf("small body: got %d %s", w.status, w.raw)
	}
}

func TestPanicIsServerExceptionAndServerSurvives(t *testing.T) {
	var logs bytes.Buffer
	cfg := baseConfig()
	cfg.Logger = newTestLogger(&logs)
	_, hs, _ := startServer(t, cfg)
	c := ecsClient(hs.URL, testAKID, testSecret)
	_, err := c.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Services: []string{"a"}})
	apiError(t, err, TypeServerException, MsgServerException, 500)
	if !isA[*types.ServerException](err) {
		t.Errorf("not a typed ServerException: %v", err)
	}
	if !strings.Contains(logs.String(), "stub handler panics") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic not logged with its stack: %s", logs.String())
	}
	if _, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("server did not survive the panic: %v", err)
	}
}

func TestMethodAndPath(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/", nil)
	w := do(t, req)
	if w.status != http.StatusMethodNotAllowed || w.errType != TypeUnknownOperation || w.header.Get("Allow") != "POST" {
		t.Fatalf("GET /: got %d %v %s", w.status, w.header, w.raw)
	}
	req = newSignedRequest(t, hs.URL, ecsTarget("ListClusters"), nil, defaultSign(time.Now()))
	req.URL.Path = "/v1/clusters"
	if w := do(t, req); w.status != http.StatusNotFound || w.errType != TypeUnknownOperation {
		t.Fatalf("other path: got %d %s", w.status, w.raw)
	}
}

type denyAll struct{ asDomain bool }

func (d denyAll) Authorize(ctx context.Context, p Principal, a Action) error {
	if d.asDomain {
		return domain.Errorf(domain.KindAccessDenied, "custom refusal for %s", p.AccessKeyID)
	}
	return errors.New("policy says no")
}

func TestAuthorizer(t *testing.T) {
	cfg := baseConfig()
	cfg.Authorizer = denyAll{}
	_, hs, _ := startServer(t, cfg)
	c := ecsClient(hs.URL, testAKID, testSecret)
	_, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	apiError(t, err, TypeAccessDenied, "User: arn:aws:iam::000000000000:root is not authorized to perform: "+
		"ecs:ListClusters on resource: * because no identity-based policy allows the ecs:ListClusters action", 400)
	if !isA[*types.AccessDeniedException](err) {
		t.Errorf("not typed: %v", err)
	}

	cfg.Authorizer = denyAll{asDomain: true}
	_, hs, _ = startServer(t, cfg)
	c = ecsClient(hs.URL, testAKID, testSecret)
	_, err = c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	apiError(t, err, TypeAccessDenied, "custom refusal for "+testAKID, 400)

	// Authentication comes first: an unknown key never reaches the hook.
	c = ecsClient(hs.URL, "AKIDUNKNOWN", testSecret)
	_, err = c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	apiError(t, err, TypeUnrecognizedClient, "", 400)
}

func TestRateLimits(t *testing.T) {
	cfg := baseConfig()
	cfg.RateLimits = true
	_, hs, _ := startServer(t, cfg)
	c := ecsClient(hs.URL, testAKID, testSecret)
	ctx := context.Background()
	// DeleteTaskDefinitions: burst 5, refill 1/s. The burst always passes;
	// with 100 more calls a throttle is certain unless they took > 95 s.
	for i := range 5 {
		if _, err := c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"a:1"}}); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	var throttled error
	for range 100 {
		if _, err := c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"a:1"}}); err != nil {
			throttled = err
			break
		}
	}
	apiError(t, throttled, TypeThrottling, "Rate exceeded", 400)
	// Other categories have their own buckets; other protocols none.
	if _, err := c.ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("other category throttled: %v", err)
	}
	for i := range 300 {
		req := newSignedRequest(t, hs.URL, "HoldfastAgentV1.Poll", nil, defaultSign(time.Now()))
		if w := do(t, req); w.status != 200 {
			t.Fatalf("agent call %d: %d %s", i, w.status, w.raw)
		}
	}
}

func TestRateLimitsOffByDefault(t *testing.T) {
	_, hs, _ := startServer(t, baseConfig())
	c := ecsClient(hs.URL, testAKID, testSecret)
	for i := range 30 {
		if _, err := c.DeleteTaskDefinitions(context.Background(), &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"a:1"}}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func TestRateLimitTableCoversSpec(t *testing.T) {
	l := newLimiters()
	for op, want := range map[string]bucket{
		"UpdateTaskProtection": {200, 80}, "GetTaskProtection": {200, 80},
		"CreateService": {50, 5}, "DescribeServices": {100, 20},
		"RegisterTaskDefinition": {20, 1}, "ListClusters": {50, 20},
		"RunTask": {100, 40}, "ListTasks": {100, 20}, "DeleteTaskDefinitions": {5, 1},
	} {
		lim := l.limiterFor(ecsTarget(op))
		if lim == nil || lim.Burst() != want.burst || float64(lim.Limit()) != want.refill {
			t.Errorf("%s: limiter %v, want %+v", op, lim, want)
		}
	}
	if l.limiterFor(ecsTarget("GetTaskProtection")) != l.limiterFor(ecsTarget("UpdateTaskProtection")) {
		t.Error("task protection operations do not share one bucket")
	}
	for op, cat := range categories {
		if _, ok := categoryBuckets[cat]; !ok {
			t.Errorf("%s: category %q has no bucket", op, cat)
		}
	}
}

type fakeMetrics struct {
	mu  sync.Mutex
	obs []string
}

func (m *fakeMetrics) ObserveRequest(op string, status int, errType string, elapsed time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if elapsed < 0 {
		status = -1
	}
	m.obs = append(m.obs, fmt.Sprintf("%s %d %s", op, status, errType))
}

func TestMetricsObserved(t *testing.T) {
	m := &fakeMetrics{}
	cfg := baseConfig()
	cfg.Metrics = m
	_, hs, _ := startServer(t, cfg)
	c := ecsClient(hs.URL, testAKID, testSecret)
	_, _ = c.ListClusters(context.Background(), &ecs.ListClustersInput{})
	_, _ = c.ListTasks(context.Background(), &ecs.ListTasksInput{})
	_, _ = c.ListServices(context.Background(), &ecs.ListServicesInput{Cluster: aws.String(strconv.Itoa(int(domain.KindClusterNotFound)))})
	want := []string{
		ecsTarget("ListClusters") + " 200 ",
		"unknown 400 UnknownOperationException",
		ecsTarget("ListServices") + " 400 ClusterNotFoundException",
	}
	if fmt.Sprint(m.obs) != fmt.Sprint(want) {
		t.Fatalf("observations %q, want %q", m.obs, want)
	}
}

func TestWireErrorTable(t *testing.T) {
	// Every kind declared in internal/domain/errors.go has a row.
	for k := domain.KindInternal; k <= domain.KindUnsupportedFeature; k++ {
		wk, ok := kindTable[k]
		if !ok {
			t.Errorf("kind %d has no wire error", k)
			continue
		}
		status, typ, msg := WireError(domain.Errorf(k, "m"))
		wantMsg := "m"
		if wk.status >= 500 {
			wantMsg = MsgServerException
		}
		if status != wk.status || typ != wk.typ || msg != wantMsg {
			t.Errorf("kind %d: %d %s %q", k, status, typ, msg)
		}
		if want := 400; k != domain.KindInternal && status != want {
			t.Errorf("kind %d: status %d, want 400", k, status)
		}
	}
	// A server-side failure's own text never reaches the caller: it holds
	// paths and error chains.
	internal := domain.Errorf(domain.KindInternal, "store commit failed: write /var/lib/holdfast/holdfast.db: no space left on device")
	if s, typ, msg := WireError(internal); s != 500 || typ != TypeServerException || msg != MsgServerException {
		t.Errorf("KindInternal: %d %s %q", s, typ, msg)
	}
	// Wrapped domain errors keep their kind.
	if _, typ, msg := WireError(fmt.Errorf("service layer: %w", domain.ErrServiceNotActive)); typ != "ServiceNotActiveException" || msg != "Service was not ACTIVE." {
		t.Errorf("wrapped: %s %q", typ, msg)
	}
	// Plain errors are hidden.
	if s, typ, msg := WireError(errors.New("bbolt: /var/lib/holdfast: disk full")); s != 500 || typ != TypeServerException || msg != MsgServerException {
		t.Errorf("plain: %d %s %q", s, typ, msg)
	}
	// An unknown kind is a ServerException too.
	if s, typ, _ := WireError(domain.Errorf(domain.ErrorKind(9999), "x")); s != 500 || typ != TypeServerException {
		t.Errorf("unknown kind: %d %s", s, typ)
	}
	// Decode errors map to SerializationException.
	err := Decode([]byte("{"), &struct{}{})
	if s, typ, _ := WireError(err); s != 400 || typ != TypeSerializationException || !IsSerializationError(err) {
		t.Errorf("decode: %d %s", s, typ)
	}
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	s := New(baseConfig())
	s.Register("X.Y", func(context.Context, []byte) (any, error) { return nil, nil })
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate Register did not panic")
		}
	}()
	s.Register("X.Y", func(context.Context, []byte) (any, error) { return nil, nil })
}

// TestBodyBudgetIsPerClaimedKey: a client's in-flight body share is keyed
// by the access key it claims (with its address): bodies held under one
// key do not take another key's share at the same address.
func TestBodyBudgetIsPerClaimedKey(t *testing.T) {
	const other, otherSecret = "AKIDOTHERCLIENT", "other-secret"
	cfg := baseConfig()
	cfg.Credentials[other] = otherSecret
	cfg.BodyBytesInFlightPerClient = 1000
	cfg.BodyBytesInFlight = 10000
	s, hs, _ := startServer(t, cfg)
	// `other` announces its whole share and sends nothing.
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := newSignedRequest(t, hs.URL, ecsTarget("CreateCluster"), nil, signOptions{akid: other, secret: otherSecret, region: testRegion, service: SigningName, at: time.Now()})
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\nContent-Type: %s\r\nX-Amz-Target: %s\r\nX-Amz-Date: %s\r\nAuthorization: %s\r\n\r\n",
		req.Host, ContentType, ecsTarget("CreateCluster"), req.Header.Get("X-Amz-Date"), req.Header.Get("Authorization"))
	deadline := time.Now().Add(time.Minute)
	for s.BodyBytesInFlight() != 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("held body not reserved: %d", s.BodyBytesInFlight())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The same key at the same address: refused.
	req = newSignedRequest(t, hs.URL, ecsTarget("CreateCluster"), []byte(`{}`), signOptions{akid: other, secret: otherSecret, region: testRegion, service: SigningName, at: time.Now()})
	if w := do(t, req); w.status != 400 || w.errType != TypeThrottling || w.message != domain.MsgRateExceeded {
		t.Fatalf("second body of a key at its share: %d %s", w.status, w.raw)
	}
	// Another key at the same address: served.
	if w := do(t, newSignedRequest(t, hs.URL, ecsTarget("CreateCluster"), []byte(`{}`), defaultSign(time.Now()))); w.status != 200 {
		t.Fatalf("another key: %d %s", w.status, w.raw)
	}
}
