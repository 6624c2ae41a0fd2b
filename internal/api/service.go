package api

import (
	"context"
	"net/url"
	"strings"
)

// Protocol is one of the AWS wire protocols the front door speaks.
type Protocol int

// The protocols, in the order the front door recognizes them.
const (
	// ProtocolJSON is AWS JSON 1.0 or 1.1: POST / with X-Amz-Target
	// "<TargetPrefix>.<Operation>".
	ProtocolJSON Protocol = iota + 1
	// ProtocolQuery is the AWS Query protocol: POST / with a form-encoded
	// body Action=<Operation>&Version=<QueryVersion>&..., XML responses.
	ProtocolQuery
	// ProtocolCBOR is smithy RPC v2 CBOR: POST
	// /service/<CBORService>/operation/<Operation> with the header
	// smithy-protocol: rpc-v2-cbor.
	ProtocolCBOR
)

func (p Protocol) String() string {
	switch p {
	case ProtocolJSON:
		return "json"
	case ProtocolQuery:
		return "query"
	case ProtocolCBOR:
		return "rpc-v2-cbor"
	}
	return "unknown"
}

// Codec encodes and decodes one body format. The front door has JSON
// (encoding/json) and Query (package awsquery) built in; a service that
// speaks RPC v2 CBOR brings its own Codec.
type Codec interface {
	Unmarshal(data []byte, v any) error
	Marshal(v any) ([]byte, error)
}

// Service describes one AWS API on the listener: which requests are its
// own and how its responses and errors look. Register it by handing it to
// Server.Handle with each of its operations. A Service value must not be
// changed after its first Handle.
type Service struct {
	// SigningName is the SigV4 credential scope's service name ("ecs",
	// "iam", "sts", "monitoring", "application-autoscaling"). Requests
	// for this service must be signed with it.
	SigningName string
	// SigningRegion, when set, is a region accepted in the credential scope
	// besides Config.Region: the region the SDKs sign global services with
	// (IAM and STS sign for us-east-1).
	SigningRegion string
	// ActionPrefix is the IAM action prefix of the service's operations
	// ("ecs", "iam", "sts", "cloudwatch", "application-autoscaling").
	ActionPrefix string

	// TargetPrefix, when set, serves AWS JSON: X-Amz-Target
	// "<TargetPrefix>.<Operation>".
	TargetPrefix string
	// JSONVersion is "1.1" (the default) or "1.0": the Content-Type is
	// application/x-amz-json-<JSONVersion>.
	JSONVersion string

	// QueryVersion, when set, serves the Query protocol for requests whose
	// credential scope names SigningName (the API version, e.g.
	// "2010-05-08"; requests carry it as Version=).
	QueryVersion string
	// XMLNamespace is the xmlns of Query responses and errors.
	XMLNamespace string

	// CBORService, when set, serves smithy RPC v2 CBOR at
	// /service/<CBORService>/operation/<Operation>; CBOR is its codec.
	CBORService string
	CBOR        Codec

	// QueryCompatible marks an awsQueryCompatible service: JSON and CBOR
	// errors also carry the header x-amzn-query-error: <Code>;<Sender|Receiver>.
	QueryCompatible bool

	// InternalError is the error an unexpected failure (a handler panic or
	// a plain Go error) is answered with; its Message is ignored. The
	// default is ServerException (JSON, CBOR) / InternalFailure (Query),
	// status 500.
	InternalError *Error
}

func (svc *Service) jsonContentType() string {
	if svc == nil || svc.JSONVersion == "" {
		return ContentType
	}
	return "application/x-amz-json-" + svc.JSONVersion
}

// metricName names an operation of svc in metrics: the X-Amz-Target for
// services with one (the same label whatever protocol the call used),
// else "<SigningName>:<Operation>".
func (svc *Service) metricName(op string) string {
	if svc.TargetPrefix != "" {
		return svc.TargetPrefix + "." + op
	}
	return svc.SigningName + ":" + op
}

// The services whose handlers live in this module and that other packages
// name when they register.
var (
	// ECS is the Amazon ECS API (AWS JSON 1.1).
	ECS = &Service{
		SigningName:   SigningName,
		ActionPrefix:  "ecs",
		TargetPrefix:  strings.TrimSuffix(ECSTargetPrefix, "."),
		JSONVersion:   "1.1",
		InternalError: &Error{Status: 500, Type: TypeServerException, Code: "InternalFailure"},
	}
	// HoldfastAgent is holdfast's agent protocol (AWS JSON 1.1, signed for
	// "ecs" like the ECS agent's own calls).
	HoldfastAgent = &Service{
		SigningName:   SigningName,
		ActionPrefix:  "ecs",
		TargetPrefix:  "HoldfastAgentV1",
		JSONVersion:   "1.1",
		InternalError: &Error{Status: 500, Type: TypeServerException, Code: "InternalFailure"},
	}
)

// Action is what a call asks permission for: one IAM action on one or more
// resources, with the request's condition keys.
type Action struct {
	// Name is "<prefix>:<Operation>", e.g. "ecs:UpdateService".
	Name string
	// Resources are the ARNs the action acts on, each checked on its own;
	// empty means "*".
	Resources []string
	// Context holds request-specific condition keys (e.g. "ecs:cluster",
	// "aws:RequestTag/team"); the authorizer adds the global ones
	// (aws:username, aws:PrincipalArn, aws:SourceIp, aws:CurrentTime).
	Context map[string][]string
}

// ActionFunc tells which action and resources a call needs. It runs after
// authentication and before the handler, on the same body; decode it with
// DecodeRequest. An error is answered as is (e.g. a SerializationException).
type ActionFunc func(ctx context.Context, body []byte) (Action, error)

// Operation is one registered operation.
type Operation struct {
	// Handler runs the operation.
	Handler Handler
	// Action names what the call needs permission for. nil means the
	// action "<ActionPrefix>:<Operation>" on "*".
	Action ActionFunc
	// Unauthorized operations skip authorization (every authenticated
	// caller may call them, as with sts:GetCallerIdentity).
	Unauthorized bool
}

// route is a registered operation of a service.
type route struct {
	svc    *Service
	name   string // operation name, e.g. "ListClusters"
	op     Operation
	metric string
}

// callKey carries the *call of the request a context belongs to.
type callKey struct{}

// call is one request as it travels through the front door.
type call struct {
	reqID   string
	proto   Protocol
	svc     *Service // nil while (or if) unknown
	op      string   // operation name as sent
	target  string   // X-Amz-Target as sent (JSON)
	form    url.Values
	route   *route
	scope   string // credential scope service, "" if not parsed
	user    Principal
	hasUser bool
	// authorizer is the server's, for Authorize calls from handlers.
	authorizer Authorizer
	sourceIP   string
	secure     bool
}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// CallInfo describes the request a context belongs to, for handlers and
// authorizers.
type CallInfo struct {
	Service   *Service
	Operation string
	Protocol  Protocol
	RequestID string
	// SourceIP is the client's address (aws:SourceIp); SecureTransport
	// says whether it came over TLS (aws:SecureTransport).
	SourceIP        string
	SecureTransport bool
}

// CallFrom returns the call that ctx belongs to.
func CallFrom(ctx context.Context) (CallInfo, bool) {
	c := callFrom(ctx)
	if c == nil {
		return CallInfo{}, false
	}
	return CallInfo{Service: c.svc, Operation: c.op, Protocol: c.proto, RequestID: c.reqID,
		SourceIP: c.sourceIP, SecureTransport: c.secure}, true
}
