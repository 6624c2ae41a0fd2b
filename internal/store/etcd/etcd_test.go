package etcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/storetest"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

// server is one embedded etcd shared by the package's tests; each test
// works under a prefix of its own.
var server *etcdcluster.Embedded

// serverMaxTxnOps is below DefaultMaxTxnOps, so that every Open probes.
const serverMaxTxnOps = 512

func TestMain(m *testing.M) {
	os.Exit(etcdcluster.RunWithEmbedded(m.Run, etcdcluster.EmbeddedConfig{MaxTxnOps: serverMaxTxnOps, MaxRequestBytes: 2 << 20}, &server, true))
}

var prefixes atomic.Int64

func newPrefix(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/test/%s/%d/", name, prefixes.Add(1))
}

func open(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Endpoints == nil {
		opts.Endpoints = []string{server.Endpoint()}
	}
	if opts.Prefix == "" {
		opts.Prefix = newPrefix(t)
	}
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawClient is a client of its own, for writes behind the Store's back.
func rawClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{server.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) store.Backend { return open(t, Options{}) },
		Reopen: func(t *testing.T, b store.Backend) store.Backend {
			s := b.(*Store)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, Options{Prefix: s.Prefix()})
		},
		// Another client writes outside the prefix: etcd's revision moves.
		Bump: func(t *testing.T, b store.Backend) {
			if _, err := b.(*Store).Client().Put(t.Context(), "/elsewhere/"+t.Name(), "x"); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// The conformance suite again, with the owner lock: every Txn is wrapped
// in the lock's fence.
func TestConformanceExclusive(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) store.Backend { return open(t, Options{Exclusive: true}) },
		Reopen: func(t *testing.T, b store.Backend) store.Backend {
			s := b.(*Store)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, Options{Prefix: s.Prefix(), Exclusive: true})
		},
	})
}

func TestPrefixIsolation(t *testing.T) {
	ctx := t.Context()
	a := open(t, Options{Prefix: newPrefix(t) + "a/"})
	b := open(t, Options{Prefix: strings.TrimSuffix(a.Prefix(), "a/") + "ab/"})
	if _, err := a.Txn(ctx, []store.Op{store.Put("k", []byte("in a"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Txn(ctx, []store.Op{store.Put("k", []byte("in ab"))}); err != nil {
		t.Fatal(err)
	}
	kvs, _, err := a.Range(ctx, "")
	if err != nil || len(kvs) != 1 || string(kvs[0].Value) != "in a" || kvs[0].Key != "k" {
		t.Fatalf("Range of a = %v, %v", kvs, err)
	}
	raw, err := a.Client().Get(ctx, a.Prefix()+"k")
	if err != nil || len(raw.Kvs) != 1 || string(raw.Kvs[0].Value) != "in a" {
		t.Fatalf("etcd key %sk: %v %v", a.Prefix(), raw, err)
	}
}

// Range and Scan page through a prefix at one revision: writes made while
// the pages are read do not show.
func TestScanPagesAtOneRevision(t *testing.T) {
	s := open(t, Options{PageSize: 7})
	ctx := t.Context()
	const n = 100
	for i := 0; i < n; i += 10 {
		ops := make([]store.Op, 10)
		for j := range ops {
			ops[j] = store.Put(fmt.Sprintf("k/%03d", i+j), []byte("v1"))
		}
		if _, err := s.Txn(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	rev, err := s.Scan(ctx, "k/", func(kv store.KV) error {
		if want := fmt.Sprintf("k/%03d", seen); kv.Key != want || string(kv.Value) != "v1" {
			return fmt.Errorf("key %d = %q=%q, want %q=v1", seen, kv.Key, kv.Value, want)
		}
		seen++
		if seen%20 == 0 {
			// Rewrite everything and add a key mid-scan.
			ops := []store.Op{store.Put("k/050", []byte("v2")), store.Put("k/099", []byte("v2")), store.Put("k/0995", []byte("new"))}
			if _, err := s.Txn(ctx, ops); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("scanned %d keys, want %d", seen, n)
	}
	if rev >= s.Rev() {
		t.Fatalf("scan revision %d, want the one before the mid-scan writes (Rev() %d)", rev, s.Rev())
	}
}

func TestWatchCompacted(t *testing.T) {
	s := open(t, Options{})
	ctx := t.Context()
	var revs []int64
	for i := range 5 {
		rev, err := s.Txn(ctx, []store.Op{store.Put(fmt.Sprint("k", i), []byte("v"))})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	if _, err := s.Client().Compact(ctx, revs[3]); err != nil {
		t.Fatal(err)
	}
	for _, after := range []int64{0, revs[0], revs[2] - 1} {
		if _, err := s.Watch(ctx, "", after); !errors.Is(err, store.ErrCompacted) {
			t.Fatalf("Watch(%d) after compaction at %d: err = %v, want ErrCompacted", after, revs[3], err)
		}
	}
	// Compaction at revs[3] keeps revs[3]'s state: a watch from there on
	// works and sees the next write.
	ch, err := s.Watch(ctx, "", revs[3])
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.KV.Key != "k4" || ev.KV.ModRev != revs[4] {
		t.Fatalf("first event = %v, want k4@%d", ev, revs[4])
	}
	// A watch that is running when its history is compacted away... is
	// never affected: etcd keeps what a live watcher has not yet read.
}

// The server's --max-txn-ops is found by probing, and a Txn too big for
// the server's --max-request-bytes fails as ErrInvalid at once rather than
// hang, even when the client's own limit is higher.
func TestServerLimits(t *testing.T) {
	s := open(t, Options{MaxTxnBytes: 4 << 20})
	if got := s.Limits(); got.MaxOps != serverMaxTxnOps || got.MaxBytes != 4<<20 {
		t.Fatalf("Limits() = %+v, want MaxOps %d (probed) and MaxBytes %d", got, serverMaxTxnOps, 4<<20)
	}
	ex := open(t, Options{Exclusive: true})
	if got := ex.Limits().MaxOps; got != serverMaxTxnOps-1 {
		t.Fatalf("exclusive Limits().MaxOps = %d, want %d (one op for the lock's fence)", got, serverMaxTxnOps-1)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	big := make([]byte, 3<<20) // over the server's 2 MiB
	_, err := s.Txn(ctx, []store.Op{store.Put("big", big)})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Txn of 3 MiB to a server with a 2 MiB limit: err = %v, want ErrInvalid", err)
	}
	if _, ok, err := s.Get(ctx, "big"); ok || err != nil {
		t.Fatalf("Get(big) = %v, %v after a refused Txn", ok, err)
	}
}

// Concurrent Txns are pipelined over the connection, not serialized by the
// Store: many are in flight at once.
func TestTxnsPipelined(t *testing.T) {
	var inflight, peak atomic.Int64
	s, err := Open(t.Context(), Options{
		Endpoints: []string{server.Endpoint()},
		Prefix:    newPrefix(t),
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				if strings.HasSuffix(method, "/Txn") {
					n := inflight.Add(1)
					defer inflight.Add(-1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
				}
				return invoker(ctx, method, req, reply, cc, opts...)
			})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peak.Store(0) // the probes at Open
	const clients, each = 32, 20
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Txn(t.Context(), []store.Op{store.Put(fmt.Sprintf("c%d/%d", c, i), []byte("v"))}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p < 2 {
		t.Fatalf("at most %d Txn in flight at once from %d concurrent callers: the Store serializes them", p, clients)
	}
	t.Logf("peak Txns in flight: %d of %d callers", peak.Load(), clients)
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.Context(), Options{}); err == nil {
		t.Fatal("Open without endpoints succeeded")
	}
	// Nothing listens there: Open fails within its dial timeout.
	start := time.Now()
	_, err := Open(t.Context(), Options{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Open of an unreachable endpoint succeeded")
	}
	t.Logf("unreachable: %v after %v", err, time.Since(start).Round(time.Millisecond))
}

// The owner lock keeps a second exclusive Store out until the first
// closes; a Store whose lock was taken over cannot write any more.
func TestExclusiveLock(t *testing.T) {
	ctx := t.Context()
	prefix := newPrefix(t)
	a := open(t, Options{Prefix: prefix, Exclusive: true})
	if _, err := a.Txn(ctx, []store.Op{store.Put("x", []byte("a"))}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, Options{Endpoints: []string{server.Endpoint()}, Prefix: prefix, Exclusive: true, LockWait: 300 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second exclusive Open: err = %v, want ErrLocked naming the holder", err)
	}
	// A non-exclusive Store (a backup) may open alongside.
	ro := open(t, Options{Prefix: prefix})
	if kv, ok, err := ro.Get(ctx, "x"); !ok || err != nil || string(kv.Value) != "a" {
		t.Fatalf("Get through a second Store: %v %v %v", kv, ok, err)
	}

	// A waiting Open gets the lock as soon as the holder closes.
	got := make(chan *Store, 1)
	go func() {
		b, err := Open(ctx, Options{Endpoints: []string{server.Endpoint()}, Prefix: prefix, Exclusive: true, LockWait: time.Minute})
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if b == nil {
		t.FailNow()
	}
	defer b.Close()
	if _, err := b.Txn(ctx, []store.Op{store.Put("x", []byte("b"))}); err != nil {
		t.Fatal(err)
	}

	// Someone deletes the lock key behind b's back and a third Store takes
	// it: b's next Txn is fenced off, applies nothing, and b stays failed.
	if _, err := rawClient(t).Delete(ctx, LockKey(prefix)); err != nil {
		t.Fatal(err)
	}
	c := open(t, Options{Prefix: prefix, Exclusive: true})
	if _, err := b.Txn(ctx, []store.Op{store.Put("x", []byte("stale"))}); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Txn of a deposed owner: err = %v, want ErrLockLost", err)
	}
	if kv, _, _ := c.Get(ctx, "x"); string(kv.Value) != "b" {
		t.Fatalf("x = %q after a fenced Txn, want b", kv.Value)
	}
	if _, _, err := b.Get(ctx, "x"); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Get of a failed Store: err = %v, want ErrLockLost", err)
	}
}

// A lease that ends (revoked here; expired after a partition longer than
// its TTL in production) fails the Store at once, without waiting for a
// write.
func TestExclusiveLeaseLost(t *testing.T) {
	ctx := t.Context()
	s := open(t, Options{Exclusive: true})
	ch, err := s.Watch(ctx, "", s.Rev())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawClient(t).Revoke(ctx, s.session.Lease()); err != nil {
		t.Fatal(err)
	}
	for range ch {
	}
	if _, err := s.Txn(ctx, []store.Op{store.Put("x", []byte("1"))}); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Txn after the lease was revoked: err = %v, want ErrLockLost", err)
	}
	if kv, ok, _ := open(t, Options{Prefix: s.Prefix()}).Get(ctx, "x"); ok {
		t.Fatalf("x = %q written by a Store without its lock", kv.Value)
	}
}

// A compaction between two pages: Scan says so (its callback already saw
// part of the keys); Range starts over at a newer revision and returns a
// complete, consistent result.
func TestPagedReadAcrossCompaction(t *testing.T) {
	raw := rawClient(t)
	var ranges atomic.Int64
	var compactAt atomic.Int64 // compact before the Range call with this number
	s, err := Open(t.Context(), Options{
		Endpoints: []string{server.Endpoint()},
		Prefix:    newPrefix(t),
		PageSize:  5,
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				if strings.HasSuffix(method, "/Range") && ranges.Add(1) == compactAt.Load() {
					// A write, then a compaction up to it: the revision
					// the first page was read at is gone.
					resp, err := raw.Put(ctx, "/elsewhere/compaction", "x")
					if err == nil {
						_, err = raw.Compact(ctx, resp.Header.Revision)
					}
					if err != nil {
						return err
					}
				}
				return invoker(ctx, method, req, reply, cc, opts...)
			})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for i := range 12 {
		if _, err := s.Txn(ctx, []store.Op{store.Put(fmt.Sprintf("k/%02d", i), []byte("v"))}); err != nil {
			t.Fatal(err)
		}
	}

	ranges.Store(0)
	compactAt.Store(2) // the second page
	seen := 0
	_, err = s.Scan(ctx, "k/", func(store.KV) error { seen++; return nil })
	if !errors.Is(err, store.ErrCompacted) || seen != 5 {
		t.Fatalf("Scan across a compaction: err %v after %d keys, want ErrCompacted after the first page (5)", err, seen)
	}

	ranges.Store(0)
	compactAt.Store(2)
	kvs, rev, err := s.Range(ctx, "k/")
	if err != nil || len(kvs) != 12 {
		t.Fatalf("Range across a compaction = %d keys, %v; want all 12", len(kvs), err)
	}
	if rev <= 0 || rev > s.Rev() {
		t.Fatalf("Range revision %d (Rev() %d)", rev, s.Rev())
	}
	if n := ranges.Load(); n < 4 {
		t.Fatalf("Range made %d requests; it should have started over", n)
	}
}
