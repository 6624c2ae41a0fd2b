package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestProcessBenchesSmoke runs the endpoint, sigterm and agent benches tiny
// against a freshly built holdfast binary (they re-execute it as server,
// agent and shims), so that the harness is exercised by the test suite: each
// must produce numbers, without failures, and leave no shim running. It
// asserts no timing.
func TestProcessBenchesSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short: builds the binary and starts real processes")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the holdfast binary")
	}
	self := filepath.Join(t.TempDir(), "holdfast")
	build := exec.Command(goTool, "build", "-o", self, "github.com/holdfast/holdfast/cmd/holdfast")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("endpoint", func(t *testing.T) {
		r, err := Endpoint(ctx, EndpointConfig{Self: self, Tasks: 3, Duration: 300 * time.Millisecond, Rate: 20, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("floor rtt %s fsync %s", r.Floor.RTT, r.Floor.Fsync)
		if r.Floor.RTT.N == 0 || r.Floor.Fsync.N == 0 || r.Floor.P50() <= 0 {
			t.Errorf("no floor: %+v", r.Floor)
		}
		if len(r.Phases) != 2 {
			t.Fatalf("%d phases, want 2", len(r.Phases))
		}
		for _, p := range r.Phases {
			t.Logf("tasks=%d ok=%d 429=%d errors=%d %s", p.Tasks, p.Calls, p.Limited, p.Errors, p.Latency)
			if p.Calls == 0 || p.Errors != 0 || p.Limited != 0 || p.Latency.P50 <= 0 {
				t.Errorf("tasks=%d: calls=%d errors=%d (%s) 429=%d", p.Tasks, p.Calls, p.Errors, p.FirstErr, p.Limited)
			}
		}
	})
	t.Run("sigterm", func(t *testing.T) {
		r, err := Sigterm(ctx, SigtermConfig{Self: self, Samples: 3, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("samples=%d failed=%d %s", r.Samples, r.Failed, r.Latency)
		if r.Samples != 3 || r.Failed != 0 || r.Latency.P50 <= 0 {
			t.Errorf("samples=%d failed=%d (%s) %s", r.Samples, r.Failed, r.FirstErr, r.Latency)
		}
	})
	t.Run("agent", func(t *testing.T) {
		if avail := memAvailable(); avail < AgentMemoryNeeded(8) {
			t.Skipf("MemAvailable %d MiB", avail>>20)
		}
		r, err := Agent(ctx, AgentConfig{Self: self, Tasks: 5, Extra: 3, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", r)
		if r.StartAll <= 0 || r.Agent.RSS == 0 || r.Agent.PSS == 0 || r.Shims != 5 || r.ShimPSS == 0 || r.Start.N != 3 {
			t.Errorf("missing figures: %+v", r)
		}
	})
	if pids := leftoverShims(self); len(pids) > 0 {
		t.Errorf("shims of %s still running: %v", self, pids)
	}
}

// leftoverShims lists running processes of the binary self (the servers,
// agents and shims of the benches; all must be gone).
func leftoverShims(self string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == self {
			pids = append(pids, pid)
		}
	}
	return pids
}
