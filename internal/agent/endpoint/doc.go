// Package endpoint serves the task endpoint of the holdfast agent: the ECS
// agent's task scale-in protection API under
//
//	/api/<endpoint-id>/task-protection/v1/state   (ECS_AGENT_URI)
//
// the task role credentials under
//
//	/v2/credentials/<credentials-id>               (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI)
//
// (see credentials.go), and the task metadata endpoint version 4 under
//
//	/v4/<endpoint-id>                              (ECS_CONTAINER_METADATA_URI_V4)
//	/v4/<endpoint-id>/task
//	/v4/<endpoint-id>/taskWithTags
//
// The agent gives every container a random endpoint id; the id resolves,
// through the narrow State interface, to that container's task only, and
// stops resolving once the task has stopped. The caller's address is never
// used to identify a task.
//
// The task protection API follows shared/spec/agent-endpoint.md byte for byte:
// routing (301 for non-canonical paths, 405 with an empty body for other
// methods, 404 "404 page not found\n" for other paths, the query string
// ignored), the 429 rate-limit answer, PUT body decoding (encoding/json with
// DisallowUnknownFields, first JSON value only, case-insensitive keys), the
// validation order, the response envelopes and their key order, ECS response
// validation and the mapping of ECS and SDK errors to status codes.
//
// # Deliberate differences from the ECS agent
//
// These are the places where holdfast knowingly answers differently from the
// ECS container agent (copy into docs/compatibility.md):
//
//  1. No int32 truncation of ExpiresInMinutes. The ECS agent converts the
//     int64 from the request body to int32 by truncation, so 4294967297 is
//     sent to ECS as 1. holdfast forwards the value unchanged when it fits in
//     an int32 (including 0 and negative values: as in ECS, there is no range
//     check in the agent and the control plane answers
//     InvalidParameterException). A value outside the int32 range is not sent
//     at all; the endpoint answers 400
//     {"error":{"Arn":"<taskArn>","Code":"InvalidParameterException","Message":"ExpiresInMinutes must be between 1 and 2880"}}.
//     This check runs after the ProtectionEnabled check.
//  2. No crash on an empty ECS answer. When ECS returns neither a failure nor a
//     protected task, the ECS agent indexes an empty slice, panics and closes
//     the connection without an HTTP response. holdfast answers 500
//     {"error":{"Arn":"<taskArn>","Code":"ServerException","Message":"Unexpected error occurred"}},
//     the same body as for more than one failure or protected task.
//  3. Task roles as in ECS, with one escape hatch: the protection API calls
//     ECS as the task's role (Config.Credentials), and a task without role
//     credentials gets the ECS agent's 403 AccessDeniedException "Invalid
//     Request: no task IAM role credentials available for task". Without a
//     Credentials store (holdfast up --task-credentials=none) every call is
//     made with the ECS client's own credentials instead.
//  4. Rate limiting is per endpoint id, not per caller IP (all processes of a
//     holdfast host share its addresses). The defaults are the ECS agent's:
//     40 requests/s steady, burst 60. Requests whose path carries no endpoint
//     id, or an id that does not resolve, share one bucket. As in ECS, the
//     limit applies before routing (after the 301 path cleaning).
//  5. The ECS client is built once by the agent (control-plane endpoint, SDK
//     standard retryer) and each call is made with the task's credentials as
//     a per-call option, not with a client built per request. The ECS
//     agent's 500 for a client-factory failure cannot occur.
//  6. A PUT body is read through a 64 KiB limit. A first JSON value larger than
//     that is answered as a decode error (400), where the ECS agent would read
//     it. Trailing data after the first value is still ignored, as in ECS.
//  7. Any error that wraps context.Canceled or context.DeadlineExceeded is
//     answered 504 RequestCanceled, also when the SDK did not wrap it in its
//     canceled-error types (the ECS agent would answer 500 ServerException with
//     the error text). An ECS error status outside 100-599 is answered 500.
//  8. When an endpoint id resolves to a task without a task ARN (the agent
//     cannot describe it), the protection API answers 500 ServerException
//     "Failed to find a task for the request", the ECS agent's answer when
//     the task for an endpoint id is missing from its state.
//  9. SDK-dependent texts (not chosen by this package, they come from the
//     aws-sdk-go-v2/service/ecs version in go.mod): for a modeled ECS
//     exception whose body has "Message" instead of "message" (spec case 44)
//     the message is passed through, where the ECS agent's vendored SDK gives
//     ""; for invalid JSON from ECS (case 41) the error text ends in
//     "deserialization failed, unexpected end of JSON input" instead of
//     "deserialization failed, failed to decode response body, unexpected EOF".
//
// The task metadata v4 responses use ECS's field names and order (the ECS
// agent's v4 TaskResponse/ContainerResponse). holdfast runs processes, not
// Docker containers: DockerId, DockerName and ImageID carry whatever the
// agent puts there, Networks is typically a single "host" entry, and the
// stats and container-association paths are not served (404). Unknown ids
// are answered 404 with the ECS agent's JSON string bodies, e.g.
// "V4 container metadata handler: unable to get container ID from request: unable to get docker ID from v3 endpoint ID: <id>".
// As in the ECS agent, the v4 paths accept any method.
package endpoint
