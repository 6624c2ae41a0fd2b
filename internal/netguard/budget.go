package netguard

import (
	"sync"
	"sync/atomic"
)

// Budget bounds the request-body bytes held at once: in total, and per
// client identity, so that one client's bodies cannot take every other
// client's share. A handler reserves a body's size before it reads the body
// and releases it when the handler is done with it.
type Budget struct {
	total, perClient int64

	mu       sync.Mutex
	used     int64
	byClient map[string]int64

	refused atomic.Int64
}

// NewBudget returns a budget of total bytes, at most perClient of them for
// one client.
func NewBudget(total, perClient int64) *Budget {
	return &Budget{total: total, perClient: min(perClient, total), byClient: map[string]int64{}}
}

// Acquire reserves n bytes for client. ok is false, and nothing is
// reserved, when the client's share or the total would be exceeded. release
// returns the bytes; it may be called more than once.
func (b *Budget) Acquire(client string, n int64) (release func(), ok bool) {
	if n <= 0 {
		return func() {}, true
	}
	b.mu.Lock()
	if b.used+n > b.total || b.byClient[client]+n > b.perClient {
		b.mu.Unlock()
		b.refused.Add(1)
		return nil, false
	}
	b.used += n
	b.byClient[client] += n
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.used -= n
			if b.byClient[client] -= n; b.byClient[client] == 0 {
				delete(b.byClient, client)
			}
		})
	}, true
}

// InUse returns the bytes reserved now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Refused returns how many reservations were refused.
func (b *Budget) Refused() int64 { return b.refused.Load() }
