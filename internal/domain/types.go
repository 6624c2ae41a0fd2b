// Package domain holds holdfast's resource types, their ARNs, validation and
// errors. It imports only the standard library. The JSON field names of the
// exported structs are ECS's wire names, so that the API layer can send them
// as they are; fields that ECS does not have live in the Internal structs,
// which the API layer strips before answering.
package domain

import (
	"encoding/json"
	"time"
)

// Task lifecycle states (lastStatus / desiredStatus).
const (
	StatusProvisioning   = "PROVISIONING"
	StatusPending        = "PENDING"
	StatusActivating     = "ACTIVATING"
	StatusRunning        = "RUNNING"
	StatusDeactivating   = "DEACTIVATING"
	StatusStopping       = "STOPPING"
	StatusDeprovisioning = "DEPROVISIONING"
	StatusStopped        = "STOPPED"
)

// LifecycleOrder ranks task states so that status reports only move forward.
var LifecycleOrder = map[string]int{
	StatusProvisioning: 0, StatusPending: 1, StatusActivating: 2, StatusRunning: 3,
	StatusDeactivating: 4, StatusStopping: 5, StatusDeprovisioning: 6, StatusStopped: 7,
}

// Stop codes (TaskStopCode).
const (
	StopTaskFailedToStart         = "TaskFailedToStart"
	StopEssentialContainerExited  = "EssentialContainerExited"
	StopUserInitiated             = "UserInitiated"
	StopServiceSchedulerInitiated = "ServiceSchedulerInitiated"
	StopInfrastructureHealth      = "InfrastructureHealth"
)

// Resource statuses.
const (
	Active    = "ACTIVE"
	Inactive  = "INACTIVE"
	Draining  = "DRAINING"
	Primary   = "PRIMARY"
	Healthy   = "HEALTHY"
	Unhealthy = "UNHEALTHY"
	Unknown   = "UNKNOWN"

	RolloutInProgress = "IN_PROGRESS"
	RolloutCompleted  = "COMPLETED"
	RolloutFailed     = "FAILED"
)

// Protection limits (minutes).
const (
	ProtectionDefaultMinutes = 120
	ProtectionMaxMinutes     = 2880
	MaxEvents                = 100
)

// KeyValuePair is ECS's {name, value}.
type KeyValuePair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Tag is ECS's {key, value}.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Attribute is a container-instance attribute.
type Attribute struct {
	Name       string  `json:"name"`
	Value      *string `json:"value,omitempty"`
	TargetType string  `json:"targetType,omitempty"`
	TargetID   string  `json:"targetId,omitempty"`
}

// Cluster is an ECS cluster. Counts are filled in when it is described.
type Cluster struct {
	ClusterARN                        string          `json:"clusterArn"`
	ClusterName                       string          `json:"clusterName"`
	Status                            string          `json:"status"`
	RegisteredContainerInstancesCount int             `json:"registeredContainerInstancesCount"`
	RunningTasksCount                 int             `json:"runningTasksCount"`
	PendingTasksCount                 int             `json:"pendingTasksCount"`
	ActiveServicesCount               int             `json:"activeServicesCount"`
	Statistics                        []KeyValuePair  `json:"statistics"`
	Tags                              []Tag           `json:"tags,omitempty"`
	Settings                          json.RawMessage `json:"settings,omitempty"`
	CapacityProviders                 []string        `json:"capacityProviders"`
	DefaultCapacityProviderStrategy   []string        `json:"defaultCapacityProviderStrategy"`
}

// HealthCheck is a container health check.
type HealthCheck struct {
	Command     []string `json:"command"`
	Interval    *int     `json:"interval,omitempty"`
	Timeout     *int     `json:"timeout,omitempty"`
	Retries     *int     `json:"retries,omitempty"`
	StartPeriod *int     `json:"startPeriod,omitempty"`
}

// ContainerDefinition is the part of a container definition holdfast uses,
// plus the commonly sent fields it keeps and echoes back.
type ContainerDefinition struct {
	Name              string            `json:"name"`
	Image             string            `json:"image"`
	CPU               int               `json:"cpu"`
	Memory            *int              `json:"memory,omitempty"`
	MemoryReservation *int              `json:"memoryReservation,omitempty"`
	Essential         *bool             `json:"essential,omitempty"`
	EntryPoint        []string          `json:"entryPoint,omitempty"`
	Command           []string          `json:"command,omitempty"`
	Environment       []KeyValuePair    `json:"environment"`
	WorkingDirectory  string            `json:"workingDirectory,omitempty"`
	StopTimeout       *int              `json:"stopTimeout,omitempty"`
	StartTimeout      *int              `json:"startTimeout,omitempty"`
	HealthCheck       *HealthCheck      `json:"healthCheck,omitempty"`
	User              string            `json:"user,omitempty"`
	DockerLabels      map[string]string `json:"dockerLabels,omitempty"`
	PortMappings      json.RawMessage   `json:"portMappings,omitempty"`
	LogConfiguration  json.RawMessage   `json:"logConfiguration,omitempty"`
	MountPoints       json.RawMessage   `json:"mountPoints,omitempty"`
	VolumesFrom       json.RawMessage   `json:"volumesFrom,omitempty"`
	Secrets           json.RawMessage   `json:"secrets,omitempty"`
	DependsOn         json.RawMessage   `json:"dependsOn,omitempty"`
	Ulimits           json.RawMessage   `json:"ulimits,omitempty"`
	LinuxParameters   json.RawMessage   `json:"linuxParameters,omitempty"`
}

// IsEssential reports whether the container is essential (the default).
func (c ContainerDefinition) IsEssential() bool { return c.Essential == nil || *c.Essential }

// TaskDefinition is one revision of a task definition family.
type TaskDefinition struct {
	TaskDefinitionARN       string                `json:"taskDefinitionArn"`
	ContainerDefinitions    []ContainerDefinition `json:"containerDefinitions"`
	Family                  string                `json:"family"`
	TaskRoleARN             string                `json:"taskRoleArn,omitempty"`
	ExecutionRoleARN        string                `json:"executionRoleArn,omitempty"`
	NetworkMode             string                `json:"networkMode,omitempty"`
	Revision                int                   `json:"revision"`
	Volumes                 json.RawMessage       `json:"volumes,omitempty"`
	Status                  string                `json:"status"`
	RequiresAttributes      []Attribute           `json:"requiresAttributes,omitempty"`
	PlacementConstraints    json.RawMessage       `json:"placementConstraints,omitempty"`
	Compatibilities         []string              `json:"compatibilities"`
	RequiresCompatibilities []string              `json:"requiresCompatibilities,omitempty"`
	CPU                     string                `json:"cpu,omitempty"`
	Memory                  string                `json:"memory,omitempty"`
	PIDMode                 string                `json:"pidMode,omitempty"`
	IPCMode                 string                `json:"ipcMode,omitempty"`
	RegisteredAt            *Timestamp            `json:"registeredAt,omitempty"`
	DeregisteredAt          *Timestamp            `json:"deregisteredAt,omitempty"`
	RegisteredBy            string                `json:"registeredBy,omitempty"`
	// Tags are stored with the revision; ECS returns them beside the task
	// definition, not in it (see control's tdView).
	Tags []Tag `json:"tags,omitempty"`
}

// HasHealthCheck reports whether any essential container defines a health
// check: only those decide the task's healthStatus (see TaskHealth), so
// only then does a task have to become HEALTHY to count as healthy.
func (td *TaskDefinition) HasHealthCheck() bool {
	for _, c := range td.ContainerDefinitions {
		if c.IsEssential() && c.HealthCheck.Enabled() {
			return true
		}
	}
	return false
}

// CircuitBreaker is deploymentConfiguration.deploymentCircuitBreaker.
type CircuitBreaker struct {
	Enable   bool `json:"enable"`
	Rollback bool `json:"rollback"`
}

// DeploymentConfiguration holds the rolling-update bounds.
type DeploymentConfiguration struct {
	DeploymentCircuitBreaker *CircuitBreaker `json:"deploymentCircuitBreaker,omitempty"`
	MaximumPercent           *int            `json:"maximumPercent,omitempty"`
	MinimumHealthyPercent    *int            `json:"minimumHealthyPercent,omitempty"`
}

// Deployment is one of a service's deployments ("ecs-svc/<19 digits>").
type Deployment struct {
	ID                 string     `json:"id"`
	Status             string     `json:"status"`
	TaskDefinition     string     `json:"taskDefinition"`
	DesiredCount       int        `json:"desiredCount"`
	PendingCount       int        `json:"pendingCount"`
	RunningCount       int        `json:"runningCount"`
	FailedTasks        int        `json:"failedTasks"`
	CreatedAt          *Timestamp `json:"createdAt,omitempty"`
	UpdatedAt          *Timestamp `json:"updatedAt,omitempty"`
	LaunchType         string     `json:"launchType,omitempty"`
	RolloutState       string     `json:"rolloutState,omitempty"`
	RolloutStateReason string     `json:"rolloutStateReason,omitempty"`
}

// ServiceEvent is one entry of Service.events.
type ServiceEvent struct {
	ID        string     `json:"id"`
	CreatedAt *Timestamp `json:"createdAt"`
	Message   string     `json:"message"`
}

// DeploymentController is {type}.
type DeploymentController struct {
	Type string `json:"type"`
}

// Service is an ECS service.
type Service struct {
	ServiceARN                    string                  `json:"serviceArn"`
	ServiceName                   string                  `json:"serviceName"`
	ClusterARN                    string                  `json:"clusterArn"`
	LoadBalancers                 json.RawMessage         `json:"loadBalancers,omitempty"`
	ServiceRegistries             json.RawMessage         `json:"serviceRegistries,omitempty"`
	Status                        string                  `json:"status"`
	DesiredCount                  int                     `json:"desiredCount"`
	RunningCount                  int                     `json:"runningCount"`
	PendingCount                  int                     `json:"pendingCount"`
	LaunchType                    string                  `json:"launchType,omitempty"`
	TaskDefinition                string                  `json:"taskDefinition"`
	DeploymentConfiguration       DeploymentConfiguration `json:"deploymentConfiguration"`
	Deployments                   []Deployment            `json:"deployments"`
	Events                        []ServiceEvent          `json:"events"`
	CreatedAt                     *Timestamp              `json:"createdAt,omitempty"`
	CreatedBy                     string                  `json:"createdBy,omitempty"`
	PlacementConstraints          json.RawMessage         `json:"placementConstraints,omitempty"`
	PlacementStrategy             json.RawMessage         `json:"placementStrategy,omitempty"`
	NetworkConfiguration          json.RawMessage         `json:"networkConfiguration,omitempty"`
	HealthCheckGracePeriodSeconds *int                    `json:"healthCheckGracePeriodSeconds,omitempty"`
	SchedulingStrategy            string                  `json:"schedulingStrategy"`
	DeploymentController          *DeploymentController   `json:"deploymentController,omitempty"`
	Tags                          []Tag                   `json:"tags,omitempty"`
	EnableECSManagedTags          bool                    `json:"enableECSManagedTags"`
	PropagateTags                 string                  `json:"propagateTags,omitempty"`
	EnableExecuteCommand          bool                    `json:"enableExecuteCommand"`
	AvailabilityZoneRebalancing   string                  `json:"availabilityZoneRebalancing,omitempty"`
	Internal                      *ServiceInternal        `json:"holdfast,omitempty"`
}

// ServiceInternal is holdfast's own bookkeeping for a service.
type ServiceInternal struct {
	ClusterName string `json:"clusterName"`
	// EventMemory maps an event cause to when it was last emitted, for
	// ECS's "suppressed until the cause clears or six hours pass" rule.
	EventMemory map[string]time.Time `json:"eventMemory,omitempty"`
	ClientToken string               `json:"clientToken,omitempty"`
	EventSeq    uint64               `json:"eventSeq,omitempty"`
	// LastFailedStart is when a task of the service last failed to start
	// (start throttling, see docs/deployments.md).
	LastFailedStart time.Time `json:"lastFailedStart,omitzero"`
}

// MaxPercent returns the maximumPercent with its default.
func (s *Service) MaxPercent() int {
	if p := s.DeploymentConfiguration.MaximumPercent; p != nil {
		return *p
	}
	return 200
}

// MinHealthyPercent returns the minimumHealthyPercent with its default.
func (s *Service) MinHealthyPercent() int {
	if p := s.DeploymentConfiguration.MinimumHealthyPercent; p != nil {
		return *p
	}
	return 100
}

// Container is a container of a task.
type Container struct {
	ContainerARN string `json:"containerArn"`
	TaskARN      string `json:"taskArn"`
	Name         string `json:"name"`
	Image        string `json:"image"`
	RuntimeID    string `json:"runtimeId,omitempty"`
	LastStatus   string `json:"lastStatus"`
	ExitCode     *int   `json:"exitCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
	HealthStatus string `json:"healthStatus,omitempty"`
	CPU          string `json:"cpu,omitempty"`
	Memory       string `json:"memory,omitempty"`
}

// Task is a running or stopped task.
type Task struct {
	TaskARN              string          `json:"taskArn"`
	ClusterARN           string          `json:"clusterArn"`
	TaskDefinitionARN    string          `json:"taskDefinitionArn"`
	ContainerInstanceARN string          `json:"containerInstanceArn,omitempty"`
	AvailabilityZone     string          `json:"availabilityZone,omitempty"`
	Containers           []Container     `json:"containers"`
	CPU                  string          `json:"cpu,omitempty"`
	Memory               string          `json:"memory,omitempty"`
	CreatedAt            *Timestamp      `json:"createdAt,omitempty"`
	DesiredStatus        string          `json:"desiredStatus"`
	LastStatus           string          `json:"lastStatus"`
	HealthStatus         string          `json:"healthStatus,omitempty"`
	Group                string          `json:"group,omitempty"`
	StartedBy            string          `json:"startedBy,omitempty"`
	LaunchType           string          `json:"launchType,omitempty"`
	Connectivity         string          `json:"connectivity,omitempty"`
	PullStartedAt        *Timestamp      `json:"pullStartedAt,omitempty"`
	PullStoppedAt        *Timestamp      `json:"pullStoppedAt,omitempty"`
	StartedAt            *Timestamp      `json:"startedAt,omitempty"`
	StoppingAt           *Timestamp      `json:"stoppingAt,omitempty"`
	StoppedAt            *Timestamp      `json:"stoppedAt,omitempty"`
	ExecutionStoppedAt   *Timestamp      `json:"executionStoppedAt,omitempty"`
	StopCode             string          `json:"stopCode,omitempty"`
	StoppedReason        string          `json:"stoppedReason,omitempty"`
	Overrides            json.RawMessage `json:"overrides,omitempty"`
	Tags                 []Tag           `json:"tags,omitempty"`
	Version              int64           `json:"version"`
	Internal             *TaskInternal   `json:"holdfast,omitempty"`
}

// TaskInternal is holdfast's own bookkeeping for a task.
type TaskInternal struct {
	ID          string `json:"id"`
	ClusterName string `json:"clusterName"`
	ServiceName string `json:"serviceName,omitempty"`
	InstanceID  string `json:"instanceId,omitempty"`
}

// Protection is a task's scale-in protection, a record of its own beside
// the task (so that a protection call writes a few bytes, not the task).
// The task is protected until Until (exclusive): protection has lapsed
// once now >= Until. A task without a Protection is not protected.
type Protection struct {
	Cluster string
	TaskID  string
	// Service is the task's service. It is not stored: it comes from the
	// task (only service tasks can be protected).
	Service string
	Until   time.Time
}

// Live reports whether the protection holds at now.
func (p *Protection) Live(now time.Time) bool { return p != nil && now.Before(p.Until) }

// ContainerInstance is a registered agent.
type ContainerInstance struct {
	ContainerInstanceARN string            `json:"containerInstanceArn"`
	EC2InstanceID        string            `json:"ec2InstanceId"`
	Version              int64             `json:"version"`
	VersionInfo          json.RawMessage   `json:"versionInfo,omitempty"`
	RemainingResources   json.RawMessage   `json:"remainingResources,omitempty"`
	RegisteredResources  json.RawMessage   `json:"registeredResources,omitempty"`
	Status               string            `json:"status"`
	StatusReason         string            `json:"statusReason,omitempty"`
	AgentConnected       bool              `json:"agentConnected"`
	RunningTasksCount    int               `json:"runningTasksCount"`
	PendingTasksCount    int               `json:"pendingTasksCount"`
	Attributes           []Attribute       `json:"attributes"`
	RegisteredAt         *Timestamp        `json:"registeredAt,omitempty"`
	Tags                 []Tag             `json:"tags,omitempty"`
	Internal             *InstanceInternal `json:"holdfast,omitempty"`
}

// InstanceInternal is holdfast's own bookkeeping for a container instance.
type InstanceInternal struct {
	ID          string    `json:"id"`
	ClusterName string    `json:"clusterName"`
	LastSeen    time.Time `json:"lastSeen,omitzero"`
	// Agent is the ARN of the identity holdfast created for the
	// instance's agent ("" for an instance registered by the root): only
	// it may speak the agent protocol for the instance.
	Agent string `json:"agent,omitempty"`
}

// AZ returns the instance's availability-zone attribute ("" if none).
func (ci *ContainerInstance) AZ() string {
	for _, a := range ci.Attributes {
		if (a.Name == "availability-zone" || a.Name == "ecs.availability-zone") && a.Value != nil {
			return *a.Value
		}
	}
	return ""
}

// ProtectedTask is an entry of Get/UpdateTaskProtection's protectedTasks.
type ProtectedTask struct {
	TaskARN           string     `json:"taskArn"`
	ProtectionEnabled bool       `json:"protectionEnabled"`
	ExpirationDate    *Timestamp `json:"expirationDate,omitempty"`
}

// Failure is ECS's per-item failure {arn, reason, detail}.
type Failure struct {
	ARN    string `json:"arn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Failure reasons.
const (
	ReasonMissing           = "MISSING"
	ReasonTaskNotValid      = "TASK_NOT_VALID"
	ReasonDeploymentBlocked = "DEPLOYMENT_BLOCKED"
)

// ContainerHealth is the health status of one container for the task-health
// rule: its name and its healthStatus.
type ContainerHealth struct {
	Name   string
	Status string
}

// TaskHealth computes a task's healthStatus from its containers' as ECS
// documents it: UNHEALTHY if any essential container with a health check is
// UNHEALTHY; HEALTHY if every essential container with a health check is
// HEALTHY (and there is at least one); else UNKNOWN. Containers without a
// health check, and non-essential containers, do not count.
func TaskHealth(td *TaskDefinition, containers []ContainerHealth) string {
	if td == nil {
		return Unknown
	}
	status := map[string]string{}
	for _, c := range containers {
		status[c.Name] = c.Status
	}
	checked, healthy := 0, 0
	for _, cd := range td.ContainerDefinitions {
		if !cd.IsEssential() || !cd.HealthCheck.Enabled() {
			continue
		}
		checked++
		switch status[cd.Name] {
		case Unhealthy:
			return Unhealthy
		case Healthy:
			healthy++
		}
	}
	if checked > 0 && healthy == checked {
		return Healthy
	}
	return Unknown
}

// Enabled reports whether hc defines a check that runs: a command whose
// first element is not "NONE" (Docker's way of disabling a check).
func (hc *HealthCheck) Enabled() bool {
	return hc != nil && len(hc.Command) > 0 && hc.Command[0] != "NONE"
}

// TaskRoleARN is the task role a task runs with: its overrides'
// taskRoleArn (RunTask), else its task definition's ("" for none).
func TaskRoleARN(t *Task, td *TaskDefinition) string {
	if len(t.Overrides) > 0 {
		var o struct {
			TaskRoleArn string `json:"taskRoleArn"`
		}
		if json.Unmarshal(t.Overrides, &o) == nil && o.TaskRoleArn != "" {
			return o.TaskRoleArn
		}
	}
	if td == nil {
		return ""
	}
	return td.TaskRoleARN
}
