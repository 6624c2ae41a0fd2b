//go:build linux

package process

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
)

// logPoll is how often a following Logs reader looks for new output. The
// shim writes the log; nothing tells the agent when it did.
const logPoll = 100 * time.Millisecond

// Logs streams the container's log (Spec.LogPath and its older parts), see
// ctr.Runtime.
func (r *Runtime) Logs(ctx context.Context, id string, opts ctr.LogOptions) (ctr.LogReader, error) {
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
	lr, err := logfile.Open(ctx, path, logfile.ReadOptions{
		Offset: opts.Offset, Follow: opts.Follow, Done: c.exitedCh, Stop: r.done, Poll: logPoll,
	})
	if errors.Is(err, fs.ErrNotExist) {
		// Nothing written yet (the program never started): empty.
		return emptyLog{}, nil
	}
	return lr, err
}

type emptyLog struct{}

func (emptyLog) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyLog) Close() error             { return nil }
func (emptyLog) Offset() int64            { return 0 }
