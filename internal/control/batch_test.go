package control

// Group commit: requests that write the same key in one batch (or one
// request that writes a key twice) must commit, the last write winning,
// and nothing of a failed request may be written. Helpers are prefixed bat.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/testutil"
)

// testPart is the partition of the package's tests.
var testPart = domain.Partition{Region: "us-east-1", AccountID: "000000000000"}

// openEngine opens a state engine with a fake clock on backend, closed
// when the test ends.
func openEngine(t testing.TB, backend store.Backend, clk clock.Clock) *state.Engine {
	t.Helper()
	st, err := state.Open(context.Background(), backend, state.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func batOpen(t *testing.T, path string) (*ECS, *bolt.Store) {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := openEngine(t, b, clock.NewFake(time.Unix(1_700_000_000, 0)))
	return New(st, testPart, nil), b
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
	entered := make(chan struct{})
	go func() {
		held <- s.st.Update(ctx, func(tx *state.Tx) error { close(entered); <-release; return nil })
	}()
	// Wait until the loop has taken the holding request.
	<-entered
	tagged := func(tag string) func(tx *state.Tx) error {
		return func(tx *state.Tx) error {
			c := *Clusters.Get(tx, "c")
			c.Tags = []domain.Tag{{Key: "k", Value: tag}}
			Clusters.Put(tx, &c)
			Clusters.Put(tx, &c) // the same key twice in one request too
			return nil
		}
	}
	errs := make(chan error, 3)
	go func() { errs <- s.st.Update(ctx, tagged("first")) }()
	waitPending(t, s.st, 1)
	go func() { errs <- s.st.Update(ctx, tagged("second")) }()
	// A failing request in the same batch writes nothing.
	go func() {
		errs <- s.st.Update(ctx, func(tx *state.Tx) error {
			c := *Clusters.Get(tx, "c")
			c.Tags = []domain.Tag{{Key: "k", Value: "failed"}}
			Clusters.Put(tx, &c)
			return domain.Errorf(domain.KindInvalidParameter, "no")
		})
	}()
	waitPending(t, s.st, 3)
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
	s.st.View(func(r *state.View) { tag = Clusters.Get(r, "c").Tags[0].Value })
	if tag != "second" {
		t.Fatalf("in memory: tag %q, want second", tag)
	}
	s.st.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// What was acknowledged is what is on disk.
	s2, b2 := batOpen(t, path)
	defer b2.Close()
	s2.st.View(func(r *state.View) { tag = Clusters.Get(r, "c").Tags[0].Value })
	if tag != "second" {
		t.Fatalf("after reopen: tag %q, want second", tag)
	}
}

// A task listed twice in one UpdateTaskProtection call is one write.
func TestProtectSameTaskTwice(t *testing.T) {
	s, b := batOpen(t, filepath.Join(t.TempDir(), "db"))
	defer b.Close()
	ctx := context.Background()
	if _, err := s.CreateCluster(ctx, CreateClusterInput{ClusterName: "c"}); err != nil {
		t.Fatal(err)
	}
	// A service task, staged directly: no controller runs here.
	var id string
	err := s.st.Update(ctx, func(tx *state.Tx) error {
		sv := &domain.Service{ServiceName: "svc", Status: domain.Active, DesiredCount: 1,
			Internal: &domain.ServiceInternal{ClusterName: "c"}}
		Services.Put(tx, sv)
		id = newID()
		putTask(tx, &domain.Task{TaskARN: s.part.TaskARN("c", id), LastStatus: domain.StatusRunning, DesiredStatus: domain.StatusRunning,
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

// waitPending waits until n Updates are queued for the apply loop.
func waitPending(t testing.TB, st *state.Engine, n int) {
	t.Helper()
	testutil.EventuallyTrue(t, 10*time.Second, time.Millisecond, fmt.Sprintf("%d queued Updates", n), func() bool { return st.Pending() == n })
}
