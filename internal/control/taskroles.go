package control

import (
	"context"
	"encoding/json"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// TaskRoleCheck decides whether the caller of ctx may start tasks with
// the task role roleARN: on ECS, passing a role needs iam:PassRole on it,
// and the role must trust ecs-tasks.amazonaws.com. The error is answered
// as is (AccessDeniedException, or ClientException for a role ECS cannot
// assume).
//
// clusterARN is the cluster the tasks will run in (ECS gives it to the
// role's trust policy as aws:SourceArn).
type TaskRoleCheck func(ctx context.Context, clusterARN, roleARN string) error

// MsgCannotAssumeRole is ECS's ClientException for a task role it cannot
// assume (it does not exist, or does not trust ecs-tasks.amazonaws.com).
const MsgCannotAssumeRole = "ECS was unable to assume the role '%s' that was provided for this task. Please verify that the role " +
	"being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."

// passRole checks the task role of the tasks an operation will start from
// the task definition ref (overridden by overrideRole when set), with
// ECS.CheckTaskRole, before the operation's Update (the check reads IAM
// state and asks the authorizer, which an Update must not). It returns the
// ARN of the revision it checked, for the operation to use, so that a
// revision registered meanwhile cannot slip another role past the check.
// A ref that does not resolve is left for the operation to refuse.
func (s *ECS) passRole(ctx context.Context, clusterIn, ref, overrideRole string) (string, error) {
	if s.CheckTaskRole == nil || ref == "" {
		return ref, nil
	}
	cluster, err := clusterRef(clusterIn)
	if err != nil {
		return ref, nil
	}
	var td *domain.TaskDefinition
	s.st.View(func(r *state.View) { td, err = resolveTaskDef(r, ref) })
	if err != nil {
		return ref, nil
	}
	role := overrideRole
	if role == "" {
		role = td.TaskRoleARN
	}
	if role != "" {
		if err := s.CheckTaskRole(ctx, s.part.ClusterARN(cluster), s.part.RoleARN(role)); err != nil {
			return "", err
		}
	}
	return td.TaskDefinitionARN, nil
}

// overrideRole is the taskRoleArn of RunTask's overrides.
func overrideRole(overrides json.RawMessage) string {
	return domain.TaskRoleARN(&domain.Task{Overrides: overrides}, nil)
}
