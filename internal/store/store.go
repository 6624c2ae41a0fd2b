// Package store defines holdfast's durable, revisioned key-value interface.
//
// The store is the source of truth of the control plane: everything above it
// keeps in-memory caches that are rebuilt from a [Backend.Range] at start and
// kept current with [Backend.Watch]. The model follows etcd's so that an etcd
// backend can implement the same [Backend] interface as the embedded bbolt one
// (package store/bolt):
//
//   - The store has one revision counter. Every successful [Backend.Txn] that
//     changes something gets a revision greater than any before it, and
//     every key it writes records that revision as its [KV.ModRev].
//     Revisions are not consecutive in general: etcd's revision is global to
//     the cluster, so other writers (other prefixes, leases, leader
//     election) advance it too. bbolt happens to count 1, 2, 3, ...; no
//     caller may rely on that.
//   - Writes are conditional through [Op.Compare] (compare-and-swap on ModRev);
//     a failed compare applies nothing and returns [ErrConflict]. A Txn may
//     also carry compares that write nothing ([Check]), such as a leader's
//     fence.
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

// Op is one write in a Txn, or with Check set one compare that writes
// nothing.
type Op struct {
	Key    string
	Value  []byte // ignored when Delete
	Delete bool
	// Compare, when non-nil, makes the whole Txn conditional: the key's
	// current ModRev must equal *Compare (0 = key must not exist).
	Compare *int64
	// Check makes the op compare-only: it needs Compare and writes nothing
	// (see the function Check).
	Check bool
}

// Put returns an unconditional put of value at key.
func Put(key string, value []byte) Op { return Op{Key: key, Value: value} }

// Del returns an unconditional delete of key.
func Del(key string) Op { return Op{Key: key, Delete: true} }

// Check returns a compare-only op: the Txn applies only if the key's
// current ModRev is modRev (0 = the key must not exist), and the key is not
// written. It is how a Txn carries a fence, e.g. "the leader's election key
// still has the ModRev it had when this replica was elected" (an etcd
// election key is written once, so its ModRev is its CreateRevision).
func Check(key string, modRev int64) Op { return Op{Key: key, Check: true, Compare: &modRev} }

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
	// request: no writes, an empty key, a key given twice, a negative
	// Compare, a Check without Compare or with a value, or a Txn beyond the
	// backend's limits (key or value size, number of ops, bytes; see
	// Limiter). Nothing is applied.
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
	// (fsync; on etcd, fsynced by a quorum). If any Compare fails, nothing is
	// applied and ErrConflict is returned. A successful Txn that changes
	// something returns its new revision, greater than every revision
	// returned or observed before; one that changes nothing (it only deletes
	// absent keys) may return the current revision. A failed Txn changes
	// nothing. The backend does not serialize concurrent Txn calls: they are
	// group-committed (one fsync for many) or pipelined.
	//
	// A Txn whose ctx is done before it is applied returns ctx.Err() and is
	// not applied. Any other error (other than ErrConflict and ErrInvalid)
	// means the outcome is unknown to the caller and the backend may refuse
	// further work; see the backend's documentation.
	Txn(ctx context.Context, ops []Op) (rev int64, err error)

	// Rev is the latest revision this backend knows: at least that of every
	// Txn it acknowledged and of every read it returned. A new bbolt store
	// is at 0; an etcd backend starts at the cluster's revision.
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
	writes := 0
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
		if op.Check {
			if op.Compare == nil {
				return fmt.Errorf("%w: op %d (%q): a check without a compare", ErrInvalid, i, op.Key)
			}
			if op.Delete || op.Value != nil {
				return fmt.Errorf("%w: op %d (%q): a check cannot write", ErrInvalid, i, op.Key)
			}
		} else {
			writes++
		}
		if seen != nil {
			if _, dup := seen[op.Key]; dup {
				return fmt.Errorf("%w: op %d: key %q given twice", ErrInvalid, i, op.Key)
			}
			seen[op.Key] = struct{}{}
		}
	}
	if writes == 0 {
		return fmt.Errorf("%w: only checks, no writes", ErrInvalid)
	}
	return nil
}

// Limits bounds one Txn of a backend. Zero means unbounded.
type Limits struct {
	MaxOps   int // ops (writes and checks) in one Txn
	MaxBytes int // sum of the keys' and values' lengths in one Txn
}

// Limiter is implemented by backends whose Txns are bounded (etcd: the
// server's --max-txn-ops and --max-request-bytes). A Txn beyond them fails
// with ErrInvalid, so a caller that batches many changes into one Txn must
// cut its batches to fit.
type Limiter interface {
	Limits() Limits
}

// LimitsOf returns b's limits, unbounded for a backend without any.
func LimitsOf(b Backend) Limits {
	if l, ok := b.(Limiter); ok {
		return l.Limits()
	}
	return Limits{}
}

// TxnBytes is the size of ops as Limits.MaxBytes counts it.
func TxnBytes(ops []Op) int {
	n := 0
	for _, op := range ops {
		n += len(op.Key) + len(op.Value)
	}
	return n
}

// RuntimePrefix holds keys that belong to the running installation, not to
// its data, such as leader election keys bound to an etcd lease. Backups, restores and migrations leave them out, and a store
// holding only them (and the format key) counts as empty.
const RuntimePrefix = "run/"

// Scanner is implemented by backends that can stream a prefix without
// copying it into memory first (a control plane's load at start reads the
// whole store). fn's kv.Value is valid only during the call.
type Scanner interface {
	Scan(ctx context.Context, prefix string, fn func(kv KV) error) (rev int64, err error)
}
