//go:build linux

package process

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
)

// logPoll is how often a following Logs reader looks for new output. The
// program writes to the file directly (nothing is piped through the agent),
// so there is no write to wait on.
const logPoll = 100 * time.Millisecond

// Logs streams the container's log file (Spec.LogPath), see ctr.Runtime.
func (r *Runtime) Logs(ctx context.Context, id string, opts ctr.LogOptions) (io.ReadCloser, error) {
	c, err := r.lookup(id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	path := c.logPath
	c.mu.Unlock()
	if path == "" {
		return nil, errors.New("process runtime: " + id + " has no log path")
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		// Nothing written yet (or the program never started).
		f, err = os.Open(os.DevNull)
	}
	if err != nil {
		return nil, err
	}
	return &logReader{ctx: ctx, f: f, path: path, follow: opts.Follow, exited: c.exitedCh, closed: r.done}, nil
}

// logReader reads a log file and, when following, waits at its end for more
// until the container has exited.
type logReader struct {
	ctx    context.Context
	f      *os.File
	path   string
	follow bool
	exited <-chan struct{}
	closed <-chan struct{}
	// final: the container has exited; read what is left, then EOF.
	final bool
}

func (l *logReader) Read(p []byte) (int, error) {
	for {
		n, err := l.f.Read(p)
		if n > 0 || !errors.Is(err, io.EOF) {
			return n, err
		}
		if !l.follow || l.final {
			return 0, io.EOF
		}
		if l.f.Name() == os.DevNull {
			// The file did not exist when Logs was called; see if it does now.
			if f, err := os.Open(l.path); err == nil {
				l.f.Close()
				l.f = f
				continue
			}
		}
		t := time.NewTimer(logPoll)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return 0, l.ctx.Err()
		case <-l.exited:
			l.final = true
		case <-l.closed:
			l.final = true
		case <-t.C:
		}
		t.Stop()
	}
}

func (l *logReader) Close() error { return l.f.Close() }
