package control

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

// newTask builds a PROVISIONING task of td placed on instance ci.
func (s *Store) newTask(cluster string, c *domain.Cluster, td *domain.TaskDefinition, ci *domain.ContainerInstance, now time.Time) *domain.Task {
	id := newID()
	arn := s.part.TaskARN(cluster, id)
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
			ContainerARN: s.part.ContainerARN(cluster, id, newID()),
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

// placeable returns the instances new tasks may go to: ACTIVE and connected.
func placeable(st *state, cluster string) []*domain.ContainerInstance {
	var out []*domain.ContainerInstance
	for _, id := range sortedKeys(st.instances[cluster]) {
		ci := st.instances[cluster][id]
		if ci.Status == domain.Active && ci.AgentConnected {
			out = append(out, ci)
		}
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
func (s *Store) RunTask(ctx context.Context, in RunTaskInput) (*TasksOutput, error) {
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
	out := &TasksOutput{Tasks: []*domain.Task{}, Failures: []domain.Failure{}}
	err := s.Update(ctx, func(tx *Tx) error {
		cluster, c, err := activeCluster(tx, in.Cluster)
		if err != nil {
			return err
		}
		td, err := resolveTaskDef(tx.st, in.TaskDefinition)
		if err != nil {
			return err
		}
		if td.Status != domain.Active {
			return domain.Errorf(domain.KindClient, "TaskDefinition is inactive")
		}
		insts := placeable(tx.st, cluster)
		if len(insts) == 0 {
			return domain.Errorf(domain.KindInvalidParameter, "No Container Instances were found in your cluster.")
		}
		load := map[string]int{}
		for _, ci := range insts {
			load[ci.Internal.ID] = len(tx.st.byInstance[ci.Internal.ID])
		}
		group := in.Group
		if group == "" {
			group = "family:" + td.Family
		}
		for i := 0; i < count; i++ {
			sort.SliceStable(insts, func(a, b int) bool { return load[insts[a].Internal.ID] < load[insts[b].Internal.ID] })
			ci := insts[0]
			load[ci.Internal.ID]++
			t := s.newTask(cluster, c, td, ci, tx.Now())
			t.Group = group
			t.StartedBy = in.StartedBy
			t.Overrides = in.Overrides
			t.Tags = in.Tags
			tx.PutTask(t)
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
func (s *Store) StopTask(ctx context.Context, in StopTaskInput) (*TaskOutput, error) {
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
	err = s.Update(ctx, func(tx *Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		t := tx.Task(cluster, id)
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
func stopTask(tx *Tx, t *domain.Task, code, reason string) *domain.Task {
	v := cloneTask(t)
	now := tx.Now()
	v.DesiredStatus = domain.StatusStopped
	v.StopCode = code
	v.StoppedReason = reason
	v.StoppingAt = domain.TimePtr(now)
	ci := tx.Instance(v.Internal.ClusterName, v.Internal.InstanceID)
	if ci == nil || !ci.AgentConnected {
		markStopped(v, now)
	}
	tx.PutTask(v)
	return v
}

// markStopped moves v to STOPPED now.
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
	v.Internal.ProtectedUntil = time.Time{}
}

// DescribeTasksInput is DescribeTasksRequest.
type DescribeTasksInput struct {
	Cluster string   `json:"cluster"`
	Tasks   []string `json:"tasks"`
	Include []string `json:"include"`
}

// DescribeTasks describes up to 100 tasks.
func (s *Store) DescribeTasks(ctx context.Context, in DescribeTasksInput) (*TasksOutput, error) {
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
	s.read(func(st *state) {
		if st.clusters[cluster] == nil {
			missingCluster = true
			return
		}
		for _, ref := range in.Tasks {
			tc, id, err := taskRef(cluster, ref)
			if err != nil {
				out.Failures = append(out.Failures, domain.Failure{ARN: ref, Reason: domain.ReasonMissing})
				continue
			}
			t := st.tasks[tc][id]
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
func (s *Store) ListTasks(ctx context.Context, in ListTasksInput) (*ListTasksOutput, error) {
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
	s.read(func(st *state) {
		if st.clusters[cluster] == nil {
			return
		}
		found = true
		src := st.tasks[cluster]
		if svcName != "" && desired != domain.StatusStopped {
			src = st.byService[svcKey(cluster, svcName)]
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
