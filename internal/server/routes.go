// Package server assembles the control plane: the AWS JSON 1.1 front door
// (internal/api), the application services and controller
// (internal/control) and the store, behind one http.Handler.
package server

import (
	"context"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/control"
)

// ECSPrefix is the X-Amz-Target prefix of the ECS API.
const ECSPrefix = "AmazonEC2ContainerServiceV20141113."

// op adapts a typed operation to an api.Handler: decode, then call.
func op[I any, O any](f func(context.Context, I) (O, error)) api.Handler {
	return func(ctx context.Context, body []byte) (any, error) {
		var in I
		if err := api.Decode(body, &in); err != nil {
			return nil, err
		}
		return f(ctx, in)
	}
}

// Register installs every supported operation on the API server.
func Register(a *api.Server, s *control.Store) {
	ops := map[string]api.Handler{
		"CreateCluster":                 op(s.CreateCluster),
		"DescribeClusters":              op(s.DescribeClusters),
		"ListClusters":                  op(s.ListClusters),
		"DeleteCluster":                 op(s.DeleteCluster),
		"RegisterTaskDefinition":        op(s.RegisterTaskDefinition),
		"DescribeTaskDefinition":        op(s.DescribeTaskDefinition),
		"ListTaskDefinitions":           op(s.ListTaskDefinitions),
		"ListTaskDefinitionFamilies":    op(s.ListTaskDefinitionFamilies),
		"DeregisterTaskDefinition":      op(s.DeregisterTaskDefinition),
		"CreateService":                 op(s.CreateService),
		"UpdateService":                 op(s.UpdateService),
		"DescribeServices":              op(s.DescribeServices),
		"ListServices":                  op(s.ListServices),
		"DeleteService":                 op(s.DeleteService),
		"RunTask":                       op(s.RunTask),
		"StopTask":                      op(s.StopTask),
		"DescribeTasks":                 op(s.DescribeTasks),
		"ListTasks":                     op(s.ListTasks),
		"ListContainerInstances":        op(s.ListContainerInstances),
		"DescribeContainerInstances":    op(s.DescribeContainerInstances),
		"UpdateContainerInstancesState": op(s.UpdateContainerInstancesState),
		"RegisterContainerInstance":     op(s.RegisterContainerInstance),
		"DeregisterContainerInstance":   op(s.DeregisterContainerInstance),
		"SubmitTaskStateChange":         op(s.SubmitTaskStateChange),
		"UpdateTaskProtection":          op(s.UpdateTaskProtection),
		"TagResource":                   op(s.TagResource),
		"UntagResource":                 op(s.UntagResource),
		"ListTagsForResource":           op(s.ListTagsForResource),
		"GetTaskProtection":             op(s.GetTaskProtection),
	}
	for name, h := range ops {
		a.Register(ECSPrefix+name, h)
	}
	a.Register(agentapi.PollTarget, op(s.Poll))
}
