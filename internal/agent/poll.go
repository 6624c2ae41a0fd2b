package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
)

// registerTarget is ECS's RegisterContainerInstance, called with the raw
// client to read holdfast's extension of its answer (agentapi.RegisterOutput).
const registerTarget = "AmazonEC2ContainerServiceV20141113.RegisterContainerInstance"

// register registers (or re-registers, after a restart) the container
// instance, adopting the instance's own identity when the answer has one.
func (a *Agent) register(ctx context.Context) error {
	type attribute struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	in := struct {
		Cluster              string            `json:"cluster"`
		ContainerInstanceARN string            `json:"containerInstanceArn,omitempty"`
		Attributes           []attribute       `json:"attributes"`
		VersionInfo          map[string]string `json:"versionInfo"`
	}{
		Cluster:              a.cfg.Cluster,
		ContainerInstanceARN: a.InstanceARN(),
		Attributes:           []attribute{{"holdfast.agent-url", "http://" + a.cfg.Listen}},
		VersionInfo:          map[string]string{"agentVersion": Version},
	}
	keys := make([]string, 0, len(a.cfg.Attributes))
	for k := range a.cfg.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Attributes = append(in.Attributes, attribute{k, a.cfg.Attributes[k]})
	}
	var out agentapi.RegisterOutput
	err := a.raw.call(ctx, registerTarget, in, &out)
	if err != nil && a.ownIdentity && unrecognized(err) {
		// The instance's identity is gone (it was deregistered):
		// register anew with the credentials the agent was given.
		a.log.Warn("the control plane no longer knows this instance's identity; registering anew", "err", err)
		a.dropIdentity()
		return a.register(ctx)
	}
	if err != nil {
		return err
	}
	if out.AgentCredentials != nil {
		if err := a.adoptIdentity(out.AgentCredentials); err != nil {
			return err
		}
	}
	arn := out.ContainerInstance.ContainerInstanceARN
	a.mu.Lock()
	a.instanceARN = arn
	write := a.writeFile // replaced by tests
	a.mu.Unlock()
	if err := write(filepath.Join(a.cfg.DataDir, "instance-arn"), []byte(arn+"\n")); err != nil {
		return err
	}
	a.log.Info("registered container instance", "arn", arn, "cluster", a.cfg.Cluster)
	return nil
}

func (a *Agent) pollLoop(ctx context.Context) error {
	var known int64
	for ctx.Err() == nil {
		var out agentapi.PollOutput
		err := a.raw.call(ctx, agentapi.PollTarget, agentapi.PollInput{
			Cluster:              a.cfg.Cluster,
			ContainerInstanceARN: a.InstanceARN(),
			KnownRevision:        known,
			WaitSeconds:          int(a.cfg.PollWait / time.Second),
		}, &out)
		if err != nil {
			return err
		}
		known = out.Revision
		a.apply(out)
		a.readyOnce.Do(func() { close(a.ready) })
	}
	return ctx.Err()
}

// apply makes the local tasks match what the control plane wants. It only
// changes memory; the tasks' runners act on it.
func (a *Agent) apply(out agentapi.PollOutput) {
	a.mu.Lock()
	defer a.mu.Unlock()
	want := map[string]bool{}
	for _, arn := range out.TaskARNs {
		want[taskID(arn)] = true
	}
	for _, d := range out.Tasks {
		if d.Task == nil || d.TaskDefinition == nil {
			continue
		}
		id := taskID(d.Task.TaskARN)
		lt := a.tasks[id]
		if lt == nil {
			if d.Task.DesiredStatus != domain.StatusRunning {
				if want[id] {
					// Stopped before it ever reached this agent: nothing
					// runs, but only our STOPPED report ends it.
					lt = a.newLocalTask(d)
					lt.DesiredStatus = domain.StatusStopped
					lt.StopReason = d.Task.StoppedReason
					for i := range lt.Containers {
						lt.Containers[i].Status = domain.StatusStopped
					}
					a.tasks[id] = lt
					a.spawnLocked(id)
					a.finishIfDone(lt)
				}
				continue
			}
			lt = a.newLocalTask(d)
			a.tasks[id] = lt
			a.spawnLocked(id)
			a.markDirty(lt) // reports PENDING; the runner starts it
			continue
		}
		if d.Task.DesiredStatus == domain.StatusStopped && lt.DesiredStatus != domain.StatusStopped {
			lt.DesiredStatus = domain.StatusStopped
			lt.StopReason = d.Task.StoppedReason
			a.stopLocked(lt)
		}
	}
	for id, lt := range a.tasks {
		if !want[id] && lt.KnownStatus != domain.StatusStopped && lt.DesiredStatus != domain.StatusStopped {
			// The control plane no longer lists it (it was stopped while we
			// were away): stop it.
			lt.DesiredStatus = domain.StatusStopped
			a.stopLocked(lt)
		}
	}
}

func taskID(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

func newEndpointID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newLocalTask makes the record of a task the control plane assigned, and
// indexes its containers. Caller holds a.mu.
func (a *Agent) newLocalTask(d agentapi.DesiredTask) *localTask {
	id := taskID(d.Task.TaskARN)
	lt := &localTask{
		ARN:           d.Task.TaskARN,
		ID:            id,
		ServiceName:   d.ServiceName,
		TaskDef:       d.TaskDefinition,
		DesiredStatus: domain.StatusRunning,
		KnownStatus:   domain.StatusPending,
		Reported:      domain.StatusProvisioning,
		CreatedAt:     time.Now(),
		RoleARN:       domain.TaskRoleARN(d.Task, d.TaskDefinition),
		saveDirty:     true,
	}
	for _, cd := range d.TaskDefinition.ContainerDefinitions {
		stop := 30 * time.Second
		if cd.StopTimeout != nil {
			stop = time.Duration(*cd.StopTimeout) * time.Second
		}
		c := localContainer{
			Name:        cd.Name,
			RuntimeID:   id + "-" + cd.Name,
			EndpointID:  newEndpointID(),
			Essential:   cd.IsEssential(),
			Status:      domain.StatusPending,
			StopTimeout: stop,
		}
		lt.Containers = append(lt.Containers, c)
		a.byRuntime[c.RuntimeID] = containerRef{id, cd.Name}
		a.byEndpoint[c.EndpointID] = containerRef{id, cd.Name}
	}
	a.indexCredentialsLocked(lt)
	return lt
}
