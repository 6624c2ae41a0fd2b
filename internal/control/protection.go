package control

import (
	"context"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

// UpdateTaskProtectionInput is UpdateTaskProtectionRequest.
type UpdateTaskProtectionInput struct {
	Cluster           string   `json:"cluster"`
	Tasks             []string `json:"tasks"`
	ProtectionEnabled *bool    `json:"protectionEnabled"`
	ExpiresInMinutes  *int64   `json:"expiresInMinutes"`
}

// TaskProtectionOutput is the response of Get/UpdateTaskProtection.
type TaskProtectionOutput struct {
	ProtectedTasks []domain.ProtectedTask `json:"protectedTasks"`
	Failures       []domain.Failure       `json:"failures"`
}

func protectionView(t *domain.Task, now time.Time) domain.ProtectedTask {
	pt := domain.ProtectedTask{TaskARN: t.TaskARN}
	if t.Protected(now) {
		pt.ProtectionEnabled = true
		pt.ExpirationDate = domain.TimePtr(t.Internal.ProtectedUntil)
	}
	return pt
}

// UpdateTaskProtection sets or clears scale-in protection on 1-10 tasks.
//
// Per task: MISSING for an unknown task, TASK_NOT_VALID for a task that no
// service started (or that has stopped), DEPLOYMENT_BLOCKED when enabling
// protection on a task that is not protected now would leave the service
// with more protected tasks than its desired count. Renewing a live
// protection and disabling are never blocked. Every call resets the expiry.
func (s *Store) UpdateTaskProtection(ctx context.Context, in UpdateTaskProtectionInput) (*TaskProtectionOutput, error) {
	if in.Cluster == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Cluster cannot be empty.")
	}
	if len(in.Tasks) == 0 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Tasks cannot be empty.")
	}
	if len(in.Tasks) > 10 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Tasks cannot have more than 10 elements.")
	}
	if in.ProtectionEnabled == nil {
		return nil, domain.Errorf(domain.KindInvalidParameter, "protectionEnabled must be specified.")
	}
	minutes := int64(domain.ProtectionDefaultMinutes)
	if in.ExpiresInMinutes != nil {
		minutes = *in.ExpiresInMinutes
		if minutes < 1 || minutes > domain.ProtectionMaxMinutes {
			return nil, domain.Errorf(domain.KindInvalidParameter, "expiresInMinutes must be between 1 and 2880 minutes.")
		}
	}
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	enable := *in.ProtectionEnabled
	out := &TaskProtectionOutput{ProtectedTasks: []domain.ProtectedTask{}, Failures: []domain.Failure{}}
	err = s.Update(ctx, func(tx *Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		now := tx.Now()
		until := now.Add(time.Duration(minutes) * time.Minute).Truncate(time.Millisecond)
		// live protected tasks per service, counted once per call and kept
		// current as this call changes them.
		live := map[string]int{}
		liveOf := func(svc string) int {
			if n, ok := live[svc]; ok {
				return n
			}
			n := protectedCount(tx, cluster, svc)
			live[svc] = n
			return n
		}
		for _, ref := range in.Tasks {
			tc, id, err := taskRef(cluster, ref)
			if err != nil || tc != cluster {
				out.Failures = append(out.Failures, domain.Failure{ARN: ref, Reason: domain.ReasonMissing})
				continue
			}
			t := tx.Task(cluster, id)
			if t == nil {
				out.Failures = append(out.Failures, domain.Failure{ARN: s.part.TaskARN(cluster, id), Reason: domain.ReasonMissing})
				continue
			}
			if t.Internal.ServiceName == "" {
				out.Failures = append(out.Failures, domain.Failure{ARN: t.TaskARN, Reason: domain.ReasonTaskNotValid,
					Detail: "The task is not part of a service."})
				continue
			}
			if t.DesiredStatus == domain.StatusStopped || t.LastStatus == domain.StatusStopped {
				out.Failures = append(out.Failures, domain.Failure{ARN: t.TaskARN, Reason: domain.ReasonTaskNotValid,
					Detail: "The task is stopping or stopped."})
				continue
			}
			if !enable {
				if t.Protected(now) {
					live[t.Internal.ServiceName] = liveOf(t.Internal.ServiceName) - 1
				}
				v := cloneTask(t)
				v.Internal.ProtectedUntil = time.Time{}
				tx.PutProtection(v)
				out.ProtectedTasks = append(out.ProtectedTasks, protectionView(v, now))
				continue
			}
			if !t.Protected(now) {
				sv := tx.Service(cluster, t.Internal.ServiceName)
				if sv == nil || liveOf(t.Internal.ServiceName)+1 > sv.DesiredCount {
					out.Failures = append(out.Failures, domain.Failure{ARN: t.TaskARN, Reason: domain.ReasonDeploymentBlocked,
						Detail: "Protecting this task would leave the service with more protected tasks than its desired count."})
					continue
				}
				live[t.Internal.ServiceName]++
			}
			v := cloneTask(t)
			v.Internal.ProtectedUntil = until
			tx.PutProtection(v)
			out.ProtectedTasks = append(out.ProtectedTasks, protectionView(v, now))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// protectedCount counts a service's live protected tasks as the batch sees
// them (before this mutation's own writes), once per batch: apply keeps the
// cached count exact as the batch's writes land.
func protectedCount(tx *Tx, cluster, service string) int {
	k := svcKey(cluster, service)
	if n, ok := tx.live[k]; ok {
		return n
	}
	n := 0
	for _, t := range tx.st.protected[k] {
		if liveProtected(t, tx.now) {
			n++
		}
	}
	if tx.live != nil {
		tx.live[k] = n
	}
	return n
}

// GetTaskProtectionInput is GetTaskProtectionRequest.
type GetTaskProtectionInput struct {
	Cluster string   `json:"cluster"`
	Tasks   []string `json:"tasks"`
}

// GetTaskProtection reads the protection of up to 100 tasks. Without tasks
// it returns every task of the cluster that is protected now.
func (s *Store) GetTaskProtection(ctx context.Context, in GetTaskProtectionInput) (*TaskProtectionOutput, error) {
	if in.Cluster == "" {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Cluster cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, domain.Errorf(domain.KindInvalidParameter, "Tasks cannot have more than 100 elements.")
	}
	cluster, err := clusterRef(in.Cluster)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := &TaskProtectionOutput{ProtectedTasks: []domain.ProtectedTask{}, Failures: []domain.Failure{}}
	var clusterErr error
	s.read(func(st *state) {
		c := st.clusters[cluster]
		if c == nil || c.Status != domain.Active {
			clusterErr = domain.ErrClusterNotFound
			return
		}
		if len(in.Tasks) == 0 {
			for _, id := range sortedKeys(st.tasks[cluster]) {
				if t := st.tasks[cluster][id]; t.Protected(now) && t.LastStatus != domain.StatusStopped {
					out.ProtectedTasks = append(out.ProtectedTasks, protectionView(t, now))
				}
			}
			return
		}
		for _, ref := range in.Tasks {
			tc, id, err := taskRef(cluster, ref)
			if err != nil || tc != cluster {
				out.Failures = append(out.Failures, domain.Failure{ARN: ref, Reason: domain.ReasonMissing})
				continue
			}
			t := st.tasks[cluster][id]
			if t == nil {
				out.Failures = append(out.Failures, domain.Failure{ARN: s.part.TaskARN(cluster, id), Reason: domain.ReasonMissing})
				continue
			}
			if t.Internal.ServiceName == "" {
				out.Failures = append(out.Failures, domain.Failure{ARN: t.TaskARN, Reason: domain.ReasonTaskNotValid,
					Detail: "The task is not part of a service."})
				continue
			}
			out.ProtectedTasks = append(out.ProtectedTasks, protectionView(t, now))
		}
	})
	if clusterErr != nil {
		return nil, clusterErr
	}
	return out, nil
}
