// Package store defines holdfast's durable, revisioned key-value interface.
//
// The store is the source of truth of the control plane: everything above it
// keeps in-memory caches that are rebuilt from a [Backend.Range] at start and
// kept current with [Backend.Watch]. The model follows etcd's so that an etcd
// backend can implement the same [Backend] interface as the embedded bbolt one
// (package store/bolt):
//
//   - The store has one revision counter. Every successful [Backend.Txn] gets
//     the next revision (1, 2, 3, ...), and every key it writes records that
//     revision as its [KV.ModRev].
//   - Writes are conditional through [Op.Compare] (compare-and-swap on ModRev);
//     a failed compare applies nothing and returns [ErrConflict].
//   - A Txn returns only once it is durable.
//   - Watch streams committed changes after a given revision, so a reader can
//     Range at revision R and Watch from R without missing or repeating a change.
//
// Package store/storetest holds the conformance suite every backend must pass.
package store

import (
	"context"
	"errors"
	"fmt"
)

// KV is one stored key with its value and the store revision of its last modification.
type KV struct {
	Key    string
	Value  []byte
	ModRev int64 // revision of the Txn that last wrote it
}

// Op is one write in a Txn.
type Op struct {
	Key    string
	Value  []byte // ignored when Delete
	Delete bool
	// Compare, when non-nil, makes the whole Txn conditional: the key's
	// current ModRev must equal *Compare (0 = key must not exist).
	Compare *int64
}

// Put returns an unconditional put of value at key.
func Put(key string, value []byte) Op { return Op{Key: key, Value: value} }

// Del returns an unconditional delete of key.
func Del(key string) Op { return Op{Key: key, Delete: true} }

// If returns op made conditional on the key's current ModRev being modRev
// (0 = the key must not exist).
func (op Op) If(modRev int64) Op {
	op.Compare = &modRev
	return op
}

// EventType says what a watched change did to its key.
type EventType int

const (
	// EventPut is a create or an update of the key.
	EventPut EventType = iota + 1
	// EventDelete is a deletion of an existing key.
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	default:
		return fmt.Sprintf("EventType(%d)", int(t))
	}
}

// Event is a committed change delivered by Watch.
//
// For EventPut, KV is the key as written. For EventDelete, KV holds the Key
// and ModRev is the revision of the deleting Txn; Value is nil. KV.ModRev is
// therefore always the revision of the Txn that made the change. One Txn
// yields its events in the order of its ops; deleting an absent key yields no
// event.
type Event struct {
	Type EventType
	KV   KV
}

var (
	// ErrConflict is returned by Txn when a Compare failed; nothing was applied.
	ErrConflict = errors.New("store: compare failed")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCompacted is returned by Watch when afterRev is older than the
	// history the backend still holds; the caller must Range again and watch
	// from the revision Range returned.
	ErrCompacted = errors.New("store: revision compacted")
	// ErrInvalid is returned (wrapped, with details) by Txn for a malformed
	// request: no ops, an empty key, a key given twice, a negative Compare,
	// or a key or value beyond the backend's limits. Nothing is applied.
	ErrInvalid = errors.New("store: invalid txn")
)

// Backend is a durable, revisioned key-value store. All methods are safe for
// concurrent use.
type Backend interface {
	// Get returns the key, ok=false if absent.
	Get(ctx context.Context, key string) (KV, bool, error)

	// Range returns all keys with the prefix in key order (byte-wise), and
	// the revision the read reflects. The empty prefix selects every key.
	Range(ctx context.Context, prefix string) ([]KV, int64, error)

	// Txn applies ops atomically. It returns only after the data is durable
	// (fsync). If any Compare fails, nothing is applied and ErrConflict is
	// returned. Each successful Txn gets a new revision (strictly increasing,
	// starting at 1); a failed one consumes none. Concurrent Txn calls are
	// group-committed (one fsync for many).
	//
	// A Txn whose ctx is done before it is applied returns ctx.Err() and is
	// not applied. Any other error (other than ErrConflict and ErrInvalid)
	// means the outcome is unknown to the caller and the backend may refuse
	// further work; see the backend's documentation.
	Txn(ctx context.Context, ops []Op) (rev int64, err error)

	// Rev is the current revision: that of the last successful Txn, 0 for a
	// new store.
	Rev() int64

	// Watch streams committed events for keys with the prefix whose revision
	// is > afterRev, in revision order, until ctx ends; then the channel
	// closes.
	//
	// The channel also closes when the backend is closed or fails, and when
	// the watcher falls too far behind (its reader does not keep up with the
	// writers). Events are never skipped or reordered: what was received
	// before the close is a gap-free, in-order stream. After an unexpected
	// close the caller re-Ranges and watches again from the revision Range
	// returned (the last received event's ModRev also works if ErrCompacted
	// is not returned).
	//
	// Events before the watcher started are served from a bounded history of
	// recent changes; if afterRev is older than that history, Watch returns
	// ErrCompacted. afterRev may be at or past Rev().
	Watch(ctx context.Context, prefix string, afterRev int64) (<-chan Event, error)

	// Close releases the backend. Calls after Close return ErrClosed; open
	// Watch channels are closed. Txns already acknowledged stay durable. Close
	// may be called more than once; later calls return nil.
	Close() error
}

// CheckOps validates ops against the rules common to every backend (see
// ErrInvalid). Backends call it before applying a Txn and add their own
// limits.
func CheckOps(ops []Op) error {
	if len(ops) == 0 {
		return fmt.Errorf("%w: no ops", ErrInvalid)
	}
	var seen map[string]struct{}
	if len(ops) > 1 {
		seen = make(map[string]struct{}, len(ops))
	}
	for i, op := range ops {
		if op.Key == "" {
			return fmt.Errorf("%w: op %d: empty key", ErrInvalid, i)
		}
		if op.Compare != nil && *op.Compare < 0 {
			return fmt.Errorf("%w: op %d (%q): negative compare revision %d", ErrInvalid, i, op.Key, *op.Compare)
		}
		if seen != nil {
			if _, dup := seen[op.Key]; dup {
				return fmt.Errorf("%w: op %d: key %q given twice", ErrInvalid, i, op.Key)
			}
			seen[op.Key] = struct{}{}
		}
	}
	return nil
}

// Scanner is implemented by backends that can stream a prefix without
// copying it into memory first (a control plane's load at start reads the
// whole store). fn's kv.Value is valid only during the call.
type Scanner interface {
	Scan(ctx context.Context, prefix string, fn func(kv KV) error) (rev int64, err error)
}
