// Package api is holdfast's AWS JSON 1.1 front door: the transport that the
// ECS operations (and the holdfast agent protocol) plug into.
//
// Requests are POST / with X-Amz-Target naming the operation and a SigV4
// Authorization header, exactly as the AWS CLI, boto3 and the AWS SDKs send
// them with --endpoint-url. For every request the server, in order:
//
//  1. answers 404 UnknownOperationException for a path other than / and 405
//     (Allow: POST) UnknownOperationException for a method other than POST;
//  2. checks the Authorization header without reading the body: present
//     (else 400 MissingAuthenticationTokenException), well formed (else
//     IncompleteSignatureException), a known access key (else
//     UnrecognizedClientException), scoped to service "ecs", the configured
//     region and aws4_request, and signed within 15 minutes of Config.Clock
//     (else InvalidSignatureException, with AWS's texts);
//  3. reads at most Config.MaxBodyBytes (1 MiB by default); a larger body is
//     400 SerializationException (400 rather than 413, so that every client
//     fault keeps the one status DESIGN.md gives client faults);
//  4. recomputes the signature with aws-sdk-go-v2's v4 signer over the
//     headers the client signed and the SHA-256 of the body, and compares it
//     in constant time (else InvalidSignatureException);
//  5. routes on X-Amz-Target (missing or unregistered: 400
//     UnknownOperationException);
//  6. calls the Authorizer hook (AccessDeniedException on refusal);
//  7. applies ECS's per-category token buckets when Config.RateLimits is on
//     (400 ThrottlingException "Rate exceeded"; off by default);
//  8. runs the handler, recovering panics as 500 ServerException.
//
// Every response carries Content-Type application/x-amz-json-1.1 and an
// x-amzn-RequestId header; errors are {"__type":"<Name>","message":"..."}
// with the status from WireError's single table. Each request is observed
// once (operation, status, __type, latency) on Config.Registry (Prometheus)
// and/or Config.Metrics.
package api
