// Package storetest is the conformance suite for store.Backend
// implementations. A backend's test calls Run with a Factory:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Factory{Open: openTemp, Reopen: reopen})
//	}
//
// The suite assumes nothing beyond the store.Backend contract, except that
// the history kept for Watch holds at least the few thousand events a subtest
// writes while it watches. In particular it never assumes that revisions are
// consecutive: with Factory.Bump set, it advances the revision behind the
// backend's back between writes, as other etcd clients do.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/internal/store"
)

// Factory builds backends for the suite.
type Factory struct {
	// Open returns a new, empty backend. It should register its own cleanup
	// (t.Cleanup(func() { b.Close() })); the suite may Close it earlier.
	Open func(t *testing.T) store.Backend

	// Reopen closes b and opens the same data again, as a restart would.
	// Nil skips the persistence subtests.
	Reopen func(t *testing.T, b store.Backend) store.Backend

	// Bump, when set, makes the store's revision advance without a change
	// that b can see (etcd: a write outside b's prefix). The suite calls it
	// between writes to check that nothing depends on consecutive
	// revisions. Nil for a backend where nothing else can write (bbolt).
	Bump func(t *testing.T, b store.Backend)
}

func (f Factory) bump(t *testing.T, b store.Backend) {
	t.Helper()
	if f.Bump != nil {
		f.Bump(t, b)
	}
}

// Run runs every conformance subtest against backends made by f.
func Run(t *testing.T, f Factory) {
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"PutGet", testPutGet},
		{"RangePrefix", testRangePrefix},
		{"Delete", testDelete},
		{"CompareAndSwap", testCAS},
		{"ConflictAppliesNothing", testConflictAtomic},
		{"Revisions", testRevisions},
		{"Checks", testChecks},
		{"Invalid", testInvalid},
		{"Limits", testLimits},
		{"CancelledContext", testCancelled},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchLive", testWatchLive},
		{"WatchConcurrentWriters", testWatchConcurrent},
		{"WatchCancel", testWatchCancel},
		{"ConcurrentTxn", testConcurrentTxn},
		{"ConcurrentCASCounter", testCASCounter},
		{"Reopen", testReopen},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// Helpers. They use t.Helper and fail the test on unexpected errors.

func txn(t *testing.T, b store.Backend, ops ...store.Op) int64 {
	t.Helper()
	rev, err := b.Txn(context.Background(), ops)
	if err != nil {
		t.Fatalf("Txn(%v): %v", opKeys(ops), err)
	}
	return rev
}

func get(t *testing.T, b store.Backend, key string) (store.KV, bool) {
	t.Helper()
	kv, ok, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv, ok
}

func mustGet(t *testing.T, b store.Backend, key string, value string, modRev int64) {
	t.Helper()
	kv, ok := get(t, b, key)
	if !ok {
		t.Fatalf("Get(%q): absent, want %q@%d", key, value, modRev)
	}
	if kv.Key != key || string(kv.Value) != value || kv.ModRev != modRev {
		t.Fatalf("Get(%q) = %q %q@%d, want %q@%d", key, kv.Key, kv.Value, kv.ModRev, value, modRev)
	}
}

func mustAbsent(t *testing.T, b store.Backend, key string) {
	t.Helper()
	if kv, ok := get(t, b, key); ok {
		t.Fatalf("Get(%q) = %q@%d, want absent", key, kv.Value, kv.ModRev)
	}
}

func rangeKeys(t *testing.T, b store.Backend, prefix string) ([]string, int64) {
	t.Helper()
	kvs, rev, err := b.Range(context.Background(), prefix)
	if err != nil {
		t.Fatalf("Range(%q): %v", prefix, err)
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, rev
}

func opKeys(ops []store.Op) []string {
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	return keys
}

func put(key, value string) store.Op { return store.Put(key, []byte(value)) }

func watch(t *testing.T, ctx context.Context, b store.Backend, prefix string, after int64) <-chan store.Event {
	t.Helper()
	ch, err := b.Watch(ctx, prefix, after)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
	}
	return ch
}

// next receives n events from ch; the channel closing early fails the test.
// There is no timeout: a missing event hangs until the go test deadline,
// which prints the goroutine that waits here.
func next(t *testing.T, ch <-chan store.Event, n int) []store.Event {
	t.Helper()
	evs := make([]store.Event, 0, n)
	for len(evs) < n {
		ev, ok := <-ch
		if !ok {
			t.Fatalf("watch channel closed after %d of %d events: %v", len(evs), n, evs)
		}
		evs = append(evs, ev)
	}
	return evs
}

type wantEv struct {
	typ   store.EventType
	key   string
	value string
	rev   int64
}

func checkEvents(t *testing.T, got []store.Event, want []wantEv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.KV.Key != w.key || string(g.KV.Value) != w.value || g.KV.ModRev != w.rev {
			t.Errorf("event %d = %v %q=%q@%d, want %v %q=%q@%d",
				i, g.Type, g.KV.Key, g.KV.Value, g.KV.ModRev, w.typ, w.key, w.value, w.rev)
		}
	}
}

// Subtests.

func testPutGet(t *testing.T, f Factory) {
	b := f.Open(t)
	if got := b.Rev(); got < 0 {
		t.Fatalf("Rev() of a new store = %d", got)
	}
	mustAbsent(t, b, "a")
	before := b.Rev()
	rev := txn(t, b, put("a", "1"))
	if rev <= before {
		t.Fatalf("first Txn got revision %d, not after Rev() %d", rev, before)
	}
	mustGet(t, b, "a", "1", rev)

	rev2 := txn(t, b, put("a", "2"))
	mustGet(t, b, "a", "2", rev2)

	// Empty and nil values are stored as empty, not absent.
	rev3 := txn(t, b, store.Put("empty", nil), store.Put("empty2", []byte{}))
	mustGet(t, b, "empty", "", rev3)
	mustGet(t, b, "empty2", "", rev3)

	// Binary values and keys survive.
	val := []byte{0, 1, 2, 0xff, 0}
	rev4 := txn(t, b, store.Put("bin\x00key", val))
	kv, ok := get(t, b, "bin\x00key")
	if !ok || !bytes.Equal(kv.Value, val) || kv.ModRev != rev4 {
		t.Fatalf("binary round trip: %v %v", kv, ok)
	}

	// The returned value is the caller's: mutating it, or the slice given to
	// Txn, does not change the store.
	kv.Value[0] = 9
	val[1] = 9
	kv2, _ := get(t, b, "bin\x00key")
	if !bytes.Equal(kv2.Value, []byte{0, 1, 2, 0xff, 0}) {
		t.Fatalf("stored value changed through an alias: %v", kv2.Value)
	}
}

func testRangePrefix(t *testing.T, f Factory) {
	b := f.Open(t)
	keys, rev := rangeKeys(t, b, "")
	if len(keys) != 0 || rev < 0 || rev > b.Rev() {
		t.Fatalf("Range of empty store = %v @%d (Rev() = %d)", keys, rev, b.Rev())
	}
	txn(t, b, put("a/2", "x"), put("b/1", "x"), put("a/10", "x"))
	f.bump(t, b)
	last := txn(t, b, put("a/1", "x"), put("ab", "x"), put("a", "x"), put("a/", "x"))

	keys, rev = rangeKeys(t, b, "a/")
	if want := []string{"a/", "a/1", "a/10", "a/2"}; !slices.Equal(keys, want) {
		t.Errorf("Range(a/) = %v, want %v", keys, want)
	}
	if rev < last || rev > b.Rev() {
		t.Errorf("Range rev = %d, want at least the last Txn's %d and at most Rev() %d", rev, last, b.Rev())
	}
	keys, _ = rangeKeys(t, b, "a")
	if want := []string{"a", "a/", "a/1", "a/10", "a/2", "ab"}; !slices.Equal(keys, want) {
		t.Errorf("Range(a) = %v, want %v", keys, want)
	}
	keys, _ = rangeKeys(t, b, "")
	if want := []string{"a", "a/", "a/1", "a/10", "a/2", "ab", "b/1"}; !slices.Equal(keys, want) {
		t.Errorf("Range('') = %v, want %v", keys, want)
	}
	if keys, _ = rangeKeys(t, b, "c"); len(keys) != 0 {
		t.Errorf("Range(c) = %v, want none", keys)
	}
	if keys, _ = rangeKeys(t, b, "a/10/"); len(keys) != 0 {
		t.Errorf("Range(a/10/) = %v, want none", keys)
	}

	kvs, _, err := b.Range(context.Background(), "b/")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 1 || string(kvs[0].Value) != "x" || kvs[0].ModRev == 0 {
		t.Errorf("Range(b/) = %v", kvs)
	}
}

func testDelete(t *testing.T, f Factory) {
	b := f.Open(t)
	txn(t, b, put("k/1", "a"), put("k/2", "b"))
	rev := txn(t, b, store.Del("k/1"))
	mustAbsent(t, b, "k/1")
	if keys, _ := rangeKeys(t, b, "k/"); !slices.Equal(keys, []string{"k/2"}) {
		t.Fatalf("Range after delete = %v", keys)
	}
	if b.Rev() < rev {
		t.Fatalf("Rev() = %d, before the acknowledged %d", b.Rev(), rev)
	}
	// Deleting an absent key succeeds; it changes nothing, so it need not
	// take a new revision, but it never goes back.
	rev2 := txn(t, b, store.Del("k/nope"))
	if rev2 < rev {
		t.Fatalf("Txn revision %d before %d", rev2, rev)
	}
	// Delete then re-create: the new key has the new revision.
	rev3 := txn(t, b, put("k/1", "again"))
	if rev3 <= rev2 {
		t.Fatalf("Txn revision %d not after %d", rev3, rev2)
	}
	mustGet(t, b, "k/1", "again", rev3)
	// Put and delete in one Txn.
	rev4 := txn(t, b, store.Del("k/2"), put("k/3", "c"))
	mustAbsent(t, b, "k/2")
	mustGet(t, b, "k/3", "c", rev4)
}

func testCAS(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx := context.Background()

	// Create if absent.
	rev1 := txn(t, b, put("lock", "a").If(0))
	mustGet(t, b, "lock", "a", rev1)
	if _, err := b.Txn(ctx, []store.Op{put("lock", "b").If(0)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create of existing key: err = %v, want ErrConflict", err)
	}
	mustGet(t, b, "lock", "a", rev1)

	// Update at the right revision.
	rev2 := txn(t, b, put("lock", "c").If(rev1))
	mustGet(t, b, "lock", "c", rev2)

	// Stale revision.
	if _, err := b.Txn(ctx, []store.Op{put("lock", "d").If(rev1)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	mustGet(t, b, "lock", "c", rev2)

	// Conditional delete.
	if _, err := b.Txn(ctx, []store.Op{store.Del("lock").If(rev1)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale delete: err = %v, want ErrConflict", err)
	}
	mustGet(t, b, "lock", "c", rev2)
	txn(t, b, store.Del("lock").If(rev2))
	mustAbsent(t, b, "lock")

	// Compare on a deleted key: it no longer exists, so 0 matches.
	if _, err := b.Txn(ctx, []store.Op{put("lock", "e").If(rev2)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update of deleted key: err = %v, want ErrConflict", err)
	}
	rev5 := txn(t, b, put("lock", "e").If(0))
	mustGet(t, b, "lock", "e", rev5)
}

func testConflictAtomic(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx := context.Background()
	base := txn(t, b, put("x", "0"), put("y", "0"), put("z", "0"))

	// One failing compare among several ops: nothing of the Txn is applied,
	// whatever the position of the failing op.
	for i := range 3 {
		ops := []store.Op{put("x", "1").If(base), put("y", "1").If(base), store.Del("z").If(base), put("new", "1")}
		ops[i].Compare = new(int64(base + 100))
		before := b.Rev()
		rev, err := b.Txn(ctx, ops)
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("case %d: Txn = %d, %v; want ErrConflict", i, rev, err)
		}
		if b.Rev() != before {
			t.Fatalf("case %d: a failed Txn moved Rev from %d to %d", i, before, b.Rev())
		}
		mustGet(t, b, "x", "0", base)
		mustGet(t, b, "y", "0", base)
		mustGet(t, b, "z", "0", base)
		mustAbsent(t, b, "new")
	}

	// All compares hold: everything applied at one revision.
	rev := txn(t, b, put("x", "1").If(base), put("y", "1").If(base), store.Del("z").If(base), put("new", "1").If(0))
	mustGet(t, b, "x", "1", rev)
	mustGet(t, b, "y", "1", rev)
	mustAbsent(t, b, "z")
	mustGet(t, b, "new", "1", rev)
}

func testRevisions(t *testing.T, f Factory) {
	b := f.Open(t)
	last := b.Rev()
	for i := range 50 {
		if i%10 == 5 {
			f.bump(t, b)
		}
		rev := txn(t, b, put(fmt.Sprintf("r/%d", i%7), fmt.Sprint(i)))
		if rev <= last {
			t.Fatalf("revision %d after %d", rev, last)
		}
		if got := b.Rev(); got < rev {
			t.Fatalf("Rev() = %d right after Txn returned %d", got, rev)
		}
		mustGet(t, b, fmt.Sprintf("r/%d", i%7), fmt.Sprint(i), rev)
		last = rev
	}
	// A conflict changes nothing; the next write still gets a later
	// revision, and Rev() never goes back.
	kv, _ := get(t, b, "r/0")
	if _, err := b.Txn(context.Background(), []store.Op{put("r/0", "x").If(b.Rev() + 1000)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if b.Rev() < last {
		t.Fatalf("Rev() = %d after a conflict, before %d", b.Rev(), last)
	}
	mustGet(t, b, "r/0", string(kv.Value), kv.ModRev)
	if rev := txn(t, b, put("r/0", "y")); rev <= last {
		t.Fatalf("revision %d after a conflict, not after %d", rev, last)
	}
}

// testChecks: compare-only ops (store.Check) guard a Txn without writing
// their key: a fence on a leader key holds while the key is unchanged and
// fails every Txn once it is rewritten.
func testChecks(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leader := txn(t, b, put("run/leader", "replica-1"))
	f.bump(t, b)
	ch := watch(t, ctx, b, "", b.Rev())

	// The fence holds: the writes apply, the checked key is untouched.
	r1 := txn(t, b, store.Check("run/leader", leader), put("data/a", "1"), store.Del("data/none"))
	mustGet(t, b, "run/leader", "replica-1", leader)
	mustGet(t, b, "data/a", "1", r1)
	// A check that a key is absent.
	r2 := txn(t, b, put("data/b", "2"), store.Check("run/absent", 0))
	mustGet(t, b, "data/b", "2", r2)
	// Checks and compared writes together, several checks in one Txn.
	r3 := txn(t, b, store.Check("run/leader", leader), put("data/a", "3").If(r1), store.Check("data/b", r2))
	mustGet(t, b, "data/a", "3", r3)

	// A failing check fails the whole Txn, wherever it is.
	for i, ops := range [][]store.Op{
		{store.Check("run/leader", leader+1000), put("data/c", "x")},
		{put("data/c", "x"), store.Check("run/absent", 1)},
		{put("data/c", "x"), store.Check("data/a", r1)}, // stale
		{store.Check("run/leader", 0), store.Del("data/a")},
	} {
		if _, err := b.Txn(ctx, ops); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("case %d: err = %v, want ErrConflict", i, err)
		}
	}
	mustAbsent(t, b, "data/c")
	mustGet(t, b, "data/a", "3", r3)

	// A new leader rewrites the key: the old fence now fails.
	leader2 := txn(t, b, put("run/leader", "replica-2"))
	if _, err := b.Txn(ctx, []store.Op{store.Check("run/leader", leader), put("data/d", "stale leader")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("write fenced by a deposed leader: err = %v, want ErrConflict", err)
	}
	mustAbsent(t, b, "data/d")
	r5 := txn(t, b, store.Check("run/leader", leader2), put("data/d", "new leader"))

	// Watchers see the writes only, never a check.
	checkEvents(t, next(t, ch, 5), []wantEv{
		{store.EventPut, "data/a", "1", r1},
		{store.EventPut, "data/b", "2", r2},
		{store.EventPut, "data/a", "3", r3},
		{store.EventPut, "run/leader", "replica-2", leader2},
		{store.EventPut, "data/d", "new leader", r5},
	})
}

func testInvalid(t *testing.T, f Factory) {
	b := f.Open(t)
	neg := int64(-1)
	for name, ops := range map[string][]store.Op{
		"no ops":       nil,
		"empty key":    {put("", "v")},
		"duplicate":    {put("a", "1"), store.Del("a")},
		"negative cmp": {{Key: "a", Value: []byte("v"), Compare: &neg}},
		"only checks":  {store.Check("a", 0), store.Check("b", 0)},
		"check no cmp": {put("b", "1"), {Key: "a", Check: true}},
		"check value":  {put("b", "1"), {Key: "a", Check: true, Compare: new(int64), Value: []byte("v")}},
		"check delete": {put("b", "1"), {Key: "a", Check: true, Compare: new(int64), Delete: true}},
		"check twice":  {put("b", "1"), store.Check("b", 0)},
	} {
		rev, err := b.Txn(context.Background(), ops)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: Txn = %d, %v; want ErrInvalid", name, rev, err)
		}
	}
	if keys, _ := rangeKeys(t, b, ""); len(keys) != 0 {
		t.Fatalf("invalid Txns wrote %v", keys)
	}
}

// testLimits: a Txn beyond the backend's store.Limits fails with
// ErrInvalid at once and applies nothing; one at the limits succeeds.
func testLimits(t *testing.T, f Factory) {
	b := f.Open(t)
	lim := store.LimitsOf(b)
	if lim == (store.Limits{}) {
		t.Skip("the backend has no Txn limits")
	}
	ctx := context.Background()
	if lim.MaxOps > 0 {
		ops := make([]store.Op, lim.MaxOps+1)
		for i := range ops {
			ops[i] = put(fmt.Sprintf("ops/%05d", i), "v")
		}
		if _, err := b.Txn(ctx, ops); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("Txn of %d ops (limit %d): err = %v, want ErrInvalid", len(ops), lim.MaxOps, err)
		}
		// Checks count as ops too.
		ops[len(ops)-1] = store.Check("ops/check", 0)
		if _, err := b.Txn(ctx, ops); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("Txn of %d ops with a check (limit %d): err = %v, want ErrInvalid", len(ops), lim.MaxOps, err)
		}
		if keys, _ := rangeKeys(t, b, "ops/"); len(keys) != 0 {
			t.Fatalf("a Txn over the limit wrote %d keys", len(keys))
		}
		rev := txn(t, b, ops[:lim.MaxOps]...)
		mustGet(t, b, "ops/00000", "v", rev)
	}
	if lim.MaxBytes > 0 {
		key := "bytes/big"
		over := make([]byte, lim.MaxBytes-len(key)+1)
		if _, err := b.Txn(ctx, []store.Op{store.Put(key, over)}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("Txn of %d bytes (limit %d): err = %v, want ErrInvalid", len(over)+len(key), lim.MaxBytes, err)
		}
		mustAbsent(t, b, key)
		// Spread over two ops, the same size is still too much.
		half := len(over) / 2
		if _, err := b.Txn(ctx, []store.Op{store.Put(key, over[:half]), store.Put("b", over[half:])}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("Txn of two ops, %d bytes (limit %d): err = %v, want ErrInvalid", len(over)+len(key)+1, lim.MaxBytes, err)
		}
		mustAbsent(t, b, key)
	}
}

func testCancelled(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Txn(ctx, []store.Op{put("a", "1")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Txn with cancelled ctx: err = %v, want context.Canceled", err)
	}
	mustAbsent(t, b, "a")
}

func testWatchFromRevision(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	r1 := txn(t, b, put("w/a", "1"))
	f.bump(t, b)
	r2 := txn(t, b, put("w/b", "1"), put("other/a", "1"), put("w/c", "1"))
	r3 := txn(t, b, put("other/b", "1"))
	f.bump(t, b)
	r4 := txn(t, b, store.Del("w/a"), store.Del("w/never-existed"), put("w/b", "2"))
	r5 := txn(t, b, store.Del("other/a"))
	f.bump(t, b)

	// From r1: everything after it under w/, in order, deletes included.
	evs := next(t, watch(t, ctx, b, "w/", r1), 4)
	checkEvents(t, evs, []wantEv{
		{store.EventPut, "w/b", "1", r2},
		{store.EventPut, "w/c", "1", r2},
		{store.EventDelete, "w/a", "", r4},
		{store.EventPut, "w/b", "2", r4},
	})
	if evs[2].KV.Value != nil {
		t.Errorf("delete event carries a value: %q", evs[2].KV.Value)
	}

	// From r3 (a revision with no w/ events).
	checkEvents(t, next(t, watch(t, ctx, b, "w/", r3), 2), []wantEv{
		{store.EventDelete, "w/a", "", r4},
		{store.EventPut, "w/b", "2", r4},
	})

	// Other prefix, from just before the first write.
	checkEvents(t, next(t, watch(t, ctx, b, "other/", r1), 3), []wantEv{
		{store.EventPut, "other/a", "1", r2},
		{store.EventPut, "other/b", "1", r3},
		{store.EventDelete, "other/a", "", r5},
	})

	// From the current revision: nothing until the next write, which comes
	// first (nothing older leaks in).
	ch := watch(t, ctx, b, "", b.Rev())
	f.bump(t, b)
	r6 := txn(t, b, put("z", "1"))
	checkEvents(t, next(t, ch, 1), []wantEv{{store.EventPut, "z", "1", r6}})
}

func testWatchLive(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	txn(t, b, put("live/old", "x"))
	_, rev := rangeKeys(t, b, "live/")
	ch := watch(t, ctx, b, "live/", rev)

	// Watches from a revision not reached yet deliver only what comes after it.
	afterNext := b.Rev() + 1
	future := watch(t, ctx, b, "live/", afterNext)
	var want []wantEv
	var since2 <-chan store.Event
	for i := range 5 {
		key := fmt.Sprintf("live/%d", i)
		r := txn(t, b, put(key, "v"), put("dead/"+key, "v"))
		want = append(want, wantEv{store.EventPut, key, "v", r})
		if i == 1 {
			since2 = watch(t, ctx, b, "live/", r)
		}
	}
	r := txn(t, b, store.Del("live/0"))
	want = append(want, wantEv{store.EventDelete, "live/0", "", r})
	checkEvents(t, next(t, ch, len(want)), want)
	checkEvents(t, next(t, since2, len(want)-2), want[2:])
	var wantFuture []wantEv
	for _, w := range want {
		if w.rev > afterNext {
			wantFuture = append(wantFuture, w)
		}
	}
	checkEvents(t, next(t, future, len(wantFuture)), wantFuture)

	// Mutating a delivered value does not affect the store or other watchers.
	ch2 := watch(t, ctx, b, "live/1", rev)
	ch3 := watch(t, ctx, b, "live/1", rev)
	ev := next(t, ch2, 1)[0]
	ev.KV.Value[0] = 'Z'
	if ev3 := next(t, ch3, 1)[0]; string(ev3.KV.Value) != "v" {
		t.Fatalf("value seen by another watcher changed: %q", ev3.KV.Value)
	}
	mustGet(t, b, "live/1", "v", want[1].rev)
}

// testWatchConcurrent: writers in parallel, one watcher must see every event
// of its prefix exactly once, in revision order, with each Txn's events in op
// order and consistent with what the writers were acknowledged.
func testWatchConcurrent(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const writers, perWriter = 8, 100 // 2 watched events per Txn: 1,600 in all
	ch := watch(t, ctx, b, "cw/", b.Rev())

	acked := make(map[string]int64) // key -> rev
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				k1 := fmt.Sprintf("cw/%d/%03d/a", w, i)
				k2 := fmt.Sprintf("cw/%d/%03d/b", w, i)
				rev, err := b.Txn(ctx, []store.Op{put(k1, "1"), put("unwatched/"+k1, "1"), put(k2, "2")})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked[k1], acked[k2] = rev, rev
				mu.Unlock()
			}
		})
	}
	evs := next(t, ch, writers*perWriter*2)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}

	seen := make(map[string]bool)
	var last int64
	for i, ev := range evs {
		if ev.KV.ModRev < last {
			t.Fatalf("event %d: revision %d after %d", i, ev.KV.ModRev, last)
		}
		last = ev.KV.ModRev
		if seen[ev.KV.Key] {
			t.Fatalf("event %d: key %q delivered twice", i, ev.KV.Key)
		}
		seen[ev.KV.Key] = true
		if rev, ok := acked[ev.KV.Key]; !ok || rev != ev.KV.ModRev {
			t.Fatalf("event %d: %q@%d, writer was acknowledged rev %d (known %v)", i, ev.KV.Key, ev.KV.ModRev, rev, ok)
		}
		// Each Txn's two watched events are adjacent, a before b.
		if i%2 == 1 {
			prev := evs[i-1]
			if prev.KV.ModRev != ev.KV.ModRev || prev.KV.Key[:len(prev.KV.Key)-1]+"b" != ev.KV.Key {
				t.Fatalf("events %d,%d: %q@%d then %q@%d, want one Txn's a then b",
					i-1, i, prev.KV.Key, prev.KV.ModRev, ev.KV.Key, ev.KV.ModRev)
			}
		}
	}
	if len(seen) != len(acked) {
		t.Fatalf("saw %d keys, %d acknowledged", len(seen), len(acked))
	}
	// Nothing more is pending for this prefix.
	r := txn(t, b, put("cw/end", "x"))
	checkEvents(t, next(t, ch, 1), []wantEv{{store.EventPut, "cw/end", "x", r}})
}

func testWatchCancel(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := watch(t, ctx, b, "", b.Rev())
	txn(t, b, put("a", "1"))
	cancel()
	// The channel closes; at most the events already committed come first.
	for ev := range ch {
		if ev.KV.Key != "a" {
			t.Fatalf("unexpected event after cancel: %v", ev)
		}
	}
	// Watch with a done ctx fails or yields a channel that closes.
	if ch, err := b.Watch(ctx, "", b.Rev()); err == nil {
		for range ch {
		}
	}
}

func testConcurrentTxn(t *testing.T, f Factory) {
	b := f.Open(t)
	const goroutines, perG = 64, 20
	type ack struct {
		key string
		rev int64
	}
	acks := make(chan ack, goroutines*perG)
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				key := fmt.Sprintf("c/%02d/%02d", g, i)
				rev, err := b.Txn(context.Background(), []store.Op{put(key, key), put(key+"/idx", "i")})
				if err != nil {
					errs <- err
					return
				}
				acks <- ack{key, rev}
			}
		})
	}
	wg.Wait()
	close(acks)
	close(errs)
	for err := range errs {
		t.Fatalf("Txn: %v", err)
	}
	revs := make(map[int64]string)
	for a := range acks {
		if other, dup := revs[a.rev]; dup {
			t.Fatalf("revision %d given to %q and %q", a.rev, a.key, other)
		}
		revs[a.rev] = a.key
		mustGet(t, b, a.key, a.key, a.rev)
		mustGet(t, b, a.key+"/idx", "i", a.rev)
	}
	if len(revs) != goroutines*perG {
		t.Fatalf("%d acks, want %d", len(revs), goroutines*perG)
	}
	for rev := range revs {
		if rev > b.Rev() {
			t.Fatalf("Rev() = %d, before the acknowledged %d", b.Rev(), rev)
		}
	}
	keys, _ := rangeKeys(t, b, "c/")
	if len(keys) != 2*goroutines*perG {
		t.Fatalf("Range found %d keys, want %d", len(keys), 2*goroutines*perG)
	}
}

// testCASCounter: read-modify-write with Compare from many goroutines. Every
// acknowledged increment must count exactly once, including when conflicting
// Txns land in the same group commit.
func testCASCounter(t *testing.T, f Factory) {
	b := f.Open(t)
	const goroutines, perG = 16, 25
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	revs := make(chan int64, goroutines*perG)
	for range goroutines {
		wg.Go(func() {
			for range perG {
				for {
					kv, ok, err := b.Get(ctx, "counter")
					if err != nil {
						errs <- err
						return
					}
					n := 0
					if ok {
						fmt.Sscan(string(kv.Value), &n)
					}
					rev, err := b.Txn(ctx, []store.Op{store.Put("counter", fmt.Appendf(nil, "%d", n+1)).If(kv.ModRev)})
					if errors.Is(err, store.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					revs <- rev
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(revs)
	for err := range errs {
		t.Fatalf("counter: %v", err)
	}
	kv, ok := get(t, b, "counter")
	if want := fmt.Sprint(goroutines * perG); !ok || string(kv.Value) != want {
		t.Fatalf("counter = %q, want %s", kv.Value, want)
	}
	// One revision per acknowledged increment, none shared.
	seen := map[int64]bool{}
	for rev := range revs {
		if seen[rev] {
			t.Fatalf("two increments acknowledged at revision %d", rev)
		}
		seen[rev] = true
	}
	if len(seen) != goroutines*perG {
		t.Fatalf("%d increments acknowledged, want %d", len(seen), goroutines*perG)
	}
}

func testReopen(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("Factory.Reopen is nil")
	}
	b := f.Open(t)
	txn(t, b, put("p/a", "1"), put("p/b", "1"))
	r2 := txn(t, b, put("p/a", "2"), store.Del("p/b"), put("p/c", "3"))
	r3 := txn(t, b, put("q", "x"))

	f.bump(t, b)
	b = f.Reopen(t, b)
	if b.Rev() < r3 {
		t.Fatalf("Rev() after reopen = %d, before %d", b.Rev(), r3)
	}
	mustGet(t, b, "p/a", "2", r2)
	mustAbsent(t, b, "p/b")
	mustGet(t, b, "p/c", "3", r2)
	mustGet(t, b, "q", "x", r3)
	keys, rev := rangeKeys(t, b, "p/")
	if !slices.Equal(keys, []string{"p/a", "p/c"}) || rev < r3 {
		t.Fatalf("Range after reopen = %v @%d", keys, rev)
	}

	// Revisions continue, CAS works against persisted ModRevs, and watching
	// from the current revision works.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watch(t, ctx, b, "p/", b.Rev())
	r4 := txn(t, b, put("p/a", "4").If(r2))
	if r4 <= r3 {
		t.Fatalf("first revision after reopen = %d, not after %d", r4, r3)
	}
	checkEvents(t, next(t, ch, 1), []wantEv{{store.EventPut, "p/a", "4", r4}})

	b = f.Reopen(t, b)
	mustGet(t, b, "p/a", "4", r4)
}

func testClosed(t *testing.T, f Factory) {
	b := f.Open(t)
	ctx := context.Background()
	rev := txn(t, b, put("a", "1"))
	ch := watch(t, ctx, b, "", rev)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range ch {
		t.Fatal("event after Close")
	}
	if _, _, err := b.Get(ctx, "a"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, _, err := b.Range(ctx, ""); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Range after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Txn(ctx, []store.Op{put("b", "1")}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Txn after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Watch(ctx, "", rev); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Watch after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
