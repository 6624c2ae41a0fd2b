package state

import (
	"fmt"

	"github.com/holdfast/holdfast/internal/store"
)

// Apply installs what another writer committed at revision rev: the store
// events of that revision (a follower gets them from Backend.Watch), all
// at once for readers, and publishes them on the change feed as one Batch.
// Events of keys that no kind owns are skipped. A revision at or below the
// engine's is skipped too (a watch that restarted sends it again), so
// Apply is idempotent. If an event does not decode, nothing is applied and
// the error is returned. Records that link to others (WithLink) are linked
// after the revision's other records are in, so a record and the one it
// refers to may arrive in the same revision.
func (e *Engine) Apply(rev int64, events []store.Event) error {
	if !e.follower {
		return fmt.Errorf("state: Apply on an engine that writes (open it with Options.Follower)")
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	if rev <= e.Rev() {
		return nil
	}
	type install struct {
		ki  *kindInfo
		key string
		v   any // nil: delete
	}
	var ins []install
	for _, ev := range events {
		if ev.KV.ModRev != rev {
			return fmt.Errorf("state: apply revision %d: event of %q is at revision %d", rev, ev.KV.Key, ev.KV.ModRev)
		}
		ki, key := e.kindOf(ev.KV.Key)
		if ki == nil {
			continue
		}
		var v any
		if ev.Type == store.EventPut {
			var err error
			if v, err = ki.decode(key, ev.KV.Value); err != nil {
				return fmt.Errorf("state: apply revision %d: %s%s: %w", rev, ki.prefix, key, err)
			}
		}
		ins = append(ins, install{ki: ki, key: key, v: v})
	}
	b := prepBatch{rev: rev}
	e.mu.Lock()
	view := &View{e: e, now: e.clock.Now(), rev: rev}
	add := func(in install) {
		t := e.tables[in.ki.id]
		old, _ := t.getAny(in.key)
		ck := changeKey{in.ki.id, in.key}
		if _, ok := b.pos[ck]; !ok {
			if b.pos == nil {
				b.pos = map[changeKey]int{}
			}
			b.pos[ck] = len(b.changes)
			b.changes = append(b.changes, Change{Kind: e.kinds[in.ki.id], Key: in.key, Old: old})
		}
		t.setAny(in.key, in.v, rev)
	}
	for _, in := range ins {
		if in.v == nil || in.ki.link == nil {
			add(in)
		}
	}
	for _, in := range ins {
		if in.v != nil && in.ki.link != nil {
			in.ki.link(in.v, view)
			add(in)
		}
	}
	for i := range b.changes {
		c := &b.changes[i]
		c.New, _ = e.tables[c.Kind.info().id].getAny(c.Key)
	}
	e.mu.Unlock()
	e.durable.Store(rev)
	if len(b.changes) > 0 {
		e.feed.publish(Batch{Rev: rev, Changes: b.changes})
	} else {
		e.feed.poke()
	}
	return nil
}
