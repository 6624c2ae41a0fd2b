package protection

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// EnvAgentURI is the variable the ECS agent (and holdfast's) injects into
// every container: http://169.254.170.2/api/<id> on ECS.
const EnvAgentURI = "ECS_AGENT_URI"

// Defaults.
const (
	// DefaultExpiryMinutes is the expiry a lease asks for when neither
	// WithExpiry nor AcquireFor gives one. Renewal keeps a held lease
	// protected; the expiry only bounds how long a crashed process leaves
	// its task protected.
	DefaultExpiryMinutes = 10
	// MaxExpiryMinutes is the largest expiry ECS accepts (48 hours).
	MaxExpiryMinutes = 2880
	// DefaultMaxAttempts bounds the attempts of one endpoint call.
	DefaultMaxAttempts = 6
	// DefaultBackoffBase and DefaultBackoffMax shape the retry backoff:
	// attempt n waits a random duration in [0, min(max, base*2^n)).
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 8 * time.Second
	// DefaultCallTimeout bounds one HTTP request when the http.Client has
	// no timeout of its own. It is above the agent's 4 s ECS-call budget.
	DefaultCallTimeout = 10 * time.Second
)

// Clock is the time source for renewal and backoff. Tests pass a fake.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f (in its own goroutine or synchronously, either is
	// fine) once d has elapsed, unless stop is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

type config struct {
	agentURI    string
	uriSet      bool
	httpClient  *http.Client
	logger      *slog.Logger
	clock       Clock
	expiry      int
	renewAt     float64
	maxAttempts int
	backoffBase time.Duration
	backoffMax  time.Duration
	onRenew     func(Status, error)
}

// Option configures a Protector.
type Option func(*config)

// WithEndpoint sets the agent URI (what ECS_AGENT_URI holds, without the
// /task-protection/v1/state suffix), overriding the environment. An empty
// string forces no-op mode.
func WithEndpoint(agentURI string) Option {
	return func(c *config) { c.agentURI, c.uriSet = agentURI, true }
}

// WithHTTPClient sets the HTTP client (default: a client with a 10 s
// timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock used for renewal and backoff (tests).
func WithClock(clk Clock) Option { return func(c *config) { c.clock = clk } }

// WithExpiry sets the default expiry in minutes (1-2880) of leases taken
// with Acquire.
func WithExpiry(minutes int) Option { return func(c *config) { c.expiry = minutes } }

// WithRenewAt sets when a held protection is renewed, as the fraction of
// its expiry that has elapsed (0 < f < 1; default 0.5).
func WithRenewAt(fraction float64) Option { return func(c *config) { c.renewAt = fraction } }

// WithRetry sets the number of attempts per call and the backoff shape.
// Retried: the agent's 429, throttling error codes (ThrottlingException…),
// RequestCanceled (504), server faults and connection errors.
func WithRetry(maxAttempts int, base, max time.Duration) Option {
	return func(c *config) { c.maxAttempts, c.backoffBase, c.backoffMax = maxAttempts, base, max }
}

// WithRenewHook sets a function called from the renewal goroutine after
// every background renewal attempt: with the new Status, or with the error
// when it failed (the leases stay held and renewal is retried at a tenth of
// the expiry). It must not block for long.
func WithRenewHook(f func(Status, error)) Option { return func(c *config) { c.onRenew = f } }

// Protector manages the scale-in protection of the task it runs in through
// the agent endpoint ($ECS_AGENT_URI/task-protection/v1/state). It is safe
// for concurrent use.
//
// Protection is counted: every Acquire returns a Lease; the first lease
// enables protection, the last Release disables it, and while any lease is
// held the protection is renewed before it expires.
type Protector struct {
	cfg  config
	url  string // "" in no-op mode
	log  *slog.Logger
	noop bool

	opMu sync.Mutex // serializes endpoint transitions

	mu        sync.Mutex
	leases    map[*Lease]struct{}
	protected bool      // enabled by us and not disabled since
	minutes   int       // expiry of the current protection
	renewDue  time.Time // when the current protection should be renewed
	expiresAt time.Time
	stopRenew func() bool
	gen       uint64 // bumped whenever the renewal schedule changes
}

// New returns a Protector. Without WithEndpoint it reads ECS_AGENT_URI;
// when that is unset it returns a Protector in no-op mode (every call
// succeeds and nothing is sent), and logs that once.
func New(opts ...Option) (*Protector, error) {
	cfg := config{
		expiry:      DefaultExpiryMinutes,
		renewAt:     0.5,
		maxAttempts: DefaultMaxAttempts,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if !cfg.uriSet {
		cfg.agentURI = os.Getenv(EnvAgentURI)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{Timeout: DefaultCallTimeout}
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.clock == nil {
		cfg.clock = realClock{}
	}
	if cfg.expiry < 1 || cfg.expiry > MaxExpiryMinutes {
		return nil, fmt.Errorf("protection: expiry %d minutes is outside 1-%d", cfg.expiry, MaxExpiryMinutes)
	}
	if !(cfg.renewAt > 0 && cfg.renewAt < 1) {
		return nil, fmt.Errorf("protection: renew fraction %v is outside (0, 1)", cfg.renewAt)
	}
	if cfg.maxAttempts < 1 {
		cfg.maxAttempts = 1
	}
	p := &Protector{cfg: cfg, log: cfg.logger, leases: map[*Lease]struct{}{}}
	if cfg.agentURI == "" {
		p.noop = true
		p.log.Info("task protection disabled: " + EnvAgentURI + " is not set (not running in an ECS or holdfast task); protection calls will succeed without effect")
	} else {
		p.url = strings.TrimRight(cfg.agentURI, "/") + statePath
	}
	return p, nil
}

// NoOp reports whether the Protector is in no-op mode.
func (p *Protector) NoOp() bool { return p.noop }

// Held returns the number of leases currently held.
func (p *Protector) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.leases)
}

// Lease is one holder's claim on the task's protection.
type Lease struct {
	p          *Protector
	name       string
	minutes    int
	acquiredAt time.Time
	released   bool // guarded by p.mu
}

// Name returns the name given at Acquire.
func (l *Lease) Name() string { return l.name }

// AcquiredAt returns when the lease was taken (the Protector's clock).
func (l *Lease) AcquiredAt() time.Time { return l.acquiredAt }

// Acquire takes a lease named name (for logs) with the default expiry. If
// no lease was held, the task is protected first; the call returns only once
// the endpoint has confirmed the protection. On a refusal (for example
// errors.Is(err, ErrDeploymentBlocked)) no lease is held and the task is not
// protected: do not start the work.
func (p *Protector) Acquire(ctx context.Context, name string) (*Lease, error) {
	return p.AcquireFor(ctx, name, p.cfg.expiry)
}

// AcquireFor is Acquire with an expiry in minutes (1-2880) for this lease.
// The task's protection always uses the largest expiry among held leases.
func (p *Protector) AcquireFor(ctx context.Context, name string, minutes int) (*Lease, error) {
	if minutes < 1 || minutes > MaxExpiryMinutes {
		return nil, fmt.Errorf("protection: expiry %d minutes is outside 1-%d", minutes, MaxExpiryMinutes)
	}
	p.opMu.Lock()
	defer p.opMu.Unlock()
	l := &Lease{p: p, name: name, minutes: minutes, acquiredAt: p.cfg.clock.Now()}
	if p.noop {
		p.mu.Lock()
		p.leases[l] = struct{}{}
		p.mu.Unlock()
		return l, nil
	}
	p.mu.Lock()
	need := !p.protected || minutes > p.minutes || !p.cfg.clock.Now().Before(p.renewDue)
	m := max(minutes, p.maxMinutesLocked())
	p.mu.Unlock()
	if need {
		if _, err := p.enable(ctx, m); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	p.leases[l] = struct{}{}
	n := len(p.leases)
	p.mu.Unlock()
	p.log.Debug("task protection lease acquired", "lease", name, "held", n)
	return l, nil
}

// Release gives the lease back. Releasing the last lease disables the
// task's protection. Releasing twice is a no-op. If disabling fails the
// lease is still released and renewal stops, so the protection ends at its
// expiry at the latest; the error says why.
func (l *Lease) Release(ctx context.Context) error {
	p := l.p
	p.opMu.Lock()
	defer p.opMu.Unlock()
	p.mu.Lock()
	if l.released {
		p.mu.Unlock()
		return nil
	}
	l.released = true
	delete(p.leases, l)
	last := len(p.leases) == 0
	if last {
		p.cancelRenewLocked()
		p.protected = false
	}
	p.mu.Unlock()
	p.log.Debug("task protection lease released", "lease", l.name, "last", last)
	if !last || p.noop {
		return nil
	}
	if _, err := p.call(ctx, http.MethodPut, &putBody{ProtectionEnabled: false}); err != nil {
		return fmt.Errorf("disable task protection (it ends at its expiry at the latest): %w", err)
	}
	return nil
}

// Close releases every held lease (disabling protection) and stops renewal.
func (p *Protector) Close(ctx context.Context) error {
	p.mu.Lock()
	ls := make([]*Lease, 0, len(p.leases))
	for l := range p.leases {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	var err error
	for _, l := range ls {
		if e := l.Release(ctx); e != nil {
			err = e
		}
	}
	return err
}

// Get returns the task's protection as the endpoint reports it (GET). In
// no-op mode it returns a zero Status.
func (p *Protector) Get(ctx context.Context) (Status, error) {
	if p.noop {
		return Status{}, nil
	}
	return p.call(ctx, http.MethodGet, nil)
}

// Set enables protection for minutes with a single PUT, bypassing the
// leases (no renewal). Most code wants Acquire.
func (p *Protector) Set(ctx context.Context, minutes int) (Status, error) {
	if p.noop {
		return Status{}, nil
	}
	return p.call(ctx, http.MethodPut, &putBody{ProtectionEnabled: true, ExpiresInMinutes: &minutes})
}

// Clear disables protection with a single PUT, bypassing the leases.
func (p *Protector) Clear(ctx context.Context) (Status, error) {
	if p.noop {
		return Status{}, nil
	}
	return p.call(ctx, http.MethodPut, &putBody{ProtectionEnabled: false})
}

// maxMinutesLocked returns the largest expiry among held leases (0: none).
func (p *Protector) maxMinutesLocked() int {
	m := 0
	for l := range p.leases {
		m = max(m, l.minutes)
	}
	return m
}

// enable PUTs protection for minutes and schedules the next renewal.
// Called with opMu held.
func (p *Protector) enable(ctx context.Context, minutes int) (Status, error) {
	start := p.cfg.clock.Now()
	st, err := p.call(ctx, http.MethodPut, &putBody{ProtectionEnabled: true, ExpiresInMinutes: &minutes})
	if err != nil {
		return st, err
	}
	if !st.Enabled {
		return st, &APIError{Status: http.StatusOK, Code: "InvalidResponse", Message: "the endpoint answered ProtectionEnabled=false to an enable request", Arn: st.TaskArn}
	}
	life := time.Duration(minutes) * time.Minute
	p.mu.Lock()
	defer p.mu.Unlock()
	p.protected = true
	p.minutes = minutes
	p.expiresAt = start.Add(life)
	p.renewDue = start.Add(time.Duration(float64(life) * p.cfg.renewAt))
	p.scheduleLocked(p.renewDue.Sub(p.cfg.clock.Now()))
	return st, nil
}

func (p *Protector) cancelRenewLocked() {
	p.gen++
	if p.stopRenew != nil {
		p.stopRenew()
		p.stopRenew = nil
	}
}

func (p *Protector) scheduleLocked(d time.Duration) {
	p.cancelRenewLocked()
	gen := p.gen
	p.stopRenew = p.cfg.clock.AfterFunc(d, func() { go p.renew(gen) })
}

// renew runs when a held protection is due for renewal.
func (p *Protector) renew(gen uint64) {
	st, err, ran := p.renewOnce(gen)
	if ran && p.cfg.onRenew != nil {
		p.cfg.onRenew(st, err)
	}
}

func (p *Protector) renewOnce(gen uint64) (Status, error, bool) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	p.mu.Lock()
	if gen != p.gen || len(p.leases) == 0 {
		p.mu.Unlock()
		return Status{}, nil, false
	}
	m := p.maxMinutesLocked()
	expires := p.expiresAt
	p.mu.Unlock()
	now := p.cfg.clock.Now()
	// Give the attempt until the protection would lapse, at most a minute.
	budget := min(max(expires.Sub(now), 5*time.Second), time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	st, err := p.enable(ctx, m)
	if err == nil {
		p.log.Debug("task protection renewed", "minutes", m, "expires", st.ExpirationDate)
		return st, nil, true
	}
	p.log.Warn("task protection: renewal failed", "error", err)
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return Status{}, err, true
	}
	now = p.cfg.clock.Now()
	if !now.Before(p.expiresAt) {
		// Lapsed: the next Acquire (or the retry below) protects again.
		p.protected = false
	}
	// Retry at a tenth of the expiry (at least 5 s), while leases are held.
	p.scheduleLocked(max(time.Duration(m)*time.Minute/10, 5*time.Second))
	return Status{}, err, true
}
