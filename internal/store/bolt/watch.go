package bolt

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/holdfast/holdfast/internal/store"
)

const (
	watchChanSize  = 128  // buffer of each watcher's channel
	watchBatchSize = 256  // events copied out of the history per lock hold
	watchScanLimit = 4096 // history entries scanned per lock hold
)

// history is a ring of the most recent events, shared by all watchers. Each
// watcher goroutine keeps its own cursor (a sequence number into the ring), so
// a commit costs one append per event whatever the number of watchers, and a
// watcher whose reader is slow falls behind only until the ring overwrites
// its cursor; then its channel is closed.
type history struct {
	mu        sync.Mutex
	buf       []store.Event
	first     uint64 // sequence number of the oldest retained event
	next      uint64 // sequence number the next event gets
	compacted int64  // every event with ModRev > compacted is retained
	wake      chan struct{}
	stopped   bool
	stopCh    chan struct{}
}

func newHistory(size int, rev int64) *history {
	return &history{
		buf:       make([]store.Event, size),
		compacted: rev, // events up to the revision at Open are not in memory
		wake:      make(chan struct{}),
		stopCh:    make(chan struct{}),
	}
}

// add appends ev, evicting the oldest event when full. Callers hold h.mu.
func (h *history) add(ev store.Event) {
	n := uint64(len(h.buf))
	if h.next-h.first == n {
		old := &h.buf[h.first%n]
		// Part of old's revision may be gone now: no watcher can start at or
		// before it.
		h.compacted = old.KV.ModRev
		*old = store.Event{}
		h.first++
	}
	h.buf[h.next%n] = ev
	h.next++
}

// search returns the sequence number of the first retained event with
// ModRev > afterRev (h.next if none). Callers hold h.mu.
func (h *history) search(afterRev int64) uint64 {
	n := uint64(len(h.buf))
	i := sort.Search(int(h.next-h.first), func(i int) bool {
		return h.buf[(h.first+uint64(i))%n].KV.ModRev > afterRev
	})
	return h.first + uint64(i)
}

// stop closes every watcher (Close, or a failed commit).
func (h *history) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped = true
		close(h.stopCh)
	}
}

// publish makes the Txns of a committed batch visible: their events go to
// the history and the revision advances, then watchers are woken. It runs
// before the Txns are answered, so a caller that watches from its own Txn's
// revision minus one sees its change.
func (s *Store) publish(batch []*txnReq) {
	h := s.hist
	h.mu.Lock()
	last := s.rev.Load()
	for _, r := range batch {
		if r.res.err != nil {
			continue
		}
		for _, ev := range r.events {
			h.add(ev)
		}
		last = r.res.rev
		r.events = nil
	}
	s.rev.Store(last)
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// Watch implements store.Backend. A watcher falls "too far behind" when the
// events it has not yet delivered are about to be overwritten in the history
// (Options.HistorySize events, counted over all keys); its channel is then
// closed after the last event it still had, so what it delivered stays
// gap-free and ordered.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) (<-chan store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.usable(); err != nil {
		return nil, err
	}
	h := s.hist
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		if err := s.usable(); err != nil {
			return nil, err
		}
		return nil, store.ErrClosed
	}
	if afterRev < h.compacted {
		oldest := h.compacted
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: watch after revision %d, oldest possible is %d", store.ErrCompacted, afterRev, oldest)
	}
	cursor := h.search(afterRev)
	h.mu.Unlock()

	out := make(chan store.Event, watchChanSize)
	go s.runWatcher(ctx, prefix, afterRev, cursor, out)
	return out, nil
}

func (s *Store) runWatcher(ctx context.Context, prefix string, afterRev int64, cursor uint64, out chan<- store.Event) {
	defer close(out)
	h := s.hist
	batch := make([]store.Event, 0, watchBatchSize)
	delivered := afterRev // revision of the last event sent, for the log
	for ctx.Err() == nil {
		h.mu.Lock()
		if h.stopped {
			h.mu.Unlock()
			return
		}
		if cursor < h.first {
			h.mu.Unlock()
			s.log.Debug("store watcher fell behind; closing it", "prefix", prefix, "delivered_up_to", delivered)
			return
		}
		batch = batch[:0]
		end := min(h.next, cursor+watchScanLimit)
		for ; cursor < end && len(batch) < watchBatchSize; cursor++ {
			ev := h.buf[cursor%uint64(len(h.buf))]
			if ev.KV.ModRev > afterRev && strings.HasPrefix(ev.KV.Key, prefix) {
				batch = append(batch, ev)
			}
		}
		caughtUp := cursor == h.next
		wake := h.wake
		h.mu.Unlock()

		for i, ev := range batch {
			ev.KV.Value = bytes.Clone(ev.KV.Value) // the history's copy is shared
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-h.stopCh:
				return
			}
			delivered = ev.KV.ModRev
			batch[i] = store.Event{}
		}
		if caughtUp && len(batch) == 0 {
			select {
			case <-wake:
			case <-ctx.Done():
				return
			case <-h.stopCh:
				return
			}
		}
	}
}
