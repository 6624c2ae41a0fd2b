package protection

import (
	"errors"
	"fmt"
)

// Failure reasons the control plane reports for a single task. The agent
// endpoint passes them through in a 200 {"failure":{...}} body.
const (
	ReasonDeploymentBlocked = "DEPLOYMENT_BLOCKED"
	ReasonTaskNotValid      = "TASK_NOT_VALID"
	ReasonMissing           = "MISSING"
)

// Sentinel errors matched with errors.Is against a *FailureError.
var (
	// ErrDeploymentBlocked: enabling protection was refused because the
	// service would then have more protected tasks than its desired count
	// (it is scaling in or deploying). The task is not protected; do not
	// start new work.
	ErrDeploymentBlocked = errors.New("protection: " + ReasonDeploymentBlocked)
	// ErrTaskNotValid: the task was not started by a service (standalone
	// tasks cannot be protected).
	ErrTaskNotValid = errors.New("protection: " + ReasonTaskNotValid)
	// ErrMissing: the control plane does not know the task.
	ErrMissing = errors.New("protection: " + ReasonMissing)
)

// FailureError is a per-task failure: the endpoint answered 200 with
// {"failure":{"Arn","Detail","Reason"}}. It is NOT a success: the task's
// protection was not changed.
type FailureError struct {
	Reason string
	Detail string
	Arn    string
}

func (e *FailureError) Error() string {
	s := "task protection failure: " + e.Reason
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Arn != "" {
		s += " (" + e.Arn + ")"
	}
	return s
}

// Is reports whether target is the sentinel for e's reason.
func (e *FailureError) Is(target error) bool {
	switch target {
	case ErrDeploymentBlocked:
		return e.Reason == ReasonDeploymentBlocked
	case ErrTaskNotValid:
		return e.Reason == ReasonTaskNotValid
	case ErrMissing:
		return e.Reason == ReasonMissing
	}
	return false
}

// APIError is a non-success answer of the endpoint: an {"error":{...}} body
// (Code and Message from it, RequestID from "requestID"), or a body that is
// not the endpoint's JSON at all (then Code is empty and Message is the body,
// e.g. the agent's 429 "You have reached maximum request limit.").
type APIError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	// Arn is the task ARN when the endpoint included it.
	Arn string
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = "HTTP error"
	}
	s := fmt.Sprintf("task protection endpoint: %d %s", e.Status, code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// throttleCodes are the error codes the AWS SDKs treat as throttling.
var throttleCodes = map[string]bool{
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"TransactionInProgressException":         true,
	"RequestLimitExceeded":                   true,
	"BandwidthLimitExceeded":                 true,
	"LimitExceededException":                 true,
	"RequestThrottled":                       true,
	"SlowDown":                               true,
	"PriorRequestNotComplete":                true,
	"EC2ThrottledException":                  true,
}

// Throttled reports whether the error is a rate limit: the agent's own 429
// or a throttling error from the control plane.
func (e *APIError) Throttled() bool {
	return e.Status == 429 || throttleCodes[e.Code]
}

// retryable reports whether repeating the same (idempotent) call may
// succeed: throttling, a timed-out ECS call, or a server-side fault.
func (e *APIError) retryable() bool {
	if e.Throttled() {
		return true
	}
	switch e.Code {
	case "RequestCanceled", "ServerException", "RequestTimeout", "RequestTimeoutException":
		return true
	}
	switch e.Status {
	case 500, 502, 503, 504:
		return true
	}
	return false
}
