package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast/internal/domain"
)

// ContentType is the media type of AWS JSON 1.1 requests and responses.
const ContentType = "application/x-amz-json-1.1"

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes int64 = 1 << 20

// requestIDHeader is written with this exact spelling (as AWS does); the map
// is set directly so that net/http does not canonicalize it.
const requestIDHeader = "x-amzn-RequestId"

// Handler runs one operation: body is the raw JSON request (possibly empty;
// use Decode); the result is marshalled with encoding/json as the response
// body (nil is {}). Errors go through WireError.
type Handler func(ctx context.Context, body []byte) (any, error)

// Principal identifies the authenticated caller.
type Principal struct {
	AccessKeyID string
}

// Authorizer is the single hook where IAM-style authorization will be added.
// It runs after authentication and routing, before throttling and the
// handler. A *domain.Error is answered through the error table; any other
// error is an AccessDeniedException.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, target string, body []byte) error
}

// Metrics receives one observation per request, after the response is
// written. operation is the X-Amz-Target if it is registered and "unknown"
// otherwise (so label cardinality stays bounded); errType is the __type of an
// error response and "" on success. Config.Registry installs a Prometheus
// implementation.
type Metrics interface {
	ObserveRequest(operation string, status int, errType string, elapsed time.Duration)
}

// Config configures a Server.
type Config struct {
	// Region is the only region accepted in the SigV4 credential scope.
	Region string
	// AccountID is kept for handlers and messages; the transport does not use it.
	AccountID string
	// Credentials maps access key id to secret access key. An empty map
	// refuses every request.
	Credentials map[string]string
	// Authorizer is called for every authenticated request; nil allows all.
	Authorizer Authorizer
	// Logger receives request failures; nil discards.
	Logger *slog.Logger
	// Registry, when set, gets the built-in Prometheus metrics:
	// holdfast_api_requests_total{operation,status,error} and
	// holdfast_api_request_seconds{operation}. If they cannot be registered
	// (e.g. the names are taken) the error is logged and they are skipped.
	Registry prometheus.Registerer
	// Metrics, when set, receives the same observations (for callers that
	// keep their own collectors). Both may be set.
	Metrics Metrics
	// RateLimits turns on ECS's per-category token buckets (spec §8); a
	// throttled call gets 400 ThrottlingException "Rate exceeded". Off by
	// default: a self-hosted control plane has no noisy neighbours, and
	// tests and scripts should not trip over AWS's numbers. Turn it on to
	// rehearse client back-off against ECS's limits.
	RateLimits bool
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes. A
	// larger body is a 400 SerializationException.
	MaxBodyBytes int64
	// Clock is used for the signature time check; nil means time.Now.
	Clock func() time.Time
}

// Server is the AWS JSON 1.1 front door: it authenticates (SigV4), routes
// on X-Amz-Target, decodes nothing itself, and writes AWS-shaped responses.
type Server struct {
	cfg         Config
	credentials map[string]string
	signer      *v4.Signer
	logger      *slog.Logger
	limits      limiters // nil when rate limiting is off
	maxBody     int64
	prom        *promMetrics // nil without Config.Registry

	mu       sync.RWMutex
	handlers map[string]Handler
}

// New returns a Server for cfg. The credentials map is copied.
func New(cfg Config) *Server {
	s := &Server{
		cfg:         cfg,
		credentials: maps.Clone(cfg.Credentials),
		signer:      v4.NewSigner(),
		logger:      cfg.Logger,
		maxBody:     cfg.MaxBodyBytes,
		handlers:    make(map[string]Handler),
	}
	if s.credentials == nil {
		s.credentials = map[string]string{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if cfg.RateLimits {
		s.limits = newLimiters()
	}
	if cfg.Registry != nil {
		m, err := newPromMetrics(cfg.Registry)
		if err != nil {
			s.logger.Error("API metrics not registered", "err", err)
		} else {
			s.prom = m
		}
	}
	return s
}

// Register routes target, the full X-Amz-Target value (e.g.
// "AmazonEC2ContainerServiceV20141113.ListClusters" or
// "HoldfastAgentV1.Poll"), to h. Registering a target twice, an empty target
// or a nil handler panics.
func (s *Server) Register(target string, h Handler) {
	if target == "" || h == nil {
		panic("api: Register with empty target or nil handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.handlers[target]; dup {
		panic("api: target registered twice: " + target)
	}
	s.handlers[target] = h
}

func (s *Server) handler(target string) Handler {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.handlers[target]
}

func (s *Server) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return time.Now()
}

type ctxKey int

const (
	principalKey ctxKey = iota
	requestIDKey
)

// PrincipalFrom returns the authenticated caller of the request ctx belongs to.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// RequestIDFrom returns the x-amzn-RequestId of the request ctx belongs to.
func RequestIDFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(requestIDKey).(string)
	return id, ok
}

// outcome is what one request produced, for metrics and logs.
type outcome struct {
	status  int
	errType string
}

// ServeHTTP serves POST / with AWS JSON 1.1. Anything else on the path is an
// UnknownOperationException (404), another method on / is 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	target := r.Header.Get("X-Amz-Target")
	op := "unknown"
	if target != "" && s.handler(target) != nil {
		op = target
	}
	out := s.serve(w, r, reqID, target)
	s.observe(op, out.status, out.errType, time.Since(start))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, reqID, target string) outcome {
	fail := func(err error) outcome { return s.writeError(w, r, reqID, target, err) }

	if r.URL.Path != "/" && r.URL.Path != "" {
		return fail(newProtocolError(http.StatusNotFound, TypeUnknownOperation,
			"The ECS API is served at POST /, not "+truncate(r.URL.Path, 128)+"."))
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(newProtocolError(http.StatusMethodNotAllowed, TypeUnknownOperation,
			"Method "+truncate(r.Method, 32)+" is not allowed; AWS JSON 1.1 requests are POST /."))
	}

	// Authentication: one place, in two steps around reading the body.
	auth, err := s.checkCredential(r)
	if err != nil {
		return fail(err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(newProtocolError(http.StatusBadRequest, TypeSerializationException,
				"Request body exceeds the maximum size of "+strconv.FormatInt(s.maxBody, 10)+" bytes."))
		}
		return fail(newProtocolError(http.StatusBadRequest, TypeSerializationException,
			"Could not read the request body."))
	}
	if err := s.verifySignature(r.Context(), r, body, auth); err != nil {
		return fail(err)
	}
	principal := Principal{AccessKeyID: auth.cred.accessKeyID}

	if target == "" {
		return fail(newProtocolError(http.StatusBadRequest, TypeUnknownOperation,
			"Missing X-Amz-Target header."))
	}
	h := s.handler(target)
	if h == nil {
		return fail(newProtocolError(http.StatusBadRequest, TypeUnknownOperation,
			"Unknown operation "+strconv.Quote(truncate(target, 128))+"."))
	}

	ctx := context.WithValue(r.Context(), principalKey, principal)
	ctx = context.WithValue(ctx, requestIDKey, reqID)

	if s.cfg.Authorizer != nil {
		if err := s.cfg.Authorizer.Authorize(ctx, principal, target, body); err != nil {
			var de *domain.Error
			if !errors.As(err, &de) {
				s.logger.Info("request refused by authorizer", "requestId", reqID, "target", target,
					"accessKeyId", principal.AccessKeyID, "err", err)
				err = newProtocolError(http.StatusBadRequest, TypeAccessDenied,
					"User: "+principal.AccessKeyID+" is not authorized to perform: "+iamAction(target))
			}
			return fail(err)
		}
	}
	if s.limits != nil {
		if l := s.limits.limiterFor(target); l != nil && !l.Allow() {
			return fail(newProtocolError(http.StatusBadRequest, TypeThrottling, domain.MsgRateExceeded))
		}
	}

	result, err := invoke(ctx, h, body)
	if err != nil {
		return fail(err)
	}
	if result == nil {
		result = struct{}{}
	}
	payload, err := json.Marshal(result)
	if err != nil {
		return fail(fmt.Errorf("marshal response of %s: %w", target, err))
	}
	writeResponse(w, reqID, http.StatusOK, payload)
	return outcome{status: http.StatusOK}
}

// iamAction names target the way an IAM policy would: "ecs:ListClusters".
func iamAction(target string) string {
	if op, ok := strings.CutPrefix(target, ECSTargetPrefix); ok {
		return "ecs:" + op
	}
	return truncate(target, 128)
}

// panicError is a recovered handler panic.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("handler panic: %v", e.value) }

// invoke runs h, turning a panic into an error (a 500 ServerException).
// http.ErrAbortHandler keeps its meaning and is re-raised.
func invoke(ctx context.Context, h Handler, body []byte) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			result, err = nil, &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return h(ctx, body)
}

// writeError writes err as an AWS JSON error response and logs it when the
// caller sees only the generic ServerException text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID, target string, err error) outcome {
	status, typ, msg := WireError(err)
	if exposesInternal(err) {
		attrs := []any{"requestId", reqID, "target", truncate(target, 128), "err", err}
		var pe *panicError
		if errors.As(err, &pe) {
			attrs = append(attrs, "stack", string(pe.stack))
		}
		s.logger.Error("request failed", attrs...)
	} else {
		s.logger.Debug("request refused", "requestId", reqID, "target", truncate(target, 128),
			"status", status, "type", typ, "remote", r.RemoteAddr)
	}
	payload, mErr := json.Marshal(errorBody{Type: typ, Message: msg})
	if mErr != nil { // cannot happen for two strings
		payload = []byte(`{"__type":"` + TypeServerException + `"}`)
	}
	writeResponse(w, reqID, status, payload)
	return outcome{status: status, errType: typ}
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func writeResponse(w http.ResponseWriter, reqID string, status int, payload []byte) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	h[requestIDHeader] = []string{reqID}
	w.WriteHeader(status)
	_, _ = w.Write(payload)
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:16])
	return string(out[:])
}
