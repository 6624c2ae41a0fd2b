package aas

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/autoscaling"
)

// TargetKey identifies a scalable target.
type TargetKey struct {
	Namespace  string
	ResourceID string
	Dimension  string
}

func compareKeys(a, b TargetKey) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.ResourceID, b.ResourceID), cmp.Compare(a.Dimension, b.Dimension))
}

// TargetRecord is a stored scalable target with its policies, scheduled
// actions, tags and the decision memory (cooldowns, scheduled runs): the
// configuration that must survive restarts.
type TargetRecord struct {
	Key       TargetKey
	ARN       string
	Min, Max  int32
	RoleARN   string
	Suspended Suspension
	Created   time.Time
	Tags      map[string]string
	Policies  []PolicyRecord
	Scheduled []ScheduledRecord
	Memory    autoscaling.Memory
}

// Suspension is a target's SuspendedState.
type Suspension struct {
	In, Out, Scheduled bool
}

// PolicyRecord is a stored scaling policy.
type PolicyRecord struct {
	Name           string
	ARN            string
	Type           string
	Step           *StepScalingPolicyConfiguration
	TargetTracking *TargetTrackingScalingPolicyConfiguration
	// Alarms are the alarms target tracking manages (AlarmHigh, and
	// AlarmLow unless DisableScaleIn).
	Alarms  []Alarm
	Created time.Time
}

// ScheduledRecord is a stored scheduled action.
type ScheduledRecord struct {
	Name       string
	ARN        string
	Schedule   string
	Timezone   string
	Start, End *time.Time
	Min, Max   *int32
	Created    time.Time
}

// ActivityRecord is a stored scaling activity.
type ActivityRecord struct {
	ScalingActivity
	// Scaled is false for not-scaled activities.
	Scaled bool
	// Seq orders activities that started at the same instant (those of one
	// plan), in the order they were added.
	Seq int `json:",omitempty"`
}

// Repository keeps Application Auto Scaling's configuration and activities.
// Implementations must be safe for concurrent use; the Service serializes
// its read-modify-write sequences.
type Repository interface {
	GetTarget(ctx context.Context, k TargetKey) (*TargetRecord, error) // nil if absent
	ListTargets(ctx context.Context) ([]*TargetRecord, error)          // by key
	CountTargets(ctx context.Context) (int, error)
	PutTarget(ctx context.Context, t *TargetRecord) error
	DeleteTarget(ctx context.Context, k TargetKey) error
	// AddActivities appends activities of target k (oldest first); the
	// repository keeps at most MaxActivities per target.
	AddActivities(ctx context.Context, k TargetKey, acts []ActivityRecord) error
	// ListActivities returns the activities of k, or of every target when k
	// is nil, newest first.
	ListActivities(ctx context.Context, k *TargetKey) ([]ActivityRecord, error)
}

// MaxActivities is how many activities are kept per target (AWS keeps six
// weeks of them).
const MaxActivities = 1000

// MemRepository is an in-memory Repository (tests, and until the state
// engine holds these records). It stores copies.
type MemRepository struct {
	mu         sync.RWMutex
	targets    map[TargetKey]*TargetRecord
	activities map[TargetKey][]ActivityRecord
}

// NewMemRepository returns an empty repository.
func NewMemRepository() *MemRepository {
	return &MemRepository{targets: map[TargetKey]*TargetRecord{}, activities: map[TargetKey][]ActivityRecord{}}
}

// cloneTarget returns a copy that shares nothing mutable with t. The
// policies' configurations are shared: they are replaced, never written
// through.
func cloneTarget(t *TargetRecord) *TargetRecord {
	c := *t
	c.Tags = maps.Clone(t.Tags)
	c.Policies = slices.Clone(t.Policies)
	for i := range c.Policies {
		c.Policies[i].Alarms = slices.Clone(c.Policies[i].Alarms)
	}
	c.Scheduled = slices.Clone(t.Scheduled)
	c.Memory.Scheduled = maps.Clone(t.Memory.Scheduled)
	return &c
}

// GetTarget implements Repository.
func (m *MemRepository) GetTarget(_ context.Context, k TargetKey) (*TargetRecord, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if t := m.targets[k]; t != nil {
		return cloneTarget(t), nil
	}
	return nil, nil
}

// ListTargets implements Repository.
func (m *MemRepository) ListTargets(_ context.Context) ([]*TargetRecord, error) {
	m.mu.RLock()
	out := make([]*TargetRecord, 0, len(m.targets))
	for _, t := range m.targets {
		out = append(out, cloneTarget(t))
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b *TargetRecord) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}

// CountTargets implements Repository.
func (m *MemRepository) CountTargets(_ context.Context) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.targets), nil
}

// PutTarget implements Repository.
func (m *MemRepository) PutTarget(_ context.Context, t *TargetRecord) error {
	c := cloneTarget(t)
	m.mu.Lock()
	m.targets[t.Key] = c
	m.mu.Unlock()
	return nil
}

// DeleteTarget implements Repository.
func (m *MemRepository) DeleteTarget(_ context.Context, k TargetKey) error {
	m.mu.Lock()
	delete(m.targets, k)
	delete(m.activities, k)
	m.mu.Unlock()
	return nil
}

// AddActivities implements Repository.
func (m *MemRepository) AddActivities(_ context.Context, k TargetKey, acts []ActivityRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := append(m.activities[k], acts...)
	if len(l) > MaxActivities {
		l = slices.Clone(l[len(l)-MaxActivities:])
	}
	m.activities[k] = l
	return nil
}

// ListActivities implements Repository.
func (m *MemRepository) ListActivities(_ context.Context, k *TargetKey) ([]ActivityRecord, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []ActivityRecord
	for key, l := range m.activities {
		if k == nil || key == *k {
			for i := len(l) - 1; i >= 0; i-- { // newest first, also among equal start times
				out = append(out, l[i])
			}
		}
	}
	slices.SortStableFunc(out, func(a, b ActivityRecord) int { return b.StartTime.Compare(a.StartTime.Time) })
	return out, nil
}
