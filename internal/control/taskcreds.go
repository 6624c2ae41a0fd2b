package control

import (
	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// Refusals of TaskRole.
const (
	MsgTaskNotOnInstance = "The task is not running on this container instance."
	MsgTaskHasNoRole     = "The task has no task role."
)

// TaskRole is what the control plane needs to issue a task's role
// credentials to an agent: the role the task runs with (its RunTask
// override, else its task definition's) and its cluster's ARN. Only the
// agent of the instance the task is placed on may have them, and only
// until the task has stopped.
func (a *Agents) TaskRole(in agentapi.TaskCredentialsInput) (roleARN, clusterARN string, err error) {
	cluster, instanceID, err := instanceRef(in.Cluster, in.ContainerInstanceARN)
	if err != nil {
		return "", "", err
	}
	_, taskID, err := taskRef(cluster, in.TaskARN)
	if err != nil {
		return "", "", err
	}
	a.st.View(func(r *state.View) {
		t := getTask(r, cluster, taskID)
		if t == nil || t.Internal.InstanceID != instanceID || t.LastStatus == domain.StatusStopped {
			err = domain.Errorf(domain.KindClient, MsgTaskNotOnInstance)
			return
		}
		td, _ := resolveTaskDef(r, t.TaskDefinitionARN)
		roleARN = domain.TaskRoleARN(t, td)
	})
	if err != nil {
		return "", "", err
	}
	if roleARN == "" {
		return "", "", domain.Errorf(domain.KindClient, MsgTaskHasNoRole)
	}
	return a.part.RoleARN(roleARN), a.part.ClusterARN(cluster), nil
}
