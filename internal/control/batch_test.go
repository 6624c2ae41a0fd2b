package control

// Group commit: requests that write the same key in one batch (or one
// request that writes a key twice) must commit, the last write winning,
// and nothing of a failed request may be written. Helpers are prefixed bat.

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

func batOpen(t *testing.T, path string) (*Store, *bolt.Store) {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(b, clock.NewFake(time.Unix(1_700_000_000, 0)), domain.Partition{Region: "us-east-1", AccountID: "000000000000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func TestBatchSameKeyTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, b := batOpen(t, path)
	ctx := context.Background()
	if _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); err != nil {
		t.Fatal(err)
	}

	// Hold the apply loop inside a request until two more are queued, so
	// that those two run in one batch (one store transaction).
	release := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.Update(ctx, func(tx *Tx) error { <-release; return nil })
	}()
	// Wait until the loop has taken the holding request.
	for len(s.reqs) != 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	tagged := func(tag string) func(tx *Tx) error {
		return func(tx *Tx) error {
			c := *tx.Cluster("c")
			c.Tags = []domain.Tag{{Key: "k", Value: tag}}
			tx.PutCluster(&c)
			tx.PutCluster(&c) // the same key twice in one request too
			return nil
		}
	}
	errs := make(chan error, 3)
	go func() { errs <- s.Update(ctx, tagged("first")) }()
	for len(s.reqs) != 1 {
		time.Sleep(time.Millisecond)
	}
	go func() { errs <- s.Update(ctx, tagged("second")) }()
	// A failing request in the same batch writes nothing.
	go func() {
		errs <- s.Update(ctx, func(tx *Tx) error {
			c := *tx.Cluster("c")
			c.Tags = []domain.Tag{{Key: "k", Value: "failed"}}
			tx.PutCluster(&c)
			return domain.Errorf(domain.KindInvalidParameter, "no")
		})
	}()
	for len(s.reqs) != 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	var failed int
	for range 3 {
		err := <-errs
		switch {
		case err == nil:
		case domain.KindOf(err) == domain.KindInvalidParameter:
			failed++
		default:
			t.Fatalf("batched write failed: %v", err)
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed requests, want 1", failed)
	}
	var tag string
	s.read(func(st *state) { tag = st.clusters["c"].Tags[0].Value })
	if tag != "second" {
		t.Fatalf("in memory: tag %q, want second", tag)
	}
	s.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// What was acknowledged is what is on disk.
	s2, b2 := batOpen(t, path)
	defer b2.Close()
	defer s2.Close()
	s2.read(func(st *state) { tag = st.clusters["c"].Tags[0].Value })
	if tag != "second" {
		t.Fatalf("after reopen: tag %q, want second", tag)
	}
}

// A task listed twice in one UpdateTaskProtection call is one write.
func TestProtectSameTaskTwice(t *testing.T) {
	s, b := batOpen(t, filepath.Join(t.TempDir(), "db"))
	defer b.Close()
	defer s.Close()
	ctx := context.Background()
	if _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); err != nil {
		t.Fatal(err)
	}
	// A service task, staged directly: no controller runs here.
	var id string
	err := s.Update(ctx, func(tx *Tx) error {
		sv := &domain.Service{ServiceName: "svc", Status: domain.Active, DesiredCount: 1,
			Internal: &domain.ServiceInternal{ClusterName: "c"}}
		tx.PutService(sv)
		id = newID()
		tx.PutTask(&domain.Task{TaskARN: s.part.TaskARN("c", id), LastStatus: domain.StatusRunning, DesiredStatus: domain.StatusRunning,
			Internal: &domain.TaskInternal{ID: id, ClusterName: "c", ServiceName: "svc"}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	on := true
	out, err := s.UpdateTaskProtection(ctx, UpdateTaskProtectionInput{Cluster: "c", Tasks: []string{id, id}, ProtectionEnabled: &on})
	if err != nil {
		t.Fatalf("UpdateTaskProtection with a task twice: %v", err)
	}
	if len(out.ProtectedTasks) != 2 || len(out.Failures) != 0 || !out.ProtectedTasks[0].ProtectionEnabled {
		t.Fatalf("out: %+v", out)
	}
}
