package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/control"
	"github.com/holdfast/holdfast/internal/domain"
	"github.com/holdfast/holdfast/internal/iam"
	"github.com/holdfast/holdfast/internal/netguard"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/storecfg"
)

// Config configures a control plane.
type Config struct {
	DataDir         string
	Listen          string
	Region          string
	AccountID       string
	AccessKeyID     string
	SecretAccessKey string
	// HeartbeatTimeout: an instance whose agent is silent this long is
	// marked disconnected and its tasks are replaced (default 30 s).
	HeartbeatTimeout time.Duration
	// RateLimits turns on ECS's API rate limits.
	RateLimits bool
	// TaskCredentialsDuration is how long the role sessions issued for
	// tasks last (default DefaultTaskCredentialsDuration); tests shorten
	// it to see agents refresh them.
	TaskCredentialsDuration time.Duration
	// DefaultCluster, if set, is created at start.
	DefaultCluster string
	// MetricsPeriod is the period of holdfast's own metrics and of the
	// alarms target tracking manages (--metrics-period; default 60 s).
	MetricsPeriod time.Duration
	// Store selects the backend; the zero value is bolt in DataDir.
	Store storecfg.Config
	// Clock drives the control plane (protection expiry, the controller).
	Clock clock.Clock
	// TLSCertFile and TLSKeyFile, when set, serve --listen over TLS
	// (see tls.go).
	TLSCertFile, TLSKeyFile string
	// IdentityClock is the identities' clock: SigV4 signature times, STS
	// session expiry, aws:CurrentTime. Nil is the wall clock, whatever
	// Clock is: clients sign with the wall clock. Tests give a fake one
	// that stays within SigV4's 15 minutes of it.
	IdentityClock clock.Clock
	Logger        *slog.Logger
	// WrapBackend, if set, wraps the store backend before the control plane
	// uses it (tests inject store failures with it).
	WrapBackend func(store.Backend) store.Backend
	// Limits bound the API listener (timeouts, header size, connections);
	// zero fields take netguard.APIDefaults().
	Limits netguard.Limits
	// BodyBytesInFlight, BodyBytesInFlightPerClient and Heartbeat are the
	// API's (api.Config); zero takes api's defaults.
	BodyBytesInFlight          int64
	BodyBytesInFlightPerClient int64
	Heartbeat                  time.Duration
}

// Server is a running control plane.
type Server struct {
	cfg        Config
	log        *slog.Logger
	backend    store.Backend
	State      *state.Engine
	IAM        *iam.Service
	ECS        *control.ECS
	Agents     *control.Agents
	Controller *control.Controller
	// Autoscaling is Service Auto Scaling: the metric store, CloudWatch,
	// Application Auto Scaling and their loop.
	Autoscaling *autoscalingParts
	api         *api.Server
	ln          net.Listener
	http        *netguard.Server
	ready       atomic.Bool
	tls         *tls.Config // nil: plain HTTP
	// rootAgentWarned: the warning about an agent with the root's keys
	// was logged.
	rootAgentWarned atomic.Bool
	// ExtraReady, if set, must also report true before /healthz is 200
	// (holdfast up waits for its local agent).
	ExtraReady func() bool
}

// New opens the store in DataDir and prepares the API. Call Start.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 30 * time.Second
	}
	if cfg.TaskCredentialsDuration == 0 {
		cfg.TaskCredentialsDuration = DefaultTaskCredentialsDuration
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	backend, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	var b store.Backend = backend
	if cfg.WrapBackend != nil {
		b = cfg.WrapBackend(b)
	}
	st, err := state.Open(context.Background(), b, state.Options{Clock: cfg.Clock, Logger: cfg.Logger.With("part", "state")})
	if err != nil {
		backend.Close()
		return nil, err
	}
	part := domain.Partition{Region: cfg.Region, AccountID: cfg.AccountID}
	clog := cfg.Logger.With("part", "control")
	if cfg.IdentityClock == nil {
		cfg.IdentityClock = clock.Real{}
	}
	ids, err := iam.Open(context.Background(), iam.Config{AccountID: cfg.AccountID, State: st, Clock: cfg.IdentityClock,
		Logger: cfg.Logger.With("part", "iam")})
	if err != nil {
		st.Close()
		backend.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := api.New(api.Config{
		Region:                     cfg.Region,
		AccountID:                  cfg.AccountID,
		Credentials:                map[string]string{cfg.AccessKeyID: cfg.SecretAccessKey},
		Identities:                 ids,
		Authorizer:                 iam.Authorizer{Now: cfg.IdentityClock.Now},
		Logger:                     cfg.Logger.With("part", "api"),
		RateLimits:                 cfg.RateLimits,
		Registry:                   reg,
		Clock:                      cfg.IdentityClock.Now,
		BodyBytesInFlight:          cfg.BodyBytesInFlight,
		BodyBytesInFlightPerClient: cfg.BodyBytesInFlightPerClient,
		Heartbeat:                  cfg.Heartbeat,
	})
	s := &Server{cfg: cfg, log: cfg.Logger, backend: backend, State: st, api: a, IAM: ids, tls: tc,
		ECS:        control.New(st, part, clog),
		Agents:     control.NewAgents(st, part, clog),
		Controller: control.NewController(st, part, clog),
	}
	actions := Register(a, s.ECS)
	s.registerAgentProtocol(a, actions)
	s.ECS.CheckTaskRole = s.checkTaskRole
	ids.Register(a)
	s.Autoscaling = newAutoscaling(cfg, st, s.ECS)
	s.Autoscaling.register(a)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", a)
	s.http = netguard.NewServer(mux, netguard.Options{
		Limits: cfg.Limits.WithDefaults(netguard.APIDefaults()),
		Logger: cfg.Logger.With("part", "http"),
	})
	reg.MustRegister(s.http.Collectors("api")...)
	return s, nil
}

// openStore opens the configured backend, as its only writer, and brings
// its data format up to date before anything reads it.
func openStore(cfg Config) (store.Backend, error) {
	sc := cfg.Store
	if sc.DataDir == "" {
		sc.DataDir = cfg.DataDir
	}
	log := cfg.Logger.With("part", "store")
	backend, err := sc.Open(context.Background(), storecfg.OpenOptions{Exclusive: true, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open store (%s): %w", sc, err)
	}
	res, err := store.Migrate(context.Background(), backend)
	if err != nil {
		backend.Close()
		return nil, fmt.Errorf("store %s: %w", sc, err)
	}
	if len(res.Steps) > 0 {
		log.Info("store data format migrated", "store", sc.String(), "from", res.From, "to", res.To, "steps", res.Steps)
	}
	log.Info("store opened", "store", sc.String(), "format", res.To, "rev", backend.Rev())
	return backend, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.State.Err(); err != nil {
		http.Error(w, "control plane stopped: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if !s.ready.Load() || (s.ExtraReady != nil && !s.ExtraReady()) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Listen binds the API address (so callers learn the port before Run).
func (s *Server) Listen() (string, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return "", err
	}
	s.ln = ln
	return ln.Addr().String(), nil
}

// URL is the API's base URL (https:// with TLS), once Listen has bound it.
func (s *Server) URL() string {
	scheme := "http://"
	if s.tls != nil {
		scheme = "https://"
	}
	return scheme + s.ln.Addr().String()
}

// Run serves until ctx ends, then shuts down and closes the store.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	if s.cfg.DefaultCluster != "" {
		if _, err := s.ECS.CreateCluster(ctx, control.CreateClusterInput{ClusterName: s.cfg.DefaultCluster}); err != nil {
			return err
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.Controller.Run(runCtx, 4) })
	wg.Go(func() { s.Agents.Run(runCtx) })
	wg.Go(func() { s.Agents.RunHeartbeatMonitor(runCtx, s.cfg.HeartbeatTimeout) })
	wg.Go(func() { s.Autoscaling.run(runCtx) })
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- s.http.ServeTLS(s.ln, s.tls)
			return
		}
		errc <- s.http.Serve(s.ln)
	}()
	s.ready.Store(true)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.ready.Store(false)
	s.Agents.BeginShutdown()
	shutCtx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer c2()
	_ = s.http.Shutdown(shutCtx)
	if err == nil {
		err = <-errc // Serve has returned ErrServerClosed
	}
	cancel()
	wg.Wait()
	s.State.Close()
	if cerr := s.backend.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
