// Package workqueue is a small keyed work queue for level-triggered
// controllers, in the manner of Kubernetes' client-go workqueue:
//
//   - A key is in the queue at most once, however often it is added.
//   - A key is never handed to two workers at once: added while a worker
//     has it, it is queued again when that worker calls Done.
//   - AddAfter schedules a key for later (a timed recheck such as a
//     protection expiry), through the injected clock; a later AddAfter of
//     the same key replaces the earlier one.
//   - AddRateLimited retries a key that failed after a per-key exponential
//     backoff (base, doubling, capped); Forget resets it after a success.
//
// The queue starts no goroutine of its own: workers call Get in theirs, and
// timers run their callbacks in the clock's goroutines, which only add.
package workqueue

import (
	"context"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
)

// Queue is a keyed work queue. Create it with New.
type Queue struct {
	clk       clock.Clock
	base, max time.Duration

	mu         sync.Mutex
	order      []string        // keys waiting, oldest first
	queued     map[string]bool // keys in order
	processing map[string]bool // keys a worker has
	again      map[string]bool // added while processing
	timers     map[string]clock.Timer
	failures   map[string]int
	wake       chan struct{} // closed and replaced when a key is queued
	shutdown   bool
}

// New returns a queue whose retry backoff starts at base and doubles up to
// max.
func New(clk clock.Clock, base, max time.Duration) *Queue {
	return &Queue{
		clk: clk, base: base, max: max,
		queued:     map[string]bool{},
		processing: map[string]bool{},
		again:      map[string]bool{},
		timers:     map[string]clock.Timer{},
		failures:   map[string]int{},
		wake:       make(chan struct{}),
	}
}

// Add queues key now.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown || q.queued[key] {
		return
	}
	if q.processing[key] {
		q.again[key] = true
		return
	}
	q.queued[key] = true
	q.order = append(q.order, key)
	close(q.wake)
	q.wake = make(chan struct{})
}

// AddAfter queues key after d, replacing an earlier AddAfter (or retry) of
// the same key that has not fired yet. d <= 0 adds at once.
func (q *Queue) AddAfter(key string, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	if t := q.timers[key]; t != nil {
		t.Stop()
		delete(q.timers, key)
	}
	if d <= 0 {
		q.addLocked(key)
		return
	}
	var t clock.Timer
	t = q.clk.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.timers[key] == t {
			delete(q.timers, key)
		}
		q.addLocked(key)
	})
	q.timers[key] = t
}

// AddRateLimited queues key again after its backoff, which doubles with
// every failure since the last Forget.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	q.AddAfter(key, q.Backoff(n))
}

// Backoff is the wait before retry number n (0-based): base * 2^n, at most
// max.
func (q *Queue) Backoff(n int) time.Duration {
	d := q.base
	for range n {
		if d >= q.max {
			break
		}
		d *= 2
	}
	return min(d, q.max)
}

// Failures is the number of failures of key since it was last forgotten.
func (q *Queue) Failures(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Forget resets key's backoff (it succeeded).
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	delete(q.failures, key)
	q.mu.Unlock()
}

// Drop forgets key entirely: its backoff and any pending AddAfter (the
// object is gone). A queued or running key still runs once.
func (q *Queue) Drop(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
	if t := q.timers[key]; t != nil {
		t.Stop()
		delete(q.timers, key)
	}
}

// Get waits for a key and hands it to the caller, who must call Done with
// it. ok is false once the queue is shut down or ctx ends.
func (q *Queue) Get(ctx context.Context) (key string, ok bool) {
	for {
		q.mu.Lock()
		if q.shutdown {
			q.mu.Unlock()
			return "", false
		}
		if len(q.order) > 0 {
			key = q.order[0]
			q.order[0] = ""
			q.order = q.order[1:]
			delete(q.queued, key)
			q.processing[key] = true
			q.mu.Unlock()
			return key, true
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return "", false
		}
	}
}

// Done releases a key a worker got; if it was added meanwhile it is queued
// again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.again[key] {
		delete(q.again, key)
		q.addLocked(key)
	}
}

// Len is the number of keys waiting (not running, not scheduled for later).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// Idle reports that no key is waiting or running (keys scheduled for later
// do not count).
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order) == 0 && len(q.processing) == 0
}

// ShutDown stops the queue: Get returns false, adds are ignored and
// pending timers are stopped.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	q.shutdown = true
	for k, t := range q.timers {
		t.Stop()
		delete(q.timers, k)
	}
	close(q.wake)
}
