package control

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

// revGatedBackend holds the next Txn until released, then fails it (or,
// with pass, commits it).
type revGatedBackend struct {
	store.Backend
	entered chan struct{}
	release chan struct{}
	pass    bool
}

func (b *revGatedBackend) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if rel := b.release; rel != nil {
		b.release = nil // only the committer goroutine calls Txn
		close(b.entered)
		<-rel
		if !b.pass {
			return 0, errors.New("fsync: input/output error")
		}
	}
	return b.Backend.Txn(ctx, ops)
}

// While batch N is being committed, batch N+1 is already prepared against
// memory that holds N's writes. If N's commit fails, a request of N+1 that
// wrote nothing but answered from N's writes (an idempotent CreateCluster)
// must fail too: its answer claims a state the disk never got.
func TestReviewNoWriteBatchAfterFailedCommit(t *testing.T) {
	bb, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	b := &revGatedBackend{Backend: bb}
	s := New(openEngine(t, b, clock.NewFake(time.Unix(1_700_000_000, 0))), testPart, nil)
	ctx := context.Background()

	release := make(chan struct{})
	b.entered, b.release = make(chan struct{}), release
	first := make(chan error, 1)
	go func() { _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); first <- err }()
	<-b.entered // batch 1 is in its Txn
	// Hold the apply loop so that the second request and a probe are
	// queued behind it, then let it prepare them as the next batch: once
	// the probe has run, so has the second request.
	unhold := holdLoop(t, s.st)
	second := make(chan error, 1)
	go func() { _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); second <- err }()
	waitPending(t, s.st, 1)
	probed := make(chan struct{})
	go func() { _ = s.st.Update(ctx, func(*state.Tx) error { close(probed); return nil }) }()
	waitPending(t, s.st, 2)
	unhold()
	<-probed
	close(release)
	if err := <-first; err == nil {
		t.Fatal("first CreateCluster: commit failed but it succeeded")
	}
	if err := <-second; err == nil {
		t.Fatal("second CreateCluster acknowledged cluster c, which is not in the store")
	}
}

// holdLoop blocks the apply loop inside an Update until the returned
// function is called.
func holdLoop(t testing.TB, st *state.Engine) (release func()) {
	t.Helper()
	entered, rel := make(chan struct{}), make(chan struct{})
	go func() {
		_ = st.Update(context.Background(), func(*state.Tx) error { close(entered); <-rel; return nil })
	}()
	<-entered
	return func() { close(rel) }
}
