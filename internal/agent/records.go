package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/domain"
)

// localTask is the agent's record of one task: <data-dir>/tasks/<id>.json.
type localTask struct {
	ARN           string                 `json:"arn"`
	ID            string                 `json:"id"`
	ServiceName   string                 `json:"serviceName,omitempty"`
	TaskDef       *domain.TaskDefinition `json:"taskDefinition"`
	DesiredStatus string                 `json:"desiredStatus"`
	KnownStatus   string                 `json:"knownStatus"`
	// Reported is the last status the control plane acknowledged.
	Reported   string           `json:"reported"`
	StopReason string           `json:"stopReason,omitempty"`
	Containers []localContainer `json:"containers"`
	// Network is the task's network as the runtime set it up (absent in
	// records of agents before the runtime seam: host).
	Network   *ctr.TaskNetwork `json:"network,omitempty"`
	CreatedAt time.Time        `json:"createdAt"`
	StartedAt time.Time        `json:"startedAt,omitzero"`
	StoppedAt time.Time        `json:"stoppedAt,omitzero"`
	// RoleARN is the task role ("" for none; see credentials.go).
	RoleARN string `json:"roleArn,omitempty"`

	// Memory only.

	// reportDirty: a change not yet reported (at start every task whose
	// Reported differs from KnownStatus is reported again).
	reportDirty bool
	// saveDirty: a change not yet written to the record file; the task's
	// runner writes it.
	saveDirty bool
	// starting: the runner is still starting its containers; the task
	// cannot be STOPPED until it is done.
	starting bool
	// tornDown: TeardownTask has succeeded since the agent started.
	tornDown bool
	// creds are the task role's current session (nil before the first);
	// the runner refreshes them at credsDue, after credsFailures failed
	// attempts in a row.
	creds         *endpoint.RoleCredentials
	credsDue      time.Time
	credsFailures int
}

type localContainer struct {
	Name        string        `json:"name"`
	RuntimeID   string        `json:"runtimeId"`
	EndpointID  string        `json:"endpointId"`
	Essential   bool          `json:"essential"`
	Status      string        `json:"status"`
	ExitCode    *int          `json:"exitCode,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	StopTimeout time.Duration `json:"stopTimeout"`
	PID         int           `json:"pid,omitempty"`
	StartedAt   time.Time     `json:"startedAt,omitzero"`
	FinishedAt  time.Time     `json:"finishedAt,omitzero"`
	// HealthStatus is the result of the container's health check
	// (HEALTHY, UNHEALTHY; "" or UNKNOWN before the first verdict, and
	// for containers without one).
	HealthStatus string `json:"healthStatus,omitempty"`

	// stopSent: the runner has asked the runtime to stop it since the
	// agent started (memory only: a restarted agent asks again).
	stopSent bool
}

// reasonLost is the reason of a container that the record says runs but
// that the runtime did not find after an agent restart.
const reasonLost = "container not found by the runtime after an agent restart"

// load reads the records of the data dir, adopts the runtime's containers
// and reconciles the two. It runs in New, before any goroutine.
func (a *Agent) load() error {
	if b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "instance-arn")); err == nil {
		a.instanceARN = strings.TrimSpace(string(b))
	}
	entries, err := os.ReadDir(filepath.Join(a.cfg.DataDir, "tasks"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "tasks", e.Name()))
		if err != nil {
			return err
		}
		var t localTask
		if err := json.Unmarshal(b, &t); err != nil {
			a.log.Warn("skipping unreadable task record", "file", e.Name(), "err", err)
			continue
		}
		t.reportDirty = t.Reported != t.KnownStatus
		a.tasks[t.ID] = &t
		a.indexCredentialsLocked(&t)
		for _, c := range t.Containers {
			a.byRuntime[c.RuntimeID] = containerRef{t.ID, c.Name}
			if t.KnownStatus != domain.StatusStopped {
				a.byEndpoint[c.EndpointID] = containerRef{t.ID, c.Name}
			}
		}
	}
	adopted, err := a.rt.Adopt(context.Background())
	if err != nil {
		return fmt.Errorf("adopt running containers: %w", err)
	}
	alive := map[string]ctr.Info{}
	for _, info := range adopted {
		alive[info.ID] = info
		if _, ok := a.byRuntime[info.ID]; !ok {
			a.log.Warn("adopted a container with no task record; stopping it", "container", info.ID)
			if err := a.rt.Stop(info.ID, 5*time.Second); err != nil {
				a.log.Warn("stop container", "container", info.ID, "err", err)
			}
		}
	}
	for _, lt := range a.tasks {
		resuming := lt.KnownStatus == domain.StatusPending && lt.DesiredStatus == domain.StatusRunning
		for i := range lt.Containers {
			c := &lt.Containers[i]
			info, ok := alive[c.RuntimeID]
			switch {
			case ok && resuming:
				// A start the previous agent did not finish (it died or
				// was stopped in the middle) is started again by the
				// runner: containers the runtime knows are kept.
				c.Status = domain.StatusRunning
			case !ok && c.Status == domain.StatusRunning:
				// Neither running nor with an exit to report: the
				// container is gone (its runtime state was lost).
				c.Status = domain.StatusStopped
				c.Reason = reasonLost
				a.containerStoppedLocked(lt, c)
				lt.saveDirty = true
			}
			if ok && info.Health != "" && info.Health != c.HealthStatus && c.Status == domain.StatusRunning {
				c.HealthStatus = info.Health
				lt.reportDirty, lt.saveDirty = true, true
			}
		}
	}
	for _, lt := range a.tasks {
		if lt.DesiredStatus == domain.StatusStopped && lt.KnownStatus != domain.StatusStopped {
			// Told to stop before the previous agent ended: the runner
			// asks the runtime again (its SIGKILL escalation died with the
			// previous agent), and a task with nothing left running is
			// STOPPED now.
			a.stopLocked(lt)
		}
	}
	if len(a.tasks) > 0 {
		a.log.Info("resumed tasks from the data dir", "tasks", len(a.tasks), "live containers", len(adopted))
	}
	return nil
}

// changedLocked records that lt must be written again and wakes its
// runner. Caller holds a.mu.
func (a *Agent) changedLocked(lt *localTask) {
	lt.saveDirty = true
	a.wakeLocked(lt.ID)
}

// persist writes task id's record if it changed since the last write. Only
// the task's runner calls it, so writes of one record never race; the
// write (and its fsync) happens outside a.mu.
func (a *Agent) persist(id string) {
	a.mu.Lock()
	lt := a.tasks[id]
	if lt == nil || !lt.saveDirty {
		a.mu.Unlock()
		return
	}
	lt.saveDirty = false
	b, err := json.Marshal(lt)
	write := a.writeFile
	a.mu.Unlock()
	if err != nil {
		a.log.Error("encode task record", "task", id, "err", err)
		return
	}
	if err := write(a.recordPath(id), b); err != nil {
		a.log.Error("save task record", "task", id, "err", err)
		a.mu.Lock()
		lt.saveDirty = true // the next change, or the next agent, retries
		a.mu.Unlock()
	}
}

func (a *Agent) recordPath(id string) string {
	return filepath.Join(a.cfg.DataDir, "tasks", id+".json")
}

// removeRecord deletes task id's record once its end is acknowledged.
func (a *Agent) removeRecord(id string) {
	if err := os.Remove(a.recordPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("remove task record", "task", id, "err", err)
	}
}

// writeFileSync writes a file durably: tmp + fsync + rename.
func writeFileSync(path string, b []byte) error { return writeFileSyncMode(path, b, 0o644) }

// writeFileSyncMode is writeFileSync with the file's permissions.
func writeFileSyncMode(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
