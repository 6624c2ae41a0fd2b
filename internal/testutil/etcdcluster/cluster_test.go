package etcdcluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/etcd"
	"github.com/holdfast/holdfast/internal/store/storetest"
	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
	"github.com/holdfast/holdfast/internal/testutil/netns"
)

func TestMain(m *testing.M) {
	code := m.Run()
	etcdcluster.RemoveMemberBinary()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const wait = 60 * time.Second // bound of every eventually-style wait

var prefixes atomic.Int64

func openStore(t testing.TB, endpoints []string, opts etcd.Options) *etcd.Store {
	t.Helper()
	opts.Endpoints = endpoints
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("/cluster-test/%d/", prefixes.Add(1))
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 3 * time.Second
	}
	s, err := etcd.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The store conformance suite against three member processes (loopback:
// no root needed), through a client of all three.
func TestConformanceOnThreeMembers(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	c := etcdcluster.Start(t, etcdcluster.Config{})
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) store.Backend { return openStore(t, c.Endpoints(), etcd.Options{}) },
		Reopen: func(t *testing.T, b store.Backend) store.Backend {
			s := b.(*etcd.Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openStore(t, c.Endpoints(), etcd.Options{Prefix: s.Prefix()})
		},
		Bump: func(t *testing.T, b store.Backend) {
			if _, err := b.(*etcd.Store).Client().Put(t.Context(), "/elsewhere", "x"); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// writers keeps Txns going from several goroutines, each on keys of its
// own, and records what was acknowledged.
type writers struct {
	s       store.Backend
	acked   sync.Map // key -> rev
	n       atomic.Int64
	unknown atomic.Int64 // Txns that failed: applied or not, no one knows
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func startWriters(s store.Backend, goroutines int) *writers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writers{s: s, cancel: cancel}
	for g := range goroutines {
		w.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w/%02d/%06d", g, i)
				rev, err := s.Txn(ctx, []store.Op{store.Put(key, []byte(key))})
				if err != nil {
					w.unknown.Add(1)
					// A member is down or cut off: try again soon, on a
					// new key (the failed one may or may not exist).
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
					continue
				}
				w.acked.Store(key, rev)
				w.n.Add(1)
			}
		})
	}
	return w
}

// progress waits until n more Txns were acknowledged.
func (w *writers) progress(t *testing.T, n int64, what string) {
	t.Helper()
	target := w.n.Load() + n
	testutil.Eventually(t, wait, 20*time.Millisecond, what, func() (bool, string) {
		return w.n.Load() >= target, fmt.Sprintf("%d acknowledged, want %d (%d failed)", w.n.Load(), target, w.unknown.Load())
	})
}

func (w *writers) stop() {
	w.cancel()
	w.wg.Wait()
}

// verify checks that every acknowledged write is in the store, with the
// revision it was acknowledged with, read through a client of endpoints.
func (w *writers) verify(t *testing.T, endpoints []string, prefix string) {
	t.Helper()
	s := openStore(t, endpoints, etcd.Options{Prefix: prefix, RequestTimeout: 30 * time.Second})
	kvs, _, err := s.Range(t.Context(), "w/")
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]int64, len(kvs))
	for _, kv := range kvs {
		have[kv.Key] = kv.ModRev
	}
	lost := 0
	w.acked.Range(func(k, v any) bool {
		if have[k.(string)] != v.(int64) {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged write %s@%d: found at %d", k, v, have[k.(string)])
			}
		}
		return true
	})
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, w.n.Load())
	}
	t.Logf("%d acknowledged writes all present (%d Txns failed with an unknown outcome, %d keys in all)", w.n.Load(), w.unknown.Load(), len(kvs))
}

// caughtUp waits until member m serves (serializable, from its own copy)
// every acknowledged write.
func (w *writers) caughtUp(t *testing.T, m *etcdcluster.Member, prefix string) {
	t.Helper()
	cli := m.Client(t)
	want := w.n.Load()
	testutil.Eventually(t, wait, 100*time.Millisecond, m.Name+" to catch up", func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, prefix+"w/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		if err != nil {
			return false, err.Error()
		}
		return resp.Count >= want, fmt.Sprintf("%d keys, %d acknowledged", resp.Count, want)
	})
}

// kill -9 of the leader while writes continue, then of every member at
// once: no acknowledged write is lost, and the restarted members catch up.
func TestKill9NoAcknowledgedWriteLost(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	c := etcdcluster.Start(t, etcdcluster.Config{Network: netns.New(t)})
	s := openStore(t, c.Endpoints(), etcd.Options{})
	w := startWriters(s, 8)
	defer w.stop()
	w.progress(t, 200, "writes before the kill")

	leader := c.Leader(t)
	t.Logf("kill -9 of the leader %s", leader.Name)
	leader.Kill9(t)
	w.progress(t, 200, "writes with two members left")
	leader.Start(t)
	c.WaitHealthy(t, wait)
	w.caughtUp(t, leader, s.Prefix())
	w.progress(t, 100, "writes after the restart")

	t.Log("kill -9 of every member at once")
	for _, m := range c.Members {
		m.Kill9(t)
	}
	for _, m := range c.Members {
		m.Start(t)
	}
	c.WaitHealthy(t, wait)
	w.progress(t, 100, "writes after the power cut")
	w.stop()
	w.verify(t, c.Endpoints(), s.Prefix())
	for _, m := range c.Members {
		w.caughtUp(t, m, s.Prefix())
	}
}

// A member cut off from its peers (but still reachable by clients) stops
// serving linearizable reads and writes, closes its watches, and catches
// up once healed; the majority keeps going. Then the same with the leader.
func TestPartitionedMember(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	c := etcdcluster.Start(t, etcdcluster.Config{Network: netns.New(t)})
	all := openStore(t, c.Endpoints(), etcd.Options{})
	w := startWriters(all, 4)
	defer w.stop()
	w.progress(t, 100, "writes before the partition")

	leader := c.Leader(t)
	var follower *etcdcluster.Member
	for _, m := range c.Members {
		if m != leader {
			follower = m
			break
		}
	}
	pinned := openStore(t, []string{follower.ClientURL}, etcd.Options{Prefix: all.Prefix(), RequestTimeout: 2 * time.Second})
	watch, err := pinned.Watch(t.Context(), "w/", pinned.Rev())
	if err != nil {
		t.Fatal(err)
	}
	var others []*netns.Node
	for _, m := range c.Others(follower) {
		others = append(others, m.Node)
	}
	t.Logf("partition follower %s from %s and %s", follower.Name, others[0].Name, others[1].Name)
	if err := follower.Node.Block(others...); err != nil {
		t.Fatal(err)
	}
	w.progress(t, 100, "writes on the majority side")
	// The watch on the cut-off member ends (it requires a leader)...
	for range watch {
	}
	// ...and it takes no writes and serves no linearizable reads.
	if _, err := pinned.Txn(t.Context(), []store.Op{store.Put("minority", []byte("x"))}); err == nil {
		t.Fatal("a Txn through the partitioned member was acknowledged")
	}
	if _, _, err := pinned.Get(t.Context(), "w/00/000000"); err == nil {
		t.Fatal("a linearizable read through the partitioned member succeeded")
	}
	if err := follower.Node.Unblock(others...); err != nil {
		t.Fatal(err)
	}
	w.caughtUp(t, follower, all.Prefix())
	if _, _, err := pinned.Get(t.Context(), "w/00/000000"); err != nil {
		t.Fatalf("read through the healed member: %v", err)
	}

	leader = c.Leader(t)
	var rest []*netns.Node
	for _, m := range c.Others(leader) {
		rest = append(rest, m.Node)
	}
	t.Logf("partition the leader %s", leader.Name)
	if err := leader.Node.Block(rest...); err != nil {
		t.Fatal(err)
	}
	newLeader := c.Leader(t, c.Others(leader)...)
	t.Logf("new leader %s", newLeader.Name)
	w.progress(t, 100, "writes after the leader's partition")
	if err := leader.Node.Unblock(rest...); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t, wait)
	w.progress(t, 50, "writes after healing")
	w.stop()
	w.verify(t, c.Endpoints(), all.Prefix())
	w.caughtUp(t, leader, all.Prefix())

	// Cut off entirely (link down), a member reaches no one.
	m := c.Members[0]
	m.Disconnect(t)
	if _, err := m.Status(t.Context()); err == nil {
		t.Fatal("Status of a disconnected member answered")
	}
	m.Reconnect(t)
	c.WaitHealthy(t, wait)
}

// An exclusive Store (a holdfast's owner lock) on a member that is cut off
// loses its lock once its lease expires, and another takes it on the
// majority side; the deposed one cannot write.
func TestOwnerLockAcrossPartition(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	c := etcdcluster.Start(t, etcdcluster.Config{Network: netns.New(t)})
	leader := c.Leader(t)
	victim := c.Others(leader)[0]
	prefix := fmt.Sprintf("/cluster-test/lock-%d/", prefixes.Add(1))
	old := openStore(t, []string{victim.ClientURL}, etcd.Options{Prefix: prefix, Exclusive: true, LockTTL: 2 * time.Second})
	if _, err := old.Txn(t.Context(), []store.Op{store.Put("k", []byte("old"))}); err != nil {
		t.Fatal(err)
	}
	var peers []*netns.Node
	for _, m := range c.Others(victim) {
		peers = append(peers, m.Node)
	}
	if err := victim.Node.Block(peers...); err != nil {
		t.Fatal(err)
	}
	// The new holder waits for the old lease to expire, then takes over.
	next := openStore(t, []string{leader.ClientURL}, etcd.Options{Prefix: prefix, Exclusive: true, LockWait: wait})
	if _, err := next.Txn(t.Context(), []store.Op{store.Put("k", []byte("new"))}); err != nil {
		t.Fatal(err)
	}
	if err := victim.Node.Unblock(peers...); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy(t, wait)
	_, err := old.Txn(t.Context(), []store.Op{store.Put("k", []byte("stale"))})
	if !errors.Is(err, etcd.ErrLockLost) {
		t.Fatalf("Txn of the deposed holder after healing: %v, want ErrLockLost", err)
	}
	kv, _, err := next.Get(t.Context(), "k")
	if err != nil || string(kv.Value) != "new" {
		t.Fatalf("k = %q, %v; want new", kv.Value, err)
	}
}
