// Package snapshot copies a store's data: to a backup file (Write), from a
// backup file into a store (Restore), and from one store into another
// (Copy, what `holdfast migrate` runs). It works on any store.Backend, so a
// backup of a bbolt store restores into etcd and the other way round.
//
// What is copied: every data key (store.IsData) with its value, read as one
// consistent snapshot at one revision (a bbolt read transaction; etcd pages
// read at the first page's revision), and the data format (store.FormatKey).
// Runtime keys (store.RuntimePrefix: leader election, locks) are not data
// and are left out.
//
// Revisions are not copied: a store hands out its own. A restored key's
// ModRev is the revision of the Txn that wrote it in the target. Readers
// that remember revisions of the old store (agents' delta polls) must not
// see the target's revisions go backwards, so where the target can (bbolt,
// see Reviser) the restore first advances its revision past the source's by
// Options.BumpRevision; an etcd cluster's revision cannot be moved, and
// Result.Behind then tells the operator to restart the agents.
//
// Restore and Copy write in batches that fit the target's store.Limits; a
// crash in the middle leaves store.RestoringKey, which makes store.Migrate
// (run at every start) refuse the store until the restore is run again with
// Force. The last Txn writes the format and removes the marker at once.
//
// The backup file:
//
//	"HOLDFAST-BACKUP 1\n"
//	header: uvarint length, JSON (Header)
//	records: 'k', uvarint key length, key, uvarint value length, value
//	trailer: 't', uvarint length, JSON (Trailer: count, format, revision)
//	checksum: SHA-256 of every byte before it
//
// Restore reads the whole file once to verify it before it writes anything.
package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/holdfast/holdfast/internal/store"
)

const magic = "HOLDFAST-BACKUP 1\n"

// DefaultBumpRevision is how far Restore and Copy advance a bbolt target's
// revision past the source's: more than the writes a store takes between a
// backup and a disaster (etcd's own restore recommends the same order of
// magnitude for --bump-revision).
const DefaultBumpRevision = 1_000_000_000

var (
	// ErrNotEmpty is returned by Restore and Copy for a target that holds
	// data, unless Options.Force.
	ErrNotEmpty = errors.New("snapshot: the target store is not empty")
	// ErrCorrupt is wrapped by Restore's errors for a file that is not a
	// complete, intact backup.
	ErrCorrupt = errors.New("snapshot: not a complete holdfast backup")
)

// Header opens a backup file.
type Header struct {
	Created time.Time `json:"created"`
	Source  string    `json:"source"` // e.g. "bolt /var/lib/holdfast/holdfast.db"
}

// Trailer closes a backup file.
type Trailer struct {
	Keys     int   `json:"keys"`
	Format   int   `json:"format"`   // the data format (0: before format versions)
	Revision int64 `json:"revision"` // the source's revision of the snapshot
}

// Result says what was copied.
type Result struct {
	Header
	Trailer
	Bytes int64 // keys and values
	// TargetRev is the target's revision after the restore.
	TargetRev int64
	// Behind reports that the target's revision ended below the source's
	// (an etcd cluster whose revision cannot be advanced): agents that
	// remember the old revisions must be restarted to resync.
	Behind bool
}

// Reviser is implemented by targets whose revision can be advanced
// (bbolt): Restore and Copy call it on an empty target.
type Reviser interface {
	// AdvanceRev raises the store's revision to rev if it is lower; the
	// next Txn gets a revision after it.
	AdvanceRev(ctx context.Context, rev int64) error
}

// Options configures Restore and Copy.
type Options struct {
	// Force restores into a store that holds data: its data keys are
	// deleted first.
	Force bool
	// BumpRevision: see the package doc; 0 means DefaultBumpRevision,
	// negative means do not advance.
	BumpRevision int64
	// Source describes the source in the restore marker and messages.
	Source string
}

// Write writes a backup of b's data to w and returns what it wrote. It
// refuses a store whose restore did not finish.
func Write(ctx context.Context, b store.Backend, w io.Writer, source string) (Result, error) {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
	res := Result{Header: Header{Created: time.Now().UTC(), Source: source}}
	if _, err := bw.WriteString(magic); err != nil {
		return res, err
	}
	if err := writeJSON(bw, 0, res.Header); err != nil {
		return res, err
	}
	if err := readData(ctx, b, &res, func(k string, v []byte) error {
		bw.WriteByte('k')
		writeBytes(bw, []byte(k))
		return writeBytes(bw, v)
	}); err != nil {
		return res, err
	}
	if err := writeJSON(bw, 't', res.Trailer); err != nil {
		return res, err
	}
	if err := bw.Flush(); err != nil {
		return res, err
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return res, err
	}
	return res, nil
}

// readData reads b's data keys at one revision, calls emit for each, and
// fills res's trailer (count, format, revision) and Bytes. It refuses a
// store whose restore did not finish.
func readData(ctx context.Context, b store.Backend, res *Result, emit func(key string, value []byte) error) error {
	if _, ok, err := b.Get(ctx, store.RestoringKey); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("snapshot: the source: %w", store.ErrRestoring)
	}
	format, found := -1, false
	rev, err := scan(ctx, b, func(kv store.KV) error {
		if kv.Key == store.FormatKey {
			f, err := store.ParseFormat(kv.Value)
			format = f
			return err
		}
		if !store.IsData(kv.Key) {
			return nil
		}
		found = true
		res.Keys++
		res.Bytes += int64(len(kv.Key) + len(kv.Value))
		return emit(kv.Key, kv.Value)
	})
	if err != nil {
		return err
	}
	switch {
	case format >= 0:
		res.Format = format
	case found:
		res.Format = 0 // data from before format versions
	default:
		res.Format = store.CurrentFormat // an empty store
	}
	res.Revision = rev
	return nil
}

// scan reads every key of b at one revision.
func scan(ctx context.Context, b store.Backend, fn func(store.KV) error) (int64, error) {
	if sc, ok := b.(store.Scanner); ok {
		return sc.Scan(ctx, "", fn)
	}
	kvs, rev, err := b.Range(ctx, "")
	if err != nil {
		return 0, err
	}
	for _, kv := range kvs {
		if err := fn(kv); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

func writeBytes(w *bufio.Writer, b []byte) error {
	var n [binary.MaxVarintLen64]byte
	w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	_, err := w.Write(b)
	return err
}

func writeJSON(w *bufio.Writer, tag byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if tag != 0 {
		w.WriteByte(tag)
	}
	return writeBytes(w, b)
}

// reader parses a backup file, hashing what it reads.
type reader struct {
	r *bufio.Reader
	h hash.Hash
}

func (r *reader) byte() (byte, error) {
	c, err := r.r.ReadByte()
	if err == nil {
		r.h.Write([]byte{c})
	}
	return c, err
}

// maxField bounds one key, value or JSON block (etcd's own limit on a
// request is far below).
const maxField = 1 << 30

func (r *reader) bytes() ([]byte, error) {
	n, err := binary.ReadUvarint(byteReader{r})
	if err != nil {
		return nil, err
	}
	if n > maxField {
		return nil, fmt.Errorf("a field of %d bytes", n)
	}
	// Grow with what is actually there: a damaged length does not make a
	// huge allocation.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r.r, int64(n)); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	r.h.Write(buf.Bytes())
	return buf.Bytes(), nil
}

type byteReader struct{ r *reader }

func (b byteReader) ReadByte() (byte, error) { return b.r.byte() }

// read parses the file from the start, calling fn for every record (fn nil:
// only verify), and returns its header and trailer once the checksum
// matched. fn runs before the checksum is checked: Restore verifies in a
// first pass and applies in a second.
func read(rs io.ReadSeeker, fn func(key string, value []byte) error) (Header, Trailer, error) {
	var (
		hd Header
		tr Trailer
	)
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return hd, tr, err
	}
	r := &reader{r: bufio.NewReaderSize(rs, 1<<16), h: sha256.New()}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(r.r, m); err != nil || string(m) != magic {
		return hd, tr, bad("it does not start with %q", magic[:len(magic)-1])
	}
	r.h.Write(m)
	b, err := r.bytes()
	if err != nil {
		return hd, tr, bad("header: %v", err)
	}
	if err := json.Unmarshal(b, &hd); err != nil {
		return hd, tr, bad("header: %v", err)
	}
	count := 0
	for {
		tag, err := r.byte()
		if err != nil {
			return hd, tr, bad("truncated after %d keys", count)
		}
		if tag == 't' {
			break
		}
		if tag != 'k' {
			return hd, tr, bad("unknown record %q after %d keys", tag, count)
		}
		k, err := r.bytes()
		if err != nil {
			return hd, tr, bad("key %d: %v", count+1, err)
		}
		v, err := r.bytes()
		if err != nil {
			return hd, tr, bad("value of %q: %v", k, err)
		}
		count++
		if fn != nil {
			if err := fn(string(k), v); err != nil {
				return hd, tr, err
			}
		}
	}
	b, err = r.bytes()
	if err != nil {
		return hd, tr, bad("trailer: %v", err)
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		return hd, tr, bad("trailer: %v", err)
	}
	sum := r.h.Sum(nil)
	got := make([]byte, len(sum))
	if _, err := io.ReadFull(r.r, got); err != nil || string(got) != string(sum) {
		return hd, tr, bad("checksum mismatch")
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return hd, tr, bad("data after the checksum")
	}
	if tr.Keys != count {
		return hd, tr, bad("the trailer counts %d keys, the file holds %d", tr.Keys, count)
	}
	return hd, tr, nil
}

// Verify checks a backup file and returns its header and trailer.
func Verify(rs io.ReadSeeker) (Header, Trailer, error) { return read(rs, nil) }

// Restore writes the backup in rs into dst (see the package doc).
func Restore(ctx context.Context, rs io.ReadSeeker, dst store.Backend, opts Options) (Result, error) {
	hd, tr, err := read(rs, nil)
	if err != nil {
		return Result{}, err
	}
	if tr.Format > store.CurrentFormat {
		return Result{}, fmt.Errorf("snapshot: %w: the backup is format %d, this holdfast understands up to %d", store.ErrFormatTooNew, tr.Format, store.CurrentFormat)
	}
	res := Result{Header: hd, Trailer: tr}
	if opts.Source == "" {
		opts.Source = "backup made " + hd.Created.Format(time.RFC3339) + " from " + hd.Source
	}
	w, err := begin(ctx, dst, tr.Revision, opts)
	if err != nil {
		return res, err
	}
	if _, _, err := read(rs, func(k string, v []byte) error {
		res.Bytes += int64(len(k) + len(v))
		return w.put(ctx, k, v)
	}); err != nil {
		return res, err
	}
	return w.finish(ctx, tr.Format, res)
}

// Copy copies src's data into dst (see the package doc): what `holdfast
// migrate` does, one consistent snapshot of src written to dst.
func Copy(ctx context.Context, src, dst store.Backend, opts Options) (Result, error) {
	res := Result{Header: Header{Created: time.Now().UTC(), Source: opts.Source}}
	if _, ok, err := src.Get(ctx, store.RestoringKey); err != nil {
		return res, err
	} else if ok {
		return res, fmt.Errorf("snapshot: the source: %w", store.ErrRestoring)
	}
	w, err := begin(ctx, dst, src.Rev(), opts)
	if err != nil {
		return res, err
	}
	if err := readData(ctx, src, &res, func(k string, v []byte) error { return w.put(ctx, k, v) }); err != nil {
		return res, err
	}
	if res.Format > store.CurrentFormat {
		return res, fmt.Errorf("snapshot: %w: the source is format %d", store.ErrFormatTooNew, res.Format)
	}
	return w.finish(ctx, res.Format, res)
}

// writer fills a target in batches.
type writer struct {
	dst    store.Backend
	limits store.Limits
	ops    []store.Op
	bytes  int
	srcRev int64
}

// begin checks that dst is empty (or clears it with Force), marks it as
// being restored and advances its revision.
func begin(ctx context.Context, dst store.Backend, srcRev int64, opts Options) (*writer, error) {
	lim := store.LimitsOf(dst)
	if lim.MaxOps <= 0 {
		lim.MaxOps = 10_000
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 4 << 20
	}
	w := &writer{dst: dst, limits: lim, srcRev: srcRev}
	empty, err := store.IsEmpty(ctx, dst)
	if err != nil {
		return nil, err
	}
	_, restoring, err := dst.Get(ctx, store.RestoringKey)
	if err != nil {
		return nil, err
	}
	if (!empty || restoring) && !opts.Force {
		what := "it holds data"
		if restoring {
			what = "an earlier restore into it did not finish"
		}
		return nil, fmt.Errorf("%w (%s); restore with --force to replace its data", ErrNotEmpty, what)
	}
	marker := fmt.Sprintf("restore of %s started %s", opts.Source, time.Now().UTC().Format(time.RFC3339))
	if _, err := dst.Txn(ctx, []store.Op{store.Put(store.RestoringKey, []byte(marker))}); err != nil {
		return nil, fmt.Errorf("snapshot: mark the target: %w", err)
	}
	if !empty {
		var keys []string
		if _, err := scan(ctx, dst, func(kv store.KV) error {
			if store.IsData(kv.Key) || kv.Key == store.FormatKey {
				keys = append(keys, kv.Key)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		for _, k := range keys {
			if err := w.add(ctx, store.Del(k)); err != nil {
				return nil, err
			}
		}
		if err := w.flush(ctx); err != nil {
			return nil, err
		}
	}
	bump := opts.BumpRevision
	if bump == 0 {
		bump = DefaultBumpRevision
	}
	if rv, ok := dst.(Reviser); ok && bump > 0 && empty {
		if err := rv.AdvanceRev(ctx, srcRev+bump); err != nil {
			return nil, fmt.Errorf("snapshot: advance the target's revision: %w", err)
		}
	}
	return w, nil
}

func (w *writer) put(ctx context.Context, k string, v []byte) error {
	if !store.IsData(k) {
		return nil
	}
	return w.add(ctx, store.Put(k, v))
}

func (w *writer) add(ctx context.Context, op store.Op) error {
	n := len(op.Key) + len(op.Value)
	if len(w.ops) > 0 && (len(w.ops)+1 > w.limits.MaxOps || w.bytes+n > w.limits.MaxBytes) {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	w.ops = append(w.ops, op)
	w.bytes += n
	return nil
}

func (w *writer) flush(ctx context.Context) error {
	if len(w.ops) == 0 {
		return nil
	}
	if _, err := w.dst.Txn(ctx, w.ops); err != nil {
		return fmt.Errorf("snapshot: write %d keys: %w", len(w.ops), err)
	}
	clear(w.ops)
	w.ops, w.bytes = w.ops[:0], 0
	return nil
}

// finish writes the format and removes the marker in the last Txn.
func (w *writer) finish(ctx context.Context, format int, res Result) (Result, error) {
	if err := w.flush(ctx); err != nil {
		return res, err
	}
	// Format 0 (before format versions) has no format key: the target is
	// left the same, and store.Migrate brings it forward at the next start.
	ops := []store.Op{store.Del(store.RestoringKey)}
	if format > 0 {
		ops = append(ops, store.Put(store.FormatKey, store.FormatValue(format)))
	}
	rev, err := w.dst.Txn(ctx, ops)
	if err != nil {
		return res, fmt.Errorf("snapshot: finish: %w", err)
	}
	res.TargetRev = rev
	res.Behind = rev <= w.srcRev
	return res, nil
}
