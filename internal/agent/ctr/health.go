package ctr

import (
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

// Container health checks, for runtimes that run them themselves (the
// process runtime, the fake); Docker runs a container's healthCheck itself
// and only reports its verdicts.
//
//   - ["CMD-SHELL", "cmd"] runs /bin/sh -c "cmd"; ["CMD", "prog", "arg"...]
//     runs prog directly; ["NONE"] (or no command) disables the check. Any
//     other first element is read as the program itself (Docker rejects it).
//   - The first probe runs `interval` after the container started, then one
//     every `interval` after the previous one ended (probes never overlap).
//     A probe passes on exit code 0; any other exit, a start error, or
//     running past `timeout` is a failure.
//   - Status starts UNKNOWN (Docker's "starting"). A pass makes it HEALTHY and
//     resets the failure streak. A failure while still UNKNOWN and within
//     `startPeriod` of the container's start does not count; any other
//     failure extends the streak, and `retries` consecutive failures make it
//     UNHEALTHY.
//   - Defaults are ECS's: interval 30 s, timeout 5 s, retries 3, startPeriod
//     0. Values of 0 or less read as the default (startPeriod: as 0).

// HealthConfig is a parsed container healthCheck.
type HealthConfig struct {
	Argv        []string
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// ParseHealthCheck reads hc with ECS's defaults; ok is false when there is
// nothing to run.
func ParseHealthCheck(hc *domain.HealthCheck) (cfg HealthConfig, ok bool) {
	if !hc.Enabled() {
		return cfg, false
	}
	switch hc.Command[0] {
	case "CMD-SHELL":
		if len(hc.Command) < 2 {
			return cfg, false
		}
		cfg.Argv = []string{"/bin/sh", "-c", hc.Command[1]}
	case "CMD":
		if len(hc.Command) < 2 {
			return cfg, false
		}
		cfg.Argv = append([]string(nil), hc.Command[1:]...)
	default:
		cfg.Argv = append([]string(nil), hc.Command...)
	}
	secs := func(p *int, def int) time.Duration {
		if p == nil || *p <= 0 {
			return time.Duration(def) * time.Second
		}
		return time.Duration(*p) * time.Second
	}
	cfg.Interval = secs(hc.Interval, 30)
	cfg.Timeout = secs(hc.Timeout, 5)
	if hc.StartPeriod != nil && *hc.StartPeriod > 0 {
		cfg.StartPeriod = time.Duration(*hc.StartPeriod) * time.Second
	}
	cfg.Retries = 3
	if hc.Retries != nil && *hc.Retries > 0 {
		cfg.Retries = *hc.Retries
	}
	return cfg, true
}

// HealthState is Docker's health state machine for one container.
type HealthState struct {
	startPeriod time.Duration
	retries     int
	started     time.Time // when the container started
	status      string    // UNKNOWN, HEALTHY or UNHEALTHY
	streak      int       // consecutive failures that counted
}

// NewHealthState starts the state machine of a container that started at
// started, from status (a verdict kept across an agent restart; anything
// but HEALTHY or UNHEALTHY starts UNKNOWN).
func NewHealthState(cfg HealthConfig, started time.Time, status string) *HealthState {
	if status != domain.Healthy && status != domain.Unhealthy {
		status = domain.Unknown
	}
	return &HealthState{startPeriod: cfg.StartPeriod, retries: max(cfg.Retries, 1), started: started, status: status}
}

// Status is the current verdict.
func (h *HealthState) Status() string { return h.status }

// Record applies the result of a probe that started at probeStart and
// reports whether the status changed.
func (h *HealthState) Record(probeStart time.Time, passed bool) bool {
	old := h.status
	if passed {
		h.streak = 0
		h.status = domain.Healthy
		return old != h.status
	}
	if h.status == domain.Unknown && probeStart.Sub(h.started) < h.startPeriod {
		return false // failures in the start period do not count
	}
	h.streak++
	if h.streak >= h.retries {
		h.status = domain.Unhealthy
	}
	return old != h.status
}
