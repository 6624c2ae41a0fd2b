package scheduler

// prioHeap is a binary heap whose top is the element with the highest
// priority (first(a, b) reports that a comes before b). The reconciler only
// ever changes the key of the top element, so it needs no index tracking:
// fixTop sifts the top down after its key changed in the "later" direction.
type prioHeap[T any] struct {
	items []T
	first func(a, b T) bool
}

func newPrioHeap[T any](items []T, first func(a, b T) bool) *prioHeap[T] {
	h := &prioHeap[T]{items: items, first: first}
	for i := len(items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	return h
}

func (h *prioHeap[T]) len() int { return len(h.items) }

func (h *prioHeap[T]) top() T { return h.items[0] }

func (h *prioHeap[T]) fixTop() { h.down(0) }

func (h *prioHeap[T]) popTop() {
	n := len(h.items) - 1
	h.items[0] = h.items[n]
	var zero T
	h.items[n] = zero
	h.items = h.items[:n]
	if n > 0 {
		h.down(0)
	}
}

func (h *prioHeap[T]) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && h.first(h.items[r], h.items[l]) {
			j = r
		}
		if !h.first(h.items[j], h.items[i]) {
			return
		}
		h.items[i], h.items[j] = h.items[j], h.items[i]
		i = j
	}
}
