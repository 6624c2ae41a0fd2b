package aas

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/holdfast/holdfast/internal/state"
)

// The record kinds of Application Auto Scaling in the state engine. A
// target record holds its policies, scheduled actions, tags and decision
// memory; activities are records of their own, at most MaxActivities per
// target.
var (
	// Targets: "aas-targets/<namespace>/<resource id>/<dimension>".
	Targets = state.Define("scalable targets", "aas-targets/", func(t *TargetRecord) string { return targetRecordKey(t.Key) },
		state.WithCheck(func(t *TargetRecord) error {
			if t.Key.Namespace == "" || t.Key.ResourceID == "" || t.Key.Dimension == "" {
				return errors.New("scalable target without a key")
			}
			return nil
		}))
	// Activities: "aas-activities/<target key>/<start, Unix ns, 20 digits>-<seq, 4 digits>-<id>".
	Activities = state.Define("scaling activities", "aas-activities/", activityKey)

	activitiesByTarget = state.NewIndex(Activities, "by target", func(a *ActivityRecord) (string, bool) {
		return targetRecordKey(TargetKey{a.ServiceNamespace, a.ResourceId, a.ScalableDimension}), true
	})
)

func targetRecordKey(k TargetKey) string { return k.Namespace + "/" + k.ResourceID + "/" + k.Dimension }

func activityKey(a *ActivityRecord) string {
	return fmt.Sprintf("%s/%020d-%04d-%s", targetRecordKey(TargetKey{a.ServiceNamespace, a.ResourceId, a.ScalableDimension}),
		a.StartTime.UnixNano(), a.Seq, a.ActivityId)
}

// StateRepository is the Repository of a running control plane: records of
// the state engine, durable (an acknowledged write survives kill -9) and
// replicated with the rest of the state.
type StateRepository struct{ e *state.Engine }

// NewStateRepository returns the repository over e.
func NewStateRepository(e *state.Engine) *StateRepository { return &StateRepository{e: e} }

// GetTarget implements Repository.
func (r *StateRepository) GetTarget(_ context.Context, k TargetKey) (*TargetRecord, error) {
	var out *TargetRecord
	r.e.View(func(v *state.View) {
		if t := Targets.Get(v, targetRecordKey(k)); t != nil {
			out = cloneTarget(t)
		}
	})
	return out, nil
}

// ListTargets implements Repository.
func (r *StateRepository) ListTargets(_ context.Context) ([]*TargetRecord, error) {
	var out []*TargetRecord
	r.e.View(func(v *state.View) {
		out = make([]*TargetRecord, 0, Targets.Len(v))
		for _, t := range Targets.All(v) {
			out = append(out, cloneTarget(t))
		}
	})
	slices.SortFunc(out, func(a, b *TargetRecord) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}

// CountTargets implements Repository.
func (r *StateRepository) CountTargets(_ context.Context) (int, error) {
	n := 0
	r.e.View(func(v *state.View) { n = Targets.Len(v) })
	return n, nil
}

// PutTarget implements Repository.
func (r *StateRepository) PutTarget(ctx context.Context, t *TargetRecord) error {
	c := cloneTarget(t)
	return r.e.Update(ctx, func(tx *state.Tx) error {
		Targets.Put(tx, c)
		return nil
	})
}

// DeleteTarget implements Repository: the target and its activities.
func (r *StateRepository) DeleteTarget(ctx context.Context, k TargetKey) error {
	tk := targetRecordKey(k)
	return r.e.Update(ctx, func(tx *state.Tx) error {
		if Targets.Get(tx, tk) != nil {
			Targets.Delete(tx, tk)
		}
		for _, key := range activitiesByTarget.Keys(tx, tk) {
			Activities.Delete(tx, key)
		}
		return nil
	})
}

// AddActivities implements Repository, dropping the oldest beyond
// MaxActivities in the same commit.
func (r *StateRepository) AddActivities(ctx context.Context, k TargetKey, acts []ActivityRecord) error {
	tk := targetRecordKey(k)
	recs := make([]*ActivityRecord, len(acts))
	for i := range acts {
		a := acts[i]
		a.NotScaledReasons = slices.Clone(a.NotScaledReasons)
		a.Seq = i
		recs[i] = &a
	}
	return r.e.Update(ctx, func(tx *state.Tx) error {
		for _, a := range recs {
			Activities.Put(tx, a)
		}
		keys := activitiesByTarget.Keys(tx, tk)
		if extra := len(keys) - MaxActivities; extra > 0 {
			slices.Sort(keys) // the key orders activities by start time
			for _, key := range keys[:extra] {
				Activities.Delete(tx, key)
			}
		}
		return nil
	})
}

// ListActivities implements Repository.
func (r *StateRepository) ListActivities(_ context.Context, k *TargetKey) ([]ActivityRecord, error) {
	var out []ActivityRecord
	r.e.View(func(v *state.View) {
		if k != nil {
			for _, a := range activitiesByTarget.Group(v, targetRecordKey(*k)) {
				out = append(out, *a)
			}
		} else {
			for _, a := range Activities.All(v) {
				out = append(out, *a)
			}
		}
	})
	// Newest first: by start time, then, within one plan, last added first.
	slices.SortStableFunc(out, func(a, b ActivityRecord) int {
		if c := b.StartTime.Compare(a.StartTime.Time); c != 0 {
			return c
		}
		return b.Seq - a.Seq
	})
	return out, nil
}
