package workqueue

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var start = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func get(t *testing.T, q *Queue) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k, ok := q.Get(ctx)
	if !ok {
		t.Fatal("Get: nothing queued")
	}
	return k
}

func empty(t *testing.T, q *Queue) {
	t.Helper()
	if n := q.Len(); n != 0 {
		t.Fatalf("%d keys queued, want none", n)
	}
}

// A key is queued once however often it is added, in the order of first
// addition, and a key being processed is queued again only once Done.
func TestDedupAndExclusive(t *testing.T) {
	q := New(clock.NewFake(start), time.Second, time.Minute)
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	if k := get(t, q); k != "a" {
		t.Fatalf("first key %q", k)
	}
	q.Add("a") // while a worker has it
	if k := get(t, q); k != "b" {
		t.Fatalf("second key %q, want b (a is being processed)", k)
	}
	empty(t, q)
	if q.Idle() {
		t.Fatal("Idle while keys are being processed")
	}
	q.Done("a")
	if k := get(t, q); k != "a" {
		t.Fatalf("re-added key %q, want a", k)
	}
	q.Done("a")
	q.Done("b")
	if !q.Idle() {
		t.Fatal("not Idle after every key is Done")
	}
}

// AddAfter fires through the clock, and a later AddAfter of the same key
// replaces the earlier one.
func TestAddAfter(t *testing.T) {
	clk := clock.NewFake(start)
	q := New(clk, time.Second, time.Minute)
	q.AddAfter("k", 10*time.Second)
	q.AddAfter("k", 30*time.Second) // replaces
	clk.Advance(29 * time.Second)
	empty(t, q)
	clk.Advance(time.Second)
	if k := get(t, q); k != "k" {
		t.Fatalf("key %q", k)
	}
	q.Done("k")
	clk.Advance(time.Hour)
	empty(t, q)

	q.AddAfter("gone", time.Second)
	q.Drop("gone")
	clk.Advance(time.Minute)
	empty(t, q)
}

// A key that keeps failing waits base, 2*base, 4*base, ... up to max; a
// success (Forget) starts it over.
func TestBackoff(t *testing.T) {
	clk := clock.NewFake(start)
	q := New(clk, time.Second, 10*time.Second)
	var waits []time.Duration
	for range 6 {
		q.AddRateLimited("k")
		d := time.Duration(0)
		for q.Len() == 0 {
			clk.Advance(100 * time.Millisecond)
			d += 100 * time.Millisecond
		}
		waits = append(waits, d)
		get(t, q)
		q.Done("k")
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if q.Failures("k") != 6 {
		t.Fatalf("Failures = %d", q.Failures("k"))
	}
	q.Forget("k")
	q.AddRateLimited("k")
	clk.Advance(time.Second)
	if q.Len() != 1 {
		t.Fatal("after Forget the backoff did not start over")
	}
}

// ShutDown releases every worker waiting in Get.
func TestShutDown(t *testing.T) {
	q := New(clock.NewFake(start), time.Second, time.Minute)
	q.AddAfter("later", time.Hour)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, ok := q.Get(context.Background()); ok {
				t.Error("Get returned a key after ShutDown")
			}
		})
	}
	q.ShutDown()
	wg.Wait()
	q.Add("x")
	if q.Len() != 0 {
		t.Fatal("Add after ShutDown queued a key")
	}
}
