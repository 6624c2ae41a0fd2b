// Package process runs the containers of ECS tasks as host processes, each
// under a small supervisor process (the shim), so that the agent can be
// restarted, or killed with SIGKILL, without stopping its tasks or losing
// their exit codes. It implements the agent's runtime seam, ctr.Runtime,
// and passes its conformance suite (ctr/ctrtest).
//
// A container's argv is its entryPoint followed by its command (a first
// element without a slash is looked up in the PATH of its environment);
// image is kept but not read, so a definition with neither fails to start
// with CannotStartContainerError. The environment is Spec.Env over the
// agent variables named in Options.InheritEnv (the agent passes PATH and
// HOME); nothing else is inherited. A container without a workingDirectory
// runs in Options.WorkDir/<task id>/<container name>. Every task runs in
// the host's network ("host" mode).
//
// # Processes
//
// For every container the agent starts the shim (normally the holdfast
// binary re-executed as "holdfast shim <dir>") in a new session, so the shim
// outlives the agent and is re-parented to init (or the nearest subreaper)
// when the agent dies. The shim then:
//
//  1. takes an exclusive flock on <dir>/lock and keeps it for its whole life
//     (the lock is how an adopting agent tells a live shim from a dead one);
//  2. starts the real program with argv, environment and working directory
//     from <dir>/spec.json, stdin from /dev/null and stdout+stderr on
//     one pipe, which the shim copies into the container's log under its
//     size cap (package ctr/logfile: the log rotates, so a program that
//     writes without pause cannot fill the disk; the program never blocks
//     on its log, and output that cannot be written is dropped);
//  3. writes <dir>/state.json with its own and the program's pid and start
//     time (field 22 of /proc/<pid>/stat), and the wall-clock start time,
//     before it reaps the program, so the pid cannot have been reused while
//     the record is written;
//  4. reports "ok <pid> <starttime> <unix-ns>" (or the start error) on a
//     pipe the agent passed as fd 3, which is how Start learns the pid
//     without polling;
//  5. waits for the program, SIGKILLs whatever is left of its process group
//     (as Docker does when a container's main process exits), copies the
//     rest of its output (waiting at most a few seconds for a process that
//     left the group and still holds the pipe), writes <dir>/exit.json
//     atomically (temporary file, fsync, rename, fsync of the
//     directory) and exits.
//
// The program runs in its own process group (pgid = its pid), in the shim's
// session. The shim is deliberately not a member of that group: Stop
// signals the whole group, and a SIGKILL of a group that contained the shim
// would take the shim down with it and lose the exit code. The shim
// additionally catches SIGTERM, SIGINT, SIGHUP and SIGQUIT with
// signal.Notify (a caught signal reverts to its default in exec'd children,
// unlike an ignored one) and never forwards anything. The program gets
// PR_SET_PDEATHSIG=SIGKILL, so if the shim itself is killed the program does
// not linger unsupervised.
//
// # Exit detection
//
// The agent watches each shim through a pidfd registered with the Go
// netpoller (no thread, no polling), both for shims it started and for
// adopted ones; when the pidfd becomes readable it reads exit.json. On
// kernels without pidfd_open it falls back to Wait for its own shims and to
// probing the shim's lock every 50 ms for adopted ones. A shim the Runtime
// started is its child: after Close a goroutine still reaps it when it
// exits.
//
// # Health checks, logs, stats
//
// A container's healthCheck is probed by the agent's process (not the
// shim), with the container's environment and working directory, by the
// rules of ctr/health.go; each change of verdict is an event and is kept
// in health.json, so an adopting agent resumes from it. Logs reads the log
// files the shim writes, following them across rotations by polling until
// the container exits. Stats sums utime, stime and RSS from /proc over the
// container's process group; the runtime sets no limits, so an exit is
// never an OOM kill as far as it knows.
//
// # State directory
//
// Options.StateDir holds one directory per container, named by Spec.ID:
//
//	spec.json   what to run (written by the agent before the shim starts)
//	lock        flock held by the shim for its lifetime
//	state.json  pids and start times (written by the shim)
//	exit.json   the exit record (written by the shim, or by Adopt when a shim
//	            vanished without one)
//	health.json the last health verdict (written by the agent)
//	shim.log    the shim's own diagnostics
//
// and a file .runtime.lock that the Runtime holds with flock, so that two
// agents never manage the same directory. A container directory lives until
// Forget.
package process
