package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/domain"
)

const (
	testRegion = "us-east-1"
	testAKID   = "AKIDHOLDFASTTEST"
	testSecret = "holdfast-test-secret-key"
	clusterARN = "arn:aws:ecs:us-east-1:000000000000:cluster/default"
)

func ecsTarget(op string) string { return ECSTargetPrefix + op }

// updateServiceInput is the stub UpdateService input: one int field.
type updateServiceInput struct {
	Service      string `json:"service"`
	Cluster      string `json:"cluster"`
	DesiredCount *int32 `json:"desiredCount"`
}

// errorKindInput selects, through the "cluster" field, the domain error kind
// that the error stub returns.
type errorKindInput struct {
	Cluster string `json:"cluster"`
}

func kindMessage(k domain.ErrorKind) string {
	switch k {
	case domain.KindClusterNotFound:
		return domain.MsgClusterNotFound
	case domain.KindServiceNotFound:
		return domain.MsgServiceNotFound
	case domain.KindServiceNotActive:
		return domain.MsgServiceNotActive
	default:
		return "stub error of kind " + strconv.Itoa(int(k))
	}
}

// recorder keeps what the stub handlers saw.
type recorder struct {
	mu         sync.Mutex
	principals []Principal
	requestIDs []string
}

func (rc *recorder) record(ctx context.Context) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if p, ok := PrincipalFrom(ctx); ok {
		rc.principals = append(rc.principals, p)
	}
	if id, ok := RequestIDFrom(ctx); ok {
		rc.requestIDs = append(rc.requestIDs, id)
	}
}

// registerStubs registers the stub operations used by the tests and the
// fuzzer.
func registerStubs(s *Server, rc *recorder) {
	s.Register(ecsTarget("ListClusters"), func(ctx context.Context, body []byte) (any, error) {
		if rc != nil {
			rc.record(ctx)
		}
		return map[string]any{"clusterArns": []string{clusterARN}}, nil
	})
	// UpdateService decodes a struct with an int field and echoes it.
	s.Register(ecsTarget("UpdateService"), func(ctx context.Context, body []byte) (any, error) {
		var in updateServiceInput
		if err := Decode(body, &in); err != nil {
			return nil, err
		}
		if in.Service == "" {
			return nil, domain.Errorf(domain.KindInvalidParameter, "service is required")
		}
		out := map[string]any{"serviceName": in.Service, "status": "ACTIVE"}
		if in.DesiredCount != nil {
			out["desiredCount"] = *in.DesiredCount
		}
		return map[string]any{"service": out}, nil
	})
	// ListServices returns the domain error whose kind is in "cluster".
	s.Register(ecsTarget("ListServices"), func(ctx context.Context, body []byte) (any, error) {
		var in errorKindInput
		if err := Decode(body, &in); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(in.Cluster)
		if err != nil {
			return nil, errors.New("a plain Go error that must not reach the caller")
		}
		k := domain.ErrorKind(n)
		return nil, domain.Errorf(k, "%s", kindMessage(k))
	})
	s.Register(ecsTarget("DescribeServices"), func(ctx context.Context, body []byte) (any, error) {
		panic("stub handler panics")
	})
	// CreateCluster and DeleteTaskDefinitions: trivial successes, for the
	// rate limiter tests.
	ok := func(ctx context.Context, body []byte) (any, error) { return nil, nil }
	s.Register(ecsTarget("CreateCluster"), ok)
	s.Register(ecsTarget("DeleteTaskDefinitions"), ok)
	s.Register("HoldfastAgentV1.Poll", ok)
}

// The keys fakeIdentities knows: an assumed role's temporary credentials
// and an IAM user's long-term key.
const (
	tempAKID   = "ASIAHOLDFASTTEMP0001"
	tempSecret = "temporary-secret"
	tempToken  = "FwoGZXIvYXdzE-token"
	tempARN    = "arn:aws:sts::000000000000:assumed-role/worker/session-1"
	userAKID   = "AKIAHOLDFASTUSER0001"
	userSecret = "user-secret"
)

// fakeIdentities is a CredentialSource with one session and one user.
type fakeIdentities struct{ expires time.Time }

func (f fakeIdentities) LookupAccessKey(_ context.Context, id, token string) (Credential, error) {
	switch id {
	case tempAKID:
		return Credential{SecretAccessKey: tempSecret, SessionToken: tempToken, Expiration: f.expires,
			Principal: Principal{Account: "000000000000", Type: PrincipalAssumedRole, ARN: tempARN,
				RoleName: "worker", SessionName: "session-1"}}, nil
	case userAKID:
		return Credential{SecretAccessKey: userSecret, Principal: Principal{Account: "000000000000",
			Type: PrincipalUser, ARN: "arn:aws:iam::000000000000:user/alice", UserName: "alice"}}, nil
	}
	return Credential{}, ErrUnknownAccessKey
}

func baseConfig() Config {
	return Config{
		Region:      testRegion,
		AccountID:   "000000000000",
		Credentials: map[string]string{testAKID: testSecret},
	}
}

// startServer runs a Server with the stubs on a loopback HTTP server.
func startServer(t *testing.T, cfg Config) (*Server, *httptest.Server, *recorder) {
	t.Helper()
	rc := &recorder{}
	s := New(cfg)
	registerStubs(s, rc)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs, rc
}

// ecsClient is a real aws-sdk-go-v2 ECS client pointed at url. Retries are
// off so that 5xx and throttling answers come back at once.
func ecsClient(url, akid, secret string, opts ...func(*ecs.Options)) *ecs.Client {
	o := ecs.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer:      aws.NopRetryer{},
	}
	for _, fn := range opts {
		fn(&o)
	}
	return ecs.New(o)
}

// signOptions controls signRequest.
type signOptions struct {
	akid, secret, region, service string
	at                            time.Time
	// signContentLength signs content-length as aws-sdk-go-v2 does; botocore
	// does not.
	signContentLength bool
	sessionToken      string
}

func defaultSign(at time.Time) signOptions {
	return signOptions{akid: testAKID, secret: testSecret, region: testRegion, service: SigningName, at: at}
}

// newSignedRequest builds a POST / request the way botocore does: the
// headers are Content-Type and X-Amz-Target (host and x-amz-date are added
// by the signer), signed with aws-sdk-go-v2's v4 signer.
func newSignedRequest(t testing.TB, url, target string, body []byte, so signOptions) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ContentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	signInPlace(t, req, body, so)
	return req
}

func signInPlace(t testing.TB, req *http.Request, body []byte, so signOptions) {
	t.Helper()
	sum := sha256.Sum256(body)
	length := req.ContentLength
	if !so.signContentLength {
		req.ContentLength = 0 // the signer signs content-length iff > 0
	}
	creds := aws.Credentials{AccessKeyID: so.akid, SecretAccessKey: so.secret, SessionToken: so.sessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), so.service, so.region, so.at); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
}

type wireResponse struct {
	status      int
	header      http.Header
	errType     string
	message     string
	hasMessage  bool
	raw         []byte
	contentType string
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkWire checks the invariants of every response (content type, request
// id, and for errors the {"__type","message"} body) and returns its parts.
func checkWire(t testing.TB, status int, header http.Header, body []byte) wireResponse {
	t.Helper()
	w := wireResponse{status: status, header: header, raw: body, contentType: header.Get("Content-Type")}
	if w.contentType != ContentType {
		t.Errorf("Content-Type = %q, want %q", w.contentType, ContentType)
	}
	if id := headerFold(header, "x-amzn-RequestId"); !uuidRE.MatchString(id) {
		t.Errorf("x-amzn-RequestId = %q, want a UUID", id)
	}
	if !json.Valid(body) {
		t.Fatalf("response body is not JSON: %q", body)
	}
	if status == http.StatusOK {
		return w
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("error body is not an object: %q", body)
	}
	for k := range fields {
		if k != "__type" && k != "message" {
			t.Errorf("error body has unexpected field %q: %s", k, body)
		}
	}
	if err := json.Unmarshal(fields["__type"], &w.errType); err != nil || w.errType == "" {
		t.Errorf("error body without __type: %s", body)
	}
	if m, ok := fields["message"]; ok {
		w.hasMessage = true
		_ = json.Unmarshal(m, &w.message)
	}
	if w.message == "" {
		t.Errorf("error body without message: %s", body)
	}
	return w
}

func do(t *testing.T, req *http.Request) wireResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return checkWire(t, resp.StatusCode, resp.Header, buf.Bytes())
}

// serveRecorded runs req through s.ServeHTTP in process.
func serveRecorded(t testing.TB, s *Server, req *http.Request) wireResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return checkWire(t, rec.Code, rec.Header(), rec.Body.Bytes())
}

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// headerFold looks a header up case-insensitively: the server writes
// x-amzn-RequestId with AWS's spelling, which an httptest.ResponseRecorder
// keeps as is (over the wire, net/http canonicalizes it on reading).
func headerFold(h http.Header, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
