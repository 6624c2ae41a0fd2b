package ctr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
	"github.com/holdfast/holdfast/internal/domain"
)

// Runtime runs the containers of ECS tasks for one agent. All methods are
// safe for concurrent use. Ids are the caller's (Spec.ID); a runtime maps
// them to its own handles (a shim's directory, a Docker container id) and
// finds them again after a restart.
type Runtime interface {
	// Name is the runtime's name as the operator chooses it: "process",
	// "docker", "fake".
	Name() string

	// Adopt takes over every container that an earlier runtime over the
	// same state (an agent before its restart or kill -9) started and did
	// not Forget: running ones are watched again, ones that ended while no
	// one watched have their Exit queued. It returns what it took over;
	// each will produce exactly one Exited event. Call it once, before
	// Start. Containers it cannot make sense of are reported in the error
	// and left alone; the Infos returned are valid even then.
	Adopt(ctx context.Context) ([]Info, error)

	// SetupTask prepares what the containers of a task share, before the
	// first of them starts: under awsvpc, the task's network namespace.
	// It is idempotent (an agent resuming a start calls it again) and
	// returns the task's network as its containers will see it.
	SetupTask(ctx context.Context, task TaskSpec) (TaskNetwork, error)

	// Start starts one container and returns once its program runs (not
	// when it exits). A container that cannot be started yields an error
	// wrapping ErrCannotStart (or ErrCannotPull) whose text is the reason
	// ECS reports, "CannotStartContainerError: ...", and leaves no state
	// and no event behind. Cancelling ctx aborts a start in progress.
	// Starting an id the runtime still knows (not forgotten) fails with
	// ErrExists.
	Start(ctx context.Context, spec Spec) (Info, error)

	// Stop asks the container to stop: SIGTERM to its processes now,
	// SIGKILL once timeout has passed (timeout <= 0: the Spec's
	// StopTimeout). It does not block; the outcome arrives as an Exited
	// event. It is idempotent: a stop already under way, or an exited
	// container, is left as it is and nil is returned (a later call cannot
	// shorten the grace period). A Stop during Start applies as soon as
	// the program runs. An unknown id is ErrNotFound.
	Stop(id string, timeout time.Duration) error

	// Events delivers what happens to containers: health changes (zero or
	// more), then exactly one Exited event per container started or
	// adopted by this Runtime, in that order per container. Events not
	// consumed when the agent dies are not lost: until Forget, the next
	// runtime's Adopt reports the exit again, so across restarts delivery
	// is at least once. The channel is never closed.
	Events() <-chan Event

	// Forget releases the state of an exited container once the caller has
	// durably recorded its exit. The log at Spec.LogPath is the caller's
	// and is kept. Forgetting an id the runtime does not know and has no
	// state for is a no-op; a container that has not exited is
	// ErrNotExited.
	Forget(id string) error

	// TeardownTask releases what SetupTask made, once every container of
	// the task has exited. Idempotent; an unknown task is not an error.
	TeardownTask(ctx context.Context, taskID string) error

	// Logs streams the container's combined stdout and stderr in write
	// order, from opts.Offset (a position in its output; what was rotated
	// away under Spec.LogLimits is skipped, and the stream's Offset says
	// where it starts). With opts.Follow it keeps streaming, across
	// rotations, until the container has exited and everything it wrote
	// was read, or ctx ends. An id the runtime does not know (never
	// started, or forgotten) is ErrNotFound; the log is then at the Spec's
	// LogPath, in the layout of package ctr/logfile, where every runtime
	// leaves it by the time the Exited event is delivered.
	Logs(ctx context.Context, id string, opts LogOptions) (LogReader, error)

	// Stats samples the resource use of a running container; a container
	// that is not running is ErrNotRunning, an unknown id ErrNotFound.
	Stats(ctx context.Context, id string) (Stats, error)

	// Close detaches the runtime from its containers, as an agent shutdown
	// does: nothing is stopped, and events stop being delivered (the next
	// runtime's Adopt reports them). When Close returns, every goroutine of
	// the runtime has ended except those that wait on processes the agent
	// itself started (the process runtime reaps its shims when they exit)
	// and the timers of stops already under way (their SIGKILL escalation).
	Close() error
}

// Errors of every Runtime. Callers match them with errors.Is.
var (
	// ErrCannotStart wraps every failure to start a container's program
	// (binary not found, bad working directory, bad configuration). Its
	// text is ECS's reason prefix, so err.Error() reads
	// "CannotStartContainerError: <detail>".
	ErrCannotStart = errors.New("CannotStartContainerError")
	// ErrCannotPull wraps a failed image pull:
	// "CannotPullContainerError: <the daemon's message>".
	ErrCannotPull = errors.New("CannotPullContainerError")
	// ErrNotFound is an id the runtime does not know.
	ErrNotFound = errors.New("container not found")
	// ErrExists is a Start for an id the runtime knows: running, or whose
	// state has not been forgotten yet.
	ErrExists = errors.New("container already exists")
	// ErrNotExited is a Forget for a container that has not exited.
	ErrNotExited = errors.New("container has not exited")
	// ErrNotRunning is Stats for a container that is not running.
	ErrNotRunning = errors.New("container is not running")
	// ErrStateInUse means another runtime (another agent) holds the state.
	ErrStateInUse = errors.New("runtime state is in use by another agent")
	// ErrClosed is any call on a closed runtime.
	ErrClosed = errors.New("runtime is closed")
)

// DefaultStopTimeout is ECS's default stopTimeout: the grace period between
// SIGTERM and SIGKILL when neither Stop nor the Spec gives one.
const DefaultStopTimeout = 30 * time.Second

// TaskSpec is what the containers of one task share.
type TaskSpec struct {
	// ID is the task's id (the last part of its ARN).
	ID      string
	ARN     string
	Cluster string
	// Definition is the task definition: family and revision (Docker's
	// com.amazonaws.ecs.* labels), networkMode, task-level cpu and memory,
	// volumes.
	Definition *domain.TaskDefinition
}

// NetworkMode returns the task definition's networkMode, "bridge" when it
// has none (ECS's default on Linux).
func (t TaskSpec) NetworkMode() string {
	if t.Definition == nil || t.Definition.NetworkMode == "" {
		return "bridge"
	}
	return t.Definition.NetworkMode
}

// TaskNetwork is a task's network as its containers see it.
type TaskNetwork struct {
	// Mode is the network mode in effect: "host", "bridge", "awsvpc" or
	// "none". The process runtime always runs tasks in "host".
	Mode string `json:"mode"`
	// IPv4Addresses are the task's own addresses (awsvpc), none in host
	// mode.
	IPv4Addresses []string `json:"ipv4Addresses,omitempty"`
}

// Spec is one container to run.
type Spec struct {
	// ID is the caller's unique id of the container, for example
	// "<taskid>-<containerName>": 1-255 characters from [A-Za-z0-9._-],
	// not starting with a dot (see ValidateID).
	ID string
	// Task is the task the container belongs to; SetupTask has been
	// called for it.
	Task TaskSpec
	// Container is the container's definition. A runtime honours what it
	// can run (the process runtime: entryPoint and command as argv,
	// workingDirectory, healthCheck; image is kept, not pulled) and ignores
	// its environment, which Env replaces.
	Container domain.ContainerDefinition
	// Env is the container's environment, KEY=VALUE: the definition's
	// environment plus the variables the agent injects (ECS_AGENT_URI, ...).
	// A runtime adds only its own base under it: the image's environment
	// (Docker), or the agent's PATH and HOME where configured (process).
	Env []string
	// LogPath is the file that keeps the container's combined stdout and
	// stderr, in write order, in the layout of package ctr/logfile (older
	// output in parts next to it); it stays after Forget. The runtime
	// creates its directory; the files are private to the agent (0600).
	LogPath string
	// LogLimits cap the container's log: the runtime rotates it so that
	// no more than LogLimits.Total() bytes of it are on disk at any time,
	// however fast the container writes (zero: no cap).
	LogLimits logfile.Limits
	// StopTimeout is the grace period Stop uses by default; 0 means
	// DefaultStopTimeout.
	StopTimeout time.Duration
}

// Info is what a runtime knows of a container it started or adopted.
type Info struct {
	ID string
	// PID is the container's main process on the host (0 if unknown).
	PID int
	// StartedAt is when its program started (zero if unknown).
	StartedAt time.Time
	// Health is the container's current health status (HEALTHY, UNHEALTHY,
	// UNKNOWN), "" when it has no health check.
	Health string
}

// EventType says what an Event reports.
type EventType int

const (
	// Exited: the container's program has ended; Event.Exit says how. The
	// last event of a container.
	Exited EventType = iota + 1
	// HealthChanged: the container's health check changed its verdict;
	// Event.Health is the new status.
	HealthChanged
)

// Event is something that happened to a container.
type Event struct {
	Type EventType
	// ID is Spec.ID.
	ID string
	// Exit is set for Exited.
	Exit Exit
	// Health is set for HealthChanged: domain.Healthy, domain.Unhealthy or
	// domain.Unknown.
	Health string
	// At is when it was observed.
	At time.Time
}

// Exit is how a container ended.
type Exit struct {
	// ExitCode is the program's exit status; for a program killed by a
	// signal it is 128+signal number, as Docker and ECS report it. It is
	// nil only when the outcome is unknown, and Reason then says why.
	ExitCode *int
	// Signal is the name of the signal that killed the program ("SIGTERM",
	// "SIGKILL"), or "".
	Signal string
	// Reason is empty for an ordinary exit and explains an abnormal one
	// (for example a shim that vanished, or a start abandoned by a dead
	// agent).
	Reason string
	// OOMKilled is set when the kernel killed the container for exceeding
	// its memory limit; the agent then reports ECS's reason
	// "OutOfMemoryError: Container killed due to memory usage".
	OOMKilled bool
}

// LogOptions tune Logs.
type LogOptions struct {
	// Follow keeps the stream open until the container has exited.
	Follow bool
	// Offset is where to start: a position in the container's output
	// (bytes it wrote since it started). A stream cut short resumes from
	// its Offset plus what was read.
	Offset int64
}

// LogReader is a stream of a container's log.
type LogReader interface {
	io.ReadCloser
	// Offset is the position of the stream's first byte in the
	// container's output: LogOptions.Offset, or later when the output
	// there was rotated away.
	Offset() int64
}

// Stats is one sample of a container's resource use.
type Stats struct {
	At time.Time
	// CPU is the CPU time (user and system) its processes have used since
	// it started.
	CPU time.Duration
	// MemoryBytes is the memory it uses now (resident set, or the cgroup's
	// usage).
	MemoryBytes uint64
	// MemoryLimitBytes is its memory limit, 0 when it has none.
	MemoryLimitBytes uint64
	// PIDs is the number of its processes.
	PIDs int
}

// ValidateID checks a Spec.ID: 1-255 characters from [A-Za-z0-9._-], not
// starting with a dot, so that it can name a file or a Docker container.
func ValidateID(id string) error {
	if id == "" || len(id) > 255 || id[0] == '.' {
		return fmt.Errorf("invalid container id %q", id)
	}
	for _, ch := range []byte(id) {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '.', ch == '_', ch == '-':
		default:
			return fmt.Errorf("invalid container id %q", id)
		}
	}
	return nil
}

// MergeEnv returns base with overrides applied: a KEY present in both takes
// the override's value at base's position, new keys follow in order, and
// later duplicates win. Entries without '=' or with an empty key are
// dropped.
func MergeEnv(base, overrides []string) []string {
	out := make([]string, 0, len(base)+len(overrides))
	idx := make(map[string]int, len(base)+len(overrides))
	add := func(kv string) {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		add(kv)
	}
	for _, kv := range overrides {
		add(kv)
	}
	return out
}
