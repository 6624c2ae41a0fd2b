package control

import (
	"context"
	"encoding/json"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// CreateServiceInput is CreateServiceRequest (the fields holdfast keeps).
type CreateServiceInput struct {
	Cluster                       string                          `json:"cluster"`
	ServiceName                   string                          `json:"serviceName"`
	TaskDefinition                string                          `json:"taskDefinition"`
	DesiredCount                  *int                            `json:"desiredCount"`
	ClientToken                   string                          `json:"clientToken"`
	LaunchType                    string                          `json:"launchType"`
	DeploymentConfiguration       *domain.DeploymentConfiguration `json:"deploymentConfiguration"`
	PlacementConstraints          json.RawMessage                 `json:"placementConstraints"`
	PlacementStrategy             json.RawMessage                 `json:"placementStrategy"`
	NetworkConfiguration          json.RawMessage                 `json:"networkConfiguration"`
	LoadBalancers                 json.RawMessage                 `json:"loadBalancers"`
	ServiceRegistries             json.RawMessage                 `json:"serviceRegistries"`
	HealthCheckGracePeriodSeconds *int                            `json:"healthCheckGracePeriodSeconds"`
	SchedulingStrategy            string                          `json:"schedulingStrategy"`
	DeploymentController          *domain.DeploymentController    `json:"deploymentController"`
	Tags                          []domain.Tag                    `json:"tags"`
	EnableECSManagedTags          bool                            `json:"enableECSManagedTags"`
	PropagateTags                 string                          `json:"propagateTags"`
	EnableExecuteCommand          bool                            `json:"enableExecuteCommand"`
	AvailabilityZoneRebalancing   string                          `json:"availabilityZoneRebalancing"`
}

// ServiceOutput wraps one service.
type ServiceOutput struct {
	Service *domain.Service `json:"service"`
}

func validateDeploymentConfig(dc *domain.DeploymentConfiguration) error {
	if dc == nil {
		return nil
	}
	if p := dc.MinimumHealthyPercent; p != nil && (*p < 0 || *p > 100) {
		return domain.Errorf(domain.KindInvalidParameter, "minimumHealthyPercent must be between 0 and 100.")
	}
	if p := dc.MaximumPercent; p != nil && *p < 100 {
		// ECS documents no upper bound (the default is 200); below 100 a
		// rolling update could never start a replacement.
		return domain.Errorf(domain.KindInvalidParameter, "maximumPercent must be at least 100.")
	}
	return nil
}

// CreateService creates a REPLICA service with its first PRIMARY deployment.
func (s *ECS) CreateService(ctx context.Context, in CreateServiceInput) (*ServiceOutput, error) {
	if in.ServiceName == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Service name cannot be empty.")
	}
	if err := domain.ValidName("Service", in.ServiceName); err != nil {
		return nil, err
	}
	if in.SchedulingStrategy != "" && in.SchedulingStrategy != "REPLICA" {
		return nil, domain.Errorf(domain.KindUnsupportedFeature, "holdfast supports only the REPLICA scheduling strategy.")
	}
	if in.DeploymentController != nil && in.DeploymentController.Type != "" && in.DeploymentController.Type != "ECS" {
		return nil, domain.Errorf(domain.KindUnsupportedFeature, "holdfast supports only the ECS deployment controller.")
	}
	if in.TaskDefinition == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "TaskDefinition cannot be null or empty.")
	}
	if in.DesiredCount == nil {
		return nil, domain.Errorf(domain.KindInvalidParameter, "The desired count for the service is not specified.")
	}
	if *in.DesiredCount < 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Desired count must be greater than or equal to 0.")
	}
	if err := validateDeploymentConfig(in.DeploymentConfiguration); err != nil {
		return nil, err
	}
	tdRef, err := s.passRole(ctx, in.Cluster, in.TaskDefinition, "")
	if err != nil {
		return nil, err
	}
	var out *domain.Service
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
		if old := getService(tx, cluster, in.ServiceName); old != nil && old.Status != domain.Inactive {
			if in.ClientToken != "" && old.Internal.ClientToken == in.ClientToken {
				out = old
				return nil
			}
			return domain.Errorf(domain.KindInvalidParameter, domain.MsgServiceNotIdempotent)
		}
		now := tx.Now()
		dc := domain.DeploymentConfiguration{}
		if in.DeploymentConfiguration != nil {
			dc = *in.DeploymentConfiguration
		}
		if dc.MaximumPercent == nil {
			v := 200
			dc.MaximumPercent = &v
		}
		if dc.MinimumHealthyPercent == nil {
			v := 100
			dc.MinimumHealthyPercent = &v
		}
		if dc.DeploymentCircuitBreaker == nil {
			dc.DeploymentCircuitBreaker = &domain.CircuitBreaker{}
		}
		launch := in.LaunchType
		if launch == "" {
			launch = "EC2"
		}
		sv := &domain.Service{
			ServiceARN:                    s.part.ServiceARN(cluster, in.ServiceName),
			ServiceName:                   in.ServiceName,
			ClusterARN:                    c.ClusterARN,
			LoadBalancers:                 in.LoadBalancers,
			ServiceRegistries:             in.ServiceRegistries,
			Status:                        domain.Active,
			DesiredCount:                  *in.DesiredCount,
			LaunchType:                    launch,
			TaskDefinition:                td.TaskDefinitionARN,
			DeploymentConfiguration:       dc,
			Deployments:                   []domain.Deployment{newDeployment(td, *in.DesiredCount, launch, now)},
			Events:                        []domain.ServiceEvent{},
			CreatedAt:                     domain.TimePtr(now),
			CreatedBy:                     "arn:aws:iam::" + s.part.AccountID + ":root",
			PlacementConstraints:          in.PlacementConstraints,
			PlacementStrategy:             in.PlacementStrategy,
			NetworkConfiguration:          in.NetworkConfiguration,
			HealthCheckGracePeriodSeconds: in.HealthCheckGracePeriodSeconds,
			SchedulingStrategy:            "REPLICA",
			DeploymentController:          &domain.DeploymentController{Type: "ECS"},
			Tags:                          in.Tags,
			EnableECSManagedTags:          in.EnableECSManagedTags,
			PropagateTags:                 in.PropagateTags,
			EnableExecuteCommand:          in.EnableExecuteCommand,
			AvailabilityZoneRebalancing:   in.AvailabilityZoneRebalancing,
			Internal:                      &domain.ServiceInternal{ClusterName: cluster, ClientToken: in.ClientToken},
		}
		if sv.AvailabilityZoneRebalancing == "" {
			sv.AvailabilityZoneRebalancing = "DISABLED"
		}
		Services.Put(tx, sv)
		out = sv
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ServiceOutput{Service: s.serviceView(out)}, nil
}

func newDeployment(td *domain.TaskDefinition, desired int, launch string, now timeLike) domain.Deployment {
	id := newDeploymentID()
	return domain.Deployment{
		ID:                 id,
		Status:             domain.Primary,
		TaskDefinition:     td.TaskDefinitionARN,
		DesiredCount:       desired,
		CreatedAt:          domain.TimePtr(now),
		UpdatedAt:          domain.TimePtr(now),
		LaunchType:         launch,
		RolloutState:       domain.RolloutInProgress,
		RolloutStateReason: "ECS deployment " + id + " in progress.",
	}
}

// serviceView fills in the running and pending counts of the service and
// its deployments, and strips holdfast's own fields.
func (s *ECS) serviceView(sv *domain.Service) *domain.Service {
	v := *sv
	v.Internal = nil
	v.Deployments = make([]domain.Deployment, 0, len(sv.Deployments))
	for _, d := range sv.Deployments {
		if d.Status != domain.Inactive {
			v.Deployments = append(v.Deployments, d)
		}
	}
	v.RunningCount, v.PendingCount = 0, 0
	byDep := map[string]int{}
	for i := range v.Deployments {
		v.Deployments[i].RunningCount, v.Deployments[i].PendingCount = 0, 0
		byDep[v.Deployments[i].ID] = i
	}
	s.st.View(func(r *state.View) {
		for _, t := range tasksByService.Group(r, svcKey(sv.Internal.ClusterName, sv.ServiceName)) {
			running := t.LastStatus == domain.StatusRunning
			pending := t.LastStatus == domain.StatusProvisioning || t.LastStatus == domain.StatusPending || t.LastStatus == domain.StatusActivating
			if running {
				v.RunningCount++
			} else if pending {
				v.PendingCount++
			}
			if i, ok := byDep[t.StartedBy]; ok {
				if running {
					v.Deployments[i].RunningCount++
				} else if pending {
					v.Deployments[i].PendingCount++
				}
			}
		}
	})
	if v.Events == nil {
		v.Events = []domain.ServiceEvent{}
	}
	return &v
}

// serviceRef resolves a service name or ARN (which may carry its cluster).
func serviceRef(clusterIn, r string) (cluster, name string, err error) {
	return resourceRef(clusterIn, r, "service")
}

// UpdateServiceInput is UpdateServiceRequest (the fields holdfast acts on).
type UpdateServiceInput struct {
	Cluster                       string                          `json:"cluster"`
	Service                       string                          `json:"service"`
	DesiredCount                  *int                            `json:"desiredCount"`
	TaskDefinition                string                          `json:"taskDefinition"`
	DeploymentConfiguration       *domain.DeploymentConfiguration `json:"deploymentConfiguration"`
	ForceNewDeployment            bool                            `json:"forceNewDeployment"`
	HealthCheckGracePeriodSeconds *int                            `json:"healthCheckGracePeriodSeconds"`
	NetworkConfiguration          json.RawMessage                 `json:"networkConfiguration"`
	PlacementConstraints          json.RawMessage                 `json:"placementConstraints"`
	PlacementStrategy             json.RawMessage                 `json:"placementStrategy"`
	AvailabilityZoneRebalancing   string                          `json:"availabilityZoneRebalancing"`
	EnableExecuteCommand          *bool                           `json:"enableExecuteCommand"`
}

// UpdateService changes desiredCount and, with a new task definition or
// forceNewDeployment, starts a new PRIMARY deployment.
func (s *ECS) UpdateService(ctx context.Context, in UpdateServiceInput) (*ServiceOutput, error) {
	if in.Service == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Service cannot be empty.")
	}
	if in.DesiredCount != nil && *in.DesiredCount < 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Desired count must be greater than or equal to 0.")
	}
	if err := validateDeploymentConfig(in.DeploymentConfiguration); err != nil {
		return nil, err
	}
	cluster, name, err := serviceRef(in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	tdRef, err := s.passRole(ctx, cluster, in.TaskDefinition, "")
	if err != nil {
		return nil, err
	}
	var out *domain.Service
	err = update(ctx, s.st, func(tx *state.Tx) error {
		old, err := existingService(tx, cluster, name)
		if err != nil {
			return err
		}
		if old.Status != domain.Active {
			return domain.ErrServiceNotActive
		}
		sv := cloneService(old)
		now := tx.Now()
		if in.DesiredCount != nil {
			sv.DesiredCount = *in.DesiredCount
		}
		if dc := in.DeploymentConfiguration; dc != nil {
			if dc.MaximumPercent != nil {
				sv.DeploymentConfiguration.MaximumPercent = dc.MaximumPercent
			}
			if dc.MinimumHealthyPercent != nil {
				sv.DeploymentConfiguration.MinimumHealthyPercent = dc.MinimumHealthyPercent
			}
			if dc.DeploymentCircuitBreaker != nil {
				sv.DeploymentConfiguration.DeploymentCircuitBreaker = dc.DeploymentCircuitBreaker
			}
		}
		if in.HealthCheckGracePeriodSeconds != nil {
			sv.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
		}
		if in.NetworkConfiguration != nil {
			sv.NetworkConfiguration = in.NetworkConfiguration
		}
		if in.PlacementConstraints != nil {
			sv.PlacementConstraints = in.PlacementConstraints
		}
		if in.PlacementStrategy != nil {
			sv.PlacementStrategy = in.PlacementStrategy
		}
		if in.AvailabilityZoneRebalancing != "" {
			sv.AvailabilityZoneRebalancing = in.AvailabilityZoneRebalancing
		}
		if in.EnableExecuteCommand != nil {
			sv.EnableExecuteCommand = *in.EnableExecuteCommand
		}
		newTD := ""
		if tdRef != "" {
			td, err := resolveTaskDef(tx, tdRef)
			if err != nil {
				return err
			}
			if td.Status != domain.Active {
				return domain.Errorf(domain.KindClient, "TaskDefinition is inactive")
			}
			if td.TaskDefinitionARN != sv.TaskDefinition {
				newTD = td.TaskDefinitionARN
			}
		}
		if newTD != "" || in.ForceNewDeployment {
			tdARN := sv.TaskDefinition
			if newTD != "" {
				tdARN = newTD
			}
			td, err := resolveTaskDef(tx, tdARN)
			if err != nil {
				return err
			}
			for i := range sv.Deployments {
				if sv.Deployments[i].Status == domain.Primary {
					sv.Deployments[i].Status = domain.Active
					sv.Deployments[i].UpdatedAt = domain.TimePtr(now)
				}
			}
			d := newDeployment(td, sv.DesiredCount, sv.LaunchType, now)
			sv.Deployments = append([]domain.Deployment{d}, sv.Deployments...)
			sv.TaskDefinition = td.TaskDefinitionARN
		}
		for i := range sv.Deployments {
			if sv.Deployments[i].Status == domain.Primary {
				sv.Deployments[i].DesiredCount = sv.DesiredCount
			}
		}
		Services.Put(tx, sv)
		out = sv
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ServiceOutput{Service: s.serviceView(out)}, nil
}

// existingService returns a service of an ACTIVE cluster, or
// ClusterNotFoundException / ServiceNotFoundException.
func existingService(tx *state.Tx, cluster, name string) (*domain.Service, error) {
	if _, _, err := activeCluster(tx, cluster); err != nil {
		return nil, err
	}
	sv := getService(tx, cluster, name)
	if sv == nil {
		return nil, domain.ErrServiceNotFound
	}
	return sv, nil
}

func cloneService(sv *domain.Service) *domain.Service {
	v := *sv
	v.Deployments = append([]domain.Deployment(nil), sv.Deployments...)
	v.Events = append([]domain.ServiceEvent(nil), sv.Events...)
	in := *sv.Internal
	in.EventMemory = make(map[string]timeLike, len(sv.Internal.EventMemory))
	for k, t := range sv.Internal.EventMemory {
		in.EventMemory[k] = t
	}
	v.Internal = &in
	return &v
}

// DescribeServicesInput is DescribeServicesRequest.
type DescribeServicesInput struct {
	Cluster  string   `json:"cluster"`
	Services []string `json:"services"`
	Include  []string `json:"include"`
}

// DescribeServicesOutput is DescribeServicesResponse.
type DescribeServicesOutput struct {
	Services []*domain.Service `json:"services"`
	Failures []domain.Failure  `json:"failures"`
}

// DescribeServices describes up to 10 services.
func (s *ECS) DescribeServices(ctx context.Context, in DescribeServicesInput) (*DescribeServicesOutput, error) {
	if len(in.Services) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Services cannot be empty.")
	}
	if len(in.Services) > 10 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Services cannot have more than 10 elements")
	}
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	var c *domain.Cluster
	s.st.View(func(r *state.View) { c = Clusters.Get(r, cluster) })
	if c == nil {
		return nil, domain.ErrClusterNotFound
	}
	out := &DescribeServicesOutput{Services: []*domain.Service{}, Failures: []domain.Failure{}}
	withTags := false
	for _, inc := range in.Include {
		withTags = withTags || inc == "TAGS"
	}
	for _, ref := range in.Services {
		sc, name, err := serviceRef(cluster, ref)
		if err != nil {
			return nil, err
		}
		var sv *domain.Service
		s.st.View(func(r *state.View) { sv = getService(r, sc, name) })
		if sv == nil {
			out.Failures = append(out.Failures, domain.Failure{ARN: s.part.ServiceARN(sc, name), Reason: domain.ReasonMissing})
			continue
		}
		v := s.serviceView(sv)
		if !withTags {
			v.Tags = nil
		}
		out.Services = append(out.Services, v)
	}
	return out, nil
}

// ListServicesInput is ListServicesRequest.
type ListServicesInput struct {
	Cluster            string `json:"cluster"`
	LaunchType         string `json:"launchType"`
	SchedulingStrategy string `json:"schedulingStrategy"`
	ListInput
}

// ListServicesOutput is ListServicesResponse.
type ListServicesOutput struct {
	ServiceARNs []string `json:"serviceArns"`
	NextToken   string   `json:"nextToken,omitempty"`
}

// ListServices lists the ACTIVE and DRAINING services of a cluster.
func (s *ECS) ListServices(ctx context.Context, in ListServicesInput) (*ListServicesOutput, error) {
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	var arns []string
	found := false
	s.st.View(func(r *state.View) {
		found = Clusters.Get(r, cluster) != nil
		for _, k := range servicesByCluster.Keys(r, cluster) {
			sv := Services.Get(r, k)
			if sv.Status == domain.Inactive {
				continue
			}
			if in.LaunchType != "" && sv.LaunchType != in.LaunchType {
				continue
			}
			if in.SchedulingStrategy != "" && sv.SchedulingStrategy != in.SchedulingStrategy {
				continue
			}
			arns = append(arns, sv.ServiceARN)
		}
	})
	if !found {
		return nil, domain.ErrClusterNotFound
	}
	page, next, err := paginate(arns, in.ListInput, 100)
	if err != nil {
		return nil, err
	}
	return &ListServicesOutput{ServiceARNs: page, NextToken: next}, nil
}

// DeleteServiceInput is DeleteServiceRequest.
type DeleteServiceInput struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Force   bool   `json:"force"`
}

// DeleteService moves a service to DRAINING; the controller stops its
// tasks (protected ones only once released or expired) and then marks it
// INACTIVE.
func (s *ECS) DeleteService(ctx context.Context, in DeleteServiceInput) (*ServiceOutput, error) {
	if in.Service == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Service cannot be empty.")
	}
	cluster, name, err := serviceRef(in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	var out *domain.Service
	err = update(ctx, s.st, func(tx *state.Tx) error {
		old, err := existingService(tx, cluster, name)
		if err != nil {
			return err
		}
		if old.Status == domain.Inactive {
			return domain.ErrServiceNotActive
		}
		if old.Status == domain.Draining {
			out = old
			return nil
		}
		if !in.Force && old.DesiredCount > 0 {
			return domain.Errorf(domain.KindInvalidParameter, "The service cannot be stopped while it is scaled above 0.")
		}
		sv := cloneService(old)
		sv.Status = domain.Draining
		sv.DesiredCount = 0
		for i := range sv.Deployments {
			sv.Deployments[i].DesiredCount = 0
		}
		Services.Put(tx, sv)
		out = sv
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ServiceOutput{Service: s.serviceView(out)}, nil
}

type timeLike = time.Time
