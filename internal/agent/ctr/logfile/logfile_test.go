package logfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hangGuard turns a hang into a failure; it is not a performance bound.
const hangGuard = 30 * time.Second

func onDisk(t *testing.T, path string) (files int, total int64) {
	t.Helper()
	paths, err := Paths(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		total += fi.Size()
	}
	return len(paths), total
}

func readAll(t *testing.T, path string, opts ReadOptions) (string, int64) {
	t.Helper()
	r, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), r.Offset()
}

// Random writes under random limits: the disk never holds more than the
// limits allow, and a reader from any position gets exactly the output from
// there (or from the oldest byte kept).
func TestWriterKeepsTheNewestOutputWithinTheCap(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			lim := Limits{MaxBytes: int64(1 + rng.IntN(300)), MaxFiles: rng.IntN(4)}
			path := filepath.Join(t.TempDir(), "app.log")
			w, err := Create(path, lim)
			if err != nil {
				t.Fatal(err)
			}
			var all bytes.Buffer
			for range 1 + rng.IntN(60) {
				p := make([]byte, rng.IntN(700))
				for i := range p {
					p[i] = byte('a' + rng.IntN(26))
				}
				n, err := w.Write(p)
				if err != nil || n != len(p) {
					t.Fatalf("Write = %d, %v", n, err)
				}
				all.Write(p)
				if w.Position() != int64(all.Len()) {
					t.Fatalf("Position %d after %d bytes", w.Position(), all.Len())
				}
				files, total := onDisk(t, path)
				if files > max(lim.MaxFiles, 1) || total > lim.Total() {
					t.Fatalf("%d files, %d bytes on disk under %v", files, total, lim)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, off := readAll(t, path, ReadOptions{})
			if want := all.String()[off:]; got != want {
				t.Fatalf("read from %d: %s", off, diff(got, want))
			}
			if kept := int64(all.Len()) - off; kept > lim.Total() || (int64(all.Len()) > lim.Total() && kept < lim.Total()-lim.MaxBytes) {
				t.Fatalf("kept %d of %d bytes under %v", kept, all.Len(), lim)
			}
			from := rng.Int64N(int64(all.Len()) + 10)
			got, start := readAll(t, path, ReadOptions{Offset: from})
			switch {
			case from < off && start != off, from >= off && start != min(from, int64(all.Len())):
				t.Fatalf("reading from %d started at %d (oldest kept %d, end %d)", from, start, off, all.Len())
			case got != all.String()[start:]:
				t.Fatalf("read from %d: %s", start, diff(got, all.String()[start:]))
			}
			// Writing again continues the positions.
			w, err = Create(path, lim)
			if err != nil {
				t.Fatal(err)
			}
			if w.Position() != int64(all.Len()) {
				t.Fatalf("reopened at %d, want %d", w.Position(), all.Len())
			}
			w.Close()
		})
	}
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.log")
	if _, err := Open(context.Background(), path, ReadOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing log: %v", err)
	}
	// A follower waits for it, and ends with its context.
	ctx, cancel := context.WithCancel(context.Background())
	r, err := Open(ctx, path, ReadOptions{Follow: true, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := Create(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "late\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	cancel()
	if _, err := r.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel: %v", err)
	}
}

// A follower keeps reading across rotations, without losing or repeating a
// byte, as long as it keeps up (here the writer waits for it before each
// write), and ends when the writer is done.
func TestFollowAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	lim := Limits{MaxBytes: 50, MaxFiles: 2}
	w, err := Create(path, lim)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	r, err := Open(context.Background(), path, ReadOptions{Follow: true, Done: done, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var want, got strings.Builder
	buf := make([]byte, 7) // small reads: rotations happen between them
	for i := range 200 {
		line := fmt.Sprintf("line %03d\n", i)
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		want.WriteString(line)
		deadline := time.Now().Add(hangGuard)
		for got.Len() < want.Len() {
			if time.Now().After(deadline) {
				t.Fatalf("follower stuck at %q", got.String())
			}
			n, err := r.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got.Write(buf[:n])
		}
		if got.String() != want.String() {
			t.Fatalf("followed %q\nwant %q", got.String(), want.String())
		}
	}
	w.Close()
	close(done)
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the writer finished: %q, %v", rest, err)
	}
	if files, _ := onDisk(t, path); files != 2 {
		t.Fatalf("%d files on disk, want 2", files)
	}
}

// A follower that falls behind by more than the log keeps skips what was
// rotated away and still reaches the end.
func TestSlowFollowerSkipsRotatedOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, err := Create(path, Limits{MaxBytes: 10, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("0123456789abc")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	r, err := Open(context.Background(), path, ReadOptions{Follow: true, Done: done, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 4)
	if n, _ := r.Read(buf); string(buf[:n]) != "0123" {
		t.Fatalf("first read %q", buf[:n])
	}
	// Its open file is the part "0123456789"; two more rotations delete it
	// and the next one.
	if _, err := w.Write([]byte("defghijklmnopqrstuvwxyz!")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	close(done)
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	// It finishes the part it holds open, then skips to the oldest kept.
	if got := "0123" + string(rest); got != "0123456789"+"klmnopqrstuvwxyz!" {
		t.Fatalf("followed %q", got)
	}
}

// diff describes how got differs from want without printing either whole.
func diff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d; they differ from byte %d", len(got), len(want), i)
}

// A snapshot returns the log as it was when it was opened, even while the
// writer goes on and rotates it.
func TestSnapshotEndsWhereTheLogEndedAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w, err := Create(path, Limits{MaxBytes: 10, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const before = "0123456789abcdefghijABCDEFGHIJ"
	if _, err := w.Write([]byte(before)); err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.Write([]byte("after, rotating twice over")); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil || r.Offset() != 0 {
		t.Fatal(err, r.Offset())
	}
	// It holds the first part open; the parts after it that it had not
	// opened yet may be gone, never replaced by newer output.
	if got := string(b); !strings.HasPrefix(before, got) || !strings.HasPrefix(got, "0123456789") {
		t.Fatalf("snapshot %q, want a prefix of %q from its first part on", got, before)
	}
}
