package state

import "time"

// Reader is what reads take: a *View (Engine.View) or a *Tx (Engine.Update).
type Reader interface {
	// Now is the time of the view (see View.Now).
	Now() time.Time
	// Rev is the revision the view reflects (see View.Rev).
	Rev() int64
	view() *View
}

// View is a consistent read view of the state, valid only during the
// Engine.View or Engine.Update call that made it.
type View struct {
	e   *Engine
	now time.Time
	rev int64
}

func (v *View) view() *View { return v }

func (v *View) table(ki *kindInfo) table {
	if ki.id >= len(v.e.tables) {
		panic("state: kind " + ki.name + " was defined after the engine opened")
	}
	return v.e.tables[ki.id]
}

// Now is the time of the view (of the batch, inside an Update: every
// Update of a batch sees the same instant).
func (v *View) Now() time.Time { return v.now }

// Rev is the revision of the last durable commit when the view was made.
// The view may also show writes whose commit is in flight (they are
// published on the change feed later, with a higher revision), so a
// subscriber that starts after Rev may receive changes the view already
// showed: apply them idempotently.
func (v *View) Rev() int64 { return v.rev }

// Tx is one Update's access to the state: reads see the state as the
// Updates before it left it plus this Update's own writes; writes go to
// memory at once and are undone if the Update fails.
type Tx struct {
	View
	writes []txWrite
}

type txWrite struct {
	ki      *kindInfo
	key     string
	prev    any
	prevRev int64
}

func (tx *Tx) write(ki *kindInfo, key string, v any) {
	t := tx.table(ki)
	prev, prevRev := t.getAny(key)
	tx.writes = append(tx.writes, txWrite{ki: ki, key: key, prev: prev, prevRev: prevRev})
	t.setAny(key, v, pendingRev)
}

// undo restores every record the Update wrote, newest write first.
func (tx *Tx) undo() {
	for i := len(tx.writes) - 1; i >= 0; i-- {
		w := tx.writes[i]
		tx.table(w.ki).setAny(w.key, w.prev, w.prevRev)
	}
	clear(tx.writes)
	tx.writes = tx.writes[:0]
}

// Wrote reports whether the Update has written anything so far.
func (tx *Tx) Wrote() bool { return len(tx.writes) > 0 }
