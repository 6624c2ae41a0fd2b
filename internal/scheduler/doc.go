// Package scheduler holds holdfast's service reconciler: a pure function from
// the observed state of one service (its deployments, tasks, the cluster's
// container instances, the current time and the events already reported) to
// a Plan of tasks to start and stop, deployment state changes, service events
// and a requeue-after for the next timed recheck.
//
// The package imports only the standard library and owns its input types, so
// that it stays pure: it performs no I/O, never reads the wall clock, and
// returns the same plan for the same input. The control plane applies a plan
// atomically (compare-and-swap on the store revision), assigns task ids, and
// formats the task-list events with the helpers in events.go.
//
// Task scale-in protection is the rule that shapes everything here: the plan
// never stops a task whose protection is unexpired on scale-in, on a
// deployment, on instance draining, or when the service itself is DRAINING.
package scheduler
