package ctr_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/domain"
)

func hcInt(v int) *int { return &v }

func TestParseHealthCheck(t *testing.T) {
	cfg, ok := ctr.ParseHealthCheck(&domain.HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost || exit 1"}})
	if !ok || !slices.Equal(cfg.Argv, []string{"/bin/sh", "-c", "curl -f localhost || exit 1"}) {
		t.Fatalf("CMD-SHELL: %v %v", ok, cfg.Argv)
	}
	if cfg.Interval != 30*time.Second || cfg.Timeout != 5*time.Second || cfg.Retries != 3 || cfg.StartPeriod != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, ok = ctr.ParseHealthCheck(&domain.HealthCheck{Command: []string{"CMD", "/bin/check", "-v"},
		Interval: hcInt(7), Timeout: hcInt(2), Retries: hcInt(5), StartPeriod: hcInt(60)})
	if !ok || !slices.Equal(cfg.Argv, []string{"/bin/check", "-v"}) || cfg.Interval != 7*time.Second ||
		cfg.Timeout != 2*time.Second || cfg.Retries != 5 || cfg.StartPeriod != time.Minute {
		t.Fatalf("CMD: %v %+v", ok, cfg)
	}
	for _, cmd := range [][]string{nil, {"NONE"}, {"CMD"}, {"CMD-SHELL"}} {
		if _, ok := ctr.ParseHealthCheck(&domain.HealthCheck{Command: cmd}); ok {
			t.Fatalf("%q should not run", cmd)
		}
	}
	if _, ok := ctr.ParseHealthCheck(nil); ok {
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
		h := ctr.NewHealthState(ctr.HealthConfig{StartPeriod: c.startPeriod, Retries: c.retries}, t0, "")
		for i, s := range c.steps {
			h.Record(at(s.at), s.passed)
			if h.Status() != s.want {
				t.Fatalf("%s: step %d (t=%ds passed=%v): %s, want %s", c.name, i, s.at, s.passed, h.Status(), s.want)
			}
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := ctr.MergeEnv(
		[]string{"PATH=/bin", "HOME=/root", "junk", "A=1"},
		[]string{"HOME=/app", "B=2", "A=3", "=x"},
	)
	want := []string{"PATH=/bin", "HOME=/app", "A=3", "B=2"}
	if !slices.Equal(got, want) {
		t.Fatalf("MergeEnv = %q, want %q", got, want)
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"t1-app", "a", "A.b_c-9", strings.Repeat("x", 255)} {
		if err := ctr.ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".x", "a/b", "../x", "a b", strings.Repeat("x", 256)} {
		if err := ctr.ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) accepted it", bad)
		}
	}
}
