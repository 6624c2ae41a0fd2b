// Package demolog is the examples' log of the launch post's lines: each
// line a timestamp (TimeFormat), four spaces and the message, on stdout and,
// when DEMO_LOG is set, appended to that file too (demo.sh and the tests
// read it there).
package demolog

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TimeFormat is the timestamp of every line.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Logger prints the post's log lines; it is safe for concurrent use.
type Logger struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Logger writing to w.
func New(w io.Writer) *Logger { return &Logger{w: w} }

// Printf prints one line: the time and the formatted message.
func (l *Logger) Printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s    %s\n", time.Now().Format(TimeFormat), fmt.Sprintf(format, a...))
}

// Start sets up an example's logging: the returned Logger writes to stdout
// and, when DEMO_LOG is set, appends to that file too (close closes it);
// slog's default logger, for diagnostics, writes text to stderr.
func Start() (l *Logger, close func(), err error) {
	var out io.Writer = os.Stdout
	close = func() {}
	if path := os.Getenv("DEMO_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, err
		}
		out = io.MultiWriter(os.Stdout, f)
		close = func() { _ = f.Close() }
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	return New(out), close, nil
}
