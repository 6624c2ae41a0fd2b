package netguard

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// connLimiter tracks a listener's open connections by client and state and
// decides, for each new one, whether it is admitted and what it evicts.
type connLimiter struct {
	max, perClient int // 0: no limit

	mu      sync.Mutex
	total   int
	seq     uint64 // orders state changes: lower is older
	clients map[string]map[*trackedConn]struct{}

	evicted atomic.Int64
	refused atomic.Int64
}

func newConnLimiter(maxConns, perClient int) *connLimiter {
	return &connLimiter{max: maxConns, perClient: perClient, clients: map[string]map[*trackedConn]struct{}{}}
}

// trackedConn is an accepted connection under the limiter.
type trackedConn struct {
	net.Conn
	l      *connLimiter
	client string
	// Guarded by l.mu.
	state   http.ConnState
	since   uint64
	tracked bool
}

// Close closes the connection and stops counting it.
func (c *trackedConn) Close() error {
	c.l.remove(c)
	return c.Conn.Close()
}

// evictable reports whether the connection serves no request: it is idle
// between requests, or has not delivered a complete request yet (net/http
// reports StateActive only once a request's headers are read).
func (c *trackedConn) evictable() bool {
	return c.state == http.StateNew || c.state == http.StateIdle
}

// admit registers a new connection. It returns the tracked connection, or
// nil if the connection must be refused, and a connection to evict (close)
// to make room, which admit has already stopped counting.
func (l *connLimiter) admit(c net.Conn) (admitted, victim *trackedConn) {
	client := ClientOf(c.RemoteAddr().String())
	l.mu.Lock()
	defer l.mu.Unlock()
	own := l.clients[client]
	switch {
	case l.perClient > 0 && len(own) >= l.perClient:
		victim = oldestEvictable(own)
	case l.max > 0 && l.total >= l.max:
		victim = l.victimLocked()
	}
	if victim == nil && (l.perClient > 0 && len(own) >= l.perClient || l.max > 0 && l.total >= l.max) {
		l.refused.Add(1)
		return nil, nil
	}
	if victim != nil {
		l.removeLocked(victim)
		l.evicted.Add(1)
	}
	tc := &trackedConn{Conn: c, l: l, client: client, state: http.StateNew, tracked: true}
	l.seq++
	tc.since = l.seq
	if l.clients[client] == nil {
		l.clients[client] = map[*trackedConn]struct{}{}
	}
	l.clients[client][tc] = struct{}{}
	l.total++
	return tc, victim
}

// victimLocked picks, among the clients with an evictable connection, the
// one holding the most connections, and returns its oldest evictable one.
func (l *connLimiter) victimLocked() *trackedConn {
	var best *trackedConn
	bestCount := 0
	for _, conns := range l.clients {
		if len(conns) < bestCount {
			continue
		}
		v := oldestEvictable(conns)
		if v == nil {
			continue
		}
		if len(conns) > bestCount || v.since < best.since {
			best, bestCount = v, len(conns)
		}
	}
	return best
}

func oldestEvictable(conns map[*trackedConn]struct{}) *trackedConn {
	var oldest *trackedConn
	for c := range conns {
		if c.evictable() && (oldest == nil || c.since < oldest.since) {
			oldest = c
		}
	}
	return oldest
}

func (l *connLimiter) remove(c *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeLocked(c)
}

func (l *connLimiter) removeLocked(c *trackedConn) {
	if !c.tracked {
		return
	}
	c.tracked = false
	conns := l.clients[c.client]
	delete(conns, c)
	if len(conns) == 0 {
		delete(l.clients, c.client)
	}
	l.total--
}

// connState is the http.Server's ConnState hook: it records each
// connection's state for the eviction choice.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	tc := unwrapTracked(c)
	if tc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	tc.state, tc.since = s, l.seq
}

// unwrapTracked finds the trackedConn under c (a TLS connection wraps it).
func unwrapTracked(c net.Conn) *trackedConn {
	for c != nil {
		if tc, ok := c.(*trackedConn); ok {
			return tc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// limitedListener admits each accepted connection through the limiter.
type limitedListener struct {
	net.Listener
	l *connLimiter
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, victim := ln.l.admit(c)
		if victim != nil {
			// The server's goroutine on it sees the close and returns.
			_ = victim.Conn.Close()
		}
		if tc == nil {
			_ = c.Close()
			continue
		}
		return tc, nil
	}
}

// CloseWrite half-closes the connection when the underlying one can (a
// TCP connection): net/http sends its last answer (431, 413) that way
// before it hangs up on a client that is still sending.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
