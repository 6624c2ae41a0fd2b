package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/storetest"
)

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "holdfast.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func reopen(t *testing.T, s *Store, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Open(s.Path(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// The conformance suite runs with fsync on: the production setting.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) store.Backend { return openTemp(t, Options{}) },
		Reopen: func(t *testing.T, b store.Backend) store.Backend {
			return reopen(t, b.(*Store), Options{})
		},
	})
}

func put(key, value string) store.Op { return store.Put(key, []byte(value)) }

// bbolt counts revisions 1, 2, 3, ... with no gaps: nothing but its own
// Txns writes the file. (The Backend contract promises less; this is what
// the bolt file format and `holdfast restore --bump-revision` rely on.)
func TestRevisionsConsecutive(t *testing.T) {
	s := openTemp(t, Options{NoFsync: true})
	ctx := t.Context()
	if s.Rev() != 0 {
		t.Fatalf("Rev() of a new store = %d, want 0", s.Rev())
	}
	for want := int64(1); want <= 20; want++ {
		rev, err := s.Txn(ctx, []store.Op{put(fmt.Sprint("k", want%3), "v")})
		if err != nil || rev != want || s.Rev() != want {
			t.Fatalf("Txn %d: rev %d, Rev() %d, err %v", want, rev, s.Rev(), err)
		}
	}
	// Neither a conflict nor a failed check consumes a revision.
	for _, op := range []store.Op{put("k1", "x").If(99), store.Check("k1", 99)} {
		if _, err := s.Txn(ctx, []store.Op{op, put("other", "x")}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	}
	if rev, err := s.Txn(ctx, []store.Op{put("k1", "y"), store.Check("k2", 20)}); err != nil || rev != 21 {
		t.Fatalf("Txn after conflicts: rev %d, err %v; want 21", rev, err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				if _, err := s.Txn(ctx, []store.Op{put("c", "v")}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if s.Rev() != 21+160 {
		t.Fatalf("Rev() = %d after 160 concurrent Txns, want %d", s.Rev(), 21+160)
	}
}

func TestWatchCompacted(t *testing.T) {
	s := openTemp(t, Options{NoFsync: true, HistorySize: 10})
	ctx := t.Context()
	for i := range 20 {
		if _, err := s.Txn(ctx, []store.Op{put(fmt.Sprint("k", i), "v")}); err != nil {
			t.Fatal(err)
		}
	}
	// Revisions 11..20 are retained (one event each).
	if _, err := s.Watch(ctx, "", 0); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("Watch(0) err = %v, want ErrCompacted", err)
	}
	if _, err := s.Watch(ctx, "", 9); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("Watch(9) err = %v, want ErrCompacted", err)
	}
	ch, err := s.Watch(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(11); want <= 20; want++ {
		if ev := <-ch; ev.KV.ModRev != want {
			t.Fatalf("got rev %d, want %d", ev.KV.ModRev, want)
		}
	}

	// A Txn only partly retained: its revision becomes the compaction point.
	ops := make([]store.Op, 15)
	for i := range ops {
		ops[i] = put(fmt.Sprint("big", i), "v")
	}
	rev, err := s.Txn(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, "", rev-1); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("Watch(rev-1) over a partly evicted Txn: err = %v, want ErrCompacted", err)
	}
	if _, err := s.Watch(ctx, "", rev); err != nil {
		t.Fatalf("Watch(rev): %v", err)
	}
}

func TestWatchAfterReopenIsCompacted(t *testing.T) {
	s := openTemp(t, Options{NoFsync: true})
	if _, err := s.Txn(t.Context(), []store.Op{put("a", "1")}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, Options{NoFsync: true})
	if _, err := s.Watch(t.Context(), "", 0); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("Watch(0) after reopen: %v, want ErrCompacted (history is in memory)", err)
	}
	if _, err := s.Watch(t.Context(), "", 1); err != nil {
		t.Fatalf("Watch(Rev()) after reopen: %v", err)
	}
}

// A watcher whose reader stalls is closed once the history overwrites what
// it has not delivered; what it delivered is a gap-free, ordered prefix.
func TestWatchLaggingClosed(t *testing.T) {
	const history = 300 // more than the channel buffer (watchChanSize)
	s := openTemp(t, Options{NoFsync: true, HistorySize: history})
	ctx := t.Context()
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	const total = 5 * history
	for i := range total {
		if _, err := s.Txn(ctx, []store.Op{put(fmt.Sprint("k", i), "v")}); err != nil {
			t.Fatal(err)
		}
	}
	var got int64
	for ev := range ch {
		got++
		if ev.KV.ModRev != got {
			t.Fatalf("event %d has rev %d: gap or reorder", got, ev.KV.ModRev)
		}
	}
	if got >= total {
		t.Fatalf("watcher received all %d events; expected it to be closed as lagging", got)
	}
	// The caller recovers by watching from the last revision it has.
	if _, err := s.Watch(ctx, "", got); err == nil {
		t.Fatalf("Watch(%d) succeeded; it is older than the history", got)
	}
	_, rev, err := s.Range(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, "", rev); err != nil {
		t.Fatal(err)
	}
}

// AdvanceRev makes the revision jump (a restore's bump): the next Txn comes
// after it, watchers from before the jump miss nothing, a lower target is a
// no-op, and the jump is durable.
func TestAdvanceRev(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := t.Context()
	r1, err := s.Txn(ctx, []store.Op{put("a", "1")})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "", r1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceRev(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceRev(ctx, 10); err != nil || s.Rev() != 1000 {
		t.Fatalf("AdvanceRev(10) after 1000: Rev() = %d, err %v", s.Rev(), err)
	}
	r2, err := s.Txn(ctx, []store.Op{put("b", "1")})
	if err != nil || r2 != 1001 {
		t.Fatalf("Txn after AdvanceRev(1000) = %d, %v; want 1001", r2, err)
	}
	if ev := <-ch; ev.KV.Key != "b" || ev.KV.ModRev != 1001 {
		t.Fatalf("watch event = %v, want b@1001", ev)
	}
	if err := s.AdvanceRev(ctx, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("AdvanceRev(0): %v", err)
	}
	s = reopen(t, s, Options{})
	if s.Rev() != 1001 {
		t.Fatalf("Rev() after reopen = %d, want 1001", s.Rev())
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// Txns that arrive while a commit is in progress share the next commit, and
// a conflict inside a batch fails only its own caller, evaluated against the
// Txns before it in the same batch.
func TestGroupCommit(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := t.Context()
	if _, err := s.Txn(ctx, []store.Op{put("seed", "0")}); err != nil {
		t.Fatal(err)
	}

	entered := make(chan int)
	release := make(chan struct{})
	s.beforeCommit = func(n int) {
		entered <- n
		<-release
	}
	defer func() { s.beforeCommit = nil }()

	type result struct {
		i   int
		rev int64
		err error
	}
	results := make(chan result, 32)
	// First Txn: holds the committer inside beforeCommit.
	go func() {
		rev, err := s.Txn(ctx, []store.Op{put("first", "1")})
		results <- result{-1, rev, err}
	}()
	if n := <-entered; n != 1 {
		t.Fatalf("first batch has %d Txns, want 1", n)
	}
	// Queue 20 Txns while the committer is held: even ones create the same
	// key "race" if absent (only the first in the batch can win), odd ones
	// write their own key.
	const queued = 20
	var wg sync.WaitGroup
	for i := range queued {
		wg.Go(func() {
			op := put(fmt.Sprint("own", i), "v")
			if i%2 == 0 {
				op = put("race", fmt.Sprint(i)).If(0)
			}
			rev, err := s.Txn(ctx, []store.Op{op})
			results <- result{i, rev, err}
		})
	}
	for len(s.reqs) < queued {
		// The committer is held: the queue only grows. Yield until all are in.
		waitBriefly()
	}
	release <- struct{}{}
	if n := <-entered; n != queued {
		t.Fatalf("second batch has %d Txns, want %d", n, queued)
	}
	close(release)
	wg.Wait()

	winners, conflicts := 0, 0
	revs := map[int64]bool{}
	for range queued + 1 {
		r := <-results
		switch {
		case r.err == nil:
			if revs[r.rev] {
				t.Fatalf("revision %d given twice", r.rev)
			}
			revs[r.rev] = true
			if r.i >= 0 && r.i%2 == 0 {
				winners++
			}
		case errors.Is(r.err, store.ErrConflict) && r.i%2 == 0:
			conflicts++
		default:
			t.Fatalf("Txn %d: %v", r.i, r.err)
		}
	}
	if winners != 1 || conflicts != queued/2-1 {
		t.Fatalf("race: %d winners, %d conflicts; want 1 and %d", winners, conflicts, queued/2-1)
	}
	st := s.Stats()
	if st.Commits != 3 || st.Txns != 1+1+queued/2+1 || st.Conflicts != queued/2-1 {
		t.Fatalf("stats = %+v, want 3 commits (seed, first, batch), %d txns", st, 1+1+queued/2+1)
	}
	if s.Rev() != int64(st.Txns) {
		t.Fatalf("Rev() = %d, want %d", s.Rev(), st.Txns)
	}
}

// A failed commit fails every Txn of its batch, and the store then refuses
// to serve reads or writes: after reopening, none of the failed data exists.
func TestCommitFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "holdfast.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.Txn(t.Context(), []store.Op{put("good", "1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen on a read-only descriptor: opening and reading work, every
	// write of a commit fails like a failing disk would.
	s, err = Open(path, Options{openFile: func(name string, _ int, _ os.FileMode) (*os.File, error) {
		return os.Open(name)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Hold the committer in the first batch only (a failed store answers
	// later batches without reaching the hook).
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var holding atomic.Bool
	s.beforeCommit = func(int) {
		if holding.CompareAndSwap(false, true) {
			held <- struct{}{}
			<-release
		}
	}
	errs := make(chan error, 8)
	go func() {
		_, err := s.Txn(t.Context(), []store.Op{put("lost", "0")})
		errs <- err
	}()
	<-held
	var wg sync.WaitGroup
	for i := range 7 {
		wg.Go(func() {
			_, err := s.Txn(t.Context(), []store.Op{put(fmt.Sprint("lost", i+1), "v")})
			errs <- err
		})
	}
	for len(s.reqs) < 7 {
		waitBriefly()
	}
	close(release)
	wg.Wait()
	for i := range 8 {
		err := <-errs
		if err == nil || !errors.Is(err, ErrFailed) {
			t.Fatalf("Txn in a failed batch: err = %v, want ErrFailed", err)
		}
		if i == 0 {
			t.Logf("first error: %v", err)
		}
	}
	if s.Rev() != rev {
		t.Fatalf("Rev() = %d after a failed commit, want %d", s.Rev(), rev)
	}
	if _, _, err := s.Get(t.Context(), "good"); !errors.Is(err, ErrFailed) {
		t.Fatalf("Get after failure: %v, want ErrFailed", err)
	}
	if _, _, err := s.Range(t.Context(), ""); !errors.Is(err, ErrFailed) {
		t.Fatalf("Range after failure: %v, want ErrFailed", err)
	}
	if _, err := s.Txn(t.Context(), []store.Op{put("later", "1")}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Txn after failure: %v, want ErrFailed", err)
	}
	if _, err := s.Watch(t.Context(), "", rev); !errors.Is(err, ErrFailed) {
		t.Fatalf("Watch after failure: %v, want ErrFailed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after failure: %v", err)
	}

	s = reopenPath(t, path)
	if s.Rev() != rev {
		t.Fatalf("Rev() after reopen = %d, want %d", s.Rev(), rev)
	}
	kvs, _, err := s.Range(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != 1 || kvs[0].Key != "good" {
		t.Fatalf("after reopen: %v, want only the good key", kvs)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func reopenPath(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestInvalidSizes(t *testing.T) {
	s := openTemp(t, Options{NoFsync: true})
	big := string(make([]byte, 40_000))
	if _, err := s.Txn(t.Context(), []store.Op{put(big, "v")}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("oversized key: %v, want ErrInvalid", err)
	}
}

func TestOpenRejectsOtherLayout(t *testing.T) {
	s := openTemp(t, Options{NoFsync: true})
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte("99"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("Open accepted layout version 99")
	}
}

// waitBriefly yields while a test polls for goroutines to reach a state it
// cannot be notified of (a channel's length). It bounds nothing.
func waitBriefly() { time.Sleep(100 * time.Microsecond) }
