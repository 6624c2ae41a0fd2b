package control

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
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
	s, err := Open(b, clock.NewFake(time.Unix(1_700_000_000, 0)), domain.Partition{Region: "us-east-1", AccountID: "000000000000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	release := make(chan struct{})
	b.entered, b.release = make(chan struct{}), release
	first := make(chan error, 1)
	go func() { _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); first <- err }()
	<-b.entered // batch 1 is in its Txn
	second := make(chan error, 1)
	go func() { _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); second <- err }()
	// Let the loop take and prepare the second request (batch 2).
	for len(s.reqs) != 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-first; err == nil {
		t.Fatal("first CreateCluster: commit failed but it succeeded")
	}
	if err := <-second; err == nil {
		t.Fatal("second CreateCluster acknowledged cluster c, which is not in the store")
	}
}
