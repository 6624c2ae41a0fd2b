package cloudwatch

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Alarm is a stored alarm: its DescribeAlarms view plus what holdfast keeps
// beside it.
type Alarm struct {
	MetricAlarm
	Tags []Tag `json:"Tags,omitempty"`
	// Managed marks the alarms Application Auto Scaling creates for target
	// tracking policies: their period follows --metrics-period rather than
	// CloudWatch's validation.
	Managed bool `json:"Managed,omitempty"`
}

// Name returns the alarm's name.
func (a *Alarm) Name() string { return deref(a.AlarmName) }

// State returns the alarm's state value.
func (a *Alarm) State() string { return deref(a.StateValue) }

// Clone returns a copy that shares nothing mutable with a. Pointer fields
// are shared: holdfast replaces them and never writes through them.
func (a *Alarm) Clone() *Alarm {
	c := *a
	c.OKActions = slices.Clone(a.OKActions)
	c.AlarmActions = slices.Clone(a.AlarmActions)
	c.InsufficientDataActions = slices.Clone(a.InsufficientDataActions)
	c.Dimensions = slices.Clone(a.Dimensions)
	c.Metrics = slices.Clone(a.Metrics)
	c.Tags = slices.Clone(a.Tags)
	return &c
}

// AlarmRepository keeps alarms. Implementations must be safe for concurrent
// use; the Service serializes its read-modify-write sequences itself.
type AlarmRepository interface {
	// GetAlarm returns the alarm named name, or nil.
	GetAlarm(ctx context.Context, name string) (*Alarm, error)
	// ListAlarms returns every alarm, sorted by name.
	ListAlarms(ctx context.Context) ([]*Alarm, error)
	// CountAlarms returns the number of alarms.
	CountAlarms(ctx context.Context) (int, error)
	// PutAlarm creates or replaces an alarm.
	PutAlarm(ctx context.Context, a *Alarm) error
	// DeleteAlarms removes the named alarms (absent names are ignored).
	DeleteAlarms(ctx context.Context, names []string) error
}

// MemAlarms is an in-memory AlarmRepository. It stores copies, so callers
// may keep modifying what they passed or received.
type MemAlarms struct {
	mu     sync.RWMutex
	alarms map[string]*Alarm
}

// NewMemAlarms returns an empty repository.
func NewMemAlarms() *MemAlarms { return &MemAlarms{alarms: map[string]*Alarm{}} }

// GetAlarm implements AlarmRepository.
func (m *MemAlarms) GetAlarm(_ context.Context, name string) (*Alarm, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if a := m.alarms[name]; a != nil {
		return a.Clone(), nil
	}
	return nil, nil
}

// ListAlarms implements AlarmRepository.
func (m *MemAlarms) ListAlarms(_ context.Context) ([]*Alarm, error) {
	m.mu.RLock()
	out := make([]*Alarm, 0, len(m.alarms))
	for _, a := range m.alarms {
		out = append(out, a.Clone())
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Alarm) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// CountAlarms implements AlarmRepository.
func (m *MemAlarms) CountAlarms(_ context.Context) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.alarms), nil
}

// PutAlarm implements AlarmRepository.
func (m *MemAlarms) PutAlarm(_ context.Context, a *Alarm) error {
	c := a.Clone()
	m.mu.Lock()
	m.alarms[a.Name()] = c
	m.mu.Unlock()
	return nil
}

// DeleteAlarms implements AlarmRepository.
func (m *MemAlarms) DeleteAlarms(_ context.Context, names []string) error {
	m.mu.Lock()
	for _, n := range names {
		delete(m.alarms, n)
	}
	m.mu.Unlock()
	return nil
}
