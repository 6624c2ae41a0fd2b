package control

import (
	"context"
	"encoding/json"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// RegisterContainerInstanceInput is RegisterContainerInstanceRequest.
type RegisterContainerInstanceInput struct {
	Cluster              string             `json:"cluster"`
	ContainerInstanceARN string             `json:"containerInstanceArn"`
	Attributes           []domain.Attribute `json:"attributes"`
	VersionInfo          json.RawMessage    `json:"versionInfo"`
	TotalResources       json.RawMessage    `json:"totalResources"`
	Tags                 []domain.Tag       `json:"tags"`
	// ID and Agent are set by the control plane, not the caller: a new
	// instance gets the id ID (when set) and is bound to the agent
	// identity Agent (see domain.InstanceInternal.Agent).
	ID    string `json:"-"`
	Agent string `json:"-"`
}

// ContainerInstanceOutput wraps one instance.
type ContainerInstanceOutput struct {
	ContainerInstance *domain.ContainerInstance `json:"containerInstance"`
}

func cloneInstance(ci *domain.ContainerInstance) *domain.ContainerInstance {
	v := *ci
	v.Attributes = append([]domain.Attribute(nil), ci.Attributes...)
	in := *ci.Internal
	v.Internal = &in
	v.Version++
	return &v
}

// instanceView fills in an instance's task counts and strips holdfast's
// own fields.
func instanceView(st *state.Engine, ci *domain.ContainerInstance) *domain.ContainerInstance {
	v := *ci
	v.Internal = nil
	v.RunningTasksCount, v.PendingTasksCount = 0, 0
	st.View(func(r *state.View) {
		for _, t := range tasksByInstance.Group(r, ci.Internal.ID) {
			switch t.LastStatus {
			case domain.StatusRunning:
				v.RunningTasksCount++
			case domain.StatusProvisioning, domain.StatusPending, domain.StatusActivating:
				v.PendingTasksCount++
			}
		}
	})
	return &v
}

// instanceRef resolves an instance id or ARN.
func instanceRef(clusterIn, r string) (cluster, id string, err error) {
	return resourceRef(clusterIn, r, "container-instance")
}

// ListContainerInstancesInput is ListContainerInstancesRequest.
type ListContainerInstancesInput struct {
	Cluster string `json:"cluster"`
	Filter  string `json:"filter"`
	Status  string `json:"status"`
	ListInput
}

// ListContainerInstancesOutput is ListContainerInstancesResponse.
type ListContainerInstancesOutput struct {
	ContainerInstanceARNs []string `json:"containerInstanceArns"`
	NextToken             string   `json:"nextToken,omitempty"`
}

// ListContainerInstances lists a cluster's instances, by status.
func (s *ECS) ListContainerInstances(ctx context.Context, in ListContainerInstancesInput) (*ListContainerInstancesOutput, error) {
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	if in.Filter != "" {
		return nil, domain.Errorf(domain.KindUnsupportedFeature, "holdfast does not support cluster query language filters yet.")
	}
	var arns []string
	found := false
	s.st.View(func(r *state.View) {
		found = Clusters.Get(r, cluster) != nil
		for _, k := range instancesByCluster.Keys(r, cluster) {
			ci := Instances.Get(r, k)
			if in.Status != "" && ci.Status != in.Status {
				continue
			}
			if in.Status == "" && ci.Status == domain.Inactive {
				continue
			}
			arns = append(arns, ci.ContainerInstanceARN)
		}
	})
	if !found {
		return nil, domain.ErrClusterNotFound
	}
	page, next, err := paginate(arns, in.ListInput, 100)
	if err != nil {
		return nil, err
	}
	return &ListContainerInstancesOutput{ContainerInstanceARNs: page, NextToken: next}, nil
}

// DescribeContainerInstancesInput is DescribeContainerInstancesRequest.
type DescribeContainerInstancesInput struct {
	Cluster            string   `json:"cluster"`
	ContainerInstances []string `json:"containerInstances"`
	Include            []string `json:"include"`
}

// ContainerInstancesOutput is the {containerInstances, failures} shape.
type ContainerInstancesOutput struct {
	ContainerInstances []*domain.ContainerInstance `json:"containerInstances"`
	Failures           []domain.Failure            `json:"failures"`
}

// DescribeContainerInstances describes up to 100 instances.
func (s *ECS) DescribeContainerInstances(ctx context.Context, in DescribeContainerInstancesInput) (*ContainerInstancesOutput, error) {
	if len(in.ContainerInstances) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "ContainerInstances cannot be empty.")
	}
	if len(in.ContainerInstances) > 100 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "ContainerInstances cannot have more than 100 elements")
	}
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ContainerInstancesOutput{ContainerInstances: []*domain.ContainerInstance{}, Failures: []domain.Failure{}}
	var cis []*domain.ContainerInstance
	found := false
	s.st.View(func(r *state.View) {
		found = Clusters.Get(r, cluster) != nil
		for _, ref := range in.ContainerInstances {
			_, id, err := instanceRef(cluster, ref)
			ci := getInstance(r, cluster, id)
			if err != nil || ci == nil {
				arn := ref
				if err == nil {
					arn = s.part.ContainerInstanceARN(cluster, id)
				}
				out.Failures = append(out.Failures, domain.Failure{ARN: arn, Reason: domain.ReasonMissing})
				continue
			}
			cis = append(cis, ci)
		}
	})
	if !found {
		return nil, domain.ErrClusterNotFound
	}
	for _, ci := range cis {
		out.ContainerInstances = append(out.ContainerInstances, instanceView(s.st, ci))
	}
	return out, nil
}

// UpdateContainerInstancesStateInput is UpdateContainerInstancesStateRequest.
type UpdateContainerInstancesStateInput struct {
	Cluster            string   `json:"cluster"`
	ContainerInstances []string `json:"containerInstances"`
	Status             string   `json:"status"`
}

// UpdateContainerInstancesState sets instances ACTIVE or DRAINING.
func (s *ECS) UpdateContainerInstancesState(ctx context.Context, in UpdateContainerInstancesStateInput) (*ContainerInstancesOutput, error) {
	if len(in.ContainerInstances) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "ContainerInstances cannot be empty.")
	}
	if len(in.ContainerInstances) > 10 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "ContainerInstances cannot have more than 10 elements")
	}
	if in.Status != domain.Active && in.Status != domain.Draining {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Container instance status must be ACTIVE or DRAINING.")
	}
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ContainerInstancesOutput{ContainerInstances: []*domain.ContainerInstance{}, Failures: []domain.Failure{}}
	var cis []*domain.ContainerInstance
	err = update(ctx, s.st, func(tx *state.Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		for _, ref := range in.ContainerInstances {
			_, id, err := instanceRef(cluster, ref)
			var ci *domain.ContainerInstance
			if err == nil {
				ci = getInstance(tx, cluster, id)
			}
			if ci == nil || ci.Status == domain.Inactive {
				out.Failures = append(out.Failures, domain.Failure{ARN: ref, Reason: domain.ReasonMissing})
				continue
			}
			v := cloneInstance(ci)
			v.Status = in.Status
			Instances.Put(tx, v)
			cis = append(cis, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, ci := range cis {
		out.ContainerInstances = append(out.ContainerInstances, instanceView(s.st, ci))
	}
	return out, nil
}

// DeregisterContainerInstanceInput is DeregisterContainerInstanceRequest.
type DeregisterContainerInstanceInput struct {
	Cluster           string `json:"cluster"`
	ContainerInstance string `json:"containerInstance"`
	Force             bool   `json:"force"`
}

// DeregisterContainerInstance removes a machine from the cluster: the
// instance becomes INACTIVE and nothing is placed on it again. Without
// force it must run no tasks. With force its tasks are orphaned, as on ECS:
// holdfast marks them STOPPED (so services start replacements elsewhere)
// and the instance's agent, if it is still there, stops their processes.
func (s *ECS) DeregisterContainerInstance(ctx context.Context, in DeregisterContainerInstanceInput) (*ContainerInstanceOutput, error) {
	if in.ContainerInstance == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "ContainerInstance cannot be empty.")
	}
	cluster, id, err := instanceRef(in.Cluster, in.ContainerInstance)
	if err != nil {
		return nil, err
	}
	var out *domain.ContainerInstance
	err = update(ctx, s.st, func(tx *state.Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		ci := getInstance(tx, cluster, id)
		if ci == nil || ci.Status == domain.Inactive {
			return domain.Errorf(domain.KindInvalidParameter, "The referenced container instance was not found.")
		}
		var live []*domain.Task
		for _, k := range tasksByInstance.Keys(tx, id) {
			live = append(live, Tasks.Get(tx, k))
		}
		if len(live) > 0 && !in.Force {
			return domain.Errorf(domain.KindInvalidParameter, "Found running tasks on the instance; use force to deregister it.")
		}
		for _, t := range live {
			v := cloneTask(t)
			if v.DesiredStatus != domain.StatusStopped {
				v.StopCode = domain.StopInfrastructureHealth
				v.StoppedReason = "Container instance " + id + " was deregistered"
			}
			markStopped(v, tx.Now())
			putTask(tx, v)
		}
		v := cloneInstance(ci)
		v.Status = domain.Inactive
		v.AgentConnected = false
		Instances.Put(tx, v)
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ContainerInstanceOutput{ContainerInstance: instanceView(s.st, out)}, nil
}
