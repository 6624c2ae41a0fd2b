//go:build linux

package process

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/runtime/process/shim"
)

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs
// cgo to ask).
const clockTicks = 100

// Stats sums the CPU time and resident memory of every process in the
// container's process group, read from /proc. The process runtime sets no
// memory limit, so MemoryLimitBytes is 0.
func (r *Runtime) Stats(ctx context.Context, id string) (ctr.Stats, error) {
	c, err := r.lookup(id)
	if err != nil {
		return ctr.Stats{}, err
	}
	c.mu.Lock()
	pid, start, running := c.pid, c.pidStart, c.running && !c.exited
	c.mu.Unlock()
	if !running || !shim.SameProcess(pid, start) {
		return ctr.Stats{}, fmt.Errorf("%w: %s", ctr.ErrNotRunning, id)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return ctr.Stats{}, err
	}
	page := uint64(os.Getpagesize())
	st := ctr.Stats{At: time.Now().UTC()}
	var ticks uint64
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := shim.ReadStat(p)
		if err != nil || f.Pgrp != pid {
			continue // gone meanwhile, or not ours
		}
		st.PIDs++
		ticks += f.Utime + f.Stime
		st.MemoryBytes += f.RSS * page
	}
	st.CPU = time.Duration(ticks) * time.Second / clockTicks
	return st, nil
}
