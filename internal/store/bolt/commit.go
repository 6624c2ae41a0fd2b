package bolt

import (
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/holdfast/holdfast/internal/store"
)

// txnReq is one Txn waiting for the committer.
type txnReq struct {
	ctx  context.Context
	ops  []store.Op
	done chan txnResult // buffered, 1
	// advance, when set, makes the request an AdvanceRev instead of a Txn.
	advance int64

	// Filled by the committer while it builds a batch.
	res    txnResult
	events []store.Event
}

type txnResult struct {
	rev int64
	err error
}

// Txn implements store.Backend.
func (s *Store) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if err := store.CheckOps(ops); err != nil {
		return 0, err
	}
	for i, op := range ops {
		if len(op.Key) > bbolt.MaxKeySize {
			return 0, fmt.Errorf("%w: op %d: key of %d bytes, limit %d", store.ErrInvalid, i, len(op.Key), bbolt.MaxKeySize)
		}
		if !op.Delete && !op.Check && int64(len(op.Value))+8 > bbolt.MaxValueSize {
			return 0, fmt.Errorf("%w: op %d (%q): value of %d bytes is too large", store.ErrInvalid, i, op.Key, len(op.Value))
		}
	}
	res := s.enqueue(ctx, &txnReq{ctx: ctx, ops: ops, done: make(chan txnResult, 1)})
	return res.rev, res.err
}

// enqueue hands r to the committer and waits for its answer.
func (s *Store) enqueue(ctx context.Context, r *txnReq) txnResult {
	if err := ctx.Err(); err != nil {
		return txnResult{err: err}
	}
	if f := s.failed.Load(); f != nil {
		return txnResult{err: f.err}
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return txnResult{err: store.ErrClosed}
	}
	s.reqs <- r
	s.closeMu.RUnlock()
	// Once queued, wait for the answer even if ctx ends: the committer checks
	// ctx before applying, so ctx.Err() always means "not applied" and any
	// success means "durable".
	return <-r.done
}

// AdvanceRev raises the revision to rev if it is lower, so that the next
// Txn gets a revision after it (snapshot.Reviser: a restore makes revisions
// jump past the source's). It is durable when it returns.
func (s *Store) AdvanceRev(ctx context.Context, rev int64) error {
	if rev <= 0 {
		return fmt.Errorf("%w: advance to revision %d", store.ErrInvalid, rev)
	}
	return s.enqueue(ctx, &txnReq{ctx: ctx, advance: rev, done: make(chan txnResult, 1)}).err
}

// committer is the only writer. It runs until Close closes s.reqs and the
// queue is drained.
func (s *Store) committer() {
	defer close(s.committerDone)
	batch := make([]*txnReq, 0, s.maxBatch)
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch) // drop references for the GC
	}
}

// commitBatch applies batch in one bolt transaction and answers every Txn.
func (s *Store) commitBatch(batch []*txnReq) {
	if f := s.failed.Load(); f != nil {
		for _, r := range batch {
			r.done <- txnResult{err: f.err}
		}
		return
	}
	if s.beforeCommit != nil {
		s.beforeCommit(len(batch))
	}

	pending := batch
	for {
		applied, bad, err := s.tryBatch(pending)
		if bad >= 0 {
			// One Txn could not be applied (not a compare failure: an error
			// from bolt that its ops caused). The tx was rolled back; answer
			// that Txn and redo the others from scratch.
			pending[bad].done <- txnResult{err: err}
			pending = append(pending[:bad:bad], pending[bad+1:]...)
			if len(pending) == 0 {
				return
			}
			continue
		}
		if err != nil {
			s.fail(err)
			for _, r := range pending {
				r.done <- txnResult{err: s.failed.Load().err}
			}
			return
		}
		if applied > 0 {
			s.publish(pending)
		}
		for _, r := range pending {
			r.done <- r.res
		}
		return
	}
}

// tryBatch applies pending to a new bolt write transaction and commits it.
// It fills each request's res and events. applied counts successful Txns. If
// a request's ops make bolt fail, the tx is rolled back and bad is its index;
// otherwise bad is -1 and err is the begin/commit error (fatal).
func (s *Store) tryBatch(pending []*txnReq) (applied, bad int, err error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return 0, -1, err
	}
	kv := tx.Bucket(bucketKV)
	meta := tx.Bucket(bucketMeta)
	base, err := decodeRev(meta.Get(keyRev))
	if err != nil {
		_ = tx.Rollback()
		return 0, -1, err
	}
	rev := base
	conflicts := 0
	for i, r := range pending {
		r.events = r.events[:0]
		if err := r.ctx.Err(); err != nil {
			r.res = txnResult{err: err}
			continue
		}
		if r.advance > 0 {
			rev = max(rev, r.advance)
			r.res = txnResult{rev: rev}
			applied++
			continue
		}
		err := applyTxn(kv, r, rev+1)
		switch {
		case err == nil:
			rev++
			r.res = txnResult{rev: rev}
			applied++
		case errors.Is(err, store.ErrConflict):
			r.res = txnResult{err: store.ErrConflict}
			conflicts++
		default:
			_ = tx.Rollback()
			return 0, i, err
		}
	}
	if applied == 0 {
		// Nothing to write (all conflicts or cancelled): no fsync.
		_ = tx.Rollback()
		s.stats.conflicts.Add(uint64(conflicts))
		return 0, -1, nil
	}
	if err := meta.Put(keyRev, encodeRev(rev)); err != nil {
		_ = tx.Rollback()
		return 0, -1, err
	}
	if err := tx.Commit(); err != nil {
		return 0, -1, fmt.Errorf("store/bolt: commit: %w", err)
	}
	s.stats.commits.Add(1)
	s.stats.txns.Add(uint64(applied))
	s.stats.conflicts.Add(uint64(conflicts))
	return applied, -1, nil
}

// applyTxn checks r's compares against the tx state and, if they all hold,
// writes its ops with revision rev. On ErrConflict nothing was written.
func applyTxn(kv *bbolt.Bucket, r *txnReq, rev int64) error {
	for _, op := range r.ops {
		if op.Compare == nil {
			continue
		}
		raw := kv.Get([]byte(op.Key))
		if raw != nil && len(raw) < 8 {
			return fmt.Errorf("store/bolt: corrupt value for key %q: %d bytes", op.Key, len(raw))
		}
		if modRevOf(raw) != *op.Compare {
			return store.ErrConflict
		}
	}
	for _, op := range r.ops {
		if op.Check {
			continue
		}
		key := []byte(op.Key)
		if op.Delete {
			if kv.Get(key) == nil {
				continue
			}
			if err := kv.Delete(key); err != nil {
				return err
			}
			r.events = append(r.events, store.Event{
				Type: store.EventDelete,
				KV:   store.KV{Key: op.Key, ModRev: rev},
			})
			continue
		}
		// bolt keeps a reference to the value until commit: it must be a
		// buffer of our own. The event shares it read-only.
		enc := encodeValue(rev, op.Value)
		if err := kv.Put(key, enc); err != nil {
			return err
		}
		r.events = append(r.events, store.Event{
			Type: store.EventPut,
			KV:   store.KV{Key: op.Key, Value: enc[8:len(enc):len(enc)], ModRev: rev},
		})
	}
	return nil
}

// fail puts the store in the failed state after a commit error.
func (s *Store) fail(err error) {
	f := &failure{err: fmt.Errorf("%w: %w", ErrFailed, err)}
	if s.failed.CompareAndSwap(nil, f) {
		s.log.Error("store commit failed; refusing further work until reopened",
			"path", s.path, "rev", s.rev.Load(), "err", err)
		s.hist.stop()
	}
}
