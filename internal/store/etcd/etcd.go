// Package etcd is the store.Backend on an etcd cluster, through etcd's
// official client (go.etcd.io/etcd/client/v3).
//
// Mapping of the store model onto etcd:
//
//   - Keys live under a prefix (Options.Prefix, default "/holdfast/"): store
//     key "tasks/x" is etcd key "/holdfast/tasks/x". Several installations
//     can share one etcd cluster under different prefixes.
//   - Revisions are etcd's own: KV.ModRev is the key's ModRevision, a Txn
//     returns the revision of its response header. They are global to the
//     cluster, so they increase but skip whatever other clients wrote.
//   - Op.Compare and store.Check are etcd compares on ModRevision (0: the
//     key does not exist); all of a Txn's compares and writes are one etcd
//     Txn, so either all writes apply at one revision or none does.
//   - Durability is etcd's: a Txn is acknowledged once its raft entry is
//     fsynced by a quorum of members and applied.
//   - Watch is an etcd watch from afterRev+1, with the leader required, so
//     that a watcher on a member cut off from its quorum is closed instead
//     of silently falling behind. Compaction is etcd's: a revision older
//     than the cluster's compaction point gives store.ErrCompacted.
//   - Range and Scan page through the prefix (Options.PageSize keys per
//     request) at the revision of the first page, so a large store is read
//     as one consistent snapshot without one huge response.
//   - A Txn is bounded by the server's --max-txn-ops and --max-request-bytes.
//     Open discovers the first (read-only probes, nothing is written);
//     the second cannot be probed without writing, so Options.MaxTxnBytes
//     must not exceed it. Limits reports both; a Txn beyond them fails with
//     store.ErrInvalid before it is sent.
//   - Concurrent Txns are independent RPCs on one gRPC connection: they are
//     pipelined, and etcd batches their raft entries and fsyncs.
//   - Every request requires a leader (clientv3.WithRequireLeader): a member
//     cut off from its peers refuses it at once instead of holding it until
//     a timeout, and the client moves on to another member. Reads are
//     linearizable: a cut-off member never serves stale data.
//
// With Options.Exclusive, Open takes the installation's owner lock: the etcd
// key <prefix without its trailing slash>.lock (outside the store's keys,
// so that it never shows in a Range, a Watch or a backup), bound to a lease
// that the client keeps alive. A second
// exclusive Open waits (Options.LockWait) and then fails. Every Txn is then
// fenced by the lock: it applies only while the lock key is the one this
// Store created. If the lease is lost (the process was cut off from etcd for
// longer than its TTL), the Store fails: every call returns ErrLockLost, as
// a bbolt Store does after a failed fsync, and the process must reopen.
//
// A Txn whose context ends while its request is in flight may or may not
// have been applied: it returns an error wrapping ErrUnknownOutcome, never
// the context's error (which the Backend contract reserves for "not
// applied").
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/holdfast/holdfast/internal/store"
)

// Defaults of Options.
const (
	DefaultPrefix         = "/holdfast/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// DefaultMaxTxnOps is the most ops Open asks the server to accept per
	// Txn; Open settles for the server's --max-txn-ops if that is lower
	// (etcd's default is 128).
	DefaultMaxTxnOps = 10_000
	// DefaultMaxTxnBytes fits etcd's default --max-request-bytes (1.5 MiB)
	// with room for the request's framing.
	DefaultMaxTxnBytes = 1 << 20
	DefaultPageSize    = 1000
	DefaultWatchBuffer = 10_000
	DefaultLockTTL     = 5 * time.Second
)

// LockKey is the etcd key of the owner lock of a store with this prefix
// (Options.Exclusive).
func LockKey(prefix string) string { return strings.TrimSuffix(prefix, "/") + ".lock" }

var (
	// ErrUnknownOutcome is wrapped by the error of a Txn that was sent but
	// whose answer was not received (its context ended, the connection
	// broke, the server timed out): it may or may not have been applied.
	ErrUnknownOutcome = errors.New("store/etcd: the Txn's outcome is unknown")
	// ErrLockLost is wrapped by every error of an exclusive Store whose
	// owner lock was lost or taken over; reopen it.
	ErrLockLost = errors.New("store/etcd: the owner lock was lost; reopen the store")
	// ErrLocked is returned by an exclusive Open while another process
	// holds the owner lock.
	ErrLocked = errors.New("store/etcd: the store is in use by another holdfast (owner lock held)")
)

// Options configures Open.
type Options struct {
	// Endpoints are the client URLs of the cluster's members
	// (http://host:2379 or https://...). The client balances over them and
	// fails over when one is down.
	Endpoints []string
	// Prefix is prepended to every key; default DefaultPrefix. It must not
	// be empty.
	Prefix string
	// TLS configures https endpoints (CA, client certificate); nil for
	// plain http.
	TLS *tls.Config

	DialTimeout    time.Duration // reaching the cluster at Open; default DefaultDialTimeout
	RequestTimeout time.Duration // each call; default DefaultRequestTimeout

	MaxTxnOps   int // ceiling of the probed ops limit; default DefaultMaxTxnOps
	MaxTxnBytes int // bytes per Txn (keys + values); default DefaultMaxTxnBytes
	PageSize    int // keys per page of Range and Scan; default DefaultPageSize
	// WatchBuffer is the number of events a watcher holds for a reader
	// that does not keep up before its channel is closed; default
	// DefaultWatchBuffer.
	WatchBuffer int

	// Exclusive takes the owner lock (see the package doc).
	Exclusive bool
	// LockTTL is the owner lock's lease TTL: how long a holder that died
	// (kill -9) keeps others out, and how long a holder cut off from etcd
	// keeps the lock. Default DefaultLockTTL; etcd rounds it up to whole
	// seconds and to its own minimum.
	LockTTL time.Duration
	// LockWait bounds the wait for a held owner lock at Open; default twice
	// LockTTL (long enough for the lease of a killed holder to expire).
	LockWait time.Duration

	// Logger receives open/close messages and lock loss. Nil discards.
	Logger *slog.Logger

	dialOptions []grpc.DialOption // tests: interceptors
}

// Store is a store.Backend on etcd. Create it with Open.
type Store struct {
	cli    *clientv3.Client
	prefix string
	opts   Options
	log    *slog.Logger
	limits store.Limits

	rev atomic.Int64 // highest revision seen in any response

	// closeMu guards closed and the registration of in-flight calls: a
	// call holds it for reading while it registers with inflight; Close
	// takes it for writing, then waits for inflight.
	closeMu  sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
	// done is closed by Close (after in-flight calls) and when the owner
	// lock is lost: watchers stop.
	done     chan struct{}
	doneOnce sync.Once
	watchers sync.WaitGroup

	// Owner lock (Exclusive only).
	session *concurrency.Session
	lockRev int64                   // the lock key's ModRevision (and CreateRevision)
	failed  atomic.Pointer[failure] // set once the lock is lost
	monitor chan struct{}           // closed when the lock monitor exits
}

type failure struct{ err error }

var (
	_ store.Backend = (*Store)(nil)
	_ store.Scanner = (*Store)(nil)
	_ store.Limiter = (*Store)(nil)
)

// Open connects to the cluster, checks that it answers, discovers its Txn
// limit and, with Exclusive, takes the owner lock. ctx bounds Open only.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store/etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	if opts.MaxTxnBytes <= 0 {
		opts.MaxTxnBytes = DefaultMaxTxnBytes
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = DefaultWatchBuffer
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 2 * opts.LockTTL
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         opts.TLS,
		Logger:      zap.NewNop(),
		// Room for a Txn of MaxTxnBytes plus its framing; a larger one is
		// refused before it is sent (Txn checks the limits).
		MaxCallSendMsgSize: opts.MaxTxnBytes + 1<<20,
		// Keepalives notice a dead connection (a member cut off) well
		// before the request timeout.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// A client built on a cancelled context would fail later calls
		// oddly; the Store has its own lifetime.
		Context:     context.WithoutCancel(ctx),
		DialOptions: opts.dialOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("store/etcd: connect to %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	s := &Store{
		cli:    cli,
		prefix: opts.Prefix,
		opts:   opts,
		log:    log,
		done:   make(chan struct{}),
	}
	if err := s.open(ctx); err != nil {
		s.stop()
		_ = cli.Close()
		return nil, err
	}
	log.Debug("store opened", "endpoints", opts.Endpoints, "prefix", opts.Prefix, "rev", s.Rev(),
		"max_txn_ops", s.limits.MaxOps, "max_txn_bytes", s.limits.MaxBytes, "exclusive", opts.Exclusive)
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	// Reach the cluster: a linearizable read needs a leader and a quorum.
	pctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	resp, err := s.cli.Get(pctx, s.prefix, clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return fmt.Errorf("store/etcd: reach %s: %w", strings.Join(s.opts.Endpoints, ","), err)
	}
	s.observe(resp.Header)
	ops, err := s.probeMaxOps(ctx)
	if err != nil {
		return err
	}
	if ops < 2 {
		return fmt.Errorf("store/etcd: the server accepts only %d ops per Txn; raise its --max-txn-ops", ops)
	}
	if ops < 1000 {
		s.log.Warn("etcd accepts few ops per Txn; large control-plane changes may not fit (recommended: etcd --max-txn-ops 10000)", "max_txn_ops", ops)
	}
	if s.opts.Exclusive {
		ops-- // the lock's fence takes one
		if err := s.lock(ctx); err != nil {
			return err
		}
	}
	s.limits = store.Limits{MaxOps: ops, MaxBytes: s.opts.MaxTxnBytes}
	return nil
}

// probeMaxOps finds the largest number of ops per Txn the server accepts,
// up to Options.MaxTxnOps, with read-only Txns of n compares (the server
// counts compares against --max-txn-ops too; a read-only Txn writes
// nothing and takes no revision).
func (s *Store) probeMaxOps(ctx context.Context) (int, error) {
	key := LockKey(s.prefix)
	try := func(n int) (bool, error) {
		cmps := make([]clientv3.Cmp, n)
		for i := range cmps {
			cmps[i] = clientv3.Compare(clientv3.Version(key), ">", -1)
		}
		pctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		defer cancel()
		resp, err := s.cli.Txn(pctx).If(cmps...).Commit()
		if errors.Is(err, rpctypes.ErrTooManyOps) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("store/etcd: probe the Txn size limit: %w", err)
		}
		s.observe(resp.Header)
		return true, nil
	}
	hi := s.opts.MaxTxnOps
	ok, err := try(hi)
	if err != nil || ok {
		return hi, err
	}
	lo := 0 // largest known good
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		ok, err := try(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// Limits implements store.Limiter.
func (s *Store) Limits() store.Limits { return s.limits }

// Prefix is the etcd key prefix of the store's keys.
func (s *Store) Prefix() string { return s.prefix }

// Client is the etcd client (for tests and for leader election on the same
// connection). Closing the Store closes it.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Rev implements store.Backend.
func (s *Store) Rev() int64 { return s.rev.Load() }

// observe raises Rev to a response's revision.
func (s *Store) observe(h interface{ GetRevision() int64 }) {
	if h == nil {
		return
	}
	r := h.GetRevision()
	for {
		cur := s.rev.Load()
		if r <= cur || s.rev.CompareAndSwap(cur, r) {
			return
		}
	}
}

// begin registers a call; the caller must call end when begin succeeded.
func (s *Store) begin() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	s.inflight.Add(1)
	return nil
}

func (s *Store) end() { s.inflight.Done() }

// readErr maps an error of a read.
func (s *Store) readErr(ctx context.Context, err error) error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("%w: %v", store.ErrCompacted, err)
	}
	return fmt.Errorf("store/etcd: %w", err)
}

func (s *Store) key(k string) string { return s.prefix + k }

func (s *Store) kv(kv *mvccpb.KeyValue) store.KV {
	v := kv.Value
	if v == nil {
		v = []byte{}
	}
	return store.KV{Key: string(kv.Key[len(s.prefix):]), Value: v, ModRev: kv.ModRevision}
}

// Get implements store.Backend.
func (s *Store) Get(ctx context.Context, key string) (store.KV, bool, error) {
	if err := ctx.Err(); err != nil {
		return store.KV{}, false, err
	}
	if err := s.begin(); err != nil {
		return store.KV{}, false, err
	}
	defer s.end()
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.opts.RequestTimeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key(key))
	if err != nil {
		return store.KV{}, false, s.readErr(ctx, err)
	}
	s.observe(resp.Header)
	if len(resp.Kvs) == 0 {
		return store.KV{}, false, nil
	}
	return s.kv(resp.Kvs[0]), true, nil
}

// Range implements store.Backend. Its pages are read at one revision; if
// etcd compacts that revision away before the last page is read, Range
// starts over (a few times) at a newer one.
func (s *Store) Range(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	for attempt := 0; ; attempt++ {
		var out []store.KV
		rev, err := s.Scan(ctx, prefix, func(kv store.KV) error {
			out = append(out, kv)
			return nil
		})
		if errors.Is(err, store.ErrCompacted) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return out, rev, nil
	}
}

// Scan implements store.Scanner: pages of Options.PageSize keys, all read
// at the revision of the first page. fn may keep kv.Value. If etcd compacts
// that revision away before the last page (a very large prefix read while
// compaction runs), Scan fails with store.ErrCompacted after fn saw part of
// the keys: scan again.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(kv store.KV) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()
	from := s.key(prefix)
	end := clientv3.GetPrefixRangeEnd(from)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(s.opts.PageSize))}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.opts.RequestTimeout)
		resp, err := s.cli.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return 0, s.readErr(ctx, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
			s.observe(resp.Header)
		}
		for _, kv := range resp.Kvs {
			if err := fn(s.kv(kv)); err != nil {
				return 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Txn implements store.Backend.
func (s *Store) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if err := store.CheckOps(ops); err != nil {
		return 0, err
	}
	if len(ops) > s.limits.MaxOps {
		return 0, fmt.Errorf("%w: %d ops, the limit is %d (etcd --max-txn-ops)", store.ErrInvalid, len(ops), s.limits.MaxOps)
	}
	if n := store.TxnBytes(ops); n > s.limits.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", store.ErrInvalid, n, s.limits.MaxBytes)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.begin(); err != nil {
		return 0, err
	}
	defer s.end()

	var cmps []clientv3.Cmp
	writes := make([]clientv3.Op, 0, len(ops))
	for _, op := range ops {
		k := s.key(op.Key)
		if op.Compare != nil {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", *op.Compare))
		}
		switch {
		case op.Check:
		case op.Delete:
			writes = append(writes, clientv3.OpDelete(k))
		default:
			v := op.Value
			if v == nil {
				v = []byte{}
			}
			writes = append(writes, clientv3.OpPut(k, string(v)))
		}
	}
	var cmp []clientv3.Cmp
	var then []clientv3.Op
	if s.session == nil {
		cmp, then = cmps, writes
	} else {
		// The owner lock's fence wraps the caller's Txn, so that a lost
		// lock is told apart from the caller's own conflict.
		cmp = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(LockKey(s.prefix)), "=", s.lockRev)}
		then = []clientv3.Op{clientv3.OpTxn(cmps, writes, nil)}
	}
	resp, err := s.commit(ctx, cmp, then)
	if err != nil {
		return 0, err
	}
	s.observe(resp.Header)
	succeeded := resp.Succeeded
	if s.session != nil {
		if !succeeded {
			s.fail(fmt.Errorf("%w: the lock key changed (another holdfast took it)", ErrLockLost))
			return 0, s.failed.Load().err
		}
		succeeded = resp.Responses[0].GetResponseTxn().GetSucceeded()
	}
	if !succeeded {
		return 0, store.ErrConflict
	}
	return resp.Header.Revision, nil
}

// commit sends one etcd Txn. The request requires a leader: a member that
// has none (cut off from its peers) refuses it at once, before it reaches
// raft, instead of holding it until a timeout; such a refusal applied
// nothing, so commit sends it again (the client balances over the
// endpoints) until Options.RequestTimeout.
func (s *Store) commit(ctx context.Context, cmp []clientv3.Cmp, then []clientv3.Op) (*clientv3.TxnResponse, error) {
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.opts.RequestTimeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		resp, err := s.cli.Txn(rctx).If(cmp...).Then(then...).Commit()
		if err == nil {
			return resp, nil
		}
		if !errors.Is(err, rpctypes.ErrNoLeader) {
			return nil, s.txnErr(ctx, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
			backoff = min(2*backoff, 200*time.Millisecond)
			continue
		case <-rctx.Done():
			t.Stop()
		}
		// Every attempt was refused: nothing was applied.
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("store/etcd: no etcd member with a leader answered within %v: %w", s.opts.RequestTimeout, err)
	}
}

// txnErr maps the error of a sent Txn.
func (s *Store) txnErr(ctx context.Context, err error) error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge),
		errors.Is(err, rpctypes.ErrDuplicateKey), status.Code(err) == codes.ResourceExhausted:
		// Refused before it was proposed: nothing was applied.
		return fmt.Errorf("%w: etcd refused the Txn: %v", store.ErrInvalid, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: the context ended while the Txn was in flight (%v)", ErrUnknownOutcome, ctx.Err())
	}
	return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
}

// Close implements store.Backend. It waits for calls in flight (each
// bounded by Options.RequestTimeout), closes watchers, releases the owner
// lock and closes the client.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.inflight.Wait()
	s.stop()
	s.watchers.Wait()
	if s.session != nil {
		// Delete the lock key at once rather than waiting for its TTL, but
		// only if it is still ours.
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
		_, _ = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(LockKey(s.prefix)), "=", s.lockRev)).
			Then(clientv3.OpDelete(LockKey(s.prefix))).Commit()
		_ = s.session.Close()
		cancel()
		<-s.monitor
	}
	err := s.cli.Close()
	s.log.Debug("store closed", "prefix", s.prefix, "rev", s.Rev())
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// stop ends watchers (Close, or the lock was lost).
func (s *Store) stop() { s.doneOnce.Do(func() { close(s.done) }) }

// fail puts an exclusive Store in the failed state.
func (s *Store) fail(err error) {
	if s.failed.CompareAndSwap(nil, &failure{err: err}) {
		s.log.Error("etcd store failed; refusing further work until reopened", "prefix", s.prefix, "err", err)
		s.stop()
	}
}

// lock takes the owner lock, waiting up to LockWait for a holder to go.
func (s *Store) lock(ctx context.Context) error {
	ttl := max(1, int((s.opts.LockTTL+time.Second-1)/time.Second))
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf("store/etcd: create the owner lock's lease: %w", err)
	}
	key := LockKey(s.prefix)
	host, _ := os.Hostname()
	owner := fmt.Sprintf("holdfast pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	deadline := time.Now().Add(s.opts.LockWait)
	for {
		tctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		resp, err := s.cli.Txn(tctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, owner, clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(key)).Commit()
		cancel()
		if err != nil {
			_ = sess.Close()
			return fmt.Errorf("store/etcd: take the owner lock: %w", err)
		}
		s.observe(resp.Header)
		if resp.Succeeded {
			s.session = sess
			s.lockRev = resp.Header.Revision
			s.monitor = make(chan struct{})
			go s.watchLock()
			return nil
		}
		holder, holderRev := "", resp.Header.Revision
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			holder, holderRev = string(kvs[0].Value), kvs[0].ModRevision
		}
		left := time.Until(deadline)
		if left <= 0 {
			_ = sess.Close()
			return fmt.Errorf("%w: %s (key %s)", ErrLocked, holder, key)
		}
		s.log.Info("waiting for the owner lock", "holder", holder, "key", key)
		// Wait for the key's deletion (the holder closed, or its lease
		// expired), or the deadline.
		wctx, wcancel := context.WithTimeout(ctx, left)
		for wr := range s.cli.Watch(wctx, key, clientv3.WithRev(holderRev+1), clientv3.WithFilterPut()) {
			if len(wr.Events) > 0 || wr.Err() != nil {
				break
			}
		}
		wcancel()
		if err := ctx.Err(); err != nil {
			_ = sess.Close()
			return err
		}
	}
}

// watchLock fails the Store when the lock's lease ends: the client could
// not keep it alive for its TTL (cut off from the cluster) or it was
// revoked. A lock key changed behind the lease's back is caught by the next
// Txn's fence.
func (s *Store) watchLock() {
	defer close(s.monitor)
	select {
	case <-s.done:
	case <-s.session.Done():
		select {
		case <-s.done: // Close ended the session
		default:
			s.fail(fmt.Errorf("%w: its lease expired or could not be kept alive", ErrLockLost))
		}
	}
}
