package endpoint

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/netguard"
)

// The task endpoint listener's bounds, besides ServerDefaults.
const (
	// DefaultBodyBytesInFlight bounds the request-body bytes held at once.
	DefaultBodyBytesInFlight int64 = 16 << 20
	// DefaultBodyBytesInFlightPerClient is one endpoint id's share: four
	// PUT bodies at their 64 KiB limit.
	DefaultBodyBytesInFlightPerClient int64 = 4 * maxUpdateBodyBytes
)

// ServerDefaults are the limits of the agent's listener: the ECS agent's
// own server timeouts (5 s to read a request, 5 s to write its answer, in
// which the 4 s ECS-call budget fits; keep-alive connections closed after
// 5 s idle, which is what net/http did with the ECS agent's settings), 32
// KiB of headers, and a quarter of the process's file descriptors (half of
// that for one client address), so that in `holdfast up` the API keeps its
// half.
func ServerDefaults() netguard.Limits {
	maxConns := netguard.ConnShare(4)
	return netguard.Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    netguard.DefaultMaxHeaderBytes,
		MaxConns:          maxConns,
		MaxConnsPerClient: max(1, maxConns/2),
	}
}

// ClientKey names the client of a task-endpoint request for per-client
// limits: its endpoint id when the id resolves (each container has its
// own), else the shared key "" (paths without an id, unknown and stopped
// ids), so that made-up ids cannot each claim a share.
func ClientKey(state State, path string) string {
	rest, ok := strings.CutPrefix(path, apiPrefix)
	if !ok {
		if rest, ok = strings.CutPrefix(path, v4Prefix); !ok {
			return ""
		}
	}
	id, _, _ := strings.Cut(rest, "/")
	if id == "" || state == nil {
		return ""
	}
	if _, _, found := state.Lookup(id); !found {
		return ""
	}
	return "id:" + id
}

// BodyLimit reserves each request body (at most the 64 KiB a PUT may
// have) in a budget of total bytes, perClient of them per ClientKey, before
// the handler reads it; a body that does not fit gets the endpoint's
// throttling answer (429 "You have reached maximum request limit.").
func BodyLimit(state State, total, perClient int64) *netguard.BodyLimit {
	if total <= 0 {
		total = DefaultBodyBytesInFlight
	}
	if perClient <= 0 {
		perClient = DefaultBodyBytesInFlightPerClient
	}
	return &netguard.BodyLimit{
		Budget: netguard.NewBudget(total, perClient),
		Max:    maxUpdateBodyBytes,
		Client: func(r *http.Request) string { return ClientKey(state, r.URL.Path) },
		Refuse: http.HandlerFunc(writeRateLimited),
	}
}

// writeRateLimited is the ECS agent's 429 answer.
func writeRateLimited(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = io.WriteString(w, "You have reached maximum request limit.")
}
