package cloudwatch

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/holdfast/holdfast/internal/state"
)

// Alarms is the record kind of CloudWatch alarms in the state engine:
// "cw-alarms/<name>", JSON.
var Alarms = state.Define("CloudWatch alarms", "cw-alarms/", func(a *Alarm) string { return a.Name() },
	state.WithCheck(func(a *Alarm) error {
		if a.Name() == "" {
			return errors.New("alarm without a name")
		}
		return nil
	}))

// StateAlarms is the AlarmRepository of a running control plane: alarms
// are records of the state engine, durable and replicated with the rest of
// the state (their datapoints are not: they stay in the metric store).
type StateAlarms struct{ e *state.Engine }

// NewStateAlarms returns the repository over e.
func NewStateAlarms(e *state.Engine) *StateAlarms { return &StateAlarms{e: e} }

// GetAlarm implements AlarmRepository.
func (r *StateAlarms) GetAlarm(_ context.Context, name string) (*Alarm, error) {
	var out *Alarm
	r.e.View(func(v *state.View) {
		if a := Alarms.Get(v, name); a != nil {
			out = a.Clone()
		}
	})
	return out, nil
}

// ListAlarms implements AlarmRepository.
func (r *StateAlarms) ListAlarms(_ context.Context) ([]*Alarm, error) {
	var out []*Alarm
	r.e.View(func(v *state.View) {
		out = make([]*Alarm, 0, Alarms.Len(v))
		for _, a := range Alarms.All(v) {
			out = append(out, a.Clone())
		}
	})
	slices.SortFunc(out, func(a, b *Alarm) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// CountAlarms implements AlarmRepository.
func (r *StateAlarms) CountAlarms(_ context.Context) (int, error) {
	n := 0
	r.e.View(func(v *state.View) { n = Alarms.Len(v) })
	return n, nil
}

// PutAlarm implements AlarmRepository.
func (r *StateAlarms) PutAlarm(ctx context.Context, a *Alarm) error {
	c := a.Clone()
	return r.e.Update(ctx, func(tx *state.Tx) error {
		Alarms.Put(tx, c)
		return nil
	})
}

// DeleteAlarms implements AlarmRepository.
func (r *StateAlarms) DeleteAlarms(ctx context.Context, names []string) error {
	return r.e.Update(ctx, func(tx *state.Tx) error {
		for _, n := range names {
			if Alarms.Get(tx, n) != nil {
				Alarms.Delete(tx, n)
			}
		}
		return nil
	})
}
