package agent

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/agentapi"
	"github.com/holdfast/holdfast/internal/domain"
)

// Task role credentials.
//
// A task whose definition (or RunTask override) names a task role runs
// with a session of that role, as on ECS. The task's runner obtains it
// from the control plane (HoldfastAgentV1.GetTaskCredentials, which only
// the agent of the task's instance may call) before the first container
// starts, and again half way through each session's life, until the task
// stops; the credentials are kept in memory only (a restarted agent gets
// new ones for the tasks it adopts). The task endpoint serves them to the
// task (endpoint.Credentials) and calls ECS with them for the task's
// protection.
//
// Each task with a role has a credentials id, and a token the SDKs send
// as the Authorization header. Both are derived from the task id with the
// agent's key (<data-dir>/agent-key, mode 0600), so that nothing secret is
// kept in the task records and a restarted agent serves the tasks it
// adopts under the URI their processes already have:
//
//   - under the process runtime and in host network mode:
//     AWS_CONTAINER_CREDENTIALS_FULL_URI=http://<agent listener, on
//     loopback>/v2/credentials/<id> and AWS_CONTAINER_AUTHORIZATION_TOKEN
//     (every local process can reach the listener: the token is required);
//   - in containers with their own network (bridge, awsvpc):
//     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/<id>, read at
//     169.254.170.2, which the Docker runtime redirects to the agent for
//     its bridge only.

// credentialsFailureReason prefixes the stop reason of a task whose role
// the control plane refused to issue credentials for.
const credentialsFailureReason = "Task failed to start: unable to get credentials for the task role: "

// loadAgentKey reads the agent's key, creating it on first start.
func loadAgentKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "agent-key")
	if b, err := os.ReadFile(path); err == nil && len(b) == 64 {
		if key, err := hex.DecodeString(string(b)); err == nil {
			return key, nil
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := writeFileSyncMode(path, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		return nil, fmt.Errorf("save the agent key: %w", err)
	}
	return key, nil
}

// derive is a secret of purpose for task id, from the agent's key.
func (a *Agent) derive(purpose, id string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(purpose + ":" + id))
	return hex.EncodeToString(m.Sum(nil))
}

func (a *Agent) credentialsID(taskID string) string { return a.derive("credentials-id", taskID) }

func (a *Agent) credentialsToken(taskID string) string { return a.derive("credentials-token", taskID) }

// credentialsOnLoopback reports whether a task reaches its credentials on
// the agent's listener (FULL_URI and token) rather than at 169.254.170.2.
func (a *Agent) credentialsOnLoopback(td *domain.TaskDefinition) bool {
	if a.rt.Name() == "process" {
		return true
	}
	return td.NetworkMode == "host"
}

// credentialsEnv is what a container of lt gets to find its task's
// credentials (nothing without a role).
func (a *Agent) credentialsEnv(lt *localTask, _ localContainer) []string {
	if lt.RoleARN == "" {
		return nil
	}
	path := endpoint.CredentialsPath + "/" + a.credentialsID(lt.ID)
	if !a.credentialsOnLoopback(lt.TaskDef) {
		return []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=" + path}
	}
	env := []string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://" + loopbackAddr(a.cfg.Listen) + path,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN=" + a.credentialsToken(lt.ID),
	}
	if a.cfg.CABundle != "" {
		// The control plane serves TLS with a private certificate: the
		// task's SDK trusts it as the agent does.
		env = append(env, "AWS_CA_BUNDLE="+a.cfg.CABundle)
	}
	return env
}

// loopbackAddr is the address local processes reach the listener at: the
// SDKs take a FULL_URI over plain HTTP only on a loopback host, so a
// listener on every interface is named by 127.0.0.1 (or ::1).
func loopbackAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		return net.JoinHostPort("127.0.0.1", port)
	case ip != nil && ip.IsUnspecified():
		return net.JoinHostPort("::1", port)
	}
	return listen
}

// indexCredentialsLocked makes lt's credentials id resolve (tasks with a
// role that have not stopped). Caller holds a.mu.
func (a *Agent) indexCredentialsLocked(lt *localTask) {
	if lt.RoleARN != "" && lt.KnownStatus != domain.StatusStopped {
		a.byCredentials[a.credentialsID(lt.ID)] = lt.ID
	}
}

// dropCredentialsLocked forgets a stopped task's credentials: its id no
// longer resolves and its protection calls have none. Caller holds a.mu.
func (a *Agent) dropCredentialsLocked(lt *localTask) {
	if lt.RoleARN != "" {
		delete(a.byCredentials, a.credentialsID(lt.ID))
	}
	lt.creds = nil
}

// credentialStore is the task endpoint's view of the credentials.
type credentialStore struct{ a *Agent }

func (s credentialStore) ByID(id string) (endpoint.RoleCredentials, string, bool) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[a.byCredentials[id]]
	if lt == nil || lt.KnownStatus == domain.StatusStopped {
		return endpoint.RoleCredentials{}, "", false
	}
	token := ""
	if a.credentialsOnLoopback(lt.TaskDef) {
		token = a.credentialsToken(lt.ID)
	}
	if lt.creds == nil {
		return endpoint.RoleCredentials{}, token, true
	}
	return *lt.creds, token, true
}

func (s credentialStore) ForTask(taskARN string) (endpoint.RoleCredentials, bool) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[taskID(taskARN)]
	if lt == nil || lt.creds == nil || lt.KnownStatus == domain.StatusStopped {
		return endpoint.RoleCredentials{}, false
	}
	return *lt.creds, true
}

// fetchCredentials gets a new session of task id's role and keeps it.
func (a *Agent) fetchCredentials(ctx context.Context, id string) error {
	a.mu.Lock()
	lt := a.tasks[id]
	if lt == nil {
		a.mu.Unlock()
		return nil
	}
	in := agentapi.TaskCredentialsInput{Cluster: a.cfg.Cluster, ContainerInstanceARN: a.instanceARN, TaskARN: lt.ARN}
	a.mu.Unlock()
	if in.ContainerInstanceARN == "" {
		return errors.New("not registered yet")
	}
	var out agentapi.TaskCredentialsOutput
	if err := a.raw.call(ctx, agentapi.TaskCredentialsTarget, in, &out); err != nil {
		return err
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if lt.KnownStatus == domain.StatusStopped {
		return nil
	}
	lt.creds = &endpoint.RoleCredentials{RoleARN: out.RoleARN, AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey,
		SessionToken: out.SessionToken, Expiration: out.Expiration}
	// Refresh half way through the session's life.
	lt.credsDue = now.Add(out.Expiration.Sub(now) / 2)
	lt.credsFailures = 0
	return nil
}

// refused is the reason the control plane refused the credentials for good
// (a ClientException: the role cannot be assumed, the task is not ours),
// or "".
func refused(err error) string {
	var ae *apiError
	if errors.As(err, &ae) && ae.Type == "ClientException" {
		return ae.Message
	}
	return ""
}

// ensureCredentials obtains the credentials of a task with a role before
// its first container starts. It reports false when the task must not
// start: the control plane refused (the task is stopped with the reason)
// or the agent is stopping. A task told to stop meanwhile goes on to the
// start, which abandons it.
func (a *Agent) ensureCredentials(ctx context.Context, id string) bool {
	b := newBackoff()
	for {
		a.mu.Lock()
		lt := a.tasks[id]
		done := lt == nil || lt.RoleARN == "" || lt.creds != nil || lt.DesiredStatus == domain.StatusStopped
		a.mu.Unlock()
		if done {
			return true
		}
		err := a.fetchCredentials(ctx, id)
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return false
		case refused(err) != "":
			a.failStart(id, credentialsFailureReason+refused(err))
			return false
		}
		a.log.Warn("task role credentials: retrying", "task", id, "err", err)
		b.sleep(ctx)
	}
}

// credentialsTimer is when task id's runner must refresh its credentials:
// nil for a task without a role, not started yet, or stopped.
func (a *Agent) credentialsTimer(id string) *time.Timer {
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt == nil || lt.RoleARN == "" || lt.KnownStatus == domain.StatusStopped || lt.KnownStatus == domain.StatusPending {
		return nil
	}
	if lt.creds == nil && lt.credsDue.IsZero() {
		return time.NewTimer(0) // adopted after a restart
	}
	return time.NewTimer(time.Until(lt.credsDue))
}

// refreshCredentials renews task id's credentials; a failure is retried
// with a backoff, never past what the session has left, while the old
// credentials serve on.
func (a *Agent) refreshCredentials(ctx context.Context, id string) {
	err := a.fetchCredentials(ctx, id)
	if err == nil || ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lt := a.tasks[id]
	if lt == nil {
		return
	}
	lt.credsFailures++
	wait := min(time.Duration(1<<min(lt.credsFailures, 5))*time.Second, 30*time.Second)
	if lt.creds != nil {
		if left := time.Until(lt.creds.Expiration) / 2; left > 0 && left < wait {
			wait = left
		}
	}
	lt.credsDue = time.Now().Add(wait)
	a.log.Warn("task role credentials: refresh failed", "task", id, "err", err, "retry in", wait)
}
