// Package logfile keeps a container's combined output on disk under a size
// cap, and reads it back, following it across rotations. Every runtime
// leaves a container's log in this layout at ctr.Spec.LogPath, so the agent
// reads the log of a container the runtime has forgotten the same way
// whichever runtime ran it.
//
// # Layout
//
// The newest output is in the file at the log's path; older output is in
// parts next to it, named "<path>.<offset>", where offset is the position of
// the part's first byte in the container's output (bytes written since it
// started). A part never changes once it has its name. With Limits.MaxBytes
// set, the writer starts a new file before the current one would grow past
// MaxBytes (the current file becomes a part) and then deletes the oldest
// parts until at most MaxFiles files remain, the current one included: at
// most MaxBytes × MaxFiles bytes of a container's output are ever on disk,
// as with Docker's json-file max-size and max-file. (With MaxFiles 1 an
// empty part marks where the current file starts.)
//
// Positions are what readers resume from: a reader started at a position
// returns the output from there on, or from the oldest byte kept when that
// position has been rotated away, and says where it started.
//
// The package imports only the standard library: the process runtime's shim
// links it.
package logfile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits cap a log: MaxBytes per file and MaxFiles files in all (the current
// one and MaxFiles-1 older parts). MaxBytes <= 0 means no cap; MaxFiles < 1
// counts as 1 (rotation then keeps only the current file).
type Limits struct {
	MaxBytes int64 `json:"maxBytes,omitempty"`
	MaxFiles int   `json:"maxFiles,omitempty"`
}

// Capped reports whether l limits the log's size.
func (l Limits) Capped() bool { return l.MaxBytes > 0 }

// Total is the most bytes of output l keeps on disk (0: no limit).
func (l Limits) Total() int64 {
	if !l.Capped() {
		return 0
	}
	return l.MaxBytes * int64(max(l.MaxFiles, 1))
}

func (l Limits) String() string {
	if !l.Capped() {
		return "unlimited"
	}
	return fmt.Sprintf("%d bytes x %d files", l.MaxBytes, max(l.MaxFiles, 1))
}

// Writer appends to a log, rotating it under its Limits. It is not safe for
// concurrent use.
type Writer struct {
	path  string
	lim   Limits
	f     *os.File
	start int64 // position of the current file's first byte
	size  int64 // bytes in the current file
}

// Create opens the log at path for appending (mode 0600), creating it if
// needed; output already there (and in its parts) is kept and counted.
// The directory must exist.
func Create(path string, lim Limits) (*Writer, error) {
	parts, err := listParts(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, lim: lim}
	if n := len(parts); n > 0 {
		w.start = parts[n-1].end()
	}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first whenever the current file is full, so no
// file ever holds more than Limits.MaxBytes. It returns how much of p was
// written.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.f == nil {
			// A failed rotation left no file: try again.
			if err := w.open(); err != nil {
				return written, err
			}
		}
		if w.lim.Capped() && w.size >= w.lim.MaxBytes {
			if err := w.rotate(); err != nil {
				return written, err
			}
		}
		chunk := p
		if room := w.lim.MaxBytes - w.size; w.lim.Capped() && int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		n, err := w.f.Write(chunk)
		w.size += int64(n)
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// rotate turns the current file into a part, starts a new current file and
// deletes the parts beyond the limit.
func (w *Writer) rotate() error {
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return err
	}
	if err := os.Rename(w.path, partPath(w.path, w.start)); err != nil {
		return err
	}
	w.start += w.size
	w.size = 0
	// The oldest parts go before the new file comes, so that there are
	// never more than MaxFiles files.
	keep := max(w.lim.MaxFiles, 1) - 1
	if keep == 0 {
		// No older output is kept, but readers must still learn where the
		// current file starts: an empty part at that position says it.
		f, err := os.OpenFile(partPath(w.path, w.start), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		f.Close()
		keep = 1
	}
	parts, err := listParts(w.path)
	if err != nil {
		return err
	}
	for ; len(parts) > keep; parts = parts[1:] {
		if err := os.Remove(parts[0].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return w.open()
}

// Position is the position of the next byte Write will append.
func (w *Writer) Position() int64 { return w.start + w.size }

// Close closes the current file.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// part is an older piece of a log.
type part struct {
	path   string
	offset int64
	size   int64
}

func (p part) end() int64 { return p.offset + p.size }

func partPath(path string, offset int64) string {
	return path + "." + strconv.FormatInt(offset, 10)
}

// listParts returns the parts of the log at path, oldest first.
func listParts(path string) ([]part, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var parts []part
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || rest == "" || strings.TrimLeft(rest, "0123456789") != "" {
			continue
		}
		off, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		parts = append(parts, part{path: filepath.Join(dir, e.Name()), offset: off, size: fi.Size()})
	}
	slices.SortFunc(parts, func(a, b part) int { return cmp.Compare(a.offset, b.offset) })
	return parts, nil
}

// Paths returns the files of the log at path that hold output: its parts,
// oldest first, then the current file.
func Paths(path string) ([]string, error) {
	parts, err := listParts(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range parts {
		if p.size > 0 {
			out = append(out, p.path)
		}
	}
	if _, err := os.Lstat(path); err == nil {
		out = append(out, path)
	}
	return out, nil
}

// ReadOptions tune a Reader.
type ReadOptions struct {
	// Offset is the position to start from; output rotated away is skipped
	// (the Reader starts at the oldest byte kept), and a position past the
	// end starts at the end.
	Offset int64
	// Follow waits at the end of the log for more, across rotations,
	// until Done or Stop is closed (then what is left is read, and the
	// Reader returns io.EOF) or the context ends.
	Follow bool
	// Done is closed once the writer has finished for good.
	Done <-chan struct{}
	// Stop is closed when following must end with what is there now (the
	// runtime that knows the container is closing).
	Stop <-chan struct{}
	// Poll is how often a following Reader looks for more output (default
	// 100 ms): the writer does not notify readers.
	Poll time.Duration
}

// Reader reads a log from a position, following it across rotations. It is
// an io.ReadCloser, not safe for concurrent use.
type Reader struct {
	ctx   context.Context
	path  string
	opts  ReadOptions
	first int64 // position of the first byte returned
	pos   int64 // position of the next byte
	f     *os.File
	// current: f is (or was when opened) the log's current file, which
	// may still grow or be rotated; otherwise f is a finished part.
	current bool
	// logEnd: the end of the log as the last locate saw it.
	logEnd int64
	// end: where a snapshot (no Follow) ends, the end of the log when it
	// was opened; so it never returns more than the log held then, however
	// fast the writer rotates it.
	end int64
	// final: the writer is done; read what is left, then EOF.
	final bool
}

// Open returns a Reader of the log at path from opts.Offset. Without Follow,
// a log that does not exist at all is an error for which errors.Is(err,
// fs.ErrNotExist) holds; a following Reader waits for it to appear.
func Open(ctx context.Context, path string, opts ReadOptions) (*Reader, error) {
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	r := &Reader{ctx: ctx, path: path, opts: opts, pos: max(opts.Offset, 0)}
	found, err := r.locate()
	if err != nil {
		return nil, err
	}
	if !found && !opts.Follow {
		if parts, _ := listParts(path); len(parts) == 0 {
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		}
	}
	r.first, r.end = r.pos, r.logEnd
	return r, nil
}

// Offset is the position of the first byte the Reader returns: the
// requested one, or a later one when output before it was rotated away.
func (r *Reader) Offset() int64 { return r.first }

// locate opens the file that holds r.pos, moving r.pos forward to the
// oldest byte kept if it was rotated away (or past a part deleted by hand),
// or back to the end if it is past it. It reports false when there is no
// file to read yet (the current file does not exist: before the first
// write, or between a rotation's rename and its new file).
func (r *Reader) locate() (bool, error) {
	for attempt := 0; ; attempt++ {
		if attempt == 1000 {
			return false, fmt.Errorf("logfile: %s keeps changing while it is opened", r.path)
		}
		found, retry, err := r.tryLocate()
		if !retry {
			return found, err
		}
	}
}

// tryLocate is one attempt of locate; retry means that a rotation raced it.
func (r *Reader) tryLocate() (found, retry bool, err error) {
	parts, err := listParts(r.path)
	if err != nil {
		return false, false, err
	}
	cur, err := os.Open(r.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, false, err
	}
	closeCur := func() {
		if cur != nil {
			cur.Close()
		}
	}
	// A rotation between the listing and the open would pair the new
	// current file with the old parts: list again to be sure.
	again, err := listParts(r.path)
	if err != nil || !slices.Equal(parts, again) {
		closeCur()
		return false, err == nil, err
	}
	var curStart int64
	if n := len(parts); n > 0 {
		curStart = parts[n-1].end()
	}
	r.logEnd = curStart
	if cur != nil {
		if fi, err := cur.Stat(); err == nil {
			r.logEnd += fi.Size()
		}
	}
	for _, p := range parts {
		if r.pos >= p.end() {
			continue
		}
		r.pos = max(r.pos, p.offset) // skip what is gone
		f, err := os.Open(p.path)
		if errors.Is(err, fs.ErrNotExist) {
			closeCur()
			return false, true, nil // deleted meanwhile: look again
		}
		closeCur()
		if err != nil {
			return false, false, err
		}
		if _, err := f.Seek(r.pos-p.offset, io.SeekStart); err != nil {
			f.Close()
			return false, false, err
		}
		r.f, r.current = f, false
		return true, false, nil
	}
	r.pos = max(r.pos, curStart)
	if cur == nil {
		r.pos = curStart
		r.logEnd = curStart
		return false, false, nil
	}
	fi, err := cur.Stat()
	if err != nil {
		cur.Close()
		return false, false, err
	}
	r.logEnd = curStart + fi.Size()
	r.pos = min(r.pos, curStart+fi.Size())
	if _, err := cur.Seek(r.pos-curStart, io.SeekStart); err != nil {
		cur.Close()
		return false, false, err
	}
	r.f, r.current = cur, true
	return true, false, nil
}

// rotated reports whether the current file r.f is no longer at the log's
// path: it has become a part, complete from now on.
func (r *Reader) rotated() bool {
	st, err := os.Stat(r.path)
	if err != nil {
		return true
	}
	fi, err := r.f.Stat()
	return err != nil || !os.SameFile(st, fi)
}

// Read reads the log in order, moving from part to part and, when
// following, waiting for more.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.f == nil {
			if _, err := r.locate(); err != nil {
				return 0, err
			}
		}
		buf := p
		if !r.opts.Follow {
			if r.pos >= r.end {
				return 0, io.EOF
			}
			buf = p[:min(int64(len(p)), r.end-r.pos)]
		}
		if r.f != nil {
			n, err := r.f.Read(buf)
			if n > 0 {
				r.pos += int64(n)
				return n, nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
			if !r.current {
				// The end of a finished part: go on with the next file.
				r.f.Close()
				r.f = nil
				continue
			}
			if r.rotated() {
				// It became a part: what is left in it is final, read it.
				r.current = false
				continue
			}
		}
		if !r.opts.Follow || r.final {
			return 0, io.EOF
		}
		t := time.NewTimer(r.opts.Poll)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return 0, r.ctx.Err()
		case <-r.opts.Done:
			r.final = true
		case <-r.opts.Stop:
			r.final = true
		case <-t.C:
		}
		t.Stop()
	}
}

// Close closes the file being read.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
