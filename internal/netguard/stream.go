package netguard

import (
	"context"
	"net/http"
	"sync"
	"time"
)

type limitsKey struct{}

// limitsFrom returns the limits of the listener serving ctx's request, if
// it is a netguard Server.
func limitsFrom(ctx context.Context) (Limits, bool) {
	l, ok := ctx.Value(limitsKey{}).(*Limits)
	if !ok {
		return Limits{}, false
	}
	return *l, true
}

// Heartbeat is what a Stream writes while it has nothing else to say. The
// bytes must not change the meaning of the response: whitespace before a
// JSON document, a comment line ": \n\n" in a text/event-stream.
type Heartbeat struct {
	Every time.Duration // no heartbeats when 0
	Bytes []byte
}

// JSONHeartbeat precedes a JSON answer with newlines (JSON allows leading
// whitespace, so a client that reads the whole body decodes it unchanged).
func JSONHeartbeat(every time.Duration) Heartbeat {
	return Heartbeat{Every: every, Bytes: []byte("\n")}
}

// SSEHeartbeat is a comment line of a text/event-stream, which EventSource
// clients ignore.
func SSEHeartbeat(every time.Duration) Heartbeat {
	return Heartbeat{Every: every, Bytes: []byte(":\n\n")}
}

// Stream is a response that stays open for long: an agent's long poll, a
// log follow, the console's server-sent events. It is exempt from the
// listener's read deadline, and it pushes the write deadline forward by the
// listener's WriteTimeout before each write, so it lives as long as its
// client keeps reading, and is cut once a write has been blocked for
// WriteTimeout. Write is safe for concurrent use (the heartbeat goroutine
// and the handler share it). The handler that starts a Stream closes it.
type Stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration // 0: no write deadline

	mu  sync.Mutex
	err error

	stop chan struct{}
	done chan struct{}
}

// StartStream makes the response to r a Stream: it lifts the read deadline
// (the request has been read), writes status with the headers already set
// on w, flushes them, and starts the heartbeat.
func StartStream(w http.ResponseWriter, r *http.Request, status int, hb Heartbeat) *Stream {
	s := &Stream{w: w, rc: http.NewResponseController(w), stop: make(chan struct{}), done: make(chan struct{})}
	if l, ok := limitsFrom(r.Context()); ok {
		s.timeout = l.WriteTimeout
	}
	_ = s.rc.SetReadDeadline(time.Time{})
	s.mu.Lock()
	s.pushDeadline()
	w.WriteHeader(status)
	s.err = s.rc.Flush()
	s.mu.Unlock()
	if hb.Every <= 0 || len(hb.Bytes) == 0 {
		close(s.done)
		return s
	}
	go s.beat(hb)
	return s
}

func (s *Stream) beat(hb Heartbeat) {
	defer close(s.done)
	t := time.NewTicker(hb.Every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.Write(hb.Bytes); err != nil {
				return
			}
		}
	}
}

func (s *Stream) pushDeadline() { _ = s.rc.SetWriteDeadline(deadlineAfter(s.timeout)) }

// deadlineAfter is the write deadline timeout from now; none for 0.
func deadlineAfter(timeout time.Duration) time.Time {
	if timeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// Write writes p and flushes it to the client. After a failed write every
// later one fails with the same error.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.pushDeadline()
	n, err := s.w.Write(p)
	if err == nil {
		err = s.rc.Flush()
	}
	s.err = err
	return n, err
}

// Close stops the heartbeat and waits for its goroutine. The response ends
// when the handler returns.
func (s *Stream) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// streamWriter is the ResponseWriter of a request that Options.Streaming
// names: each write pushes the write deadline forward, as a Stream does.
type streamWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *streamWriter) push() { _ = w.rc.SetWriteDeadline(deadlineAfter(w.timeout)) }

func (w *streamWriter) Write(p []byte) (int, error) {
	w.push()
	return w.ResponseWriter.Write(p)
}

func (w *streamWriter) Flush() {
	w.push()
	_ = w.rc.Flush()
}

func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
