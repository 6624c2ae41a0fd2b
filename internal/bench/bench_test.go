package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestProtectSmoke runs the protection load briefly, so that the harness
// itself is exercised by the test suite: every call must succeed and
// change protection (no failures).
func TestProtectSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	d := 300 * time.Millisecond
	if os.Getenv("HOLDFAST_BENCH") != "" {
		d = 10 * time.Second
	}
	r, err := Protect(context.Background(), 8, 10, d)
	if os.Getenv("HOLDFAST_BENCH") != "" {
		r, err = Protect(context.Background(), 64, 10, d)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("calls=%d errors=%d %.0f calls/s %s", r.Calls, r.Errors, r.CallsPerSecond(), r.Latency)
	if r.Calls == 0 || r.Errors != 0 {
		t.Fatalf("calls=%d errors=%d", r.Calls, r.Errors)
	}
}
