// Package server assembles the control plane: the front door
// (internal/api) with ECS, the agent protocol, IAM and STS on it, the
// application services and controller (internal/control), the account's
// identities and their authorization (internal/iam) and the store, behind
// one http.Handler.
package server

import (
	"context"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/iam"
)

// ECSPrefix is the X-Amz-Target prefix of the ECS API.
const ECSPrefix = api.ECSTargetPrefix

// Register installs the ECS operations on the API server, except those of
// the agent protocol (Server.registerAgentProtocol).
// Each ECS operation is authorized against the resources ECS's
// authorization reference names for it (iam.ECSActions).
// It returns the action of every ECS operation (iam.ECSActions).
func Register(a *api.Server, s *control.ECS) map[string]api.ActionFunc {
	ops := map[string]api.Handler{
		"CreateCluster":                 api.Op(s.CreateCluster),
		"DescribeClusters":              api.Op(s.DescribeClusters),
		"ListClusters":                  api.Op(s.ListClusters),
		"DeleteCluster":                 api.Op(s.DeleteCluster),
		"RegisterTaskDefinition":        api.Op(s.RegisterTaskDefinition),
		"DescribeTaskDefinition":        api.Op(s.DescribeTaskDefinition),
		"ListTaskDefinitions":           api.Op(s.ListTaskDefinitions),
		"ListTaskDefinitionFamilies":    api.Op(s.ListTaskDefinitionFamilies),
		"DeregisterTaskDefinition":      api.Op(s.DeregisterTaskDefinition),
		"CreateService":                 api.Op(s.CreateService),
		"UpdateService":                 api.Op(s.UpdateService),
		"DescribeServices":              api.Op(s.DescribeServices),
		"ListServices":                  api.Op(s.ListServices),
		"DeleteService":                 api.Op(s.DeleteService),
		"RunTask":                       api.Op(s.RunTask),
		"StopTask":                      api.Op(s.StopTask),
		"DescribeTasks":                 api.Op(s.DescribeTasks),
		"ListTasks":                     api.Op(s.ListTasks),
		"ListContainerInstances":        api.Op(s.ListContainerInstances),
		"DescribeContainerInstances":    api.Op(s.DescribeContainerInstances),
		"UpdateContainerInstancesState": api.Op(s.UpdateContainerInstancesState),
		"UpdateTaskProtection":          api.Op(s.UpdateTaskProtection),
		"TagResource":                   api.Op(s.TagResource),
		"UntagResource":                 api.Op(s.UntagResource),
		"ListTagsForResource":           api.Op(s.ListTagsForResource),
		"GetTaskProtection":             api.Op(s.GetTaskProtection),
	}
	actions := iam.ECSActions(s.Partition(), latestRevision(s))
	for name, h := range ops {
		a.Handle(api.ECS, name, api.Operation{Handler: h, Action: actions[name]})
	}
	return actions
}

// latestRevision is the revision DescribeTaskDefinition resolves a bare
// family to (its latest ACTIVE one), for the resource of RunTask,
// CreateService and UpdateService.
func latestRevision(s *control.ECS) iam.LatestRevision {
	return func(ctx context.Context, family string) (int, bool) {
		out, err := s.DescribeTaskDefinition(ctx, control.DescribeTaskDefinitionInput{TaskDefinition: family})
		if err != nil || out.TaskDefinition == nil {
			return 0, false
		}
		return out.TaskDefinition.Revision, true
	}
}
