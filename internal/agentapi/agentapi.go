// Package agentapi holds the wire types of the agent protocol: the messages
// that a node agent (internal/agent) and the control plane
// (internal/control) exchange over the control plane's AWS JSON 1.1
// endpoint. It is its own package so that the agent does not import the
// control plane, and the control plane does not import the agent.
//
// An agent registers with RegisterContainerInstance (an ECS operation),
// then keeps one long poll open (HoldfastAgentV1.Poll): it is both its
// heartbeat and the way it learns its desired tasks, answered at once when
// the instance's tasks changed after the revision the agent already has,
// else when they change or after WaitSeconds. Status changes go up with
// SubmitTaskStateChange (an ECS operation), with holdfast's extension
// containers[].healthStatus. docs/architecture.md ("The agent protocol")
// describes every call.
package agentapi

import (
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

// PollTarget is the X-Amz-Target of the agent's long poll.
const PollTarget = "HoldfastAgentV1.Poll"

// SubmitTaskStateChangeTarget is the X-Amz-Target of ECS's
// SubmitTaskStateChange, which holdfast's agent calls with its raw signed
// client so that it can send the containers' healthStatus (a holdfast
// extension of ContainerStateChange; SDK callers simply do not send it).
const SubmitTaskStateChangeTarget = "AmazonEC2ContainerServiceV20141113.SubmitTaskStateChange"

// PollInput is the agent's long-poll request.
type PollInput struct {
	Cluster              string `json:"cluster"`
	ContainerInstanceARN string `json:"containerInstanceArn"`
	KnownRevision        int64  `json:"knownRevision"`
	WaitSeconds          int    `json:"waitSeconds"`
}

// DesiredTask is one task an agent must run (or stop).
type DesiredTask struct {
	Task           *domain.Task           `json:"task"`
	ServiceName    string                 `json:"serviceName,omitempty"`
	TaskDefinition *domain.TaskDefinition `json:"taskDefinition"`
}

// PollOutput tells an agent what to run. TaskARNs lists every task assigned
// to the instance that is not STOPPED yet: the agent stops anything it runs
// that is not listed. Tasks carries the full record (with its task
// definition) of each listed task whose desired state changed after the
// agent's knownRevision, or of every listed task when Full is set (a new
// agent, or one that knows less than the control plane loaded at start).
type PollOutput struct {
	Revision       int64         `json:"revision"`
	InstanceStatus string        `json:"instanceStatus"`
	Full           bool          `json:"full"`
	TaskARNs       []string      `json:"taskArns"`
	Tasks          []DesiredTask `json:"tasks"`
}

// ContainerStateChange is one container's report in SubmitTaskStateChange.
type ContainerStateChange struct {
	ContainerName string `json:"containerName"`
	RuntimeID     string `json:"runtimeId"`
	ExitCode      *int   `json:"exitCode"`
	Reason        string `json:"reason"`
	Status        string `json:"status"`
	// HealthStatus is holdfast's extension: the container's health check
	// result (HEALTHY, UNHEALTHY or UNKNOWN); "" = unchanged.
	HealthStatus string `json:"healthStatus,omitempty"`
}

// SubmitTaskStateChangeInput is SubmitTaskStateChangeRequest.
type SubmitTaskStateChangeInput struct {
	Cluster            string                 `json:"cluster"`
	Task               string                 `json:"task"`
	Status             string                 `json:"status"`
	Reason             string                 `json:"reason"`
	Containers         []ContainerStateChange `json:"containers"`
	PullStartedAt      *domain.Timestamp      `json:"pullStartedAt"`
	PullStoppedAt      *domain.Timestamp      `json:"pullStoppedAt"`
	ExecutionStoppedAt *domain.Timestamp      `json:"executionStoppedAt"`
}

// AckOutput is SubmitTaskStateChangeResponse.
type AckOutput struct {
	Acknowledgment string `json:"acknowledgment"`
}

// TaskCredentialsTarget is the X-Amz-Target of the call an agent makes to
// get (and refresh) the credentials of a task's role.
const TaskCredentialsTarget = "HoldfastAgentV1.GetTaskCredentials"

// TaskCredentialsInput asks for the role credentials of a task placed on
// the caller's container instance.
type TaskCredentialsInput struct {
	Cluster              string `json:"cluster"`
	ContainerInstanceARN string `json:"containerInstanceArn"`
	TaskARN              string `json:"taskArn"`
}

// TaskCredentialsOutput is a session of the task's role, named after the
// task id, as ECS gives its agents.
type TaskCredentialsOutput struct {
	RoleARN         string    `json:"roleArn"`
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	SessionToken    string    `json:"sessionToken"`
	Expiration      time.Time `json:"expiration"`
}

// AgentCredentials are a container instance's own access key, which the
// control plane returns once, in the answer to the RegisterContainerInstance
// that created the instance's identity (as holdfastAgentCredentials): the
// agent keeps it and speaks the agent protocol with it from then on.
type AgentCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// RegisterOutput is RegisterContainerInstance's answer as the agent reads
// it: the ECS shape plus holdfast's extension.
type RegisterOutput struct {
	ContainerInstance struct {
		ContainerInstanceARN string `json:"containerInstanceArn"`
	} `json:"containerInstance"`
	AgentCredentials *AgentCredentials `json:"holdfastAgentCredentials,omitempty"`
}
