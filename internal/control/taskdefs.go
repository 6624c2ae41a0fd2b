package control

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// RegisterTaskDefinitionInput is RegisterTaskDefinitionRequest (the fields
// holdfast keeps).
type RegisterTaskDefinitionInput struct {
	Family                  string                       `json:"family"`
	TaskRoleARN             string                       `json:"taskRoleArn"`
	ExecutionRoleARN        string                       `json:"executionRoleArn"`
	NetworkMode             string                       `json:"networkMode"`
	ContainerDefinitions    []domain.ContainerDefinition `json:"containerDefinitions"`
	Volumes                 json.RawMessage              `json:"volumes"`
	PlacementConstraints    json.RawMessage              `json:"placementConstraints"`
	RequiresCompatibilities []string                     `json:"requiresCompatibilities"`
	CPU                     string                       `json:"cpu"`
	Memory                  string                       `json:"memory"`
	Tags                    []domain.Tag                 `json:"tags"`
	PIDMode                 string                       `json:"pidMode"`
	IPCMode                 string                       `json:"ipcMode"`
}

// TaskDefinitionOutput is the response of Register/Describe/Deregister.
type TaskDefinitionOutput struct {
	TaskDefinition *domain.TaskDefinition `json:"taskDefinition"`
	Tags           []domain.Tag           `json:"tags,omitempty"`
}

func validateTaskDefinition(in *RegisterTaskDefinitionInput) error {
	if in.Family == "" {
		return domain.Errorf(domain.KindClient, "Family cannot be empty.")
	}
	if err := domain.ValidName("Family", in.Family); err != nil {
		return domain.Errorf(domain.KindClient, "Family contains invalid characters.")
	}
	if len(in.ContainerDefinitions) == 0 {
		return domain.Errorf(domain.KindClient, "Container list cannot be empty.")
	}
	seen := map[string]bool{}
	essential := false
	for _, c := range in.ContainerDefinitions {
		if c.Name == "" {
			return domain.Errorf(domain.KindClient, "Container.name should not be null or empty.")
		}
		if seen[c.Name] {
			return domain.Errorf(domain.KindClient, "Duplicate container name found: %s", c.Name)
		}
		seen[c.Name] = true
		if c.Image == "" {
			return domain.Errorf(domain.KindClient, "Container.image should not be null or empty.")
		}
		if c.IsEssential() {
			essential = true
		}
		if c.StopTimeout != nil && (*c.StopTimeout < 0 || *c.StopTimeout > 120) {
			return domain.Errorf(domain.KindClient, "Container.stopTimeout must be between 0 and 120 seconds.")
		}
	}
	if !essential {
		return domain.Errorf(domain.KindClient, "Task definition does not have any essential container.")
	}
	return nil
}

// RegisterTaskDefinition stores a new revision of a family.
func (s *ECS) RegisterTaskDefinition(ctx context.Context, in RegisterTaskDefinitionInput) (*TaskDefinitionOutput, error) {
	if err := validateTaskDefinition(&in); err != nil {
		return nil, err
	}
	for i := range in.ContainerDefinitions {
		if in.ContainerDefinitions[i].Environment == nil {
			in.ContainerDefinitions[i].Environment = []domain.KeyValuePair{}
		}
	}
	var out *domain.TaskDefinition
	err := update(ctx, s.st, func(tx *state.Tx) error {
		rev := taskDefsByFamily.Len(tx, in.Family) + 1
		compat := []string{"EC2", "EXTERNAL"}
		td := &domain.TaskDefinition{
			TaskDefinitionARN:       s.part.TaskDefinitionARN(in.Family, rev),
			ContainerDefinitions:    in.ContainerDefinitions,
			Family:                  in.Family,
			TaskRoleARN:             in.TaskRoleARN,
			ExecutionRoleARN:        in.ExecutionRoleARN,
			NetworkMode:             in.NetworkMode,
			Revision:                rev,
			Volumes:                 in.Volumes,
			Status:                  domain.Active,
			PlacementConstraints:    in.PlacementConstraints,
			Compatibilities:         compat,
			RequiresCompatibilities: in.RequiresCompatibilities,
			CPU:                     in.CPU,
			Memory:                  in.Memory,
			PIDMode:                 in.PIDMode,
			IPCMode:                 in.IPCMode,
			RegisteredAt:            domain.TimePtr(tx.Now()),
			Tags:                    in.Tags,
		}
		TaskDefinitions.Put(tx, td)
		out = td
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &TaskDefinitionOutput{TaskDefinition: tdView(out), Tags: out.Tags}, nil
}

// tdView is a task definition as ECS shows it: without its tags.
func tdView(td *domain.TaskDefinition) *domain.TaskDefinition {
	v := *td
	v.Tags = nil
	return &v
}

// resolveTaskDef finds "family", "family:rev" or an ARN; a bare family
// means its latest ACTIVE revision.
func resolveTaskDef(r state.Reader, ref string) (*domain.TaskDefinition, error) {
	family, rev, err := domain.ParseTaskDefinitionRef(ref)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		// Revisions are numbered 1..n without gaps: never deleted.
		for rev := taskDefsByFamily.Len(r, family); rev > 0; rev-- {
			if td := TaskDefinitions.Get(r, taskDefKey(family, rev)); td != nil && td.Status == domain.Active {
				return td, nil
			}
		}
		return nil, domain.Errorf(domain.KindClient, domain.MsgTaskDefinitionUnknown)
	}
	td := TaskDefinitions.Get(r, taskDefKey(family, rev))
	if td == nil {
		return nil, domain.Errorf(domain.KindClient, domain.MsgTaskDefinitionUnknown)
	}
	return td, nil
}

// DescribeTaskDefinitionInput is DescribeTaskDefinitionRequest.
type DescribeTaskDefinitionInput struct {
	TaskDefinition string   `json:"taskDefinition"`
	Include        []string `json:"include"`
}

// DescribeTaskDefinition returns one revision.
func (s *ECS) DescribeTaskDefinition(ctx context.Context, in DescribeTaskDefinitionInput) (*TaskDefinitionOutput, error) {
	if in.TaskDefinition == "" {
		return nil, domain.Errorf(domain.KindClient, "TaskDefinition cannot be empty.")
	}
	var td *domain.TaskDefinition
	var err error
	s.st.View(func(r *state.View) { td, err = resolveTaskDef(r, in.TaskDefinition) })
	if err != nil {
		return nil, err
	}
	out := &TaskDefinitionOutput{TaskDefinition: tdView(td)}
	for _, inc := range in.Include {
		if inc == "TAGS" {
			out.Tags = td.Tags
			if out.Tags == nil {
				out.Tags = []domain.Tag{}
			}
		}
	}
	return out, nil
}

// ListTaskDefinitionsInput is ListTaskDefinitionsRequest.
type ListTaskDefinitionsInput struct {
	FamilyPrefix string `json:"familyPrefix"`
	Status       string `json:"status"`
	Sort         string `json:"sort"`
	ListInput
}

// ListTaskDefinitionsOutput is ListTaskDefinitionsResponse.
type ListTaskDefinitionsOutput struct {
	TaskDefinitionARNs []string `json:"taskDefinitionArns"`
	NextToken          string   `json:"nextToken,omitempty"`
}

// ListTaskDefinitions lists revisions by family then revision.
func (s *ECS) ListTaskDefinitions(ctx context.Context, in ListTaskDefinitionsInput) (*ListTaskDefinitionsOutput, error) {
	status := in.Status
	if status == "" {
		status = domain.Active
	}
	if status != domain.Active && status != domain.Inactive && status != "DELETE_IN_PROGRESS" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "status must be ACTIVE, INACTIVE or DELETE_IN_PROGRESS")
	}
	var arns []string
	s.st.View(func(r *state.View) {
		for _, f := range taskDefsByFamily.Groups(r) {
			if !strings.HasPrefix(f, in.FamilyPrefix) {
				continue
			}
			for _, k := range taskDefsByFamily.Keys(r, f) {
				if td := TaskDefinitions.Get(r, k); td.Status == status {
					arns = append(arns, td.TaskDefinitionARN)
				}
			}
		}
	})
	if in.Sort == "DESC" {
		for i, j := 0, len(arns)-1; i < j; i, j = i+1, j-1 {
			arns[i], arns[j] = arns[j], arns[i]
		}
	}
	page, next, err := paginate(arns, in.ListInput, 100)
	if err != nil {
		return nil, err
	}
	return &ListTaskDefinitionsOutput{TaskDefinitionARNs: page, NextToken: next}, nil
}

// DeregisterTaskDefinitionInput is DeregisterTaskDefinitionRequest.
type DeregisterTaskDefinitionInput struct {
	TaskDefinition string `json:"taskDefinition"`
}

// DeregisterTaskDefinition marks one revision INACTIVE.
func (s *ECS) DeregisterTaskDefinition(ctx context.Context, in DeregisterTaskDefinitionInput) (*TaskDefinitionOutput, error) {
	_, rev, err := domain.ParseTaskDefinitionRef(in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, domain.Errorf(domain.KindClient, "Invalid revision number. Number: %s", in.TaskDefinition)
	}
	var out *domain.TaskDefinition
	err = update(ctx, s.st, func(tx *state.Tx) error {
		td, err := resolveTaskDef(tx, in.TaskDefinition)
		if err != nil {
			return err
		}
		v := *td
		if v.Status == domain.Active {
			v.Status = domain.Inactive
			v.DeregisteredAt = domain.TimePtr(tx.Now())
			TaskDefinitions.Put(tx, &v)
		}
		out = &v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &TaskDefinitionOutput{TaskDefinition: tdView(out)}, nil
}

// ListTaskDefinitionFamiliesInput is ListTaskDefinitionFamiliesRequest.
type ListTaskDefinitionFamiliesInput struct {
	FamilyPrefix string `json:"familyPrefix"`
	Status       string `json:"status"`
	ListInput
}

// ListTaskDefinitionFamiliesOutput is ListTaskDefinitionFamiliesResponse.
type ListTaskDefinitionFamiliesOutput struct {
	Families  []string `json:"families"`
	NextToken string   `json:"nextToken,omitempty"`
}

// ListTaskDefinitionFamilies lists families: ACTIVE ones (with an active
// revision), INACTIVE ones (with none), or ALL.
func (s *ECS) ListTaskDefinitionFamilies(ctx context.Context, in ListTaskDefinitionFamiliesInput) (*ListTaskDefinitionFamiliesOutput, error) {
	status := in.Status
	if status == "" {
		status = domain.Active
	}
	if status != domain.Active && status != domain.Inactive && status != "ALL" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "status must be ACTIVE, INACTIVE or ALL")
	}
	var families []string
	s.st.View(func(r *state.View) {
		for _, f := range taskDefsByFamily.Groups(r) {
			if !strings.HasPrefix(f, in.FamilyPrefix) {
				continue
			}
			active := false
			for _, td := range taskDefsByFamily.Group(r, f) {
				active = active || td.Status == domain.Active
			}
			if status == "ALL" || (status == domain.Active) == active {
				families = append(families, f)
			}
		}
	})
	page, next, err := paginate(families, in.ListInput, 100)
	if err != nil {
		return nil, err
	}
	return &ListTaskDefinitionFamiliesOutput{Families: page, NextToken: next}, nil
}
