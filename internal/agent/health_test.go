package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

func hcInt(v int) *int { return &v }

func TestParseHealthCheck(t *testing.T) {
	cfg, ok := parseHealthCheck(&domain.HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost || exit 1"}})
	if !ok || !slices.Equal(cfg.argv, []string{"/bin/sh", "-c", "curl -f localhost || exit 1"}) {
		t.Fatalf("CMD-SHELL: %v %v", ok, cfg.argv)
	}
	if cfg.interval != 30*time.Second || cfg.timeout != 5*time.Second || cfg.retries != 3 || cfg.startPeriod != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, ok = parseHealthCheck(&domain.HealthCheck{Command: []string{"CMD", "/bin/check", "-v"},
		Interval: hcInt(7), Timeout: hcInt(2), Retries: hcInt(5), StartPeriod: hcInt(60)})
	if !ok || !slices.Equal(cfg.argv, []string{"/bin/check", "-v"}) || cfg.interval != 7*time.Second ||
		cfg.timeout != 2*time.Second || cfg.retries != 5 || cfg.startPeriod != time.Minute {
		t.Fatalf("CMD: %v %+v", ok, cfg)
	}
	for _, cmd := range [][]string{nil, {"NONE"}, {"CMD"}, {"CMD-SHELL"}} {
		if _, ok := parseHealthCheck(&domain.HealthCheck{Command: cmd}); ok {
			t.Fatalf("%q should not run", cmd)
		}
	}
	if _, ok := parseHealthCheck(nil); ok {
		t.Fatal("nil health check should not run")
	}
}

func TestHealthStateMachine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		at     int
		passed bool
		want   string
	}
	cases := []struct {
		name        string
		startPeriod time.Duration
		retries     int
		steps       []step
	}{
		{"retries consecutive failures", 0, 3, []step{
			{30, false, "UNKNOWN"}, {60, false, "UNKNOWN"}, {90, false, "UNHEALTHY"},
			{120, true, "HEALTHY"}, {150, false, "HEALTHY"}, {180, true, "HEALTHY"},
			{210, false, "HEALTHY"}, {240, false, "HEALTHY"}, {270, false, "UNHEALTHY"},
		}},
		{"start period failures do not count", 100 * time.Second, 2, []step{
			{30, false, "UNKNOWN"}, {60, false, "UNKNOWN"}, {90, false, "UNKNOWN"},
			{120, false, "UNKNOWN"}, {150, false, "UNHEALTHY"},
		}},
		{"start period ends at the first pass", 100 * time.Second, 1, []step{
			{10, true, "HEALTHY"}, {20, false, "UNHEALTHY"},
		}},
		{"retries 1", 0, 1, []step{{5, true, "HEALTHY"}, {10, false, "UNHEALTHY"}, {15, true, "HEALTHY"}}},
	}
	for _, c := range cases {
		h := newHealthState(healthConfig{startPeriod: c.startPeriod, retries: c.retries}, t0, "")
		for i, s := range c.steps {
			h.record(at(s.at), s.passed)
			if h.status != s.want {
				t.Fatalf("%s: step %d (t=%ds passed=%v): %s, want %s", c.name, i, s.at, s.passed, h.status, s.want)
			}
		}
	}
}

func TestHealthProbe(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "WANT=yes"}
	ok := healthConfig{argv: []string{"/bin/sh", "-c", `test "$WANT" = yes && test -f marker`}, timeout: 10 * time.Second}
	if !probe(context.Background(), ok, env, dir) {
		t.Fatal("a probe with the container's env and dir should pass")
	}
	if probe(context.Background(), ok, env, t.TempDir()) {
		t.Fatal("the probe did not run in the container's dir")
	}
	if probe(context.Background(), healthConfig{argv: []string{"false"}, timeout: 10 * time.Second}, env, dir) {
		t.Fatal("exit 1 should fail")
	}
	if probe(context.Background(), healthConfig{argv: []string{"/no/such/program"}, timeout: 10 * time.Second}, env, dir) {
		t.Fatal("a probe that cannot start should fail")
	}
	// A probe past its timeout fails, and its whole process group is killed.
	slow := healthConfig{argv: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, timeout: 100 * time.Millisecond}
	if probe(context.Background(), slow, env, dir) {
		t.Fatal("a probe past its timeout should fail")
	}
}

// TestHealthLoopReportsChanges runs the monitor of one container against a
// probe that passes while a file exists.
func TestHealthLoopReportsChanges(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := &Agent{
		cfg:        Config{DataDir: data, Listen: "127.0.0.1:1"},
		log:        slog.New(slog.DiscardHandler),
		tasks:      map[string]*localTask{},
		reportWake: make(chan struct{}, 1),
	}
	work := t.TempDir()
	td := &domain.TaskDefinition{Family: "hc", Revision: 1, ContainerDefinitions: []domain.ContainerDefinition{{
		Name: "app", Image: "x", Command: []string{"sleep", "1"}, WorkingDirectory: work,
		HealthCheck: &domain.HealthCheck{Command: []string{"CMD-SHELL", "test -f ok"}},
	}}}
	a.tasks["t1"] = &localTask{ID: "t1", ARN: "arn:aws:ecs:us-east-1:1:task/c/t1", TaskDef: td,
		DesiredStatus: domain.StatusRunning, KnownStatus: domain.StatusRunning,
		Containers: []localContainer{{Name: "app", RuntimeID: "t1-app", Status: domain.StatusRunning, StartedAt: time.Now()}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := healthConfig{argv: []string{"/bin/sh", "-c", "test -f ok"}, interval: 10 * time.Millisecond, timeout: 5 * time.Second, retries: 2}
	done := make(chan struct{})
	go func() {
		a.healthLoop(ctx, "t1", "app", "t1-app", cfg, newHealthState(cfg, time.Now(), ""), []string{"PATH=" + os.Getenv("PATH")}, work)
		close(done)
	}()
	waitHealth := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			a.mu.Lock()
			got := a.tasks["t1"].Containers[0].HealthStatus
			dirty := a.tasks["t1"].reportDirty
			a.mu.Unlock()
			if got == want && dirty {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("container health never became %s", want)
	}
	if err := os.WriteFile(filepath.Join(work, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitHealth(domain.Healthy)
	a.mu.Lock()
	a.tasks["t1"].reportDirty = false
	a.mu.Unlock()
	if err := os.Remove(filepath.Join(work, "ok")); err != nil {
		t.Fatal(err)
	}
	waitHealth(domain.Unhealthy)
	// The monitor ends once the task is being stopped.
	a.mu.Lock()
	a.tasks["t1"].DesiredStatus = domain.StatusStopped
	a.mu.Unlock()
	<-done
}

func TestTaskHealthRule(t *testing.T) {
	hc := &domain.HealthCheck{Command: []string{"CMD", "true"}}
	no := false
	td := &domain.TaskDefinition{ContainerDefinitions: []domain.ContainerDefinition{
		{Name: "a", HealthCheck: hc},
		{Name: "b", HealthCheck: hc},
		{Name: "c"},                                  // essential, no health check
		{Name: "d", HealthCheck: hc, Essential: &no}, // non-essential
	}}
	ch := func(a, b, d string) []domain.ContainerHealth {
		return []domain.ContainerHealth{{Name: "a", Status: a}, {Name: "b", Status: b}, {Name: "c", Status: "UNKNOWN"}, {Name: "d", Status: d}}
	}
	for _, c := range []struct{ a, b, d, want string }{
		{"HEALTHY", "HEALTHY", "UNHEALTHY", "HEALTHY"},
		{"HEALTHY", "UNKNOWN", "HEALTHY", "UNKNOWN"},
		{"HEALTHY", "UNHEALTHY", "HEALTHY", "UNHEALTHY"},
		{"UNKNOWN", "UNHEALTHY", "HEALTHY", "UNHEALTHY"},
		{"", "", "", "UNKNOWN"},
	} {
		if got := domain.TaskHealth(td, ch(c.a, c.b, c.d)); got != c.want {
			t.Fatalf("%+v: %s", c, got)
		}
	}
	plain := &domain.TaskDefinition{ContainerDefinitions: []domain.ContainerDefinition{{Name: "x"}}}
	if got := domain.TaskHealth(plain, nil); got != "UNKNOWN" {
		t.Fatalf("no health check: %s", got)
	}
}
