package control

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/scheduler"
	"github.com/holdfast/holdfast/internal/state"
)

// newTask builds a PROVISIONING task of td placed on instance ci.
func newTask(part domain.Partition, cluster string, c *domain.Cluster, td *domain.TaskDefinition, ci *domain.ContainerInstance, now time.Time) *domain.Task {
	id := newID()
	arn := part.TaskARN(cluster, id)
	t := &domain.Task{
		TaskARN:              arn,
		ClusterARN:           c.ClusterARN,
		TaskDefinitionARN:    td.TaskDefinitionARN,
		ContainerInstanceARN: ci.ContainerInstanceARN,
		AvailabilityZone:     ci.AZ(),
		CPU:                  td.CPU,
		Memory:               td.Memory,
		CreatedAt:            domain.TimePtr(now),
		DesiredStatus:        domain.StatusRunning,
		LastStatus:           domain.StatusProvisioning,
		HealthStatus:         domain.Unknown,
		LaunchType:           "EC2",
		Version:              1,
		Internal:             &domain.TaskInternal{ID: id, ClusterName: cluster, InstanceID: ci.Internal.ID},
	}
	for _, cd := range td.ContainerDefinitions {
		t.Containers = append(t.Containers, domain.Container{
			ContainerARN: part.ContainerARN(cluster, id, newID()),
			TaskARN:      arn,
			Name:         cd.Name,
			Image:        cd.Image,
			LastStatus:   domain.StatusPending,
			HealthStatus: domain.Unknown,
		})
	}
	return t
}

// taskRef resolves a task id or ARN.
func taskRef(clusterIn, r string) (cluster, id string, err error) {
	return resourceRef(clusterIn, r, "task")
}

func cloneTask(t *domain.Task) *domain.Task {
	v := *t
	v.Containers = append([]domain.Container(nil), t.Containers...)
	in := *t.Internal
	v.Internal = &in
	v.Version++
	return &v
}

// taskView strips holdfast's own fields.
func taskView(t *domain.Task) *domain.Task {
	v := *t
	v.Internal = nil
	if v.Containers == nil {
		v.Containers = []domain.Container{}
	}
	return &v
}

// placement returns the scheduler's view of a cluster's container
// instances, by id.
func placement(r state.Reader, cluster string) []scheduler.Instance {
	var out []scheduler.Instance
	for _, k := range instancesByCluster.Keys(r, cluster) {
		ci := Instances.Get(r, k)
		if ci.Status == domain.Inactive {
			continue
		}
		out = append(out, scheduler.Instance{ID: ci.Internal.ID, AZ: ci.AZ(), Status: ci.Status, Connected: ci.AgentConnected})
	}
	return out
}

// RunTaskInput is RunTaskRequest (the fields holdfast acts on).
type RunTaskInput struct {
	Cluster        string          `json:"cluster"`
	TaskDefinition string          `json:"taskDefinition"`
	Count          *int            `json:"count"`
	Group          string          `json:"group"`
	StartedBy      string          `json:"startedBy"`
	LaunchType     string          `json:"launchType"`
	Overrides      json.RawMessage `json:"overrides"`
	Tags           []domain.Tag    `json:"tags"`
	ClientToken    string          `json:"clientToken"`
}

// TasksOutput is the {tasks, failures} response shape.
type TasksOutput struct {
	Tasks    []*domain.Task   `json:"tasks"`
	Failures []domain.Failure `json:"failures"`
}

// RunTask starts standalone tasks, spread over the cluster's instances.
func (s *ECS) RunTask(ctx context.Context, in RunTaskInput) (*TasksOutput, error) {
	count := 1
	if in.Count != nil {
		count = *in.Count
	}
	if count < 1 || count > 10 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Count must be between 1 and 10.")
	}
	if in.TaskDefinition == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "TaskDefinition cannot be null or empty.")
	}
	if len(in.StartedBy) > 128 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "startedBy must be at most 128 characters.")
	}
	if in.LaunchType != "" && in.LaunchType != "EC2" && in.LaunchType != "EXTERNAL" {
		return nil, domain.Errorf(domain.KindUnsupportedFeature, "holdfast runs tasks on its own agents: launchType %s is not supported.", in.LaunchType)
	}
	tdRef, err := s.passRole(ctx, in.Cluster, in.TaskDefinition, overrideRole(in.Overrides))
	if err != nil {
		return nil, err
	}
	out := &TasksOutput{Tasks: []*domain.Task{}, Failures: []domain.Failure{}}
	err = update(ctx, s.st, func(tx *state.Tx) error {
		cluster, c, err := activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		td, err := resolveTaskDef(tx, tdRef)
		if err != nil {
			return err
		}
		if td.Status != domain.Active {
			return domain.Errorf(domain.KindClient, "TaskDefinition is inactive")
		}
		group := in.Group
		if group == "" {
			group = "family:" + td.Family
		}
		// The same spread as a service's tasks: over zones, then
		// instances, counting the group's tasks that are not STOPPED.
		var peers []scheduler.Task
		for _, t := range tasksByCluster.Group(tx, cluster) {
			if t.Group == group && t.LastStatus != domain.StatusStopped && t.Internal.InstanceID != "" {
				peers = append(peers, scheduler.Task{ID: t.Internal.ID, Instance: t.Internal.InstanceID})
			}
		}
		places := scheduler.Place(count, placement(tx, cluster), peers)
		if len(places) == 0 {
			return domain.Errorf(domain.KindInvalidParameter, "No Container Instances were found in your cluster.")
		}
		for _, p := range places {
			ci := getInstance(tx, cluster, p.Instance)
			t := newTask(s.part, cluster, c, td, ci, tx.Now())
			t.Group = group
			t.StartedBy = in.StartedBy
			t.Overrides = in.Overrides
			t.Tags = in.Tags
			putTask(tx, t)
			out.Tasks = append(out.Tasks, taskView(t))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StopTaskInput is StopTaskRequest.
type StopTaskInput struct {
	Cluster string `json:"cluster"`
	Task    string `json:"task"`
	Reason  string `json:"reason"`
}

// TaskOutput wraps one task.
type TaskOutput struct {
	Task *domain.Task `json:"task"`
}

// StopTask stops a task whatever its protection, as ECS does.
func (s *ECS) StopTask(ctx context.Context, in StopTaskInput) (*TaskOutput, error) {
	if in.Task == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Task cannot be empty.")
	}
	if len(in.Reason) > 255 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Reason must be at most 255 characters.")
	}
	cluster, id, err := taskRef(in.Cluster, in.Task)
	if err != nil {
		return nil, err
	}
	var out *domain.Task
	err = update(ctx, s.st, func(tx *state.Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		t := getTask(tx, cluster, id)
		if t == nil {
			return domain.Errorf(domain.KindInvalidParameter, "The referenced task was not found.")
		}
		if t.DesiredStatus == domain.StatusStopped {
			out = t
			return nil
		}
		reason := in.Reason
		if reason == "" {
			reason = "Task stopped by user"
		}
		out = stopTask(tx, t, domain.StopUserInitiated, reason)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &TaskOutput{Task: taskView(out)}, nil
}

// stopTask sets a task's desired status to STOPPED. A task whose agent is
// gone, or that never reached an agent, is STOPPED at once.
func stopTask(tx *state.Tx, t *domain.Task, code, reason string) *domain.Task {
	return stopTaskOn(tx, t, getInstance(tx, t.Internal.ClusterName, t.Internal.InstanceID), code, reason)
}

// stopTaskOn is stopTask for a task on instance ci (nil: none).
func stopTaskOn(tx *state.Tx, t *domain.Task, ci *domain.ContainerInstance, code, reason string) *domain.Task {
	v := cloneTask(t)
	now := tx.Now()
	v.DesiredStatus = domain.StatusStopped
	v.StopCode = code
	v.StoppedReason = reason
	v.StoppingAt = domain.TimePtr(now)
	if ci == nil || !ci.AgentConnected {
		markStopped(v, now)
	}
	putTask(tx, v)
	return v
}

// markStopped moves v to STOPPED now (putTask then drops its protection).
func markStopped(v *domain.Task, now time.Time) {
	v.LastStatus = domain.StatusStopped
	v.DesiredStatus = domain.StatusStopped
	if v.StoppingAt == nil {
		v.StoppingAt = domain.TimePtr(now)
	}
	v.StoppedAt = domain.TimePtr(now)
	if v.ExecutionStoppedAt == nil {
		v.ExecutionStoppedAt = domain.TimePtr(now)
	}
	for i := range v.Containers {
		if v.Containers[i].LastStatus != domain.StatusStopped {
			v.Containers[i].LastStatus = domain.StatusStopped
		}
	}
}

// DescribeTasksInput is DescribeTasksRequest.
type DescribeTasksInput struct {
	Cluster string   `json:"cluster"`
	Tasks   []string `json:"tasks"`
	Include []string `json:"include"`
}

// DescribeTasks describes up to 100 tasks.
func (s *ECS) DescribeTasks(ctx context.Context, in DescribeTasksInput) (*TasksOutput, error) {
	if len(in.Tasks) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Tasks cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Tasks cannot have more than 100 elements")
	}
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &TasksOutput{Tasks: []*domain.Task{}, Failures: []domain.Failure{}}
	var missingCluster bool
	s.st.View(func(r *state.View) {
		if Clusters.Get(r, cluster) == nil {
			missingCluster = true
			return
		}
		for _, ref := range in.Tasks {
			tc, id, err := taskRef(cluster, ref)
			if err != nil {
				out.Failures = append(out.Failures, domain.Failure{ARN: ref, Reason: domain.ReasonMissing})
				continue
			}
			t := getTask(r, tc, id)
			if t == nil {
				out.Failures = append(out.Failures, domain.Failure{ARN: s.part.TaskARN(tc, id), Reason: domain.ReasonMissing})
				continue
			}
			out.Tasks = append(out.Tasks, taskView(t))
		}
	})
	if missingCluster {
		return nil, domain.ErrClusterNotFound
	}
	return out, nil
}

// ListTasksInput is ListTasksRequest.
type ListTasksInput struct {
	Cluster           string `json:"cluster"`
	ContainerInstance string `json:"containerInstance"`
	Family            string `json:"family"`
	StartedBy         string `json:"startedBy"`
	ServiceName       string `json:"serviceName"`
	DesiredStatus     string `json:"desiredStatus"`
	LaunchType        string `json:"launchType"`
	ListInput
}

// ListTasksOutput is ListTasksResponse.
type ListTasksOutput struct {
	TaskARNs  []string `json:"taskArns"`
	NextToken string   `json:"nextToken,omitempty"`
}

// ListTasks lists tasks by filter, in a stable order, with pagination.
func (s *ECS) ListTasks(ctx context.Context, in ListTasksInput) (*ListTasksOutput, error) {
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	desired := in.DesiredStatus
	if desired == "" {
		desired = domain.StatusRunning
	}
	if desired != domain.StatusRunning && desired != domain.StatusPending && desired != domain.StatusStopped {
		return nil, domain.Errorf(domain.KindInvalidParameter, "desiredStatus must be RUNNING, PENDING or STOPPED.")
	}
	if in.StartedBy != "" && (in.Family != "" || in.ServiceName != "" || in.ContainerInstance != "") {
		return nil, domain.Errorf(domain.KindInvalidParameter, "The startedBy parameter cannot be specified with other filters.")
	}
	instID := ""
	if in.ContainerInstance != "" {
		instID, _, err = domain.ResourceName(in.ContainerInstance, "container-instance")
		if err != nil {
			return nil, err
		}
	}
	svcName := ""
	if in.ServiceName != "" {
		_, svcName, err = serviceRef(cluster, in.ServiceName)
		if err != nil {
			return nil, err
		}
	}
	type item struct {
		created time.Time
		arn     string
	}
	var items []item
	found := false
	s.st.View(func(r *state.View) {
		if Clusters.Get(r, cluster) == nil {
			return
		}
		found = true
		src := tasksByCluster.Group(r, cluster)
		if svcName != "" && desired != domain.StatusStopped {
			src = tasksByService.Group(r, svcKey(cluster, svcName))
		}
		for _, t := range src {
			if t.DesiredStatus != desired {
				continue
			}
			if svcName != "" && t.Internal.ServiceName != svcName {
				continue
			}
			if instID != "" && t.Internal.InstanceID != instID {
				continue
			}
			if in.StartedBy != "" && t.StartedBy != in.StartedBy {
				continue
			}
			if in.Family != "" {
				fam, _, _ := domain.ParseTaskDefinitionRef(t.TaskDefinitionARN)
				if fam != in.Family {
					continue
				}
			}
			if in.LaunchType != "" && t.LaunchType != in.LaunchType {
				continue
			}
			var created time.Time
			if t.CreatedAt != nil {
				created = t.CreatedAt.Time
			}
			items = append(items, item{created, t.TaskARN})
		}
	})
	if !found {
		return nil, domain.ErrClusterNotFound
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].created.Equal(items[j].created) {
			return items[i].created.Before(items[j].created)
		}
		return strings.Compare(items[i].arn, items[j].arn) < 0
	})
	arns := make([]string, len(items))
	for i, it := range items {
		arns[i] = it.arn
	}
	page, next, err := paginate(arns, in.ListInput, 100)
	if err != nil {
		return nil, err
	}
	return &ListTasksOutput{TaskARNs: page, NextToken: next}, nil
}
