// Package netguard keeps holdfast's HTTP listeners (the API on --listen and
// the agent's task endpoint) answering their legitimate clients while other
// clients, who may never authenticate, try to exhaust them.
//
// The model: a connection costs a file descriptor and a goroutine with its
// buffers; a request costs its headers and, until its handler is done, its
// body. Each of these is bounded, and where a bound is shared, it is shared
// per client, so that one client's flood takes its own share and not the
// others':
//
//   - Connections (Limits.MaxConns, Limits.MaxConnsPerClient). A client is
//     a remote IPv4 address or IPv6 /64 (ClientOf), the only identity known
//     before a request is read. At a limit, a new connection evicts the
//     oldest connection that serves no request (an idle keep-alive, or one
//     still sending its headers) of the client over its own limit, else of
//     the client holding the most connections; a connection serving a
//     request (a handler running, a long poll) is never evicted. If there is
//     nothing to evict, the new connection is closed at once, so the kernel
//     backlog keeps moving and descriptors stay free. The defaults are
//     shares of RLIMIT_NOFILE (ConnShare), so the process keeps descriptors
//     for its store, logs and tasks whatever clients do.
//   - Time (Limits.ReadHeaderTimeout, ReadTimeout, WriteTimeout,
//     IdleTimeout). Headers and body must arrive within their deadlines,
//     idle keep-alive connections are closed, and a response must be
//     written in time. The read deadline bounds the client, not the
//     handler: net/http lifts it once the body has been read to its end
//     (TestReadDeadlineLiftedOnceTheBodyIsRead holds it to that).
//   - Header bytes (Limits.MaxHeaderBytes): net/http answers 431 beyond it.
//   - Body bytes in flight (Budget): a handler reserves a body's size before
//     reading it, per client identity (for the API: the access key id the
//     Authorization header claims, with the client address) and in total,
//     and is refused at once when either share is spent. Reserving before
//     reading means a refused body is never buffered.
//
// Long-lived responses (an agent's long poll, a log follow, later the
// console's server-sent events) are exempt from the read and write
// deadlines: a Stream lifts the read deadline and pushes the write deadline
// forward before each write, so it lives as long as its client keeps
// reading and is cut after WriteTimeout once the client stops. A Stream can
// send heartbeats (bytes that do not change the response's meaning: JSON
// whitespace before a long poll's answer, an SSE comment line), so that
// clients and proxies see a live connection. An operation that does not
// know its transport asks for one with internal/longpoll.
package netguard
