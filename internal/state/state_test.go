package state_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// item is a test record kind, grouped by Group.
type item struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	N     int    `json:"n"`
}

// note is a second kind that refers to an item: Group is derived (linked)
// from the item, not stored.
type note struct {
	ItemID string `json:"itemId"`
	Text   string `json:"text"`
	Group  string `json:"-"`
}

var (
	items   = state.Define("items", "items/", func(v *item) string { return v.ID })
	byGroup = state.NewIndex(items, "by group", func(v *item) (string, bool) { return v.Group, v.Group != "" })
	notes   = state.Define("notes", "notes/", func(v *note) string { return v.ItemID },
		state.WithLink(func(v *note, r state.Reader) {
			if it := items.Get(r, v.ItemID); it != nil {
				v.Group = it.Group
			}
		}))
	notesByGroup = state.NewIndex(notes, "by group", func(v *note) (string, bool) { return v.Group, v.Group != "" })
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func openBolt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func open(t *testing.T, b store.Backend, opts state.Options) *state.Engine {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(t0)
	}
	e, err := state.Open(context.Background(), b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func put(t *testing.T, e *state.Engine, vs ...*item) {
	t.Helper()
	err := e.Update(context.Background(), func(tx *state.Tx) error {
		for _, v := range vs {
			items.Put(tx, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func groupIDs(r state.Reader, g string) []string { return byGroup.Keys(r, g) }

// Reads inside an Update see its own writes, point reads and index reads
// alike, including a record that moves between groups.
func TestUpdateReadsItsWrites(t *testing.T) {
	e := open(t, openBolt(t, filepath.Join(t.TempDir(), "db")), state.Options{})
	put(t, e, &item{ID: "a", Group: "x"}, &item{ID: "b", Group: "x"})
	err := e.Update(context.Background(), func(tx *state.Tx) error {
		items.Put(tx, &item{ID: "c", Group: "x"})
		items.Put(tx, &item{ID: "a", Group: "y", N: 1})
		items.Delete(tx, "b")
		if got := items.Get(tx, "a"); got == nil || got.N != 1 {
			return fmt.Errorf("Get a = %+v, want the staged N=1", got)
		}
		if items.Get(tx, "b") != nil {
			return errors.New("deleted b is still visible")
		}
		if got := groupIDs(tx, "x"); !slices.Equal(got, []string{"c"}) {
			return fmt.Errorf("group x = %v, want [c]", got)
		}
		if got := groupIDs(tx, "y"); !slices.Equal(got, []string{"a"}) {
			return fmt.Errorf("group y = %v, want [a]", got)
		}
		if n := items.Len(tx); n != 2 {
			return fmt.Errorf("Len = %d, want 2", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.View(func(v *state.View) {
		if got := byGroup.Groups(v); !slices.Equal(got, []string{"x", "y"}) {
			t.Errorf("groups after commit = %v", got)
		}
	})
}

// A failed or panicking Update leaves nothing behind: not in memory, not
// in the indexes, not in the store, not in the feed.
func TestFailedUpdateIsUndone(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	e := open(t, b, state.Options{})
	put(t, e, &item{ID: "a", Group: "x", N: 1})
	rev := e.Rev()
	sub, err := e.Subscribe(state.SubscribeOptions{After: rev})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for name, fail := range map[string]func(){"error": nil, "panic": func() { panic("bad") }} {
		err := e.Update(context.Background(), func(tx *state.Tx) error {
			items.Put(tx, &item{ID: "a", Group: "y", N: 2})
			items.Put(tx, &item{ID: "new", Group: "x"})
			items.Delete(tx, "a")
			items.Put(tx, &item{ID: "a", Group: "z", N: 3})
			if fail != nil {
				fail()
			}
			return boom
		})
		if err == nil {
			t.Fatalf("%s: Update succeeded", name)
		}
		e.View(func(v *state.View) {
			if got := items.Get(v, "a"); got == nil || got.N != 1 || got.Group != "x" {
				t.Errorf("%s: a = %+v after the failed Update", name, got)
			}
			if items.Get(v, "new") != nil {
				t.Errorf("%s: new is visible", name)
			}
			if got := byGroup.Groups(v); !slices.Equal(got, []string{"x"}) {
				t.Errorf("%s: groups %v", name, got)
			}
			if got := groupIDs(v, "x"); !slices.Equal(got, []string{"a"}) {
				t.Errorf("%s: group x %v", name, got)
			}
		})
	}
	if e.Rev() != rev || b.Rev() != rev {
		t.Fatalf("failed Updates moved the revision: engine %d, store %d, want %d", e.Rev(), b.Rev(), rev)
	}
	put(t, e, &item{ID: "later"})
	batch, err := sub.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Changes) != 1 || batch.Changes[0].Key != "later" {
		t.Fatalf("feed after failed Updates: %+v", batch)
	}
}

// One batch of Updates is one store Txn and one feed batch; a key written
// by several Updates of the batch is one change, from its value before the
// batch to its value after it.
func TestBatchIsOneCommit(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	e := open(t, b, state.Options{})
	put(t, e, &item{ID: "k", N: 0})
	before := e.Rev()
	sub, err := e.Subscribe(state.SubscribeOptions{After: before})
	if err != nil {
		t.Fatal(err)
	}
	// Hold the loop so that the next Updates queue up into one batch.
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = e.Update(context.Background(), func(*state.Tx) error { close(entered); <-release; return nil })
	})
	<-entered
	const n = 10
	for i := range n {
		wg.Go(func() {
			err := e.Update(context.Background(), func(tx *state.Tx) error {
				cur := items.Get(tx, "k")
				items.Put(tx, &item{ID: "k", N: cur.N + 1})
				items.Put(tx, &item{ID: fmt.Sprint("own", i)})
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	testutil.EventuallyTrue(t, 10*time.Second, time.Millisecond, "queued Updates", func() bool { return e.Pending() == n })
	close(release)
	wg.Wait()
	if e.Rev() != before+1 || b.Rev() != before+1 {
		t.Fatalf("rev: engine %d, store %d; want one commit (%d)", e.Rev(), b.Rev(), before+1)
	}
	kv, ok, err := b.Get(context.Background(), "items/k")
	if err != nil || !ok || string(kv.Value) != `{"id":"k","group":"","n":10}` {
		t.Fatalf("stored k = %s %v %v", kv.Value, ok, err)
	}
	batch, err := sub.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if batch.Rev != before+1 || len(batch.Changes) != n+1 {
		t.Fatalf("batch rev %d with %d changes, want %d with %d", batch.Rev, len(batch.Changes), before+1, n+1)
	}
	old, nw, ok := state.As(batch.Changes[0], items)
	if !ok || old.N != 0 || nw.N != 10 {
		t.Fatalf("change of k: %+v -> %+v", old, nw)
	}
	e.View(func(v *state.View) {
		if got := items.Rev(v, "k"); got != before+1 {
			t.Errorf("Rev of k = %d, want %d", got, before+1)
		}
	})
}

// What was committed is what a new engine loads: records, indexes and the
// links derived from other kinds.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b := openBolt(t, path)
	e := open(t, b, state.Options{})
	put(t, e, &item{ID: "a", Group: "x"}, &item{ID: "b", Group: "y"})
	err := e.Update(context.Background(), func(tx *state.Tx) error {
		notes.Put(tx, &note{ItemID: "a", Text: "hello", Group: "x"})
		notes.Put(tx, &note{ItemID: "b", Text: "bye", Group: "y"})
		items.Delete(tx, "b")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rev := e.Rev()
	e.Close()

	e2 := open(t, b, state.Options{})
	if e2.Rev() != rev || e2.LoadRev() != rev {
		t.Fatalf("loaded rev %d/%d, want %d", e2.Rev(), e2.LoadRev(), rev)
	}
	e2.View(func(v *state.View) {
		if got := groupIDs(v, "x"); !slices.Equal(got, []string{"a"}) {
			t.Errorf("items of x: %v", got)
		}
		if items.Get(v, "b") != nil {
			t.Error("deleted item b came back")
		}
		if got := notesByGroup.Keys(v, "x"); !slices.Equal(got, []string{"a"}) {
			t.Errorf("notes of x: %v (link not applied)", got)
		}
		if n := notes.Get(v, "b"); n == nil || n.Group != "" {
			t.Errorf("note of the deleted item: %+v", n)
		}
	})
}

// The fence guards every commit: once the leader key is not what the
// fence expects, the commit fails with ErrFenced, nothing is written, and
// the engine refuses every later Update.
func TestFence(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	lease, err := b.Txn(ctx, []store.Op{store.Put("leader", []byte("me"))})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	e := open(t, b, state.Options{Fence: func(context.Context) ([]store.Op, error) {
		calls++
		return []store.Op{store.Check("leader", lease)}, nil
	}})
	put(t, e, &item{ID: "a"})
	if calls != 1 {
		t.Fatalf("fence called %d times for one commit", calls)
	}
	// Another replica takes over.
	if _, err := b.Txn(ctx, []store.Op{store.Put("leader", []byte("other"))}); err != nil {
		t.Fatal(err)
	}
	storeRev := b.Rev()
	err = e.Update(ctx, func(tx *state.Tx) error { items.Put(tx, &item{ID: "b"}); return nil })
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("Update after losing the lease: %v, want ErrFenced", err)
	}
	if !errors.Is(e.Err(), state.ErrFenced) {
		t.Fatalf("Err() = %v", e.Err())
	}
	if b.Rev() != storeRev {
		t.Fatal("a fenced commit wrote to the store")
	}
	if _, ok, _ := b.Get(ctx, "items/b"); ok {
		t.Fatal("fenced write is in the store")
	}
	err = e.Update(ctx, func(tx *state.Tx) error { return nil })
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("later Update: %v, want ErrFenced", err)
	}
}

// A fence that reports lost leadership fails the commit the same way.
func TestFenceError(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	e := open(t, b, state.Options{Fence: func(context.Context) ([]store.Op, error) {
		return nil, errors.New("lease expired")
	}})
	err := e.Update(context.Background(), func(tx *state.Tx) error { items.Put(tx, &item{ID: "a"}); return nil })
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("err = %v, want ErrFenced", err)
	}
	if b.Rev() != 0 {
		t.Fatal("fenced commit was written")
	}
}

// Revisions need not be consecutive (etcd's are global to the cluster):
// records, views and the feed carry the store's revisions, whatever else
// writes outside the engine's kinds.
func TestRevisionsFromTheStore(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	e := open(t, b, state.Options{})
	ctx := context.Background()
	sub, err := e.Subscribe(state.SubscribeOptions{After: e.Rev()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// Another writer, outside every kind's prefix, advances the revision.
		if _, err := b.Txn(ctx, []store.Op{store.Put(store.RuntimePrefix+"other", []byte(fmt.Sprint(i)))}); err != nil {
			t.Fatal(err)
		}
		put(t, e, &item{ID: "a", N: i})
		kv, ok, err := b.Get(ctx, "items/a")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if e.Rev() != kv.ModRev {
			t.Fatalf("engine Rev %d, store ModRev %d", e.Rev(), kv.ModRev)
		}
		e.View(func(v *state.View) {
			if got := items.Rev(v, "a"); got != kv.ModRev {
				t.Errorf("record Rev %d, store ModRev %d", got, kv.ModRev)
			}
			if v.Rev() != kv.ModRev {
				t.Errorf("view Rev %d, want %d", v.Rev(), kv.ModRev)
			}
		})
		batch, err := sub.Next(ctx)
		if err != nil || batch.Rev != kv.ModRev {
			t.Fatalf("feed batch %+v %v, want revision %d", batch, err, kv.ModRev)
		}
	}
}

// limited is a backend whose Txns carry at most maxOps ops.
type limited struct {
	store.Backend
	maxOps int
	txns   [][]store.Op
}

func (l *limited) Limits() store.Limits { return store.Limits{MaxOps: l.maxOps} }

func (l *limited) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if len(ops) > l.maxOps {
		return 0, fmt.Errorf("%w: %d ops", store.ErrInvalid, len(ops))
	}
	l.txns = append(l.txns, ops)
	return l.Backend.Txn(ctx, ops)
}

// On a backend with bounded Txns, a batch is cut at an Update when the
// next one would not fit, and an Update too large for one Txn is written
// as several, in order, each with the fence.
func TestTxnLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	bb := openBolt(t, path)
	ctx := context.Background()
	lease, err := bb.Txn(ctx, []store.Op{store.Put(store.RuntimePrefix+"leader", []byte("me"))})
	if err != nil {
		t.Fatal(err)
	}
	b := &limited{Backend: bb, maxOps: 20}
	e := open(t, b, state.Options{Fence: func(context.Context) ([]store.Op, error) {
		return []store.Op{store.Check(store.RuntimePrefix+"leader", lease)}, nil
	}})
	// One Update of 50 writes.
	err = e.Update(ctx, func(tx *state.Tx) error {
		for i := range 50 {
			items.Put(tx, &item{ID: fmt.Sprintf("big%02d", i)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.txns) < 3 {
		t.Fatalf("50 writes in %d Txns of at most 20 ops", len(b.txns))
	}
	for i, ops := range b.txns {
		if !slices.ContainsFunc(ops, func(op store.Op) bool { return op.Check }) {
			t.Fatalf("Txn %d has no fence", i)
		}
	}
	// Updates of 8 writes each, queued together: cut into batches at an
	// Update, one Txn per batch.
	b.txns = nil
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = e.Update(ctx, func(*state.Tx) error { close(entered); <-release; return nil })
	})
	<-entered
	for u := range 5 {
		wg.Go(func() {
			err := e.Update(ctx, func(tx *state.Tx) error {
				for i := range 8 {
					items.Put(tx, &item{ID: fmt.Sprintf("u%d-%d", u, i)})
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	testutil.EventuallyTrue(t, 10*time.Second, time.Millisecond, "queued Updates", func() bool { return e.Pending() == 5 })
	close(release)
	wg.Wait()
	if len(b.txns) != 3 {
		t.Fatalf("5 Updates of 8 writes in %d Txns, want 3 (2+2+1 Updates)", len(b.txns))
	}
	e.Close()
	e2 := open(t, bb, state.Options{})
	e2.View(func(v *state.View) {
		if n := items.Len(v); n != 90 {
			t.Fatalf("%d items after reload, want 90", n)
		}
	})
}

// Subscribers resume from a revision, filter by kind, and never hold up
// the writer: one that falls behind gets ErrLagged.
func TestFeed(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	e := open(t, b, state.Options{FeedBatches: 8})
	ctx := context.Background()
	start := e.Rev()
	put(t, e, &item{ID: "1"})
	err := e.Update(ctx, func(tx *state.Tx) error { notes.Put(tx, &note{ItemID: "1"}); return nil })
	if err != nil {
		t.Fatal(err)
	}
	put(t, e, &item{ID: "2"})

	// Resume from the start: everything, in order.
	all, err := e.Subscribe(state.SubscribeOptions{After: start})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for range 3 {
		b, err := all.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b.Changes[0].Kind.Name()+"/"+b.Changes[0].Key)
	}
	if !slices.Equal(keys, []string{"items/1", "notes/1", "items/2"}) {
		t.Fatalf("resumed feed: %v", keys)
	}
	// Only notes, resuming after the first batch.
	only, err := e.Subscribe(state.SubscribeOptions{After: start + 1, Kinds: []state.AnyKind{notes}})
	if err != nil {
		t.Fatal(err)
	}
	nb, err := only.Next(ctx)
	if err != nil || nb.Rev != start+2 || len(nb.Changes) != 1 || nb.Changes[0].Kind != state.AnyKind(notes) {
		t.Fatalf("filtered: %+v %v", nb, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := only.Next(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no more notes: Next = %v, want the deadline", err)
	}

	// A subscriber that does not read: the writer goes on regardless, and
	// the subscriber learns it fell behind.
	slow, err := e.Subscribe(state.SubscribeOptions{After: e.Rev()})
	if err != nil {
		t.Fatal(err)
	}
	lagged, err := e.Subscribe(state.SubscribeOptions{After: e.Rev(), MaxLag: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		put(t, e, &item{ID: fmt.Sprint("x", i)})
	}
	if _, err := slow.Next(ctx); !errors.Is(err, state.ErrLagged) {
		t.Fatalf("slow subscriber: %v, want ErrLagged", err)
	}
	if _, err := lagged.Next(ctx); !errors.Is(err, state.ErrLagged) {
		t.Fatalf("MaxLag subscriber: %v, want ErrLagged", err)
	}
	// Too old to resume.
	if _, err := e.Subscribe(state.SubscribeOptions{After: start}); !errors.Is(err, state.ErrCompacted) {
		t.Fatalf("Subscribe after a compacted revision: %v, want ErrCompacted", err)
	}
	// A subscriber that keeps up sees the newest batch.
	cur, err := e.Subscribe(state.SubscribeOptions{After: e.Rev() - 1})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := cur.Next(ctx); err != nil || b.Rev != e.Rev() {
		t.Fatalf("current: %+v %v", b, err)
	}
	// Closing the engine ends every subscription.
	done := make(chan error, 1)
	go func() { _, err := cur.Next(ctx); done <- err }()
	e.Close()
	if err := <-done; !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	if err := e.Update(ctx, func(*state.Tx) error { return nil }); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}
}

// WaitFor returns once a revision is applied.
func TestWaitFor(t *testing.T) {
	e := open(t, openBolt(t, filepath.Join(t.TempDir(), "db")), state.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := e.Rev() + 2
	done := make(chan error, 1)
	go func() { done <- e.WaitFor(ctx, target) }()
	put(t, e, &item{ID: "a"})
	select {
	case err := <-done:
		t.Fatalf("WaitFor returned early: %v", err)
	default:
	}
	put(t, e, &item{ID: "b"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A group's version moves when the group's content does, and only then;
// a group emptied and made again never shows an earlier version.
func TestGroupVersion(t *testing.T) {
	e := open(t, openBolt(t, filepath.Join(t.TempDir(), "db")), state.Options{})
	ver := func(g string) (v uint64) {
		e.View(func(r *state.View) { v = byGroup.Version(r, g) })
		return v
	}
	if ver("x") != 0 {
		t.Fatal("empty group has a version")
	}
	put(t, e, &item{ID: "a", Group: "x"})
	x1, y1 := ver("x"), ver("y")
	put(t, e, &item{ID: "b", Group: "y"})
	if ver("x") != x1 || ver("y") == y1 {
		t.Fatalf("a write to group y: x %d->%d, y %d->%d", x1, ver("x"), y1, ver("y"))
	}
	put(t, e, &item{ID: "a", Group: "x", N: 1}) // changed within x
	x2 := ver("x")
	if x2 == x1 {
		t.Fatal("a change within the group kept its version")
	}
	seen := map[uint64]bool{x1: true, x2: true}
	put(t, e, &item{ID: "a", Group: "y"}) // x is empty now
	if ver("x") != 0 {
		t.Fatalf("emptied group has version %d", ver("x"))
	}
	put(t, e, &item{ID: "c", Group: "x"})
	if seen[ver("x")] {
		t.Fatalf("a group made again shows an earlier version %d", ver("x"))
	}
	// Inside an Update, the Update's own writes count.
	err := e.Update(context.Background(), func(tx *state.Tx) error {
		before := byGroup.Version(tx, "x")
		items.Put(tx, &item{ID: "d", Group: "x"})
		if byGroup.Version(tx, "x") == before {
			return errors.New("own write did not move the version")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A follower replica keeps its memory current with Apply, from what the
// writer commits as the store's Watch streams it: after every revision it
// shows what the writer shows (records, indexes, links made in the same
// revision), and its feed publishes the same changes.
func TestFollowerApply(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "db"))
	w := open(t, b, state.Options{})
	put(t, w, &item{ID: "seed", Group: "x"})
	if err := w.Apply(w.Rev()+1, nil); err == nil {
		t.Fatal("Apply on a writing engine succeeded")
	}
	f := open(t, b, state.Options{Follower: true})
	if err := f.Update(context.Background(), func(*state.Tx) error { return nil }); !errors.Is(err, state.ErrFollower) {
		t.Fatalf("Update on a follower: %v, want ErrFollower", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := b.Watch(ctx, "", f.Rev())
	if err != nil {
		t.Fatal(err)
	}
	wfeed, _ := w.Subscribe(state.SubscribeOptions{After: w.Rev()})
	ffeed, _ := f.Subscribe(state.SubscribeOptions{After: f.Rev()})
	snapshot := func(e *state.Engine) (out []string) {
		e.View(func(v *state.View) {
			for _, g := range byGroup.Groups(v) {
				for _, k := range byGroup.Keys(v, g) {
					out = append(out, fmt.Sprintf("item %s@%s n=%d rev=%d", k, g, items.Get(v, k).N, items.Rev(v, k)))
				}
			}
			for _, g := range notesByGroup.Groups(v) {
				out = append(out, fmt.Sprintf("notes of %s: %v", g, notesByGroup.Keys(v, g)))
			}
		})
		return out
	}
	steps := []func(tx *state.Tx){
		func(tx *state.Tx) {
			items.Put(tx, &item{ID: "a", Group: "x"})
			items.Put(tx, &item{ID: "b", Group: "y"})
		},
		// A note and its item in one revision: the link sees the item.
		func(tx *state.Tx) {
			items.Put(tx, &item{ID: "c", Group: "z"})
			notes.Put(tx, &note{ItemID: "c", Text: "hi", Group: "z"})
		},
		func(tx *state.Tx) { items.Put(tx, &item{ID: "a", Group: "y", N: 2}); items.Delete(tx, "b") },
		func(tx *state.Tx) { items.Delete(tx, "a"); notes.Delete(tx, "c") },
	}
	for i, step := range steps {
		if err := w.Update(ctx, func(tx *state.Tx) error { step(tx); return nil }); err != nil {
			t.Fatal(err)
		}
		// The writer's feed says how many events the revision has.
		wb, err := wfeed.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var evs []store.Event
		for len(evs) < len(wb.Changes) {
			select {
			case ev := <-events:
				evs = append(evs, ev)
			case <-time.After(10 * time.Second):
				t.Fatalf("step %d: %d of %d events watched", i, len(evs), len(wb.Changes))
			}
		}
		if err := f.Apply(wb.Rev, evs); err != nil {
			t.Fatal(err)
		}
		if err := f.Apply(wb.Rev, evs); err != nil { // again: ignored
			t.Fatal(err)
		}
		if got, want := snapshot(f), snapshot(w); !slices.Equal(got, want) {
			t.Fatalf("step %d: follower shows\n%v\nwriter shows\n%v", i, got, want)
		}
		fb, err := ffeed.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fb.Rev != wb.Rev || len(fb.Changes) != len(wb.Changes) {
			t.Fatalf("step %d: follower's feed %d changes at %d, writer's %d at %d", i, len(fb.Changes), fb.Rev, len(wb.Changes), wb.Rev)
		}
		if f.Rev() != w.Rev() {
			t.Fatalf("step %d: follower at %d, writer at %d", i, f.Rev(), w.Rev())
		}
	}
	// An event that does not decode applies nothing.
	bad := []store.Event{
		{Type: store.EventPut, KV: store.KV{Key: "items/ok", Value: []byte(`{"id":"ok"}`), ModRev: w.Rev() + 1}},
		{Type: store.EventPut, KV: store.KV{Key: "items/bad", Value: []byte(`{`), ModRev: w.Rev() + 1}},
	}
	if err := f.Apply(w.Rev()+1, bad); err == nil {
		t.Fatal("Apply of an undecodable event succeeded")
	}
	f.View(func(v *state.View) {
		if items.Get(v, "ok") != nil {
			t.Error("a failed Apply installed part of its revision")
		}
	})
}
