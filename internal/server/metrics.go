package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// promMetrics records API requests for /metrics.
type promMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *promMetrics {
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_api_requests_total",
			Help: "ECS API requests by operation, HTTP status and error type.",
		}, []string{"operation", "status", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_api_request_seconds",
			Help:    "ECS API request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *promMetrics) ObserveRequest(op string, status int, errType string, elapsed time.Duration) {
	m.requests.WithLabelValues(op, strconv.Itoa(status), errType).Inc()
	m.latency.WithLabelValues(op).Observe(elapsed.Seconds())
}
