// Package server assembles the control plane: the AWS JSON 1.1 front door
// (internal/api), the application services and controller
// (internal/control) and the store, behind one http.Handler.
package server

import (
	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/control"
)

// ECSPrefix is the X-Amz-Target prefix of the ECS API.
const ECSPrefix = api.ECSTargetPrefix

// Register installs every supported operation on the API server: the ECS
// operations, and the agent protocol (its ECS operations and its poll).
func Register(a *api.Server, s *control.ECS, ag *control.Agents) {
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
		"RegisterContainerInstance":     api.Op(ag.RegisterContainerInstance),
		"DeregisterContainerInstance":   api.Op(s.DeregisterContainerInstance),
		"SubmitTaskStateChange":         api.Op(ag.SubmitTaskStateChange),
		"UpdateTaskProtection":          api.Op(s.UpdateTaskProtection),
		"TagResource":                   api.Op(s.TagResource),
		"UntagResource":                 api.Op(s.UntagResource),
		"ListTagsForResource":           api.Op(s.ListTagsForResource),
		"GetTaskProtection":             api.Op(s.GetTaskProtection),
	}
	for name, h := range ops {
		a.Register(ECSPrefix+name, h)
	}
	a.Register(agentapi.PollTarget, api.Op(ag.Poll))
}
