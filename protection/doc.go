// Package protection lets code running inside an ECS task (on Amazon ECS or
// on holdfast) protect its task from scale-in and deployments while it is
// busy, through the agent's task protection endpoint
// ($ECS_AGENT_URI/task-protection/v1/state). It sends exactly what the ECS
// agent documents, so the same code works unchanged on both.
//
// Simple use, one protection for the whole process:
//
//	if err := protection.Acquire(ctx, 60); err != nil { ... } // protect; renewed until Release
//	defer protection.Release(ctx)
//
// Counted, named leases, for processes doing several things at once:
//
//	p, _ := protection.New(protection.WithExpiry(5))
//	l, err := p.Acquire(ctx, "job-123")
//	if errors.Is(err, protection.ErrDeploymentBlocked) {
//		// the service is scaling in or deploying: do not take new work
//	}
//	defer l.Release(ctx)
//
// The first lease enables protection, the last Release disables it, and
// while any lease is held the protection is renewed when half its expiry
// has elapsed (WithRenewAt). The expiry bounds how long a crashed process
// keeps its task protected: renewal runs in the process, so when the
// process dies the protection ends at its expiry.
//
// Failures are typed. The endpoint answers a per-task failure with HTTP 200
// and {"failure":{...}}; that is a *FailureError, never a success (the AWS
// sample's "any 2xx is success" is a known bug). {"error":{...}} bodies and
// non-JSON answers are *APIError. Throttling (the agent's 429 "You have
// reached maximum request limit." and ThrottlingException from the control
// plane), RequestCanceled timeouts, server faults and connection errors are
// retried with capped exponential backoff and full jitter (WithRetry).
//
// When ECS_AGENT_URI is unset (running outside a task, e.g. on a laptop)
// the Protector is in no-op mode: it logs that once with log/slog and every
// call succeeds without effect.
//
// Endpoint calls are made only on transitions (first lease, last release,
// renewal), which keeps a busy worker far below the agent's rate limit
// (40 requests per second per task, burst 60).
package protection
