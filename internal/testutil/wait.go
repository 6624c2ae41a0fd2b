package testutil

import (
	"runtime"
	"testing"
	"time"
)

// SkipUnlessE2E skips an end-to-end test (real processes) under -short and
// off Linux, where the process runtime cannot run.
func SkipUnlessE2E(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("end-to-end test: needs Linux (process runtime, /proc)")
	}
}

// Eventually calls cond every interval until it reports true. Once timeout
// has passed it fails t, naming what it waited for and the detail cond
// returned last. cond runs on the test's goroutine and may fail t itself.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, detail)
		}
		time.Sleep(interval)
	}
}

// EventuallyTrue is Eventually for a condition without a detail.
func EventuallyTrue(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
