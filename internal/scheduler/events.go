package scheduler

import (
	"strconv"
	"strings"
	"time"
)

// EventKind names a kind of service event.
type EventKind int

const (
	// EventTasksStarted: "(service NAME) has started N tasks: (task ID) ...".
	// The control plane formats it with StartedMessage once it has assigned
	// task ids; Event.Message is empty and Event.N is the number of tasks.
	EventTasksStarted EventKind = iota
	// EventTasksStopped: "(service NAME) has stopped N running tasks: ...".
	// Formatted by the control plane with StoppedMessage (ids are the plan's
	// Stop entries); Event.Message is empty.
	EventTasksStopped
	// EventProtectionBlocked: protected tasks block a scale-in.
	EventProtectionBlocked
	// EventNoContainerInstance: a task could not be placed.
	EventNoContainerInstance
	// EventDeploymentConfiguration: minimumHealthyPercent and maximumPercent
	// allow no progress.
	EventDeploymentConfiguration
	// EventDeploymentFailed: the circuit breaker tripped.
	EventDeploymentFailed
	// EventRollingBack: the circuit breaker rolls back.
	EventRollingBack
	// EventDeploymentCompleted: a deployment completed.
	EventDeploymentCompleted
	// EventSteadyState: the service reached a steady state.
	EventSteadyState
	// EventStartThrottled: tasks keep failing to start, so starts wait
	// (ECS's service throttle logic).
	EventStartThrottled
	// EventTaskFailedHealthChecks: a task is replaced because its container
	// health checks failed (one event per task, before EventTasksStopped).
	EventTaskFailedHealthChecks
)

var eventKindNames = [...]string{
	"TasksStarted", "TasksStopped", "ProtectionBlocked", "NoContainerInstance",
	"DeploymentConfiguration", "DeploymentFailed", "RollingBack",
	"DeploymentCompleted", "SteadyState", "StartThrottled", "TaskFailedHealthChecks",
}

func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one service event the plan asks the control plane to record.
type Event struct {
	// Cause identifies what the event reports. For repeatable events it is the
	// EventMemory key.
	Cause string
	Kind  EventKind
	// Message is the full text, except for EventTasksStarted and
	// EventTasksStopped, whose texts need the task ids.
	Message string
	// N is the task count the event reports (started, stopped, protected).
	N int
	// Replaced is, for EventTasksStarted, how many of the starts replace
	// tasks that are UNHEALTHY (ECS adds "Amazon ECS replaced N tasks due
	// to an unhealthy status.").
	Replaced int
	// DeploymentID is the deployment (task set) the event names, if any.
	DeploymentID string
	// TaskID is the task the event names, if any.
	TaskID string
}

// Cause keys of repeatable events (EventMemory keys).
const (
	causeNoInstance   = "no-container-instance"
	causeDeployConfig = "deployment-configuration"
	causeSteady       = "steady-state"
	causeThrottle     = "start-throttled"
	causeBlocked      = "protection-blocked/" // + deployment id + "/" + N
)

// ProtectionBlockedCause is the EventMemory key of the protection event for
// deployment id with n protected tasks. A different n is a different cause.
func ProtectionBlockedCause(deploymentID string, n int) string {
	return causeBlocked + deploymentID + "/" + strconv.Itoa(n)
}

func joinTasks(b *strings.Builder, ids []string) {
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("(task ")
		b.WriteString(id)
		b.WriteByte(')')
	}
}

// StartedMessage is ECS's "(service NAME) has started N tasks: (task ID) (task ID)."
func StartedMessage(service string, ids []string) string {
	var b strings.Builder
	b.WriteString("(service ")
	b.WriteString(service)
	b.WriteString(") has started ")
	b.WriteString(strconv.Itoa(len(ids)))
	b.WriteString(" tasks: ")
	joinTasks(&b, ids)
	b.WriteByte('.')
	return b.String()
}

// StoppedMessage is ECS's "(service NAME) has stopped N running tasks: (task ID) (task ID)."
func StoppedMessage(service string, ids []string) string {
	var b strings.Builder
	b.WriteString("(service ")
	b.WriteString(service)
	b.WriteString(") has stopped ")
	b.WriteString(strconv.Itoa(len(ids)))
	b.WriteString(" running tasks: ")
	joinTasks(&b, ids)
	b.WriteByte('.')
	return b.String()
}

// StartedReplacingMessage is StartedMessage followed, when some of the
// starts replace UNHEALTHY tasks, by ECS's " Amazon ECS replaced N tasks due
// to an unhealthy status."
func StartedReplacingMessage(service string, ids []string, replaced int) string {
	msg := StartedMessage(service, ids)
	if replaced > 0 {
		msg += " Amazon ECS replaced " + strconv.Itoa(replaced) + " tasks due to an unhealthy status."
	}
	return msg
}

// FailedHealthChecksMessage is ECS's "(service NAME) (task ID) failed
// container health checks."
func FailedHealthChecksMessage(service, taskID string) string {
	return "(service " + service + ") (task " + taskID + ") failed container health checks."
}

// UnableToStartMessage is ECS's throttling event "(service NAME) is unable
// to consistently start tasks successfully."
func UnableToStartMessage(service string) string {
	return "(service " + service + ") is unable to consistently start tasks successfully."
}

// ScalingStoppedReason is the stoppedReason of a task the scheduler stops
// for scale-in, a deployment or draining: "Scaling activity initiated by
// (deployment ecs-svc/ID)".
func ScalingStoppedReason(deploymentID string) string {
	return "Scaling activity initiated by (deployment " + deploymentID + ")"
}

// UnhealthyStoppedReason is ECS's stoppedReason for a task the service
// scheduler replaced because its container health checks failed.
const UnhealthyStoppedReason = "Task failed container health checks"

// ProtectionBlockedMessage is the event ECS emits when protected tasks keep a
// task set from scaling in, verbatim (users parse it):
// "(service NAME) was unable to reach steady state because (taskSet ecs-svc/ID)
// was unable to scale in due to (reason N tasks under protection)".
func ProtectionBlockedMessage(service, deploymentID string, n int) string {
	return "(service " + service + ") was unable to reach steady state because (taskSet " +
		deploymentID + ") was unable to scale in due to (reason " + strconv.Itoa(n) +
		" tasks under protection)"
}

// SteadyStateMessage is "(service NAME) has reached a steady state."
func SteadyStateMessage(service string) string {
	return "(service " + service + ") has reached a steady state."
}

// DeploymentCompletedMessage is "(service NAME) (deployment ecs-svc/ID) deployment completed."
func DeploymentCompletedMessage(service, deploymentID string) string {
	return "(service " + service + ") (deployment " + deploymentID + ") deployment completed."
}

// DeploymentFailedMessage is "(service NAME) (deployment ecs-svc/ID) deployment failed: tasks failed to start."
func DeploymentFailedMessage(service, deploymentID string) string {
	return "(service " + service + ") (deployment " + deploymentID + ") deployment failed: tasks failed to start."
}

// RollingBackMessage is "(service NAME) rolling back to deployment ecs-svc/ID."
func RollingBackMessage(service, deploymentID string) string {
	return "(service " + service + ") rolling back to deployment " + deploymentID + "."
}

// NoContainerInstanceMessage is ECS's placement failure when the cluster has
// no usable container instance.
func NoContainerInstanceMessage(service string) string {
	return "(service " + service + ") was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster."
}

// DeploymentConfigurationMessage is the event for a deployment that
// minimumHealthyPercent and maximumPercent leave no room to progress. The
// text is the one the ECS developer guide documents ("service (service-name)
// was unable to stop or start tasks during a deployment because of the
// service deployment configuration. ..."), with the "(service NAME)" prefix
// that ECS actually emits for its other events; no captured wire sample of
// this event was found.
func DeploymentConfigurationMessage(service string) string {
	return "(service " + service + ") was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
}

// eventLog collects the plan's events and the new event memory.
type eventLog struct {
	now     time.Time
	old     EventMemory
	mem     EventMemory
	events  []Event
	requeue time.Duration // earliest repeat, 0 = none
}

func newEventLog(now time.Time, old EventMemory) *eventLog {
	return &eventLog{now: now, old: old, mem: EventMemory{}}
}

// once records a one-shot event (a state transition that cannot recur
// without a new transition, so needs no memory).
func (l *eventLog) once(e Event) { l.events = append(l.events, e) }

// hold reports that cause e.Cause holds now: the event is emitted unless it
// was emitted less than EventRepeat ago, and the cause is kept in memory.
// Causes not held in a pass are forgotten.
func (l *eventLog) hold(e Event) {
	if _, dup := l.mem[e.Cause]; dup {
		return
	}
	if last, ok := l.old[e.Cause]; ok {
		if since := l.now.Sub(last); since < EventRepeat {
			l.mem[e.Cause] = last
			l.requeueIn(EventRepeat - since)
			return
		}
	}
	l.mem[e.Cause] = l.now
	l.events = append(l.events, e)
	l.requeueIn(EventRepeat)
}

func (l *eventLog) requeueIn(d time.Duration) {
	if d > 0 && (l.requeue == 0 || d < l.requeue) {
		l.requeue = d
	}
}
