package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/store/storecfg"
)

// ReloadResult is the outcome of Reload.
type ReloadResult struct {
	Tasks      int
	SeedTime   time.Duration
	StoreBytes int64
	Load       time.Duration // open the store and rebuild the in-memory state
	RSS        int64         // resident set after the load, bytes
	HWM        int64         // peak resident set, bytes
}

// Reload stores tasks tasks (services of 10,000), stops the control
// plane, then starts a fresh process (self, with childArgs + dir) that
// loads the data dir, and reports its load time and memory.
func Reload(ctx context.Context, tasks int, self string, childArgs []string) (ReloadResult, error) {
	dir, err := os.MkdirTemp("", "holdfast-reload-")
	if err != nil {
		return ReloadResult{}, err
	}
	defer os.RemoveAll(dir)
	res := ReloadResult{Tasks: tasks}
	t0 := time.Now()
	sctx, cancel := context.WithCancel(ctx)
	srv, _, stopped, err := startServer(sctx, dir, storecfg.Config{})
	if err != nil {
		cancel()
		return res, err
	}
	const per = 10000
	for i := 0; i*per < tasks; i++ {
		n := min(per, tasks-i*per)
		name := fmt.Sprintf("svc%02d", i)
		if i == 0 {
			_, err = seedService(ctx, srv, name, n)
		} else {
			_, err = seedMore(ctx, srv.ECS, name, n)
		}
		if err != nil {
			cancel()
			return res, err
		}
	}
	res.SeedTime = time.Since(t0)
	cancel()
	<-stopped // the store's file lock is released
	if fi, err := os.Stat(filepath.Join(dir, "holdfast.db")); err == nil {
		res.StoreBytes = fi.Size()
	}
	cmd := exec.CommandContext(ctx, self, append(childArgs, dir)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("reload child: %w", err)
	}
	for _, f := range strings.Fields(string(out)) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "load_ns":
			res.Load = time.Duration(n)
		case "rss":
			res.RSS = n
		case "hwm":
			res.HWM = n
		}
	}
	return res, nil
}

func seedMore(ctx context.Context, st *control.ECS, name string, n int) ([]string, error) {
	if _, err := st.CreateService(ctx, control.CreateServiceInput{ServiceName: name, TaskDefinition: "bench", DesiredCount: &n}); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := st.DescribeServices(ctx, control.DescribeServicesInput{Services: []string{name}})
		if err != nil {
			return nil, err
		}
		if len(out.Services) == 1 && out.Services[0].PendingCount+out.Services[0].RunningCount >= n {
			return nil, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("service %s did not reach %d tasks", name, n)
}

// ReloadChild is the child side of Reload: it opens the data dir as a
// control plane does at start, and prints load_ns, rss and hwm.
func ReloadChild(dir string) error {
	t0 := time.Now()
	srv, err := openServer(dir, storecfg.Config{})
	if err != nil {
		return err
	}
	load := time.Since(t0)
	runtime.GC()
	rss, hwm := procStatus()
	fmt.Printf("load_ns=%d rss=%d hwm=%d\n", load.Nanoseconds(), rss, hwm)
	_ = srv
	return nil
}

// procStatus reads VmRSS and VmHWM of this process, in bytes.
func procStatus() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			hwm = kb * 1024
		}
	}
	return rss, hwm
}
