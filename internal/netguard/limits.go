package netguard

import (
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Limits bounds one HTTP listener. A zero field means "no limit" to
// NewServer; WithDefaults fills zero fields from a set of defaults first.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's line and headers, from
	// the connection's accept (first request) or the request's first byte
	// (later requests on a keep-alive connection).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body. It
	// bounds the client, not the handler: net/http lifts it once the body
	// has been read to its end.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the request's
	// headers. A Stream pushes it forward before each write instead.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that has waited this long
	// for its next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and headers; beyond it
	// net/http answers 431 Request Header Fields Too Large.
	MaxHeaderBytes int
	// MaxConns bounds the listener's open connections.
	MaxConns int
	// MaxConnsPerClient bounds one client's open connections (ClientOf).
	MaxConnsPerClient int
}

// WithDefaults returns l with its zero fields taken from d.
func (l Limits) WithDefaults(d Limits) Limits {
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	pickInt := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	return Limits{
		ReadHeaderTimeout: pick(l.ReadHeaderTimeout, d.ReadHeaderTimeout),
		ReadTimeout:       pick(l.ReadTimeout, d.ReadTimeout),
		WriteTimeout:      pick(l.WriteTimeout, d.WriteTimeout),
		IdleTimeout:       pick(l.IdleTimeout, d.IdleTimeout),
		MaxHeaderBytes:    pickInt(l.MaxHeaderBytes, d.MaxHeaderBytes),
		MaxConns:          pickInt(l.MaxConns, d.MaxConns),
		MaxConnsPerClient: pickInt(l.MaxConnsPerClient, d.MaxConnsPerClient),
	}
}

// DefaultMaxHeaderBytes is the header limit of holdfast's listeners. SigV4
// headers with a session token are about 2 KiB; 32 KiB leaves room for
// any SDK's headers while a flood of large headers stays cheap.
const DefaultMaxHeaderBytes = 32 << 10

// APIDefaults are the limits of the API listener (--listen). Timeouts: a
// request's headers within 10 s and its whole body within 30 s (an ECS
// request is a few KiB; the body limit is 1 MiB), a response within 60 s,
// keep-alive connections closed after 60 s idle (the AWS SDKs reconnect
// transparently). Connections: half of the process's file descriptors, and
// half of that for one client.
func APIDefaults() Limits {
	maxConns := ConnShare(2)
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		MaxConns:          maxConns,
		MaxConnsPerClient: max(1, maxConns/2),
	}
}

// ConnShare returns 1/divisor of the process's open-file limit
// (RLIMIT_NOFILE, which the Go runtime raises to its hard limit at start),
// at least 16 and at most 65,536: the connection budget of one listener. A
// process with two listeners (holdfast up: the API and the task endpoint)
// gives them 1/2 and 1/4, and keeps a quarter of its descriptors for its
// store, logs and tasks.
func ConnShare(divisor int) int {
	var rl syscall.Rlimit
	n := 65536
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n)*uint64(divisor) {
		n = int(rl.Cur) / divisor
	}
	return max(16, n)
}

// ClientOf names the client behind a remote address ("host:port" or a bare
// host) for the per-client limits: the IPv4 address, or the /64 of an IPv6
// address (one host commonly holds a whole /64). Anything unparsable is
// its own client.
func ClientOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
