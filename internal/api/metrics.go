package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names registered on Config.Registry.
const (
	metricRequests = "holdfast_api_requests_total"
	metricLatency  = "holdfast_api_request_seconds"
)

// promMetrics is the built-in Metrics that Config.Registry turns on: a
// counter by operation, HTTP status and error type (errors per operation are
// the rows with a non-empty "error"), and a latency histogram by operation.
type promMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newPromMetrics(reg prometheus.Registerer) (*promMetrics, error) {
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests,
			Help: "AWS JSON API requests by operation (X-Amz-Target, or \"unknown\"), HTTP status and error __type (empty on success).",
		}, []string{"operation", "status", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricLatency,
			Help:    "AWS JSON API request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"operation"}),
	}
	if err := reg.Register(m.requests); err != nil {
		return nil, err
	}
	if err := reg.Register(m.latency); err != nil {
		reg.Unregister(m.requests)
		return nil, err
	}
	return m, nil
}

func (m *promMetrics) ObserveRequest(op string, status int, errType string, elapsed time.Duration) {
	m.requests.WithLabelValues(op, strconv.Itoa(status), errType).Inc()
	m.latency.WithLabelValues(op).Observe(elapsed.Seconds())
}

// observe sends one observation to the configured sinks.
func (s *Server) observe(op string, status int, errType string, elapsed time.Duration) {
	if s.prom != nil {
		s.prom.ObserveRequest(op, status, errType, elapsed)
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ObserveRequest(op, status, errType, elapsed)
	}
}
