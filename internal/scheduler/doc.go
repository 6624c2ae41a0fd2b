// Package scheduler holds holdfast's service reconciler: a pure function from
// the observed state of one service (its deployments, tasks, the cluster's
// container instances, the current time and the events already reported) to
// a Plan of tasks to start and stop, deployment state changes, service events
// and a requeue-after for the next timed recheck.
//
// The package imports only the standard library and owns its input types, so
// that it stays pure: it performs no I/O, never reads the wall clock, and
// returns the same plan for the same input. The control plane's controller
// builds the input on a read view, runs Reconcile outside any lock, and
// applies the plan in a state-engine Update only if the state is still the
// one the input came from (compare-and-swap on the records' identity and
// the groups' versions; otherwise it plans again inside the Update), so a
// plan always meets exactly the state it was computed from. It assigns task
// ids and formats the task-list events with the helpers in events.go.
//
// Task scale-in protection is the rule that shapes everything here: the plan
// never stops a task whose protection is unexpired on scale-in, on a
// deployment, on instance draining, or when the service itself is DRAINING.
package scheduler

// Decisions where DESIGN.md and the ECS sources are silent (to be copied to
// docs/ by whoever owns it):
//
//   - Protection event N is the number of protected tasks the deployment (task
//     set) keeps, not the shortfall: the text reads "N tasks under protection",
//     AWS's demo shows the protected count, and DEPLOYMENT_BLOCKED compares the
//     same count with the desired count. Plan.BlockedBy also carries the
//     shortfall. Plan.Blocked is the sum of N.
//   - The event is reported when protection alone holds a deployment above its
//     target: every unprotected candidate is stopped or gone. While
//     minimumHealthyPercent is still pacing a rollout it is not reported yet,
//     but RequeueAfter already points at the earliest blocking expiry.
//   - Cause keys: "protection-blocked/<deployment>/<N>", "no-container-instance",
//     "deployment-configuration", "steady-state". Memory keeps only causes that
//     hold in this pass; unknown keys are dropped.
//   - Victim classes: PENDING, then RUNNING but not yet healthy (UNKNOWN with a
//     health check), then healthy. Within a class the AZ and instance counts are
//     re-evaluated after every pick (keeps AZs balanced); ties: AZ name,
//     instance id, newest CreatedAt, task id.
//   - Healthy = RUNNING, not UNHEALTHY, and HEALTHY if the deployment has a
//     health check. ECS's 40 s settle time without a health check is not
//     modelled.
//   - UNHEALTHY RUNNING tasks are replaced even when protected (protection
//     covers scale-in and deployments). Start-first keeps the unhealthy task
//     while a replacement is pending; old deployments' unhealthy tasks go at
//     once.
//   - Protected tasks on DRAINING instances stay until released or expired
//     (beyond ECS). Unprotected ones are replaced start-first within
//     minimumHealthyPercent, before old deployments take the healthy budget.
//   - A FAILED PRIMARY without rollback freezes the rollout: no starts, and the
//     older deployments keep their tasks. Rollback makes the newest COMPLETED
//     deployment PRIMARY in the same pass (Plan.Rollback, Plan.Deployments).
//     FailedTasks is the control plane's; the breaker only reads it.
//   - Tasks on gone or disconnected instances are neither counted nor stopped.
//     Tasks of a deployment the service does not list are replaced (target 0).
//   - MaximumPercent <= 0 reads as 200; MinimumHealthyPercent < 0 as 100 and
//     above 100 as 100. A maximumPercent under 100 caps the service below its
//     desired count (floor(desired*max/100) is a hard ceiling).
//   - "No container instance" is also reported when instances exist but none
//     is connected and ACTIVE; placement has no resource model.
//   - Stopped events always use "has stopped N running tasks", pending
//     victims included.
//   - Plan.Deployments reports every deployment that is not INACTIVE on every
//     pass, with the counts observed in the input.
//   - Start throttling is the scheduler's: with Service.LastFailedStart and
//     the PRIMARY's FailedTasks (both kept by the control plane), starts wait
//     ThrottleDelay after the last failure once ThrottleAfter starts failed in
//     a row; the event is held like any other repeatable cause. A pass that
//     rolls back is not throttled.
//   - A service keeps its newest KeepInactiveDeployments INACTIVE deployments
//     (rollback targets); Plan.Forget names the others. A DRAINING service
//     with no task left at all is Plan.Inactive.
//   - Every text the scheduler's decisions produce is in events.go: the
//     events (the task-list ones are formatted by the control plane, which
//     knows the new task ids) and the stoppedReason of each Stop.
