package scheduler

import "time"

// Service statuses.
const (
	ServiceActive   = "ACTIVE"
	ServiceDraining = "DRAINING"
)

// Deployment statuses and rollout states.
const (
	DeploymentPrimary  = "PRIMARY"
	DeploymentActive   = "ACTIVE"
	DeploymentInactive = "INACTIVE"

	RolloutInProgress = "IN_PROGRESS"
	RolloutCompleted  = "COMPLETED"
	RolloutFailed     = "FAILED"
)

// Task statuses (lastStatus and desiredStatus) and health statuses.
const (
	StatusProvisioning   = "PROVISIONING"
	StatusPending        = "PENDING"
	StatusActivating     = "ACTIVATING"
	StatusRunning        = "RUNNING"
	StatusDeactivating   = "DEACTIVATING"
	StatusStopping       = "STOPPING"
	StatusDeprovisioning = "DEPROVISIONING"
	StatusStopped        = "STOPPED"

	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
	HealthUnknown   = "UNKNOWN"
)

// Container instance statuses.
const (
	InstanceActive   = "ACTIVE"
	InstanceDraining = "DRAINING"
)

// Deployment configuration defaults for REPLICA services (ECS's).
const (
	DefaultMinimumHealthyPercent = 100
	DefaultMaximumPercent        = 200
)

// EventRepeat is how long a service event is suppressed while its cause
// persists (ECS: "duplicate event messages are omitted until either the cause
// is resolved or six hours passes").
const EventRepeat = 6 * time.Hour

// Input is everything Reconcile looks at. It is never modified.
type Input struct {
	Now     time.Time
	Service Service
	// Tasks are all tasks of the service that are not STOPPED yet: desired
	// RUNNING, or desired STOPPED but still on their way down.
	Tasks []Task
	// Instances are the cluster's container instances.
	Instances []Instance
	// Events holds the causes already reported (see EventMemory).
	Events EventMemory
}

// Service is the part of an ECS service the reconciler needs.
type Service struct {
	Name   string
	Status string // ACTIVE | DRAINING (DRAINING = being deleted: target 0 for everything)
	// DesiredCount is the service's desired count (negative is read as 0).
	DesiredCount int
	// MinimumHealthyPercent is used as given (0 is a valid value); the control
	// plane fills in DefaultMinimumHealthyPercent. A negative value reads as
	// the default, and values above 100 read as 100.
	MinimumHealthyPercent int
	// MaximumPercent is used as given; 0 or less reads as DefaultMaximumPercent.
	MaximumPercent int
	// Deployments: exactly one PRIMARY (the newest), zero or more ACTIVE
	// (older, being replaced), and any number of INACTIVE ones (history, used
	// only to find a rollback target).
	Deployments    []Deployment
	CircuitBreaker struct{ Enable, Rollback bool }
	// LastFailedStart is when a task of the service last failed to start
	// (zero: never); with the PRIMARY's FailedTasks it drives start
	// throttling.
	LastFailedStart time.Time
}

// Deployment is one ECS deployment (rolling update "task set") of the service.
type Deployment struct {
	ID             string // "ecs-svc/<19 digits>"
	Status         string // PRIMARY | ACTIVE | INACTIVE
	RolloutState   string // IN_PROGRESS | COMPLETED | FAILED ("" reads as IN_PROGRESS)
	TaskDefinition string
	CreatedAt      time.Time
	// FailedTasks counts tasks of this deployment that failed to start; the
	// control plane increments it.
	FailedTasks int
	// HasHealthCheck: the task definition defines a container healthCheck, so
	// a task counts as healthy only once its health is HEALTHY.
	HasHealthCheck bool
}

// Task is one task of the service.
type Task struct {
	ID           string
	DeploymentID string // startedBy
	Instance     string // container instance id ("" if not placed yet)
	AZ           string // availability-zone attribute of its instance
	// LastStatus: PROVISIONING | PENDING | ACTIVATING | RUNNING | DEACTIVATING | STOPPING | DEPROVISIONING.
	LastStatus string
	// DesiredStatus: RUNNING | STOPPED. A task with desired STOPPED is already
	// being stopped: it is never stopped again and does not count as running
	// toward the desired count, but it does count toward maximumPercent until
	// it is gone.
	DesiredStatus string
	Health        string // HEALTHY | UNHEALTHY | UNKNOWN
	// ProtectedUntil is the expiry of the task's scale-in protection; the task
	// is protected iff ProtectedUntil.After(Now). Zero = not protected.
	ProtectedUntil       time.Time
	CreatedAt, StartedAt time.Time
}

// Protected reports whether the task's scale-in protection is live at now.
// Protection ends exactly at its expiry instant.
func (t *Task) Protected(now time.Time) bool { return t.ProtectedUntil.After(now) }

// Instance is one container instance of the cluster.
type Instance struct {
	ID        string
	AZ        string
	Status    string // ACTIVE | DRAINING
	Connected bool
}

// EventMemory maps a cause key to the time its event was last emitted. The
// reconciler returns the new memory in every Plan; the control plane stores it
// and passes it back next time.
type EventMemory map[string]time.Time

// Plan is what Reconcile decides. The control plane applies it atomically.
type Plan struct {
	// Start lists tasks to create (one entry per task), in placement order.
	Start []Placement
	// Stop lists tasks to stop (desired STOPPED, stopCode ServiceSchedulerInitiated).
	Stop []Stop
	// Events lists the service events to record, in the order they happened.
	Events []Event
	// Deployments holds the state and counts of every deployment that is not
	// INACTIVE in the input (and of any that changes status). Counts are those
	// observed in the input, before the plan is applied.
	Deployments []DeploymentChange
	// Rollback is set when the circuit breaker rolled the service back. The
	// status changes it implies are already in Deployments.
	Rollback *Rollback
	// EventMemory is the new memory: causes that still hold, with the time
	// their event was last emitted. Resolved causes are dropped so that a
	// recurrence is reported at once.
	EventMemory EventMemory
	// RequeueAfter is how long until a timed change would alter the plan: the
	// earliest expiry of a protection that is holding a task the scheduler
	// wants to stop, or the next six-hourly repeat of an event. 0 = nothing
	// timed; the control plane still reconciles on every change.
	RequeueAfter time.Duration
	// Blocked is the number of protected tasks blocking a scale-in now (the
	// sum of N over the protection events' causes); 0 = none.
	Blocked int
	// BlockedBy details Blocked per deployment (task set).
	BlockedBy []Blocked
	// Steady reports that the service is in a steady state: one deployment,
	// running == desired, nothing pending or stopping, all healthy, nothing on
	// a draining instance, and nothing to do. A DRAINING service is steady once
	// it has no tasks left.
	Steady bool
	// Inactive reports that a DRAINING service has no task left at all: the
	// control plane marks it INACTIVE.
	Inactive bool
	// ProtectionInert reports that no change of protection alone can change
	// this plan: no deployment has more tasks than its target (so nothing is
	// a scale-in candidate that protection could hold) and no task sits on a
	// DRAINING instance. The control plane need not reconcile the service
	// again when only a protection changes.
	ProtectionInert bool
	// Forget lists INACTIVE deployments the service no longer keeps: all but
	// the newest KeepInactiveDeployments (the circuit breaker rolls back to
	// the newest COMPLETED one, so a few are kept).
	Forget []string
}

// KeepInactiveDeployments is how many INACTIVE deployments a service keeps.
const KeepInactiveDeployments = 5

// Empty reports whether the plan starts and stops nothing.
func (p Plan) Empty() bool { return len(p.Start) == 0 && len(p.Stop) == 0 }

// Placement is one task to start.
type Placement struct {
	DeploymentID string // the task's startedBy
	Instance     string
	AZ           string
}

// StopCause says why the scheduler stops a task.
type StopCause int

const (
	// StopScaleIn: more tasks than the deployment's target (desired count
	// lowered, or an old deployment being replaced).
	StopScaleIn StopCause = iota
	// StopUnhealthy: a RUNNING task reported UNHEALTHY is being replaced.
	StopUnhealthy
	// StopInstanceDraining: the task's container instance is DRAINING.
	StopInstanceDraining
	// StopServiceDraining: the service is being deleted.
	StopServiceDraining
)

var stopCauseNames = [...]string{"scale-in", "unhealthy", "instance-draining", "service-draining"}

func (c StopCause) String() string {
	if int(c) < len(stopCauseNames) {
		return stopCauseNames[c]
	}
	return "unknown"
}

// Stop is one task to stop.
type Stop struct {
	TaskID string
	// DeploymentID is the deployment on whose behalf the task is stopped: the
	// PRIMARY deployment, named in the stoppedReason.
	DeploymentID string
	Cause        StopCause
	// Reason is the task's stoppedReason (ECS's text): "Scaling activity
	// initiated by (deployment ecs-svc/ID)", or UnhealthyStoppedReason.
	Reason string
}

// DeploymentChange is the new state and counts of one deployment.
type DeploymentChange struct {
	ID                 string
	Status             string
	RolloutState       string
	RolloutStateReason string // set only when RolloutState changes
	DesiredCount       int
	RunningCount       int
	PendingCount       int
	FailedTasks        int
}

// Rollback says the circuit breaker rolled the service back from a failed
// deployment to the last COMPLETED one.
type Rollback struct {
	From           string // the failed deployment
	To             string // the deployment that is PRIMARY again
	TaskDefinition string // To's task definition
}

// Blocked describes one deployment whose scale-in is blocked by protection.
type Blocked struct {
	DeploymentID string
	// Protected is the number of protected tasks of the deployment that are
	// kept (the N of the event).
	Protected int
	// Shortfall is how many more tasks the scheduler would stop if they were
	// not protected.
	Shortfall int
	// Expires is the earliest expiry among those protected tasks.
	Expires time.Time
}
