package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Feed errors, returned (wrapped) by Subscribe and Subscription.Next.
var (
	// ErrLagged: the subscriber fell further behind than it may (its
	// MaxLag, or the feed's history). It must re-read what it needs in a
	// View and subscribe again after that View's revision.
	ErrLagged = errors.New("state: change feed subscriber fell behind")
	// ErrCompacted: Subscribe after a revision the feed no longer holds.
	ErrCompacted = errors.New("state: change feed revision compacted")
)

// Change is one record that a commit changed: its value before the batch
// (Old) and after it (New); nil means absent. Old and New are *T of the
// Kind's type, shared and read-only. A record written several times in one
// batch is one Change.
type Change struct {
	Kind     AnyKind
	Key      string
	Old, New any
}

// As returns the typed values of c if it is a change of kind k.
func As[T any](c Change, k *Kind[T]) (old, new *T, ok bool) {
	if c.Kind != AnyKind(k) {
		return nil, nil, false
	}
	old, _ = c.Old.(*T)
	new, _ = c.New.(*T)
	return old, new, true
}

// Batch is the changes of one commit, in the order they were first written.
type Batch struct {
	Rev     int64
	Changes []Change
}

// feed is the history of recent batches that every subscription reads
// from with its own cursor. Publishing appends and never waits for a
// subscriber; a subscriber that falls behind the history (or its own
// MaxLag) gets ErrLagged.
type feed struct {
	mu         sync.Mutex
	ring       []Batch
	first      uint64 // sequence number of the oldest retained batch
	next       uint64 // sequence number of the next batch
	changes    int    // changes retained
	maxChanges int
	compacted  int64 // every batch with Rev > compacted is retained
	wake       chan struct{}
	closed     bool
}

func newFeed(batches, changes int, rev int64) *feed {
	if batches <= 0 {
		batches = 4096
	}
	if changes <= 0 {
		changes = 1 << 17
	}
	return &feed{ring: make([]Batch, batches), maxChanges: changes, compacted: rev, wake: make(chan struct{})}
}

func (f *feed) publish(b Batch) {
	f.mu.Lock()
	n := uint64(len(f.ring))
	for f.next-f.first > 0 && (f.next-f.first == n || f.changes+len(b.Changes) > f.maxChanges) {
		old := &f.ring[f.first%n]
		f.compacted = old.Rev
		f.changes -= len(old.Changes)
		*old = Batch{}
		f.first++
	}
	f.ring[f.next%n] = b
	f.next++
	f.changes += len(b.Changes)
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

// poke wakes the waiters (WaitFor) without publishing a batch.
func (f *feed) poke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		close(f.wake)
		f.wake = make(chan struct{})
	}
}

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.wake)
	}
}

// SubscribeOptions selects what a subscription receives.
type SubscribeOptions struct {
	// After: receive the batches with a revision above it. Use the Rev of
	// the View you built your starting point from.
	After int64
	// Kinds, if set, restricts the changes to these kinds; batches with
	// none of them are skipped.
	Kinds []AnyKind
	// MaxLag, if set, is how many batches the subscriber may fall behind
	// the newest before it gets ErrLagged (the feed's history is the upper
	// bound).
	MaxLag int
}

// Subscription reads the change feed. It has no goroutine of its own:
// the subscriber calls Next from its own goroutine.
type Subscription struct {
	f      *feed
	cursor uint64
	after  int64
	kinds  map[AnyKind]bool
	maxLag uint64
	err    error
}

// Subscribe starts reading the change feed after opts.After. It fails with
// ErrCompacted if batches after that revision are no longer held.
func (e *Engine) Subscribe(opts SubscribeOptions) (*Subscription, error) {
	f := e.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if opts.After < f.compacted {
		return nil, fmt.Errorf("%w: after revision %d, oldest possible is %d", ErrCompacted, opts.After, f.compacted)
	}
	s := &Subscription{f: f, after: opts.After, cursor: f.first}
	for s.cursor < f.next && f.ring[s.cursor%uint64(len(f.ring))].Rev <= opts.After {
		s.cursor++
	}
	if len(opts.Kinds) > 0 {
		s.kinds = map[AnyKind]bool{}
		for _, k := range opts.Kinds {
			s.kinds[k] = true
		}
	}
	if opts.MaxLag > 0 {
		s.maxLag = uint64(opts.MaxLag)
	}
	return s, nil
}

// Next returns the next batch (with only the subscribed kinds' changes),
// waiting for one until ctx ends. Errors are sticky: ErrLagged, ErrClosed
// (the engine closed) or ctx's error.
func (s *Subscription) Next(ctx context.Context) (Batch, error) {
	if s.err != nil {
		return Batch{}, s.err
	}
	f := s.f
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			s.err = ErrClosed
			return Batch{}, s.err
		}
		if s.cursor < f.first || (s.maxLag > 0 && f.next-s.cursor > s.maxLag) {
			f.mu.Unlock()
			s.err = fmt.Errorf("%w: at revision %d", ErrLagged, s.after)
			return Batch{}, s.err
		}
		for s.cursor < f.next {
			b := f.ring[s.cursor%uint64(len(f.ring))]
			s.cursor++
			if b.Rev <= s.after {
				continue
			}
			s.after = b.Rev
			if s.kinds != nil {
				b = s.filter(b)
				if len(b.Changes) == 0 {
					continue
				}
			}
			f.mu.Unlock()
			return b, nil
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}

func (s *Subscription) filter(b Batch) Batch {
	out := Batch{Rev: b.Rev}
	for _, c := range b.Changes {
		if s.kinds[c.Kind] {
			out.Changes = append(out.Changes, c)
		}
	}
	return out
}

// Rev is the revision of the last batch Next returned (or skipped), or
// the After the subscription started from.
func (s *Subscription) Rev() int64 { return s.after }

// WaitFor returns once the engine has applied rev (durably, in exclusive
// mode), or ctx ends. A replica uses it to serve a read that must see a
// write it knows the revision of.
func (e *Engine) WaitFor(ctx context.Context, rev int64) error {
	for {
		e.feed.mu.Lock()
		wake := e.feed.wake
		closed := e.feed.closed
		e.feed.mu.Unlock()
		if e.Rev() >= rev {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
