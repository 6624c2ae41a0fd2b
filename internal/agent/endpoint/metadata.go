package endpoint

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// TaskMetadata is a task as the task metadata endpoint v4 shows it
// (${ECS_CONTAINER_METADATA_URI_V4}/task). Field names and order are the ECS
// agent's. The agent fills it; empty Cluster and LaunchType are answered as
// Config.Cluster and "EC2", an empty container Type as "NORMAL". Times are
// rendered in UTC.
type TaskMetadata struct {
	Cluster            string     `json:"Cluster"`
	TaskARN            string     `json:"TaskARN"`
	Family             string     `json:"Family"`
	Revision           string     `json:"Revision"`
	DesiredStatus      string     `json:"DesiredStatus,omitempty"`
	KnownStatus        string     `json:"KnownStatus"`
	Limits             *Limits    `json:"Limits,omitempty"`
	PullStartedAt      *time.Time `json:"PullStartedAt,omitempty"`
	PullStoppedAt      *time.Time `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt *time.Time `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone   string     `json:"AvailabilityZone,omitempty"`
	LaunchType         string     `json:"LaunchType,omitempty"`
	// Containers lists every container of the task.
	Containers  []ContainerMetadata `json:"Containers,omitempty"`
	VPCID       string              `json:"VPCID,omitempty"`
	ServiceName string              `json:"ServiceName,omitempty"`
	// FaultInjectionEnabled is always present in current ECS agents; holdfast
	// has no fault injection, so it is normally false.
	FaultInjectionEnabled bool `json:"FaultInjectionEnabled"`
}

// ContainerMetadata is a container as the task metadata endpoint v4 shows it
// (${ECS_CONTAINER_METADATA_URI_V4}).
type ContainerMetadata struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []Port            `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	// ExitCode is set once the container has exited.
	ExitCode     *int              `json:"ExitCode,omitempty"`
	Limits       Limits            `json:"Limits"`
	CreatedAt    *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt    *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt   *time.Time        `json:"FinishedAt,omitempty"`
	Type         string            `json:"Type"`
	LogDriver    string            `json:"LogDriver,omitempty"`
	LogOptions   map[string]string `json:"LogOptions,omitempty"`
	ContainerARN string            `json:"ContainerARN,omitempty"`
	Networks     []Network         `json:"Networks,omitempty"`
	RestartCount *int              `json:"RestartCount,omitempty"`
}

// Limits are task limits (CPU in vCPUs, memory in MiB) or container limits
// (CPU in CPU units, memory in MiB).
type Limits struct {
	CPU    *float64 `json:"CPU,omitempty"`
	Memory *int64   `json:"Memory,omitempty"`
}

// Port is a port mapping of a container.
type Port struct {
	ContainerPort uint16 `json:"ContainerPort,omitempty"`
	Protocol      string `json:"Protocol,omitempty"`
	HostPort      uint16 `json:"HostPort,omitempty"`
	HostIP        string `json:"HostIp,omitempty"`
}

// Network is a network of a container; under the process runtime typically
// {"NetworkMode":"host"}.
type Network struct {
	NetworkMode   string   `json:"NetworkMode,omitempty"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
	IPv6Addresses []string `json:"IPv6Addresses,omitempty"`
}

// writeMetadata writes v as the ECS agent's WriteJSONResponse does:
// application/json, compact, no trailing newline.
func writeMetadata(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal("failed to marshal metadata")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (h *handler) lookupMetadata(id string) (TaskMetadata, string, bool) {
	if h.state == nil {
		return TaskMetadata{}, "", false
	}
	return h.state.Lookup(id)
}

func (h *handler) taskMetadata(w http.ResponseWriter, id string) {
	task, _, ok := h.lookupMetadata(id)
	if !ok {
		writeMetadata(w, http.StatusNotFound, "V4 task metadata handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: "+id)
		return
	}
	if task.TaskARN == "" {
		writeMetadata(w, http.StatusInternalServerError, "Unable to generate metadata for v4 task: ''")
		return
	}
	writeMetadata(w, http.StatusOK, h.normalizeTask(task))
}

func (h *handler) containerMetadata(w http.ResponseWriter, id string) {
	task, name, ok := h.lookupMetadata(id)
	if !ok {
		writeMetadata(w, http.StatusNotFound, "V4 container metadata handler: unable to get container ID from request: unable to get docker ID from v3 endpoint ID: "+id)
		return
	}
	task = h.normalizeTask(task)
	for _, c := range task.Containers {
		if c.Name == name {
			writeMetadata(w, http.StatusOK, c)
			return
		}
	}
	writeMetadata(w, http.StatusInternalServerError, fmt.Sprintf("unable to generate metadata for container '%s'", name))
}

// normalizeTask fills defaults and converts times to UTC on a copy; the
// caller's slices are not modified.
func (h *handler) normalizeTask(t TaskMetadata) TaskMetadata {
	if t.Cluster == "" {
		t.Cluster = h.cluster
	}
	if t.LaunchType == "" {
		t.LaunchType = "EC2"
	}
	t.PullStartedAt = utcPtr(t.PullStartedAt)
	t.PullStoppedAt = utcPtr(t.PullStoppedAt)
	t.ExecutionStoppedAt = utcPtr(t.ExecutionStoppedAt)
	if t.Containers != nil {
		cs := make([]ContainerMetadata, len(t.Containers))
		copy(cs, t.Containers)
		for i := range cs {
			c := &cs[i]
			if c.Type == "" {
				c.Type = "NORMAL"
			}
			c.CreatedAt = utcPtr(c.CreatedAt)
			c.StartedAt = utcPtr(c.StartedAt)
			c.FinishedAt = utcPtr(c.FinishedAt)
		}
		t.Containers = cs
	}
	return t
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
