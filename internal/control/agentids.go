package control

import (
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
)

// Agents' identities. An instance registered by an IAM identity other
// than the root is bound to the identity holdfast created for its agent
// (domain.InstanceInternal.Agent); the control plane (internal/server)
// lets only that identity speak the agent protocol for the instance: its
// polls, its tasks' status reports and credentials.

// NewInstanceID returns a fresh container instance id.
func NewInstanceID() string { return newID() }

// InstanceAgent returns the agent identity an instance is bound to ("" for
// none), and whether the instance exists and is not INACTIVE.
func (a *Agents) InstanceAgent(clusterIn, instance string) (agent string, ok bool) {
	cluster, id, err := instanceRef(clusterIn, instance)
	if err != nil {
		return "", false
	}
	a.st.View(func(r *state.View) {
		if ci := getInstance(r, cluster, id); ci != nil && ci.Status != domain.Inactive {
			agent, ok = ci.Internal.Agent, true
		}
	})
	return agent, ok
}

// TaskAgent returns the agent identity of the instance a task is placed on
// ("" for none), and whether the task exists on an instance.
func (a *Agents) TaskAgent(clusterIn, task string) (agent string, ok bool) {
	cluster, id, err := taskRef(clusterIn, task)
	if err != nil {
		return "", false
	}
	a.st.View(func(r *state.View) {
		t := getTask(r, cluster, id)
		if t == nil || t.Internal.InstanceID == "" {
			return
		}
		if ci := getInstance(r, cluster, t.Internal.InstanceID); ci != nil {
			agent, ok = ci.Internal.Agent, true
		}
	})
	return agent, ok
}
