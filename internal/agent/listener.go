package agent

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/holdfast/holdfast/internal/agent/endpoint"
	"github.com/holdfast/holdfast/internal/netguard"
)

// ListenerConfig bounds the agent's listener (HTTPServer). Zero fields take
// the task endpoint's defaults (endpoint.ServerDefaults, and
// endpoint.BodyLimit's).
type ListenerConfig struct {
	Limits                     netguard.Limits
	BodyBytesInFlight          int64
	BodyBytesInFlightPerClient int64
	Logger                     *slog.Logger
}

// HTTPServer returns the server for the agent's listener: Handler() behind
// netguard, with the task endpoint's limits, request bodies reserved per
// endpoint id, and a log follow (GET /holdfast/v1/logs/{task}?follow=1)
// served as a stream, exempt from the write timeout while the client reads.
func (a *Agent) HTTPServer(cfg ListenerConfig) *netguard.Server {
	return netguard.NewServer(a.Handler(), netguard.Options{
		Limits: cfg.Limits.WithDefaults(endpoint.ServerDefaults()),
		Bodies: endpoint.BodyLimit(lookup{a}, cfg.BodyBytesInFlight, cfg.BodyBytesInFlightPerClient),
		Streaming: func(r *http.Request) bool {
			return strings.HasPrefix(r.URL.Path, "/holdfast/v1/logs/") && r.URL.Query().Get("follow") != ""
		},
		Logger: cfg.Logger,
	})
}
