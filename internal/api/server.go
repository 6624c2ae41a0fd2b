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
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast/holdfast/internal/api/awsquery"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/longpoll"
	"github.com/holdfast/holdfast/internal/netguard"
)

// ContentType is the media type of AWS JSON 1.1 requests and responses.
const ContentType = "application/x-amz-json-1.1"

// Defaults of the Config fields left at zero.
const (
	// DefaultMaxBodyBytes is the request body limit.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultBodyBytesInFlight bounds the request-body bytes held at once.
	DefaultBodyBytesInFlight int64 = 64 << 20
	// DefaultBodyBytesInFlightPerClient is one client's share of them:
	// four bodies at the 1 MiB limit, so that clients at 16 addresses are
	// needed to take the whole budget.
	DefaultBodyBytesInFlightPerClient int64 = 4 << 20
	// DefaultHeartbeat is how often a long poll sends a heartbeat.
	DefaultHeartbeat = 10 * time.Second
)

// requestIDHeader is written with this exact spelling (as AWS does); the map
// is set directly so that net/http does not canonicalize it.
const requestIDHeader = "x-amzn-RequestId"

// Header names and media types of the protocols.
const (
	cborContentType  = "application/cbor"
	smithyProtocol   = "smithy-protocol"
	queryErrorHeader = "x-amzn-query-error"
)

// Handler runs one operation. body is the raw request body (possibly
// empty): decode it with DecodeRequest (any protocol) or Decode (AWS JSON
// only). The result is encoded in the caller's protocol (nil is an empty
// result). Errors are answered in the caller's protocol (see WireError).
type Handler func(ctx context.Context, body []byte) (any, error)

// Op adapts a typed operation to a Handler: decode the input in the
// caller's protocol, then call f.
func Op[I any, O any](f func(context.Context, I) (O, error)) Handler {
	return func(ctx context.Context, body []byte) (any, error) {
		var in I
		if err := DecodeRequest(ctx, body, &in); err != nil {
			return nil, err
		}
		return f(ctx, in)
	}
}

// Metrics receives one observation per request, after the response is
// written. operation is the registered operation's name (the X-Amz-Target
// for services that have one, else "<signing name>:<Operation>") and
// "unknown" otherwise (so label cardinality stays bounded); errType is the
// __type of an error response and "" on success. Config.Registry installs
// a Prometheus implementation.
type Metrics interface {
	ObserveRequest(operation string, status int, errType string, elapsed time.Duration)
}

// Config configures a Server.
type Config struct {
	// Region is the only region accepted in the SigV4 credential scope.
	Region string
	// AccountID is the account of the root principal.
	AccountID string
	// Credentials maps the root's access key ids to their secret access
	// keys: the account's root, allowed everything.
	Credentials map[string]string
	// Identities resolves every other access key (IAM users' keys, STS
	// session credentials); nil means only the root's keys are known.
	Identities CredentialSource
	// Authorizer is called for every authenticated request (except
	// Operation.Unauthorized ones); nil allows all.
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
	// larger body is a 400 SerializationException, refused before it is
	// read when Content-Length announces it.
	MaxBodyBytes int64
	// BodyBytesInFlight bounds the request-body bytes held at once (0:
	// DefaultBodyBytesInFlight), BodyBytesInFlightPerClient one client's
	// share (0: DefaultBodyBytesInFlightPerClient). A client is the access
	// key id its Authorization header claims, at its address
	// (netguard.ClientOf), and apart on connections where that key's
	// signature was already verified (see bodyClient): the signature
	// covers the body, so the key is not proven yet, and a flood that
	// claims a key must not take the share of the key's owner. A request
	// whose body does not fit is refused before its body is read: 400
	// ThrottlingException "Rate exceeded", which the SDKs retry.
	BodyBytesInFlight          int64
	BodyBytesInFlightPerClient int64
	// Heartbeat is how often an AWS JSON operation that waits (it calls
	// longpoll.Waiting, like the agent's long poll) sends a heartbeat:
	// whitespace ahead of its JSON answer. 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Clock is used for the signature time and token expiry checks; nil
	// means time.Now.
	Clock func() time.Time
}

// Server is the front door of every AWS API holdfast speaks: it
// authenticates (SigV4), routes by protocol and operation, authorizes, and
// writes AWS-shaped responses in the caller's protocol.
type Server struct {
	cfg         Config
	credentials map[string]string
	signer      *v4.Signer
	logger      *slog.Logger
	limits      limiters // nil when rate limiting is off
	maxBody     int64
	bodies      *netguard.Budget
	heartbeat   time.Duration
	prom        *promMetrics // nil without Config.Registry

	mu sync.RWMutex
	// Services by how requests name them, and operations by route.
	byTarget    map[string]*Service // AWS JSON target prefix
	bySigning   map[string]*Service // Query: credential scope service
	byCBOR      map[string]*Service // RPC v2 CBOR service name
	jsonRoutes  map[string]*route   // full X-Amz-Target
	queryRoutes map[string]*route   // "<signing name>/<Action>"
	cborRoutes  map[string]*route   // "<CBORService>/<Operation>"
	registered  map[*Service]bool
	adHoc       map[string]*Service // services Register made up, by target prefix
}

// New returns a Server for cfg. The credentials map is copied.
func New(cfg Config) *Server {
	s := &Server{
		cfg:         cfg,
		credentials: maps.Clone(cfg.Credentials),
		signer:      v4.NewSigner(),
		logger:      cfg.Logger,
		maxBody:     cfg.MaxBodyBytes,
		byTarget:    map[string]*Service{},
		bySigning:   map[string]*Service{},
		byCBOR:      map[string]*Service{},
		jsonRoutes:  map[string]*route{},
		queryRoutes: map[string]*route{},
		cborRoutes:  map[string]*route{},
		registered:  map[*Service]bool{},
		adHoc:       map[string]*Service{},
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
	inFlight, perClient := cfg.BodyBytesInFlight, cfg.BodyBytesInFlightPerClient
	if inFlight <= 0 {
		inFlight = DefaultBodyBytesInFlight
	}
	if perClient <= 0 {
		perClient = DefaultBodyBytesInFlightPerClient
	}
	s.bodies = netguard.NewBudget(inFlight, perClient)
	s.heartbeat = cfg.Heartbeat
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeat
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
		for _, c := range s.bodies.Collectors("api") {
			if err := cfg.Registry.Register(c); err != nil {
				s.logger.Error("API body metrics not registered", "err", err)
			}
		}
	}
	return s
}

// BodyBytesInFlight returns the request-body bytes reserved now.
func (s *Server) BodyBytesInFlight() int64 { return s.bodies.InUse() }

// Register routes target, a full X-Amz-Target value (e.g.
// "AmazonEC2ContainerServiceV20141113.ListClusters" or
// "HoldfastAgentV1.Poll"), to h. It is Handle for the service whose
// TargetPrefix is the target's prefix: ECS and HoldfastAgent are known;
// any other prefix gets an AWS JSON 1.1 service signed for "ecs" whose
// actions are "ecs:<Operation>". Registering a target twice, an empty
// target or a nil handler panics.
func (s *Server) Register(target string, h Handler) {
	if target == "" || h == nil {
		panic("api: Register with empty target or nil handler")
	}
	prefix, op := "", target
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		prefix, op = target[:i], target[i+1:]
	}
	var svc *Service
	switch prefix {
	case ECS.TargetPrefix:
		svc = ECS
	case HoldfastAgent.TargetPrefix:
		svc = HoldfastAgent
	default:
		s.mu.Lock()
		svc = s.adHoc[prefix]
		if svc == nil {
			svc = &Service{SigningName: SigningName, ActionPrefix: "ecs", TargetPrefix: prefix, JSONVersion: "1.1",
				InternalError: ECS.InternalError}
			s.adHoc[prefix] = svc
		}
		s.mu.Unlock()
	}
	if prefix == "" {
		// A target without a dot: routed by its full text.
		s.handle(svc, op, target, Operation{Handler: h})
		return
	}
	s.Handle(svc, op, Operation{Handler: h})
}

// Handle registers operation op of svc for every protocol svc speaks.
// Registering an operation twice, a nil handler, a service that speaks no
// protocol, CBOR without a codec, or two services claiming one target
// prefix, Query signing name or CBOR service name panics.
func (s *Server) Handle(svc *Service, op string, o Operation) {
	s.handle(svc, op, "", o)
}

func (s *Server) handle(svc *Service, op, rawTarget string, o Operation) {
	if svc == nil || op == "" || o.Handler == nil {
		panic("api: Handle with nil service, empty operation or nil handler")
	}
	if svc.SigningName == "" || (svc.TargetPrefix == "" && svc.QueryVersion == "" && svc.CBORService == "" && rawTarget == "") {
		panic("api: service " + svc.SigningName + " has no signing name or speaks no protocol")
	}
	if svc.CBORService != "" && svc.CBOR == nil {
		panic("api: service " + svc.CBORService + " speaks RPC v2 CBOR without a Codec")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.registered[svc] {
		claim := func(m map[string]*Service, key, what string) {
			if key == "" {
				return
			}
			if other, dup := m[key]; dup && other != svc {
				panic("api: two services claim " + what + " " + key)
			}
			m[key] = svc
		}
		claim(s.byTarget, svc.TargetPrefix, "the target prefix")
		if svc.QueryVersion != "" {
			claim(s.bySigning, svc.SigningName, "the Query signing name")
		}
		claim(s.byCBOR, svc.CBORService, "the CBOR service name")
		s.registered[svc] = true
	}
	rt := &route{svc: svc, name: op, op: o, metric: svc.metricName(op)}
	add := func(m map[string]*route, key string) {
		if _, dup := m[key]; dup {
			panic("api: operation registered twice: " + key)
		}
		m[key] = rt
	}
	if rawTarget != "" {
		rt.metric = rawTarget
		add(s.jsonRoutes, rawTarget)
		return
	}
	if svc.TargetPrefix != "" {
		add(s.jsonRoutes, svc.TargetPrefix+"."+op)
	}
	if svc.QueryVersion != "" {
		add(s.queryRoutes, svc.SigningName+"/"+op)
	}
	if svc.CBORService != "" {
		add(s.cborRoutes, svc.CBORService+"/"+op)
	}
}

func (s *Server) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock()
	}
	return time.Now()
}

// PrincipalFrom returns the authenticated caller of the request ctx belongs to.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	c := callFrom(ctx)
	if c == nil || !c.hasUser {
		return Principal{}, false
	}
	return c.user, true
}

// RequestIDFrom returns the x-amzn-RequestId of the request ctx belongs to.
func RequestIDFrom(ctx context.Context) (string, bool) {
	c := callFrom(ctx)
	if c == nil {
		return "", false
	}
	return c.reqID, true
}

// outcome is what one request produced, for metrics and logs.
type outcome struct {
	status  int
	errType string
}

// ServeHTTP serves one AWS API request (the package doc gives the order of
// the checks).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := s.classify(r)
	out := s.serve(w, r, c)
	op := "unknown"
	if c.route != nil {
		op = c.route.metric
	}
	s.observe(op, out.status, out.errType, time.Since(start))
}

// cborPath matches /service/<Service>/operation/<Operation>.
func cborPath(path string) (svc, op string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/service/")
	if !ok {
		return "", "", false
	}
	svc, op, ok = strings.Cut(rest, "/operation/")
	if !ok || svc == "" || op == "" || strings.Contains(svc, "/") || strings.Contains(op, "/") {
		return "", "", false
	}
	return svc, op, true
}

// classify works out, before anything is read or checked, which protocol
// and service a request is for, so that every answer (errors included)
// takes that protocol's shape:
//
//   - POST /service/<S>/operation/<Op> for a registered CBOR service S is
//     RPC v2 CBOR;
//   - a request with X-Amz-Target is AWS JSON;
//   - a form-encoded request is the Query protocol of the service its
//     credential scope names, when that service speaks Query (unsigned:
//     when any service does);
//   - anything else is answered as AWS JSON, as ECS answers it.
func (s *Server) classify(r *http.Request) *call {
	c := &call{reqID: newRequestID(), proto: ProtocolJSON, authorizer: s.cfg.Authorizer, secure: r.TLS != nil}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		c.sourceIP = host
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if name, op, ok := cborPath(r.URL.Path); ok {
		if svc := s.byCBOR[name]; svc != nil {
			c.proto, c.svc, c.op = ProtocolCBOR, svc, op
			c.route = s.cborRoutes[name+"/"+op]
			return c
		}
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.target = target
		if rt := s.jsonRoutes[target]; rt != nil {
			c.route, c.svc, c.op = rt, rt.svc, rt.name
		} else if i := strings.LastIndexByte(target, '.'); i >= 0 {
			c.svc, c.op = s.byTarget[target[:i]], target[i+1:]
		}
		return c
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") && len(s.bySigning) > 0 {
		authz := r.Header.Get("Authorization")
		scope := parseScope(authz)
		if svc := s.bySigning[scope]; svc != nil {
			c.proto, c.svc, c.scope = ProtocolQuery, svc, scope
		} else if authz == "" {
			c.proto = ProtocolQuery
		}
	}
	return c
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, c *call) outcome {
	bodyRead := false
	fail := func(err error) outcome {
		if !bodyRead && r.ContentLength != 0 {
			// Refused before its body was read: hang up after the answer,
			// or net/http would read (up to 256 KiB of) the body first.
			w.Header().Set("Connection", "close")
		}
		return s.writeError(w, r, c, err)
	}

	if c.proto != ProtocolCBOR && r.URL.Path != "/" && r.URL.Path != "" {
		return fail(newProtocolError(http.StatusNotFound, TypeUnknownOperation,
			"The ECS API is served at POST /, not "+truncate(r.URL.Path, 128)+"."))
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(newProtocolError(http.StatusMethodNotAllowed, TypeUnknownOperation,
			"Method "+truncate(r.Method, 32)+" is not allowed; AWS JSON 1.1 requests are POST /."))
	}

	// Authentication: one place, in two steps around reading the body.
	// Everything that can be checked without the body is checked first,
	// so that a caller who cannot sign makes the server buffer nothing.
	auth, err := s.checkCredential(r, c.svc)
	if err != nil {
		return fail(err)
	}
	if r.ContentLength > s.maxBody {
		return fail(s.errBodyTooLarge())
	}
	reserve := s.maxBody // unknown length (chunked): the most it may be
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	release, ok := s.bodies.Acquire(bodyClient(r, auth.cred.accessKeyID), reserve)
	if !ok {
		return fail(newProtocolError(http.StatusBadRequest, TypeThrottling, domain.MsgRateExceeded))
	}
	defer release()
	body, err := s.readBody(w, r)
	bodyRead = true
	if err != nil {
		return fail(err)
	}
	if err := s.verifySignature(r.Context(), r, body, auth); err != nil {
		return fail(err)
	}
	netguard.ConnFrom(r.Context()).MarkVerified(auth.cred.accessKeyID)
	if body, err = decodeContentEncoding(r, body, s.maxBody); err != nil {
		return fail(err)
	}
	c.user, c.hasUser = auth.principal, true

	if err := s.route(c, body); err != nil {
		return fail(err)
	}
	ctx := context.WithValue(r.Context(), callKey{}, c)

	if s.cfg.Authorizer != nil && !c.route.op.Unauthorized {
		a := defaultAction(c.svc, c.op)
		if c.route.op.Action != nil {
			custom, err := c.route.op.Action(ctx, body)
			if err != nil {
				return fail(err)
			}
			a = custom
		}
		if err := c.authorize(ctx, a); err != nil {
			s.logger.Info("request refused by authorizer", "requestId", c.reqID, "action", a.Name,
				"principal", c.user.ARN, "err", err)
			return fail(err)
		}
	}
	if s.limits != nil && c.proto == ProtocolJSON {
		if l := s.limits.limiterFor(c.target); l != nil && !l.Allow() {
			return fail(newProtocolError(http.StatusBadRequest, TypeThrottling, domain.MsgRateExceeded))
		}
	}

	// An operation that waits for long (the agent's long poll) says so
	// with longpoll.Waiting: its response becomes a stream with
	// heartbeats, exempt from the listener's read and write deadlines.
	var stream *netguard.Stream
	if c.proto == ProtocolJSON {
		ctx = longpoll.WithWaiting(ctx, func() {
			if stream != nil {
				return
			}
			h := w.Header()
			h.Set("Content-Type", c.svc.jsonContentType())
			h[requestIDHeader] = []string{c.reqID}
			stream = netguard.StartStream(w, r, http.StatusOK, netguard.JSONHeartbeat(s.heartbeat))
		})
	}
	result, err := invoke(ctx, c.route.op.Handler, body)
	if stream != nil {
		return s.finishStream(stream, c, result, err)
	}
	if err != nil {
		return fail(err)
	}
	payload, contentType, err := encodeResult(c, result)
	if err != nil {
		return fail(fmt.Errorf("encode response of %s: %w", c.route.metric, err))
	}
	writeResponse(w, c, contentType, http.StatusOK, payload)
	return outcome{status: http.StatusOK}
}

// bodyClient names the client whose in-flight body share a request draws
// on: the access key it claims, at its address (netguard.ClientOf), and,
// apart, on a connection where that key's signature has already been
// verified. The claim is not proven before the body is read, so a flood
// that claims a key from the key owner's own address shares the owner's
// share, but not that of the owner's kept-alive connections, which the
// flood cannot verify without the secret.
func bodyClient(r *http.Request, accessKeyID string) string {
	client := accessKeyID + "@" + netguard.ClientOf(r.RemoteAddr)
	if netguard.ConnFrom(r.Context()).Verified(accessKeyID) {
		client += "+verified"
	}
	return client
}

// errBodyTooLarge is the answer to a body over Config.MaxBodyBytes, in the
// words of AWS's front end ("HTTP content length exceeded N bytes.").
func (s *Server) errBodyTooLarge() error {
	return newProtocolError(http.StatusBadRequest, TypeSerializationException,
		"HTTP content length exceeded "+strconv.FormatInt(s.maxBody, 10)+" bytes.")
}

// readBody reads the whole body: into a buffer of exactly Content-Length
// bytes when it is known (the reservation made for it), else up to
// Config.MaxBodyBytes. A body that does not arrive before the listener's
// read deadline (netguard.Limits.ReadTimeout) is a RequestTimeoutException.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		if _, err = io.ReadFull(r.Body, body); err == nil {
			var one [1]byte
			if n, _ := io.ReadFull(r.Body, one[:]); n > 0 {
				err = errors.New("body longer than its Content-Length")
			}
		}
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return body, nil
	case errors.As(err, &mbe):
		return nil, s.errBodyTooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, newProtocolError(http.StatusBadRequest, TypeRequestTimeout, msgRequestTimeout)
	default:
		return nil, newProtocolError(http.StatusBadRequest, TypeSerializationException,
			"Could not read the request body.")
	}
}

// finishStream ends a response that became a stream (see longpoll): the
// status is sent already, so the answer, or an error in the AWS JSON error
// shape, follows the heartbeats in the body. An operation must not fail
// after longpoll.Waiting; if it does, the error is logged too.
func (s *Server) finishStream(st *netguard.Stream, c *call, result any, err error) outcome {
	_ = st.Close()
	var payload []byte
	out := outcome{status: http.StatusOK}
	if err == nil {
		payload, _, err = encodeResult(c, result)
	}
	if err != nil {
		s.logger.Error("operation failed after its long-poll answer had started", "requestId", c.reqID,
			"operation", truncate(c.target, 128), "err", err)
		re := render(err, c.proto, c.svc)
		payload, _ = json.Marshal(re.body())
		out.errType = re.typ
	}
	_, _ = st.Write(payload)
	return out
}

// route finds the registered operation of an authenticated request; for
// the Query protocol it parses the form to learn the Action.
func (s *Server) route(c *call, body []byte) error {
	switch c.proto {
	case ProtocolCBOR:
		if c.route == nil {
			return newProtocolError(http.StatusNotFound, TypeUnknownOperation,
				"Unknown operation "+strconv.Quote(truncate(c.op, 128))+".")
		}
	case ProtocolQuery:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return newProtocolError(http.StatusBadRequest, TypeSerializationException,
				"The request body is not a valid form-encoded Query request.")
		}
		c.form = form
		action, version := form.Get("Action"), form.Get("Version")
		if action == "" {
			return &Error{Status: http.StatusBadRequest, Type: "MissingAction", Code: "MissingAction",
				Message: "The request must contain the parameter Action."}
		}
		c.op = action
		s.mu.RLock()
		c.route = s.queryRoutes[c.scope+"/"+action]
		s.mu.RUnlock()
		if c.route == nil || version != c.svc.QueryVersion {
			c.route = nil
			return newProtocolError(http.StatusBadRequest, TypeUnknownOperation,
				"Could not find operation "+truncate(action, 128)+" for version "+truncate(version, 32))
		}
	default:
		if c.target == "" {
			return newProtocolError(http.StatusBadRequest, TypeUnknownOperation, "Missing X-Amz-Target header.")
		}
		if c.route == nil {
			return newProtocolError(http.StatusBadRequest, TypeUnknownOperation,
				"Unknown operation "+strconv.Quote(truncate(c.target, 128))+".")
		}
	}
	return nil
}

// encodeResult renders a handler's result in the call's protocol.
func encodeResult(c *call, result any) ([]byte, string, error) {
	switch c.proto {
	case ProtocolQuery:
		payload, err := awsquery.Response(c.op, c.svc.XMLNamespace, c.reqID, result)
		return payload, awsquery.ContentType, err
	case ProtocolCBOR:
		if isNil(result) {
			result = struct{}{}
		}
		payload, err := c.svc.CBOR.Marshal(result)
		return payload, cborContentType, err
	}
	if isNil(result) {
		result = struct{}{}
	}
	payload, err := json.Marshal(result)
	return payload, c.svc.jsonContentType(), err
}

// isNil reports whether a handler result means "no output".
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Interface:
		return rv.IsNil()
	}
	return false
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

// writeError writes err in the call's protocol, and logs it when the
// caller sees only the generic internal-error text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, c *call, err error) outcome {
	re := render(err, c.proto, c.svc)
	what := c.target
	if what == "" {
		what = c.op
	}
	if exposesInternal(err) {
		attrs := []any{"requestId", c.reqID, "operation", truncate(what, 128), "err", err}
		var pe *panicError
		if errors.As(err, &pe) {
			attrs = append(attrs, "stack", string(pe.stack))
		}
		s.logger.Error("request failed", attrs...)
	} else {
		s.logger.Debug("request refused", "requestId", c.reqID, "operation", truncate(what, 128),
			"status", re.status, "type", re.typ, "remote", r.RemoteAddr)
	}
	var payload []byte
	contentType := c.svc.jsonContentType()
	switch c.proto {
	case ProtocolQuery:
		ns := ""
		if c.svc != nil {
			ns = c.svc.XMLNamespace
		}
		payload = awsquery.ErrorResponse(ns, re.code, re.message, c.reqID, re.status >= 500)
		contentType = awsquery.ContentType
	case ProtocolCBOR:
		contentType = cborContentType
		var mErr error
		if payload, mErr = c.svc.CBOR.Marshal(re.body()); mErr != nil {
			s.logger.Error("encode CBOR error body", "requestId", c.reqID, "err", mErr)
			payload = nil
		}
	default:
		var mErr error
		if payload, mErr = json.Marshal(re.body()); mErr != nil {
			payload = []byte(`{"__type":"` + TypeServerException + `"}`) // cannot happen for strings
		}
	}
	if c.svc != nil && c.svc.QueryCompatible && c.proto != ProtocolQuery {
		fault := "Sender"
		if re.status >= 500 {
			fault = "Receiver"
		}
		w.Header().Set(queryErrorHeader, re.code+";"+fault)
	}
	writeResponse(w, c, contentType, re.status, payload)
	return outcome{status: re.status, errType: re.typ}
}

// body is the error document of AWS JSON and RPC v2 CBOR responses:
// {"__type": ..., "message": ...} (or the service's "Message"). A CBOR
// Codec must be able to encode a map[string]string.
func (re rendered) body() map[string]string {
	key := re.messageKey
	if key == "" {
		key = "message"
	}
	return map[string]string{"__type": re.typ, key: re.message}
}

func writeResponse(w http.ResponseWriter, c *call, contentType string, status int, payload []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	h[requestIDHeader] = []string{c.reqID}
	if c.proto == ProtocolCBOR {
		h.Set(smithyProtocol, "rpc-v2-cbor")
	}
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
