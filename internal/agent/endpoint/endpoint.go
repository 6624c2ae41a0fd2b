package endpoint

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"golang.org/x/time/rate"
)

// Defaults for Config fields left at their zero value. They are the ECS
// agent's values.
const (
	DefaultCallTimeout            = 4 * time.Second
	DefaultRateLimit   rate.Limit = 40
	DefaultBurst                  = 60
)

// State resolves endpoint ids. Implemented by the agent; it must be safe for
// concurrent use. Lookup is called on every request (also for rate limiting),
// so it should be cheap.
type State interface {
	// Lookup returns the task metadata and the container name for an
	// endpoint id; ok=false when unknown or the task has stopped.
	Lookup(endpointID string) (task TaskMetadata, containerName string, ok bool)
}

// Config configures the handler returned by New.
type Config struct {
	// Cluster is the agent's cluster name. It is sent in every ECS call and
	// used as the metadata Cluster when a TaskMetadata leaves it empty.
	Cluster string
	// ECS is the control-plane client, built by the agent with the
	// control-plane base endpoint and the agent's credentials.
	ECS *ecs.Client
	// State resolves endpoint ids.
	State State
	// Credentials are the tasks' role credentials: served on
	// /v2/credentials/<id>, and used for each task's protection calls,
	// as the ECS agent does (a task without them gets 403).
	Credentials Credentials
	// ProtectWithClientCredentials makes the protection API call ECS with
	// the ECS client's own credentials for every task, whatever its role
	// (holdfast up --task-credentials=none). So does a nil Credentials.
	ProtectWithClientCredentials bool
	// CallTimeout bounds each ECS call, retries included. Zero means
	// DefaultCallTimeout. It must be lower than the server's write timeout.
	CallTimeout time.Duration
	// RateLimit is the steady request rate allowed per endpoint id. Zero or
	// negative means DefaultRateLimit; rate.Inf disables the limit.
	RateLimit rate.Limit
	// Burst is the burst allowed per endpoint id. Zero or negative means
	// DefaultBurst.
	Burst int
	// Logger receives one record per failed ECS call. Nil discards.
	Logger *slog.Logger
}

// taskProtectionAPI is the part of *ecs.Client the handler uses.
type taskProtectionAPI interface {
	GetTaskProtection(context.Context, *ecs.GetTaskProtectionInput, ...func(*ecs.Options)) (*ecs.GetTaskProtectionOutput, error)
	UpdateTaskProtection(context.Context, *ecs.UpdateTaskProtectionInput, ...func(*ecs.Options)) (*ecs.UpdateTaskProtectionOutput, error)
}

type handler struct {
	cluster     string
	ecs         taskProtectionAPI
	state       State
	creds       Credentials
	asClient    bool // ProtectWithClientCredentials, or no Credentials
	callTimeout time.Duration
	limits      *limiterSet
	log         *slog.Logger
}

// New returns the task endpoint handler. It is meant to be the whole handler
// of the agent's --listen server.
func New(cfg Config) http.Handler {
	var api taskProtectionAPI
	if cfg.ECS != nil {
		api = cfg.ECS
	}
	return newHandler(cfg, api)
}

func newHandler(cfg Config, api taskProtectionAPI) *handler {
	h := &handler{
		cluster:     cfg.Cluster,
		ecs:         api,
		state:       cfg.State,
		creds:       cfg.Credentials,
		asClient:    cfg.ProtectWithClientCredentials || cfg.Credentials == nil,
		callTimeout: cfg.CallTimeout,
		log:         cfg.Logger,
	}
	if h.callTimeout <= 0 {
		h.callTimeout = DefaultCallTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	limit, burst := cfg.RateLimit, cfg.Burst
	if limit <= 0 {
		limit = DefaultRateLimit
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	h.limits = newLimiterSet(limit, burst, time.Now)
	return h
}

const (
	apiPrefix        = "/api/"
	v4Prefix         = "/v4/"
	protectionSuffix = "task-protection/v1/state"
)

// ServeHTTP processes a request in the ECS agent's order: path cleaning
// (301), rate limit (429), routing (404/405), handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if c := cleanPath(p); c != p {
		u := *r.URL
		u.Path = c
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	if !h.limits.allow(ClientKey(h.state, p)) {
		writeRateLimited(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(p, apiPrefix); ok {
		if id, tail, ok := strings.Cut(rest, "/"); ok && tail == protectionSuffix {
			switch r.Method {
			case http.MethodGet:
				h.getProtection(w, r, id)
			case http.MethodPut:
				h.updateProtection(w, r, id)
			default:
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
			return
		}
	}
	if id, ok := credentialsID(p); ok {
		h.serveCredentials(w, r, id)
		return
	}
	if rest, ok := strings.CutPrefix(p, v4Prefix); ok {
		id, tail, hasTail := strings.Cut(rest, "/")
		switch {
		case !hasTail:
			h.containerMetadata(w, id)
			return
		case tail == "task" || tail == "taskWithTags":
			h.taskMetadata(w, id)
			return
		}
	}
	http.NotFound(w, r)
}

// cleanPath returns the canonical form of p the way gorilla/mux does: a
// leading slash, path.Clean, and a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// limiterSet holds one token bucket per key. A bucket that has been idle long
// enough to refill completely is indistinguishable from a new one, so such
// buckets are dropped; memory stays bounded by the number of live ids.
type limiterSet struct {
	limit     rate.Limit
	burst     int
	now       func() time.Time
	refill    time.Duration
	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

const sweepEvery = time.Minute

func newLimiterSet(limit rate.Limit, burst int, now func() time.Time) *limiterSet {
	s := &limiterSet{limit: limit, burst: burst, now: now, buckets: map[string]*bucket{}}
	if limit != rate.Inf {
		s.refill = time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	}
	return s
}

func (s *limiterSet) allow(key string) bool {
	if s.limit == rate.Inf {
		return true
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.lastSweep = now
		for k, b := range s.buckets {
			if now.Sub(b.last) >= s.refill {
				delete(s.buckets, k)
			}
		}
	}
	b := s.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(s.limit, s.burst)}
		s.buckets[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}
