package server

import (
	"context"
	"errors"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/iam"
)

// Task roles: the two places where ECS and IAM meet.
//
//   - Passing a role: RunTask, CreateService and UpdateService that start
//     tasks with a task role need iam:PassRole on it (with
//     iam:PassedToService ecs-tasks.amazonaws.com), and the role must
//     trust ecs-tasks.amazonaws.com (control.ECS.CheckTaskRole).
//   - A task's credentials: the agent of the instance a task runs on gets
//     a session of the task's role named after the task id
//     (HoldfastAgentV1.GetTaskCredentials), which it serves to the task
//     and uses for the task's protection calls. The trust policy is
//     evaluated again at every issue.

// ECSTasksPrincipal is the service principal task roles must trust.
const ECSTasksPrincipal = "ecs-tasks.amazonaws.com"

// DefaultTaskCredentialsDuration is how long a task's role session lasts;
// agents refresh it half way.
const DefaultTaskCredentialsDuration = time.Hour

// checkTaskRole is control.ECS.CheckTaskRole.
func (s *Server) checkTaskRole(ctx context.Context, clusterARN, roleARN string) error {
	err := api.Authorize(ctx, api.Action{Name: "iam:PassRole", Resources: []string{roleARN},
		Context: map[string][]string{"iam:PassedToService": {ECSTasksPrincipal}}})
	if err != nil {
		return err
	}
	if !s.IAM.TrustsService(roleARN, ECSTasksPrincipal, clusterARN) {
		return domain.Errorf(domain.KindClient, control.MsgCannotAssumeRole, roleARN)
	}
	return nil
}

// getTaskCredentials is the agent protocol's GetTaskCredentials.
func (s *Server) getTaskCredentials(ctx context.Context, in agentapi.TaskCredentialsInput) (*agentapi.TaskCredentialsOutput, error) {
	if bound, ok := s.Agents.InstanceAgent(in.Cluster, in.ContainerInstanceARN); ok {
		if err := onlyAgent(ctx, bound, "ecs:Poll", in.ContainerInstanceARN); err != nil {
			return nil, err
		}
	}
	role, clusterARN, err := s.Agents.TaskRole(in)
	if err != nil {
		return nil, err
	}
	taskID, _, err := domain.ResourceName(in.TaskARN, "task")
	if err != nil {
		return nil, err
	}
	tc, err := s.IAM.IssueServiceSession(role, ECSTasksPrincipal, clusterARN, taskID, s.cfg.TaskCredentialsDuration)
	if errors.Is(err, iam.ErrNotAssumable) {
		return nil, domain.Errorf(domain.KindClient, control.MsgCannotAssumeRole, role)
	}
	if err != nil {
		return nil, err
	}
	return &agentapi.TaskCredentialsOutput{RoleARN: tc.RoleARN, AccessKeyID: tc.AccessKeyID, SecretAccessKey: tc.SecretAccessKey,
		SessionToken: tc.SessionToken, Expiration: tc.Expiration}, nil
}

// pollAction is the action of the agent protocol's own calls (the long
// poll and task credentials): ecs:Poll on the caller's container
// instance, the permission ECS's agents have (ECS delivers task
// credentials over the same channel).
func pollAction(p domain.Partition) api.ActionFunc {
	return func(ctx context.Context, body []byte) (api.Action, error) {
		var in struct {
			Cluster              string `json:"cluster"`
			ContainerInstanceARN string `json:"containerInstanceArn"`
		}
		if err := api.DecodeRequest(ctx, body, &in); err != nil {
			return api.Action{}, err
		}
		resource := in.ContainerInstanceARN
		if id, cluster, err := domain.ResourceName(in.ContainerInstanceARN, "container-instance"); err == nil && cluster == "" {
			name := in.Cluster
			if name == "" {
				name = "default"
			}
			if n, _, err := domain.ResourceName(name, "cluster"); err == nil {
				name = n
			}
			resource = p.ContainerInstanceARN(name, id)
		}
		return api.Action{Name: "ecs:Poll", Resources: []string{resource}}, nil
	}
}
