package bench

import (
	"context"
	"fmt"
	"time"
)

// AgentConfig configures Agent.
type AgentConfig struct {
	Self  string
	Tasks int // sleeping tasks on the one agent
	Extra int // tasks then started one at a time for the start latency
	Logf  func(format string, args ...any)
}

// AgentResult is the outcome of Agent.
type AgentResult struct {
	Tasks int
	// StartAll is from the CreateService call until DescribeServices showed
	// every task RUNNING (polled every 50 ms); StartAllServer until the
	// last task's startedAt (control-plane clock, 1 ms resolution).
	StartAll, StartAllServer time.Duration
	Agent                    Memory // the agent process, with all tasks RUNNING
	Shims                    int    // shim processes found
	ShimRSS, ShimPSS         int64  // summed over the shims
	// Start is createdAt -> startedAt (DescribeTasks, 1 ms resolution) of
	// the extra tasks, each started alone (scale +1, wait RUNNING) while
	// the others run; StartClient is UpdateService call -> runningCount
	// showed it (polled every 5 ms).
	Start, StartClient Latencies
	AgentAfter         Memory // the agent after the extra tasks
	// APIRetries counts the bench's API calls that failed in transport
	// and were sent again.
	APIRetries int
}

// AgentMemoryNeeded is the MemAvailable Agent requires for tasks tasks:
// 4 GiB per 1,000 (a shim and its program are two processes per task).
func AgentMemoryNeeded(tasks int) int64 {
	return max(256<<20, int64(tasks)*(4<<30)/1000)
}

// Agent measures one agent process running many sleeping tasks: its memory
// and that of the shims once all are RUNNING, how long they took to start,
// and the start latency of single tasks started while they run.
func Agent(ctx context.Context, cfg AgentConfig) (res AgentResult, err error) {
	if cfg.Tasks < 1 {
		cfg.Tasks = 1
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if avail, need := memAvailable(), AgentMemoryNeeded(cfg.Tasks+cfg.Extra); avail < need {
		return res, fmt.Errorf("not starting %d tasks: MemAvailable is %d MiB, this bench wants at least %d MiB free; free some memory or use a smaller --tasks",
			cfg.Tasks+cfg.Extra, avail>>20, need>>20)
	}
	res.Tasks = cfg.Tasks
	c, err := startCluster(ctx, cfg.Self, logf)
	if err != nil {
		return res, err
	}
	defer c.closeInto(&err)

	if err := c.registerTaskDefinition(ctx, "sleeper", []string{"sleep", "3600"}, nil); err != nil {
		return res, err
	}
	t0 := time.Now()
	if err := c.createService(ctx, "fleet", "sleeper", cfg.Tasks); err != nil {
		return res, err
	}
	if err := c.waitRunning(ctx, "fleet", cfg.Tasks, 50*time.Millisecond, 10*time.Minute); err != nil {
		return res, err
	}
	res.StartAll = time.Since(t0)
	arns, err := c.listTasks(ctx, "fleet")
	if err != nil {
		return res, err
	}
	tasks, err := c.describeTasks(ctx, arns)
	if err != nil {
		return res, err
	}
	var last time.Time
	for _, t := range tasks {
		if t.StartedAt != 0 && t.StartedAt.Time().After(last) {
			last = t.StartedAt.Time()
		}
	}
	res.StartAllServer = last.Sub(t0)
	logf("%d tasks RUNNING after %s; letting the agent settle", cfg.Tasks, res.StartAll.Round(time.Millisecond))

	// Let the agent finish its status reports and the Go runtime return
	// what the start burst needed before reading memory.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return res, err
	}
	if res.Agent, err = procMemory(c.agent.Process.Pid); err != nil {
		return res, err
	}
	for _, pid := range shimPIDs(c.agentDir) {
		m, err := procMemory(pid)
		if err != nil {
			continue // exited meanwhile
		}
		res.Shims++
		res.ShimRSS += m.RSS
		res.ShimPSS += m.PSS
	}

	known := map[string]bool{}
	for _, a := range arns {
		known[a] = true
	}
	var start, client []time.Duration
	logf("starting %d more tasks one at a time", cfg.Extra)
	for i := 1; i <= cfg.Extra; i++ {
		want := cfg.Tasks + i
		t1 := time.Now()
		if err := c.scale(ctx, "fleet", want); err != nil {
			return res, err
		}
		if err := c.waitRunning(ctx, "fleet", want, 5*time.Millisecond, time.Minute); err != nil {
			return res, err
		}
		client = append(client, time.Since(t1))
		now, err := c.listTasks(ctx, "fleet")
		if err != nil {
			return res, err
		}
		var fresh []string
		for _, a := range now {
			if !known[a] {
				known[a] = true
				fresh = append(fresh, a)
			}
		}
		if len(fresh) != 1 {
			return res, fmt.Errorf("scale to %d: %d new tasks, want 1", want, len(fresh))
		}
		d, err := c.describeTasks(ctx, fresh)
		if err != nil {
			return res, err
		}
		if len(d) != 1 || d[0].CreatedAt == 0 || d[0].StartedAt == 0 {
			return res, fmt.Errorf("task %s: no createdAt/startedAt", fresh[0])
		}
		if s := d[0].LastStatus; s != "RUNNING" {
			return res, fmt.Errorf("task %s is %s, want RUNNING", fresh[0], s)
		}
		start = append(start, d[0].StartedAt.Time().Sub(d[0].CreatedAt.Time()))
	}
	res.Start = summarize(start)
	res.StartClient = summarize(client)
	res.AgentAfter, _ = procMemory(c.agent.Process.Pid)
	res.APIRetries = c.apiRetries
	logf("cleaning up %d tasks", cfg.Tasks+cfg.Extra)
	return res, nil
}
