package control

import (
	"context"
	"slices"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
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

func protectionView(t *domain.Task, p *domain.Protection, now time.Time) domain.ProtectedTask {
	pt := domain.ProtectedTask{TaskARN: t.TaskARN}
	if p.Live(now) {
		pt.ProtectionEnabled = true
		pt.ExpirationDate = domain.TimePtr(p.Until)
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
func (s *ECS) UpdateTaskProtection(ctx context.Context, in UpdateTaskProtectionInput) (*TaskProtectionOutput, error) {
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
	err = update(ctx, s.st, func(tx *state.Tx) error {
		if _, _, err := activeCluster(tx, cluster); err != nil {
			return err
		}
		now := tx.Now()
		until := now.Add(time.Duration(minutes) * time.Minute).Truncate(time.Millisecond)
		// live protected tasks per service, counted once per call (or
		// taken from the count an earlier call left) and kept current as
		// this call changes them.
		live := map[string]int{}
		liveOf := func(svc string) int {
			if n, ok := live[svc]; ok {
				return n
			}
			n := s.liveCount(tx, cluster, svc, now)
			live[svc] = n
			return n
		}
		// earliest expiry this call sets, per service
		soonest := map[string]time.Time{}
		defer func() {
			for svc, n := range live {
				s.keepLiveCount(tx, cluster, svc, n, soonest[svc])
			}
		}()
		for _, ref := range in.Tasks {
			tc, id, err := taskRef(cluster, ref)
			if err != nil || tc != cluster {
				out.Failures = append(out.Failures, domain.Failure{ARN: ref, Reason: domain.ReasonMissing})
				continue
			}
			key := taskKey(cluster, id)
			t := Tasks.Get(tx, key)
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
			old := Protections.Get(tx, key)
			if !enable {
				if old.Live(now) {
					live[t.Internal.ServiceName] = liveOf(t.Internal.ServiceName) - 1
				}
				if old != nil {
					Protections.Delete(tx, key)
				}
				out.ProtectedTasks = append(out.ProtectedTasks, protectionView(t, nil, now))
				continue
			}
			if !old.Live(now) {
				sv := getService(tx, cluster, t.Internal.ServiceName)
				if sv == nil || liveOf(t.Internal.ServiceName)+1 > sv.DesiredCount {
					out.Failures = append(out.Failures, domain.Failure{ARN: t.TaskARN, Reason: domain.ReasonDeploymentBlocked,
						Detail: "Protecting this task would leave the service with more protected tasks than its desired count."})
					continue
				}
				live[t.Internal.ServiceName]++
			}
			if u, ok := soonest[t.Internal.ServiceName]; !ok || until.Before(u) {
				soonest[t.Internal.ServiceName] = until
			}
			p := &domain.Protection{Cluster: cluster, TaskID: id, Service: t.Internal.ServiceName, Until: until}
			Protections.Put(tx, p)
			out.ProtectedTasks = append(out.ProtectedTasks, protectionView(t, p, now))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// liveProtections counts a service's tasks whose protection holds at now
// and that are not on their way out: the count DEPLOYMENT_BLOCKED compares
// with the desired count. soonest is the earliest expiry among them.
func liveProtections(r state.Reader, cluster, service string, now time.Time) (n int, soonest time.Time) {
	for k, p := range protectionsByService.Group(r, svcKey(cluster, service)) {
		if !p.Live(now) {
			continue
		}
		if t := Tasks.Get(r, k); t != nil && t.LastStatus != domain.StatusStopped && t.DesiredStatus != domain.StatusStopped {
			n++
			if soonest.IsZero() || p.Until.Before(soonest) {
				soonest = p.Until
			}
		}
	}
	return n, soonest
}

// liveCounts caches each service's count of live protections between
// UpdateTaskProtection calls, so that a busy service is not recounted on
// every call. A count stays right while the two groups it was counted from
// (the service's protections and its tasks) keep their versions and none
// of the protections it counted has expired. It is read and written only
// inside Updates (on the apply loop), so it needs no lock.
type liveCounts map[string]liveCount

type liveCount struct {
	n                int
	protVer, taskVer uint64
	soonest          time.Time // earliest expiry among the counted (zero: none)
}

// liveCount returns the service's count of live protections at now.
func (s *ECS) liveCount(tx *state.Tx, cluster, service string, now time.Time) int {
	k := svcKey(cluster, service)
	pv, tv := protectionsByService.Version(tx, k), tasksByService.Version(tx, k)
	if c, ok := s.live[k]; ok && c.protVer == pv && c.taskVer == tv && (c.soonest.IsZero() || now.Before(c.soonest)) {
		return c.n
	}
	n, soonest := liveProtections(tx, cluster, service, now)
	s.live[k] = liveCount{n: n, protVer: pv, taskVer: tv, soonest: soonest}
	return n
}

// keepLiveCount records the count a call leaves after its own writes: the
// cached count (made at the call's start, or counted then) adjusted by the
// call, valid for the groups' versions after its writes. Expiries only
// move the cache's validity earlier, never later.
func (s *ECS) keepLiveCount(tx *state.Tx, cluster, service string, n int, set time.Time) {
	k := svcKey(cluster, service)
	c := s.live[k]
	soonest := c.soonest
	if !set.IsZero() && (soonest.IsZero() || set.Before(soonest)) {
		soonest = set
	}
	s.live[k] = liveCount{n: n, protVer: protectionsByService.Version(tx, k), taskVer: tasksByService.Version(tx, k), soonest: soonest}
}

// GetTaskProtectionInput is GetTaskProtectionRequest.
type GetTaskProtectionInput struct {
	Cluster string   `json:"cluster"`
	Tasks   []string `json:"tasks"`
}

// GetTaskProtection reads the protection of up to 100 tasks. Without tasks
// it returns every task of the cluster that is protected now.
func (s *ECS) GetTaskProtection(ctx context.Context, in GetTaskProtectionInput) (*TaskProtectionOutput, error) {
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
	out := &TaskProtectionOutput{ProtectedTasks: []domain.ProtectedTask{}, Failures: []domain.Failure{}}
	var clusterErr error
	s.st.View(func(r *state.View) {
		now := r.Now()
		c := Clusters.Get(r, cluster)
		if c == nil || c.Status != domain.Active {
			clusterErr = domain.ErrClusterNotFound
			return
		}
		if len(in.Tasks) == 0 {
			var keys []string
			for k, p := range Protections.All(r) {
				if p.Cluster == cluster && p.Live(now) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				if t := Tasks.Get(r, k); t != nil && t.LastStatus != domain.StatusStopped {
					out.ProtectedTasks = append(out.ProtectedTasks, protectionView(t, Protections.Get(r, k), now))
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
			t := getTask(r, cluster, id)
			if t == nil {
				out.Failures = append(out.Failures, domain.Failure{ARN: s.part.TaskARN(cluster, id), Reason: domain.ReasonMissing})
				continue
			}
			if t.Internal.ServiceName == "" {
				out.Failures = append(out.Failures, domain.Failure{ARN: t.TaskARN, Reason: domain.ReasonTaskNotValid,
					Detail: "The task is not part of a service."})
				continue
			}
			out.ProtectedTasks = append(out.ProtectedTasks, protectionView(t, getProtection(r, cluster, id), now))
		}
	})
	if clusterErr != nil {
		return nil, clusterErr
	}
	return out, nil
}
