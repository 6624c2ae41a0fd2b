package netguard

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures NewServer.
type Options struct {
	// Limits are applied as given (a zero field is no limit); take them
	// through Limits.WithDefaults.
	Limits Limits
	// Streaming, if set, names requests that are long-lived by nature (a log
	// follow): their writes push the write deadline forward, as a Stream's.
	Streaming func(*http.Request) bool
	// Bodies, if set, reserves every request body's size before the handler
	// runs. Handlers that know the client's identity only after looking at
	// the request (the API: the access key id) use a Budget themselves.
	Bodies *BodyLimit
	// Logger gets net/http's own errors (accept failures, malformed
	// requests) at debug level; nil discards them.
	Logger *slog.Logger
}

// BodyLimit reserves request bodies in a Budget before the handler runs.
type BodyLimit struct {
	Budget *Budget
	// Max is the handler's own body limit: a body of known length is
	// reserved up to Max, one of unknown length (chunked) for Max.
	Max int64
	// Client names the request's client identity; nil uses the remote
	// address (ClientOf).
	Client func(*http.Request) string
	// Refuse answers a request whose body does not fit.
	Refuse http.Handler
}

// Server is an http.Server with Limits applied, serving through a
// connection limiter.
type Server struct {
	http   *http.Server
	limits *Limits
	conns  *connLimiter
	opts   Options
}

// NewServer returns a Server for h with o's limits. Serve it with Serve.
func NewServer(h http.Handler, o Options) *Server {
	l := o.Limits
	s := &Server{limits: &l, conns: newConnLimiter(l.MaxConns, l.MaxConnsPerClient), opts: o}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s.http = &http.Server{
		Handler:           s.wrap(h),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ConnState:         s.conns.connState,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &Conn{})
		},
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return s
}

// Limits returns the limits the server applies.
func (s *Server) Limits() Limits { return *s.limits }

// Serve accepts connections on ln through the connection limiter until
// Shutdown or Close; like http.Server.Serve it returns
// http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(&limitedListener{Listener: ln, l: s.conns})
}

// ServeTLS is Serve with TLS (cfg) over each admitted connection: the
// limiter counts TCP connections, and handlers see r.TLS.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	return s.http.Serve(tls.NewListener(&limitedListener{Listener: ln, l: s.conns}, cfg))
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones until ctx ends (http.Server.Shutdown).
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.http.Close() }

// OpenConns returns the number of open connections.
func (s *Server) OpenConns() int { return s.conns.open() }

// EvictedConns returns how many connections were closed to make room.
func (s *Server) EvictedConns() int64 { return s.conns.evicted.Load() }

// RefusedConns returns how many new connections were closed at once.
func (s *Server) RefusedConns() int64 { return s.conns.refused.Load() }

// Collectors returns Prometheus collectors of the server's connections,
// labelled listener=name: holdfast_http_open_connections,
// holdfast_http_connections_evicted_total and
// holdfast_http_connections_refused_total.
func (s *Server) Collectors(name string) []prometheus.Collector {
	labels := prometheus.Labels{"listener": name}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "holdfast_http_open_connections", ConstLabels: labels,
			Help: "Open connections of the listener."}, func() float64 { return float64(s.OpenConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "holdfast_http_connections_evicted_total", ConstLabels: labels,
			Help: "Connections serving no request that were closed to admit a new one at a connection limit."},
			func() float64 { return float64(s.EvictedConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "holdfast_http_connections_refused_total", ConstLabels: labels,
			Help: "New connections closed at once at a connection limit (nothing could be evicted)."},
			func() float64 { return float64(s.RefusedConns()) }),
	}
}

// Collectors returns Prometheus collectors of the budget, labelled
// listener=name: holdfast_http_body_bytes_in_flight and
// holdfast_http_bodies_refused_total.
func (b *Budget) Collectors(name string) []prometheus.Collector {
	labels := prometheus.Labels{"listener": name}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "holdfast_http_body_bytes_in_flight", ConstLabels: labels,
			Help: "Request-body bytes reserved by requests being served."}, func() float64 { return float64(b.InUse()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "holdfast_http_bodies_refused_total", ConstLabels: labels,
			Help: "Requests refused because their body did not fit their client's share or the total."},
			func() float64 { return float64(b.Refused()) }),
	}
}

// hasBody reports whether the request carries a body.
func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

func (s *Server) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), limitsKey{}, s.limits))
		if b := s.opts.Bodies; b != nil && hasBody(r) {
			n := b.Max
			if r.ContentLength >= 0 && r.ContentLength < n {
				n = r.ContentLength
			}
			client := ClientOf(r.RemoteAddr)
			if b.Client != nil {
				client = b.Client(r)
			}
			release, ok := b.Budget.Acquire(client, n)
			if !ok {
				// Hang up after the answer: net/http would otherwise read
				// the unread body (up to 256 KiB) before sending it.
				w.Header().Set("Connection", "close")
				b.Refuse.ServeHTTP(w, r)
				return
			}
			defer release()
		}
		if s.opts.Streaming != nil && s.opts.Streaming(r) {
			w = &streamWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.limits.WriteTimeout}
		}
		h.ServeHTTP(w, r)
	})
}

type connKey struct{}

// Conn is what a handler may remember about the connection its request
// came on, for the connection's life (http.Server.ConnContext).
type Conn struct {
	verified atomic.Pointer[string]
}

// ConnFrom returns the connection of the request ctx belongs to, or nil
// outside a netguard Server.
func ConnFrom(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}

// MarkVerified records that a request signed by id was verified on this
// connection (its signature checked): later requests on it that claim id
// come, in all likelihood, from the same client. Nil-safe.
func (c *Conn) MarkVerified(id string) {
	if c != nil {
		c.verified.Store(&id)
	}
}

// Verified reports whether a request signed by id was verified on this
// connection. Nil-safe.
func (c *Conn) Verified(id string) bool {
	if c == nil {
		return false
	}
	v := c.verified.Load()
	return v != nil && *v == id
}
