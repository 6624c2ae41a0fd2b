package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sigtermScript records, in $MARK/<its pid>, the wall-clock time (ns) at
// which its SIGTERM trap runs, and exits.
const sigtermScript = `trap "date +%s%N > $MARK/$$; exit 0" TERM; while :; do sleep 0.05; done`

// SigtermConfig configures Sigterm.
type SigtermConfig struct {
	Self    string
	Samples int
	Logf    func(format string, args ...any)
}

// SigtermResult is the outcome of Sigterm.
type SigtermResult struct {
	Samples  int
	Failed   int       // releases whose SIGTERM was not seen within 10 s
	Latency  Latencies // release call start -> trap ran in the task
	Call     Latencies // the release PUT itself (task -> agent -> control plane -> answer)
	FirstErr string
}

// Sigterm measures the time from a task releasing its protection (PUT
// false through its own endpoint) to SIGTERM reaching it, when the service
// has been scaled to 0 and the task was held only by its protection. The
// tasks are a shell that traps TERM and writes the time to a marker file;
// the latency is that time minus the time just before the PUT.
func Sigterm(ctx context.Context, cfg SigtermConfig) (res SigtermResult, err error) {
	if cfg.Samples < 1 {
		cfg.Samples = 1
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c, err := startCluster(ctx, cfg.Self, logf)
	if err != nil {
		return res, err
	}
	defer c.closeInto(&err)

	markDir := filepath.Join(c.dir, "marks")
	if err := os.Mkdir(markDir, 0o755); err != nil {
		return res, err
	}
	if err := c.registerTaskDefinition(ctx, "trapper", []string{"/bin/sh", "-c", sigtermScript}, map[string]string{"MARK": markDir}); err != nil {
		return res, err
	}
	n := cfg.Samples
	if err := c.createService(ctx, "sigterm", "trapper", n); err != nil {
		return res, err
	}
	if err := c.waitRunning(ctx, "sigterm", n, 20*time.Millisecond, 2*time.Minute); err != nil {
		return res, err
	}
	arns, err := c.listTasks(ctx, "sigterm")
	if err != nil {
		return res, err
	}
	if len(arns) < n {
		return res, fmt.Errorf("service has %d tasks, want %d", len(arns), n)
	}
	arns = arns[:n]
	recs := make([]agentRecord, n)
	for i, a := range arns {
		if recs[i], err = c.taskRecord(a); err != nil {
			return res, err
		}
		if recs[i].Containers[0].PID == 0 {
			return res, fmt.Errorf("task %s: record has no pid", a)
		}
	}
	if err := c.setProtection(ctx, arns, true, false); err != nil {
		return res, err
	}
	if err := c.scale(ctx, "sigterm", 0); err != nil {
		return res, err
	}
	// Give the scheduler time to act on the scale-in (it must not stop
	// anything), and check that it did not.
	if err := sleepCtx(ctx, time.Second); err != nil {
		return res, err
	}
	if running, _, err := c.serviceCounts(ctx, "sigterm"); err != nil {
		return res, err
	} else if running != n {
		return res, fmt.Errorf("after scale to 0 with all %d tasks protected, %d are running", n, running)
	}
	logf("%d protected tasks held at desired 0; releasing one at a time", n)

	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	off := []byte(`{"ProtectionEnabled":false}`)
	var lats, calls []time.Duration
	for i := range arns {
		mark := filepath.Join(markDir, strconv.Itoa(recs[i].Containers[0].PID))
		url := c.endpointURL(recs[i].Containers[0].EndpointID)
		t0 := time.Now()
		if _, err := putProtection(hc, url, off, false); err != nil {
			res.Failed++
			if res.FirstErr == "" {
				res.FirstErr = err.Error()
			}
			continue
		}
		calls = append(calls, time.Since(t0))
		at, err := waitMark(ctx, mark, 10*time.Second)
		if err != nil {
			res.Failed++
			if res.FirstErr == "" {
				res.FirstErr = err.Error()
			}
			continue
		}
		lats = append(lats, at.Sub(t0))
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
	}
	res.Samples = len(lats)
	res.Latency = summarize(lats)
	res.Call = summarize(calls)
	return res, nil
}

// waitMark polls for the marker file and returns the time written in it.
func waitMark(ctx context.Context, path string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		// The shell writes the line in one write; a partial read shows
		// as a missing newline.
		if err == nil && strings.HasSuffix(string(b), "\n") {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("marker %s: %q", path, b)
			}
			return time.Unix(0, ns), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no SIGTERM marker %s after %s", path, timeout)
		}
		// The latency is read from the file, so the polling period only
		// costs CPU, not accuracy.
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}
