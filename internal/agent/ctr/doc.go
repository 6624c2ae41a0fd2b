// Package ctr is the agent's seam to a container runtime: the Runtime
// interface that the agent (internal/agent) drives, and that every runtime
// implements — the process runtime (internal/agent/runtime/process), the
// Docker runtime, and an in-memory fake for fast agent tests
// (internal/agent/runtime/fake). It holds only the contract and a few
// helpers that runtimes share (health check rules, MergeEnv); it imports
// the standard library, internal/domain and ctr/logfile (the on-disk layout
// of container logs, which the process runtime's shim binary links).
//
// # The model
//
// The agent decides, the runtime executes and observes. The agent keeps its
// own durable record of every task (what should run, what ran, how it
// ended), picks each container's id (Spec.ID, "<taskid>-<containerName>")
// and its log file (Spec.LogPath), builds its environment (Spec.Env, with
// the ECS variables it injects), and evaluates everything ECS defines at
// the task level: essential containers, dependsOn conditions, the task's
// status, stop reasons. A runtime runs one container per Start, and reports
// what happens to it on one channel (Events): health verdicts, then exactly
// one Exited event. Each task has one runner goroutine in the agent, which
// is the only caller of Start, Stop, Forget and the task calls for that
// task's containers.
//
// Lifecycle of one task, as the agent drives it:
//
//	SetupTask(task)            what its containers share (awsvpc: a network namespace)
//	Start(spec) per container  returns once the program runs; Info.PID, Info.StartedAt
//	  ... Events: HealthChanged*, Exited (exit code, signal, OOMKilled, reason)
//	Stop(id, stopTimeout)      SIGTERM now, SIGKILL after the timeout; non-blocking
//	TeardownTask(task)         once every container has exited
//	Forget(id) per container   once the exit is recorded (reported to the control plane)
//
// # Restarts
//
// Containers outlive the agent: Close detaches without stopping anything,
// and after a restart (or a kill -9) the next runtime's Adopt finds every
// container that was not forgotten, re-attaches to the running ones and
// re-delivers the exits of those that ended meanwhile, so an exit is never
// lost (delivery is at least once across restarts, exactly once per
// runtime). How a runtime finds its containers is its own business: the
// process runtime keeps a state directory per container (its shim's
// records); the Docker runtime labels its containers.
//
// # What differs between runtimes
//
// Networking (TaskNetwork: the process runtime always runs in "host" mode),
// images (the process runtime keeps Container.Image but does not read it),
// who runs health checks (the process runtime and the fake probe with
// ParseHealthCheck and HealthState; Docker runs them itself), resource
// limits and OOM kills (Exit.OOMKilled; never set by the process runtime,
// which sets no limits), and the environment a container starts from (the
// image's, or the agent's PATH and HOME). Everything else is the same
// contract, checked by one conformance suite, internal/agent/ctr/ctrtest,
// whose containers run the scripted program of internal/agent/ctr/workload.
package ctr
