package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/store"
)

// Errors of the engine. Each is returned wrapped, with details.
var (
	// ErrClosed: the engine is closed (or closing).
	ErrClosed = errors.New("state: engine closed")
	// ErrFailed: a commit failed; memory may be ahead of the store, so the
	// engine refuses every later write until it is opened again.
	ErrFailed = errors.New("state: a commit failed")
	// ErrFenced: a commit's fence did not hold: another replica has taken
	// over (this one is no longer the leader). Nothing of the batch was
	// written; the engine refuses every later write.
	ErrFenced = errors.New("state: fenced out: this replica is no longer the leader")
	// ErrFollower: Update on an engine opened with Options.Follower.
	ErrFollower = errors.New("state: this engine follows another writer and does not write")
)

// Fence returns the compare-only ops (store.Check) that must hold for a
// commit to apply: typically the leader's election key at the revision at
// which this replica won. The engine calls it for every commit and adds
// the ops to the commit's store.Txn; if they do not hold, the Txn fails
// with store.ErrConflict, nothing is written and the engine stops with
// ErrFenced. An error from the Fence itself (leadership already lost)
// fails the batch and stops the engine the same way.
type Fence func(ctx context.Context) ([]store.Op, error)

// Options configures Open. The zero value works: wall clock, no fence.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// Fence, if set, guards every commit (see Fence).
	Fence Fence
	// MaxBatch caps the Updates of one group commit. Default 512.
	MaxBatch int
	// FeedBatches and FeedChanges bound the change feed's history: the
	// most recent batches a subscriber may resume from or fall behind by.
	// Defaults 4096 and 131072.
	FeedBatches, FeedChanges int
	// Follower opens an engine that does not write: Update fails with
	// ErrFollower, and its memory changes only through Apply, with what
	// another replica committed (see Engine.Apply).
	Follower bool
}

// Engine is the state engine: the in-memory image of the store, the apply
// loop that serializes Updates, the group commit and the change feed.
type Engine struct {
	backend  store.Backend
	follower bool
	applyMu  sync.Mutex // one Apply at a time
	clock    clock.Clock
	log      *slog.Logger
	fence    Fence
	maxBatch int
	kinds    []AnyKind
	byPrefix map[string]*kindInfo

	limits   store.Limits
	fenceOps atomic.Int64 // ops the fence returned last

	mu      sync.RWMutex
	tables  []table
	loadRev int64
	// durable is the revision of the last durable commit.
	durable atomic.Int64

	// Scratch of the apply loop (only it touches them): the index of a
	// batch's changes, and an Update's undo log, reused batch after batch.
	pos     map[changeKey]int
	scratch []txWrite

	reqs      chan *request
	failed    atomic.Pointer[failure]
	closed    chan struct{}
	closeOnce sync.Once
	loopDone  chan struct{}

	feed *feed
}

type failure struct{ err error }

type request struct {
	fn   func(tx *Tx) error
	done chan error
}

// Open loads every record of the registered kinds from backend and starts
// the apply loop.
func Open(ctx context.Context, backend store.Backend, opts Options) (*Engine, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	e := &Engine{
		backend:  backend,
		clock:    opts.Clock,
		log:      opts.Logger,
		fence:    opts.Fence,
		maxBatch: opts.MaxBatch,
		follower: opts.Follower,
		kinds:    kinds(),
		byPrefix: map[string]*kindInfo{},
		reqs:     make(chan *request, 1024),
		closed:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	e.tables = make([]table, len(e.kinds))
	for i, k := range e.kinds {
		e.tables[i] = k.info().newTable()
		e.byPrefix[k.Prefix()] = k.info()
	}
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	e.limits = store.LimitsOf(backend)
	if e.fence != nil {
		e.fenceOps.Store(1)
	}
	e.feed = newFeed(opts.FeedBatches, opts.FeedChanges, e.loadRev)
	if e.follower {
		close(e.loopDone)
	} else {
		go e.loop()
	}
	return e, nil
}

// Close stops the apply loop after the batch in progress and closes the
// change feed's subscriptions. It does not close the backend.
func (e *Engine) Close() {
	e.closeOnce.Do(func() { close(e.closed) })
	<-e.loopDone
	e.feed.close()
}

// Now is the engine's clock.
func (e *Engine) Now() time.Time { return e.clock.Now() }

// Clock is the engine's clock.
func (e *Engine) Clock() clock.Clock { return e.clock }

// Rev is the revision of the last durable commit.
func (e *Engine) Rev() int64 { return e.durable.Load() }

// LoadRev is the revision the engine loaded at Open.
func (e *Engine) LoadRev() int64 { return e.loadRev }

// Pending is the number of Updates waiting for the apply loop.
func (e *Engine) Pending() int { return len(e.reqs) }

// Err is nil while the engine can write, else the error that stopped it
// (wrapping ErrFailed or ErrFenced).
func (e *Engine) Err() error {
	if f := e.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

func (e *Engine) fail(err error) error {
	f := &failure{err: err}
	if e.failed.CompareAndSwap(nil, f) {
		e.log.Error("state engine stopped: it refuses writes until it is opened again", "err", err)
	}
	return e.Err()
}

// View runs fn with a consistent read view of the state. fn must not call
// Update (it would wait for itself) and should be quick: the apply loop
// waits for it.
func (e *Engine) View(fn func(v *View)) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	fn(&View{e: e, now: e.clock.Now(), rev: e.durable.Load()})
}

// Update runs fn on the apply loop and returns once its writes are
// durable (every Update of a batch is committed in one store.Txn). fn
// reads and writes through tx; it must not block, and must not keep
// records it read after returning unless it treats them as read-only. If
// fn returns an error (or panics), everything it wrote is undone and
// nothing of it is committed.
func (e *Engine) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if e.follower {
		return ErrFollower
	}
	r := &request{fn: fn, done: make(chan error, 1)}
	select {
	case e.reqs <- r:
	case <-e.closed:
		return fmt.Errorf("%w: shutting down", ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-e.loopDone:
		// The loop answers every request it took before it exits.
		select {
		case err := <-r.done:
			return err
		default:
			return fmt.Errorf("%w: shutting down", ErrClosed)
		}
	}
}

// prepBatch is a batch whose Updates ran and were applied in memory,
// waiting for its store transaction.
type prepBatch struct {
	reqs    []*request
	errs    []error
	rev     int64 // the revision its commit got
	changes []Change
	pos     map[changeKey]int // the engine's, valid during prepare only
}

// pendingRev is the revision of a record whose commit is in flight.
const pendingRev = -1

type changeKey struct {
	kind int
	key  string
}

// loop takes every Update that is waiting (up to MaxBatch), runs each
// against memory and hands the batch to the committer. While one batch is
// being made durable the next one is prepared, so the disk never waits for
// the CPU; answers still go out only after their own batch is durable, in
// batch order.
func (e *Engine) loop() {
	commits := make(chan *prepBatch, 1)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for b := range commits {
			e.commit(b)
		}
	}()
	defer func() {
		close(commits)
		<-committed
		close(e.loopDone)
	}()
	var carry []*request // taken but left for the next batch
	for {
		reqs := carry
		carry = nil
		if len(reqs) == 0 {
			select {
			case r := <-e.reqs:
				reqs = append(reqs, r)
			case <-e.closed:
				return
			}
		}
	drain:
		for len(reqs) < e.maxBatch {
			select {
			case r := <-e.reqs:
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		var b *prepBatch
		b, carry = e.prepare(reqs)
		commits <- b
	}
}

// prepare runs a batch's Updates one after another, each under the write
// lock, and collects the batch's changes (one per key: its value before
// the batch and after it). On a backend whose Txns are bounded, an Update
// that would take the batch past one Txn's ops is undone and returned in
// carry, to run first in the next batch.
func (e *Engine) prepare(reqs []*request) (b *prepBatch, carry []*request) {
	if e.pos == nil {
		e.pos = map[changeKey]int{}
	}
	clear(e.pos)
	b = &prepBatch{reqs: reqs, errs: make([]error, len(reqs)), pos: e.pos}
	if err := e.Err(); err != nil {
		for i := range b.errs {
			b.errs[i] = err
		}
		return b, nil
	}
	now := e.clock.Now()
	maxOps := e.maxOps()
	for i, r := range reqs {
		e.mu.Lock()
		tx := &Tx{View: View{e: e, now: now, rev: e.durable.Load()}, writes: e.scratch[:0]}
		err := safeRun(r.fn, tx)
		switch {
		case err != nil:
			tx.undo()
			b.errs[i] = err
		case i > 0 && maxOps > 0 && len(b.changes)+len(tx.writes) > maxOps && b.merged(tx) > maxOps:
			tx.undo()
			carry = reqs[i:]
			b.reqs, b.errs = reqs[:i], b.errs[:i]
		default:
			b.merge(tx)
		}
		clear(tx.writes)
		e.scratch = tx.writes[:0]
		e.mu.Unlock()
		if carry != nil {
			break
		}
	}
	if len(b.changes) == 0 {
		return b, carry
	}
	e.mu.Lock()
	n := 0
	for _, c := range b.changes {
		ki := c.Kind.info()
		c.New, _ = e.tables[ki.id].getAny(c.Key)
		if c.Old == nil && c.New == nil {
			continue // created and deleted within the batch
		}
		b.changes[n] = c
		n++
	}
	clear(b.changes[n:])
	b.changes = b.changes[:n]
	e.mu.Unlock()
	return b, carry
}

// maxOps is how many writes one batch may carry (0 = no bound): one Txn's
// ops, less room for the fence (as many ops as it last returned).
func (e *Engine) maxOps() int {
	if e.limits.MaxOps == 0 {
		return 0
	}
	return max(e.limits.MaxOps-int(e.fenceOps.Load()), 1)
}

// merged is the number of changes the batch would have with tx's writes.
func (b *prepBatch) merged(tx *Tx) int {
	n := len(b.changes)
	seen := map[changeKey]bool{}
	for _, w := range tx.writes {
		ck := changeKey{w.ki.id, w.key}
		if _, ok := b.pos[ck]; !ok && !seen[ck] {
			seen[ck] = true
			n++
		}
	}
	return n
}

func (b *prepBatch) merge(tx *Tx) {
	for _, w := range tx.writes {
		ck := changeKey{w.ki.id, w.key}
		if _, ok := b.pos[ck]; ok {
			continue // the batch already has its value before the batch
		}
		b.pos[ck] = len(b.changes)
		b.changes = append(b.changes, Change{Kind: tx.e.kinds[w.ki.id], Key: w.key, Old: w.prev})
	}
}

// commit makes a prepared batch durable, publishes its changes and answers
// its Updates. A failed commit stops the engine: memory may now be ahead
// of the store, so every later Update fails too, and a restart reloads the
// state from the store.
func (e *Engine) commit(b *prepBatch) {
	var err error
	if len(b.changes) > 0 {
		err = e.Err()
		if err == nil {
			err = e.write(b)
		}
	} else {
		// A batch that writes nothing was still prepared against memory
		// that may hold a failed batch's writes: its answers may claim what
		// the store never got.
		err = e.Err()
	}
	if err == nil && len(b.changes) > 0 {
		e.settle(b)
		e.durable.Store(b.rev)
		e.feed.publish(Batch{Rev: b.rev, Changes: b.changes})
	}
	for i, r := range b.reqs {
		if b.errs[i] == nil {
			b.errs[i] = err
		}
		r.done <- b.errs[i]
	}
}

// write commits one batch's changes: one store.Txn, with the fence. On a
// backend whose Txns are bounded (store.Limits) a batch that does not fit
// is written as several Txns, in order, each with the fence; the Updates
// are answered only once all of them are durable.
func (e *Engine) write(b *prepBatch) error {
	ops := make([]store.Op, 0, len(b.changes))
	for _, c := range b.changes {
		ki := c.Kind.info()
		key := ki.prefix + c.Key
		if c.New == nil {
			ops = append(ops, store.Del(key))
			continue
		}
		v, err := ki.encode(c.New)
		if err != nil {
			return e.fail(fmt.Errorf("%w: encode %s %q: %w", ErrFailed, ki.name, c.Key, err))
		}
		ops = append(ops, store.Put(key, v))
	}
	ctx := context.Background()
	var fence []store.Op
	if e.fence != nil {
		var err error
		if fence, err = e.fence(ctx); err != nil {
			return e.fail(fmt.Errorf("%w: %w", ErrFenced, err))
		}
		e.fenceOps.Store(int64(len(fence)))
	}
	for _, chunk := range chunks(ops, e.limits, fence) {
		rev, err := e.backend.Txn(ctx, append(chunk, fence...))
		switch {
		case err == nil:
		case errors.Is(err, store.ErrConflict) && e.fence != nil:
			return e.fail(fmt.Errorf("%w: the fence's compare failed at commit", ErrFenced))
		default:
			return e.fail(fmt.Errorf("%w: %w", ErrFailed, err))
		}
		if prev := max(b.rev, e.durable.Load()); rev <= prev {
			// The feed's revisions must increase: a store that does not
			// advance breaks the backend contract.
			return e.fail(fmt.Errorf("%w: the store gave revision %d to a commit after revision %d", ErrFailed, rev, prev))
		}
		b.rev = rev
	}
	return nil
}

// chunks cuts ops into Txns within limits, leaving room for the fence.
func chunks(ops []store.Op, l store.Limits, fence []store.Op) [][]store.Op {
	maxOps, maxBytes := l.MaxOps-len(fence), l.MaxBytes-store.TxnBytes(fence)
	if l.MaxOps == 0 {
		maxOps = len(ops)
	}
	var out [][]store.Op
	start, bytes := 0, 0
	for i, op := range ops {
		n := len(op.Key) + len(op.Value)
		if i > start && (i-start >= maxOps || (l.MaxBytes > 0 && bytes+n > maxBytes)) {
			out = append(out, ops[start:i:i])
			start, bytes = i, 0
		}
		bytes += n
	}
	return append(out, ops[start:])
}

// settle gives the records a durable batch wrote its revision (unless a
// later batch has written them again since).
func (e *Engine) settle(b *prepBatch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range b.changes {
		if c.New != nil {
			e.tables[c.Kind.info().id].settle(c.Key, c.New, b.rev)
		}
	}
}

func safeRun(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("state: update panicked: %v", p)
		}
	}()
	return fn(tx)
}
