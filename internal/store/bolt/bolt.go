// Package bolt is the embedded store.Backend: one bbolt file in the data
// directory.
//
// Layout: bucket "kv" maps each key to an 8-byte big-endian ModRev followed by
// the value; bucket "meta" holds the current revision under "rev" and the
// layout version under "version".
//
// Writes go through a single committer goroutine. It takes every Txn waiting
// when it becomes free, applies them one after another to one bolt write
// transaction (each Txn's compares are checked against the state left by the
// ones before it, so a conflict fails only its own caller), commits with one
// fsync and then answers all of them. Reads (Get, Range) use read-only bolt
// transactions and never wait for the committer.
//
// If a commit fails (for example fsync returns an error), every Txn of that
// batch gets the error and the Store enters a failed state: all later calls
// return an error wrapping ErrFailed and watchers are closed. After a failed
// fsync the kernel's view of the file can no longer be trusted to match the
// disk, so the only way forward is to Close and Open again, which reads what
// is actually durable.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/holdfast/holdfast/internal/store"
)

// ErrFailed is wrapped by every error returned after a commit failed; the
// Store must be closed and opened again.
var ErrFailed = errors.New("store/bolt: a commit failed; reopen the store")

// Default values for Options.
const (
	DefaultHistorySize = 10_000
	DefaultMaxBatch    = 1024
	DefaultLockTimeout = 10 * time.Second
)

// layoutVersion is stored in meta/version; Open refuses any other value.
const layoutVersion = "1"

var (
	bucketKV   = []byte("kv")
	bucketMeta = []byte("meta")
	keyRev     = []byte("rev")
	keyVersion = []byte("version")
)

// Options configures Open. The zero value is the production setting.
type Options struct {
	// NoFsync skips fsync on commit. Only for tests and benchmarks that do not
	// care about durability: an acknowledged Txn can be lost on power failure.
	NoFsync bool

	// Logger receives commit failures and open/close messages. Nil discards.
	Logger *slog.Logger

	// HistorySize is the number of recent events kept in memory to serve
	// Watch from an earlier revision and to buffer slow watchers.
	// Default DefaultHistorySize.
	HistorySize int

	// MaxBatch caps the number of Txns in one group commit.
	// Default DefaultMaxBatch.
	MaxBatch int

	// LockTimeout bounds the wait for the file lock held by another process.
	// Default DefaultLockTimeout; negative waits forever.
	LockTimeout time.Duration

	// openFile replaces os.OpenFile (tests inject failing files).
	openFile func(string, int, os.FileMode) (*os.File, error)
}

// Store is a store.Backend on one bbolt file. Create it with Open.
type Store struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger

	maxBatch int

	rev    atomic.Int64            // last committed revision
	failed atomic.Pointer[failure] // set once a commit failed
	stats  struct{ txns, commits, conflicts atomic.Uint64 }

	// closeMu guards closed and sending on reqs: Txn holds it for reading
	// while it enqueues, Close takes it for writing before closing reqs.
	closeMu sync.RWMutex
	closed  bool
	reqs    chan *txnReq

	committerDone chan struct{}
	closeOnce     sync.Once

	hist *history // watch history and watcher wake-ups; see watch.go

	// beforeCommit, when set (tests), runs in the committer before each
	// batch is applied, with the number of Txns in the batch.
	beforeCommit func(n int)
}

type failure struct{ err error }

var _ store.Backend = (*Store)(nil)

// Open opens or creates the store file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.HistorySize <= 0 {
		opts.HistorySize = DefaultHistorySize
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	switch {
	case opts.LockTimeout == 0:
		opts.LockTimeout = DefaultLockTimeout
	case opts.LockTimeout < 0:
		opts.LockTimeout = 0 // bbolt: wait forever
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        opts.LockTimeout,
		NoSync:         opts.NoFsync,
		NoFreelistSync: true, // rebuilt at open; saves a page write per commit
		FreelistType:   bbolt.FreelistMapType,
		OpenFile:       opts.openFile,
	})
	if err != nil {
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}
	rev, err := initFile(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store/bolt: open %s: %w", path, err)
	}

	s := &Store{
		db:            db,
		path:          path,
		log:           log,
		maxBatch:      opts.MaxBatch,
		reqs:          make(chan *txnReq, opts.MaxBatch),
		committerDone: make(chan struct{}),
		hist:          newHistory(opts.HistorySize, rev),
	}
	s.rev.Store(rev)
	go s.committer()
	log.Debug("store opened", "path", path, "rev", rev, "fsync", !opts.NoFsync)
	return s, nil
}

// initFile checks the layout and returns the stored revision, creating the
// buckets on a new file. An existing file is only read.
func initFile(db *bbolt.DB) (int64, error) {
	var (
		rev   int64
		fresh bool
	)
	err := db.View(func(tx *bbolt.Tx) error {
		meta, kv := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
		if meta == nil || kv == nil || meta.Get(keyVersion) == nil {
			fresh = true
			return nil
		}
		if v := meta.Get(keyVersion); string(v) != layoutVersion {
			return fmt.Errorf("unsupported layout version %q (want %q)", v, layoutVersion)
		}
		var err error
		rev, err = decodeRev(meta.Get(keyRev))
		return err
	})
	if err != nil || !fresh {
		return rev, err
	}
	return 0, db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if meta.Get(keyRev) != nil {
			return errors.New("revision without layout version: not a holdfast store")
		}
		kv, err := tx.CreateBucketIfNotExists(bucketKV)
		if err != nil {
			return err
		}
		if k, _ := kv.Cursor().First(); k != nil {
			return errors.New("data without layout version: not a holdfast store")
		}
		return meta.Put(keyVersion, []byte(layoutVersion))
	})
}

// Path is the file the Store was opened on.
func (s *Store) Path() string { return s.path }

// Rev implements store.Backend.
func (s *Store) Rev() int64 { return s.rev.Load() }

// usable returns ErrClosed or the failure error if the store cannot serve calls.
func (s *Store) usable() error {
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		return store.ErrClosed
	}
	return nil
}

// view runs fn in a read-only transaction, mapping bolt's closed error.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.usable(); err != nil {
		return err
	}
	err := s.db.View(fn)
	if errors.Is(err, bberrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	if err != nil {
		return err
	}
	// A commit may have failed while we read: do not hand out what may be
	// pages that never reached the disk.
	if f := s.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// Get implements store.Backend.
func (s *Store) Get(ctx context.Context, key string) (store.KV, bool, error) {
	var (
		kv store.KV
		ok bool
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketKV).Get([]byte(key))
		if raw == nil {
			return nil
		}
		var err error
		kv, err = decodeKV(key, raw)
		ok = err == nil
		return err
	})
	if err != nil {
		return store.KV{}, false, err
	}
	return kv, ok, nil
}

// Range implements store.Backend.
func (s *Store) Range(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	var (
		out []store.KV
		rev int64
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		if rev, err = decodeRev(tx.Bucket(bucketMeta).Get(keyRev)); err != nil {
			return err
		}
		p := []byte(prefix)
		c := tx.Bucket(bucketKV).Cursor()
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			kv, err := decodeKV(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, kv)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, rev, nil
}

// Close implements store.Backend. It waits for the Txns already queued to be
// committed, closes watchers and the file.
func (s *Store) Close() error {
	var err error
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.closeMu.Lock()
		s.closed = true
		close(s.reqs) // no Txn can be sending: they hold closeMu.RLock to send
		s.closeMu.Unlock()
		<-s.committerDone
		s.hist.stop()
		err = s.db.Close()
		s.log.Debug("store closed", "path", s.path, "rev", s.rev.Load())
	})
	if !first {
		return nil
	}
	return err
}

// Stats counts the work done since Open.
type Stats struct {
	Txns      uint64 // successful Txns
	Commits   uint64 // bolt commits (fsyncs); Txns/Commits is the group-commit factor
	Conflicts uint64 // Txns that failed a Compare
}

// Stats returns counters since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Txns:      s.stats.txns.Load(),
		Commits:   s.stats.commits.Load(),
		Conflicts: s.stats.conflicts.Load(),
	}
}

// Check verifies the file: bbolt's page-level consistency check, then that
// every value is well formed with 1 <= ModRev <= the stored revision.
// It reads the whole file; meant for tests and offline checks.
func (s *Store) Check() error {
	if err := s.usable(); err != nil {
		return err
	}
	return s.db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("store/bolt: check: %w", errors.Join(errs...))
		}
		rev, err := decodeRev(tx.Bucket(bucketMeta).Get(keyRev))
		if err != nil {
			return err
		}
		return tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
			kv, err := decodeKV(string(k), v)
			if err != nil {
				return err
			}
			if kv.ModRev < 1 || kv.ModRev > rev {
				return fmt.Errorf("store/bolt: check: key %q has ModRev %d outside [1, %d]", k, kv.ModRev, rev)
			}
			return nil
		})
	})
}

func encodeValue(rev int64, value []byte) []byte {
	buf := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(buf, uint64(rev))
	copy(buf[8:], value)
	return buf
}

// decodeKV copies raw (which lives in the bolt mmap) into a KV.
func decodeKV(key string, raw []byte) (store.KV, error) {
	if len(raw) < 8 {
		return store.KV{}, fmt.Errorf("store/bolt: corrupt value for key %q: %d bytes", key, len(raw))
	}
	return store.KV{
		Key:    key,
		Value:  append([]byte{}, raw[8:]...),
		ModRev: int64(binary.BigEndian.Uint64(raw)),
	}, nil
}

// modRevOf returns the ModRev of a raw stored value, 0 for nil (absent).
func modRevOf(raw []byte) int64 {
	if len(raw) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(raw))
}

func decodeRev(raw []byte) (int64, error) {
	switch len(raw) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(raw)), nil
	default:
		return 0, fmt.Errorf("store/bolt: corrupt revision: %d bytes", len(raw))
	}
}

func encodeRev(rev int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(rev))
	return b[:]
}

// Scan implements store.Scanner: it calls fn for every key with prefix, in
// key order, inside one read transaction; kv.Value points into the mmap and
// is valid only during the call.
func (s *Store) Scan(ctx context.Context, prefix string, fn func(kv store.KV) error) (int64, error) {
	var rev int64
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		if rev, err = decodeRev(tx.Bucket(bucketMeta).Get(keyRev)); err != nil {
			return err
		}
		p := []byte(prefix)
		c := tx.Bucket(bucketKV).Cursor()
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			if len(v) < 8 {
				return fmt.Errorf("store/bolt: corrupt value for key %q: %d bytes", k, len(v))
			}
			if err := fn(store.KV{Key: string(k), Value: v[8:], ModRev: int64(binary.BigEndian.Uint64(v))}); err != nil {
				return err
			}
		}
		return nil
	})
	return rev, err
}
