// Package api is holdfast's front door: one http.Handler on --listen that
// serves every AWS API holdfast speaks (ECS, the holdfast agent protocol,
// IAM, STS, and whatever else registers), in the wire protocols their
// clients use, signed with SigV4.
//
// # Registering a service
//
// A service is a *Service value: its SigV4 signing name, its IAM action
// prefix, and the protocols it speaks. Each operation is registered with
// Handle:
//
//	var CloudWatch = &api.Service{
//		SigningName:     "monitoring",
//		ActionPrefix:    "cloudwatch",
//		TargetPrefix:    "GraniteServiceVersion20100801", // AWS JSON
//		JSONVersion:     "1.0",
//		QueryVersion:    "2010-08-01",                    // Query protocol
//		XMLNamespace:    "http://monitoring.amazonaws.com/doc/2010-08-01/",
//		CBORService:     "GraniteServiceVersion20100801", // RPC v2 CBOR
//		CBOR:            myCodec,                         // Marshal/Unmarshal
//		QueryCompatible: true,
//	}
//	srv.Handle(CloudWatch, "PutMetricData", api.Operation{
//		Handler: api.Op(putMetricData), // func(ctx, In) (*Out, error)
//		Action:  nil,                   // nil: "cloudwatch:PutMetricData" on "*"
//	})
//
// The handler sees one protocol-neutral call: api.Op (or DecodeRequest)
// decodes the body in the caller's protocol into the input struct, and
// the returned result is encoded in the caller's protocol (encoding/json
// for AWS JSON, the service's Codec for CBOR, encoding/xml inside the
// <OpResponse><OpResult> envelope for Query). Field names: json tags serve
// JSON and CBOR (fxamacker/cbor reads json tags), xml tags the Query
// response, and Query parameters are read by `query` tag, else json tag,
// else field name (package awsquery). Errors are *Error (Status, Type for
// JSON/CBOR __type, Code for Query and x-amzn-query-error, MessageKey) or,
// for ECS, *domain.Error through the one kind table; any other error is
// the service's InternalError, with the real error logged. Register is
// the older shortcut for AWS JSON 1.1 targets signed for "ecs".
//
// # What a request goes through
//
//  1. classify: POST /service/<S>/operation/<Op> of a registered CBOR
//     service is RPC v2 CBOR; a request with X-Amz-Target is AWS JSON; a
//     form-encoded body whose credential scope names a Query service is
//     the Query protocol; anything else is answered as AWS JSON. Every
//     answer from here on, errors included, is in that protocol's shape.
//  2. a path other than / (or the CBOR path) is 404 and a method other than
//     POST is 405 (Allow: POST), as UnknownOperationException.
//  3. the Authorization header, without reading the body: present (else
//     MissingAuthenticationTokenException / MissingAuthenticationToken
//     403), well formed (IncompleteSignature), an access key that resolves
//     (the root's keys from Config.Credentials, anything else through
//     Config.Identities; else UnrecognizedClientException /
//     InvalidClientTokenId 403) with exactly its session token when it is
//     temporary (same error), not expired (ExpiredTokenException /
//     ExpiredToken 403), scoped to the service's signing name, the region
//     (or the service's SigningRegion) and aws4_request, and signed within
//     15 minutes of Config.Clock (else InvalidSignatureException /
//     SignatureDoesNotMatch 403).
//  4. still before the body is read: a Content-Length over
//     Config.MaxBodyBytes (1 MiB by default) is a SerializationException
//     (400) "HTTP content length exceeded 1048576 bytes." (AWS's front
//     end's text; 400 rather than its 413, as every client fault here),
//     and a body that does not fit the in-flight body budget of its client
//     (the claimed access key at its address) or in total is a
//     ThrottlingException "Rate exceeded". A request refused before its
//     body is read is answered with Connection: close, so that net/http
//     does not read the body either. Then the body is read into a buffer
//     of its announced size; one that misses the listener's read deadline
//     is a RequestTimeoutException (400).
//  5. the signature, recomputed with aws-sdk-go-v2's v4 signer over the
//     headers the client signed and the body's SHA-256, compared in
//     constant time.
//  6. routing: the target, the Query Action (and Version), or the CBOR
//     operation must be registered (UnknownOperationException /
//     InvalidAction).
//  7. authorization: the operation's Action (its ActionFunc, or
//     "<prefix>:<Operation>" on "*") is put to Config.Authorizer with the
//     caller's Principal; a refusal is AccessDeniedException (400, JSON and
//     CBOR) or AccessDenied (403, Query) with AWS's text. Operations marked
//     Unauthorized skip this. Handlers can check more with Authorize.
//  8. ECS's per-category token buckets when Config.RateLimits is on (400
//     ThrottlingException "Rate exceeded"; off by default).
//  9. the handler, with panics recovered as the service's internal error.
//     A domain error's 5xx answer carries only the generic ServerException
//     text; the error itself is logged with the request id.
//
// An AWS JSON handler that waits for long (the agent's long poll) calls
// longpoll.Waiting once nothing can fail any more: from then on its
// response is a netguard.Stream, sent as 200 at once, exempt from the
// listener's read and write deadlines, with a newline every
// Config.Heartbeat until the JSON answer (JSON allows leading whitespace).
// The listener's own limits (timeouts, header size, connections) are the
// http.Server's: see internal/netguard and internal/server.
//
// Every response carries the protocol's Content-Type
// (application/x-amz-json-1.x, text/xml, application/cbor with
// smithy-protocol: rpc-v2-cbor) and an x-amzn-RequestId header. The
// transport's own errors have one JSON name and one Query name each
// (queryRendition); awsQueryCompatible services also get
// x-amzn-query-error: <Code>;Sender on JSON and CBOR errors. Each request
// is observed once (operation, status, __type, latency) on
// Config.Registry (Prometheus) and/or Config.Metrics.
//
// # Identity
//
// A Principal is who signed: the root (arn:aws:iam::<account>:root), an
// IAM user (arn:aws:iam::<account>:user/<path><name>) or an assumed role
// (arn:aws:sts::<account>:assumed-role/<role>/<session>), with the
// identity-based policies that apply to it. Handlers read it with
// PrincipalFrom, and the call with CallFrom.
package api
