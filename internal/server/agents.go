package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/domain"
)

// Agents' identities: agents do not hold the root's keys.
//
//   - The agents' bootstrap identity is the IAM user holdfast-agent (path
//     /holdfast/), created at the control plane's first start, allowed
//     only ecs:RegisterContainerInstance. Its access key is kept in
//     <data dir>/agent-credentials.json (mode 0600): `holdfast up` gives
//     it to its own agent, and operators give it to `holdfast agent`.
//   - Registering a new container instance with any identity but the root
//     creates that instance's own identity, the IAM user
//     agent-<instance id> (path /holdfast/agents/), allowed the agent
//     protocol on its cluster and its instance only (RegisterContainer
//     Instance and SubmitTaskStateChange on the cluster, ecs:Poll, which
//     covers the long poll and task credentials, on the instance), and
//     binds the instance to it. Its access key is returned once, in the
//     registration's answer (holdfastAgentCredentials), and the agent keeps
//     it in its data dir. DeregisterContainerInstance deletes it.
//   - The agent protocol for a bound instance (its polls, its tasks'
//     status reports and credentials, its re-registration) is refused to
//     every identity but the instance's own (the root excepted), whatever
//     their policies: an agent can act for its own instance and get the
//     credentials of its own tasks only.
//   - An instance registered by the root (an agent given the root's keys,
//     as before) is not bound, and the control plane logs a warning; an
//     agent identity that re-registers it claims it.

// Names of the agents' identities.
const (
	AgentBootstrapUser   = "holdfast-agent"
	AgentBootstrapPath   = "/holdfast/"
	AgentInstancePath    = "/holdfast/agents/"
	AgentCredentialsFile = "agent-credentials.json"
)

const agentBootstrapPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:RegisterContainerInstance","Resource":"*"}]}`

// agentInstancePolicy is what an instance's own identity may do.
func agentInstancePolicy(clusterARN, instanceARN string) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{
		{"Effect": "Allow", "Action": []string{"ecs:RegisterContainerInstance", "ecs:SubmitTaskStateChange"}, "Resource": clusterARN},
		{"Effect": "Allow", "Action": "ecs:Poll", "Resource": instanceARN},
	}})
	return string(b)
}

// savedKey is the file format of agent-credentials.json (the same as the
// root's credentials.json).
type savedKey struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// AgentCredentials returns the agents' bootstrap credentials: the oldest
// active access key of the holdfast-agent user, which is created (with a
// key) on first start; created reports that. They are written to
// <data dir>/agent-credentials.json for operators. Every replica and
// every restart on the same store answers the same key.
func (s *Server) AgentCredentials(ctx context.Context) (id, secret string, created bool, err error) {
	key, ok := s.IAM.OldestActiveKey(AgentBootstrapUser)
	switch {
	case ok:
	case !s.IAM.UserExists(AgentBootstrapUser):
		key, err = s.IAM.CreateServiceUser(ctx, AgentBootstrapPath, AgentBootstrapUser, "register", agentBootstrapPolicy)
		if err != nil {
			return "", "", false, fmt.Errorf("create the agents' identity: %w", err)
		}
		created = true
	default:
		// Its keys were deactivated or deleted by an operator: a new one.
		key, err = s.IAM.AddUserKey(ctx, AgentBootstrapUser)
		if err != nil {
			return "", "", false, fmt.Errorf("a new access key for %s: %w", AgentBootstrapUser, err)
		}
		created = true
	}
	path := filepath.Join(s.cfg.DataDir, AgentCredentialsFile)
	want, _ := json.MarshalIndent(savedKey{key.AccessKeyID, key.SecretAccessKey}, "", "  ")
	if have, err := os.ReadFile(path); err != nil || !bytes.Equal(have, want) {
		if err := os.WriteFile(path, want, 0o600); err != nil {
			return "", "", false, err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			return "", "", false, err
		}
		created = true
	}
	return key.AccessKeyID, key.SecretAccessKey, created, nil
}

// registerOutput is RegisterContainerInstance's answer, with the
// instance's own credentials when they were created.
type registerOutput struct {
	ContainerInstance *domain.ContainerInstance  `json:"containerInstance"`
	AgentCredentials  *agentapi.AgentCredentials `json:"holdfastAgentCredentials,omitempty"`
}

// registerAgentProtocol installs the agent protocol's operations with the
// identity checks above.
func (s *Server) registerAgentProtocol(a *api.Server, actions map[string]api.ActionFunc) {
	op := func(name string) string { return strings.TrimPrefix(name, api.HoldfastAgent.TargetPrefix+".") }
	a.Handle(api.ECS, "RegisterContainerInstance", api.Operation{Handler: api.Op(s.registerContainerInstance),
		Action: actions["RegisterContainerInstance"]})
	a.Handle(api.ECS, "SubmitTaskStateChange", api.Operation{Handler: api.Op(s.submitTaskStateChange),
		Action: actions["SubmitTaskStateChange"]})
	a.Handle(api.HoldfastAgent, op(agentapi.PollTarget), api.Operation{Handler: api.Op(s.poll), Action: pollAction(s.ECS.Partition())})
	a.Handle(api.HoldfastAgent, op(agentapi.TaskCredentialsTarget), api.Operation{Handler: api.Op(s.getTaskCredentials),
		Action: pollAction(s.ECS.Partition())})
	a.Handle(api.ECS, "DeregisterContainerInstance", api.Operation{Handler: api.Op(s.deregisterContainerInstance),
		Action: actions["DeregisterContainerInstance"]})
}

// onlyAgent refuses a call about an instance bound to another identity.
func onlyAgent(ctx context.Context, bound, action, resource string) error {
	p, _ := api.PrincipalFrom(ctx)
	if bound == "" || p.Type == api.PrincipalRoot || p.ARN == bound {
		return nil
	}
	return api.AccessDeniedError(p, action, resource, false)
}

func (s *Server) registerContainerInstance(ctx context.Context, in control.RegisterContainerInstanceInput) (*registerOutput, error) {
	p, _ := api.PrincipalFrom(ctx)
	if p.Type == api.PrincipalRoot {
		if s.rootAgentWarned.CompareAndSwap(false, true) {
			s.log.Warn("an agent registered with the root's credentials; give agents the agents' credentials ("+AgentCredentialsFile+
				" in the control plane's data dir) instead", "cluster", in.Cluster)
		}
		out, err := s.Agents.RegisterContainerInstance(ctx, in)
		if err != nil {
			return nil, err
		}
		return &registerOutput{ContainerInstance: out.ContainerInstance}, nil
	}
	cluster := in.Cluster
	if cluster == "" {
		cluster = "default"
	}
	if n, _, err := domain.ResourceName(cluster, "cluster"); err == nil {
		cluster = n
	}
	id := control.NewInstanceID()
	if in.ContainerInstanceARN != "" {
		if bound, ok := s.Agents.InstanceAgent(in.Cluster, in.ContainerInstanceARN); ok {
			if bound != "" {
				if err := onlyAgent(ctx, bound, "ecs:RegisterContainerInstance", in.ContainerInstanceARN); err != nil {
					return nil, err
				}
				out, err := s.Agents.RegisterContainerInstance(ctx, in)
				if err != nil {
					return nil, err
				}
				return &registerOutput{ContainerInstance: out.ContainerInstance}, nil
			}
			// Unbound (registered by the root): claimed below.
			id, _, _ = domain.ResourceName(in.ContainerInstanceARN, "container-instance")
		}
	}
	part := s.ECS.Partition()
	user := "agent-" + id
	key, err := s.IAM.CreateServiceUser(ctx, AgentInstancePath, user, "agent",
		agentInstancePolicy(part.ClusterARN(cluster), part.ContainerInstanceARN(cluster, id)))
	if err != nil {
		return nil, err
	}
	in.ID, in.Agent = id, key.UserARN
	out, err := s.Agents.RegisterContainerInstance(ctx, in)
	if err == nil && !strings.HasSuffix(out.ContainerInstance.ContainerInstanceARN, "/"+id) {
		err = errors.New("container instance id taken")
	}
	if err != nil {
		if derr := s.IAM.DeleteServiceUser(context.Background(), user); derr != nil {
			s.log.Warn("delete the identity of a failed registration", "user", user, "err", derr)
		}
		return nil, err
	}
	return &registerOutput{ContainerInstance: out.ContainerInstance,
		AgentCredentials: &agentapi.AgentCredentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}}, nil
}

func (s *Server) poll(ctx context.Context, in agentapi.PollInput) (*agentapi.PollOutput, error) {
	if bound, ok := s.Agents.InstanceAgent(in.Cluster, in.ContainerInstanceARN); ok {
		if err := onlyAgent(ctx, bound, "ecs:Poll", in.ContainerInstanceARN); err != nil {
			return nil, err
		}
	}
	return s.Agents.Poll(ctx, in)
}

func (s *Server) submitTaskStateChange(ctx context.Context, in agentapi.SubmitTaskStateChangeInput) (*agentapi.AckOutput, error) {
	if bound, ok := s.Agents.TaskAgent(in.Cluster, in.Task); ok {
		if err := onlyAgent(ctx, bound, "ecs:SubmitTaskStateChange", in.Task); err != nil {
			return nil, err
		}
	}
	return s.Agents.SubmitTaskStateChange(ctx, in)
}

// deregisterContainerInstance is DeregisterContainerInstance, deleting the
// instance's own identity once it is INACTIVE.
func (s *Server) deregisterContainerInstance(ctx context.Context, in control.DeregisterContainerInstanceInput) (*control.ContainerInstanceOutput, error) {
	bound, _ := s.Agents.InstanceAgent(in.Cluster, in.ContainerInstance)
	out, err := s.ECS.DeregisterContainerInstance(ctx, in)
	if err != nil {
		return nil, err
	}
	if name, ok := strings.CutPrefix(bound, "arn:aws:iam::"+s.cfg.AccountID+":user"+AgentInstancePath); ok {
		if err := s.IAM.DeleteServiceUser(ctx, name); err != nil {
			s.log.Warn("delete a deregistered instance's identity", "user", name, "err", err)
		}
	}
	return out, nil
}
