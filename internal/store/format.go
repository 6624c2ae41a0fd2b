package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The data format. Whatever sits above the store (the control plane's keys
// and values) has a format version, kept in the store itself under
// FormatKey, so that it travels with backups, restores and migrations
// between backends. Migrate runs at start, before anything reads the data:
// it brings an older store forward one step at a time, stamps a new store,
// and refuses one written by a newer holdfast.
//
// Format history:
//
//	0  holdfast before format versions (no FormatKey); the data is format 1's.
//	1  the first versioned format: FormatKey is written.
const (
	FormatKey     = "meta/format"
	CurrentFormat = 1
	// RestoringKey is present while a restore or a migration into the
	// store runs; a store that has it was left half-written, and Migrate
	// refuses it until the restore is run again.
	RestoringKey = "meta/restoring"
)

var (
	// ErrFormatTooNew is returned by Migrate for a store written by a newer
	// holdfast.
	ErrFormatTooNew = errors.New("store: the data format is newer than this holdfast understands")
	// ErrRestoring is returned by Migrate for a store whose restore or
	// migration did not finish.
	ErrRestoring = errors.New("store: a restore or migration into this store did not finish")
)

// Migration moves a store from format From to From+1. Apply must be
// idempotent (it may run again after a crash, or on two replicas at once)
// and may use several Txns; Migrate stamps From+1 after it returns. Nil
// Apply only stamps.
type Migration struct {
	From  int
	Name  string
	Apply func(ctx context.Context, b Backend) error
}

// migrations lists every step, in order: migrations[i].From == i.
var migrations = []Migration{
	{From: 0, Name: "stamp a store made before format versions (its data is format 1's)"},
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	From, To int      // formats before and after
	Steps    []string // names of the migrations applied
	Empty    bool     // the store was empty and has been stamped
}

// Migrate brings b to CurrentFormat (see the format history above).
func Migrate(ctx context.Context, b Backend) (MigrateResult, error) {
	return migrate(ctx, b, migrations, CurrentFormat)
}

func migrate(ctx context.Context, b Backend, steps []Migration, current int) (MigrateResult, error) {
	for {
		if kv, ok, err := b.Get(ctx, RestoringKey); err != nil {
			return MigrateResult{}, err
		} else if ok {
			return MigrateResult{}, fmt.Errorf("%w (%s); run it again, with --force", ErrRestoring, kv.Value)
		}
		kv, ok, err := b.Get(ctx, FormatKey)
		if err != nil {
			return MigrateResult{}, err
		}
		if ok {
			format, err := ParseFormat(kv.Value)
			if err != nil {
				return MigrateResult{}, err
			}
			res, err := runSteps(ctx, b, steps, current, format, kv.ModRev)
			if errors.Is(err, ErrConflict) {
				continue // another process moved the format meanwhile
			}
			return res, err
		}
		empty, err := IsEmpty(ctx, b)
		if err != nil {
			return MigrateResult{}, err
		}
		if empty {
			_, err := b.Txn(ctx, []Op{Put(FormatKey, FormatValue(current)).If(0)})
			if errors.Is(err, ErrConflict) {
				continue
			}
			return MigrateResult{From: current, To: current, Empty: true}, err
		}
		res, err := runSteps(ctx, b, steps, current, 0, 0)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return res, err
	}
}

func runSteps(ctx context.Context, b Backend, steps []Migration, current, format int, modRev int64) (MigrateResult, error) {
	res := MigrateResult{From: format, To: format}
	if format > current {
		return res, fmt.Errorf("%w: the store is at format %d, this holdfast writes format %d; run a newer holdfast (or restore a backup made by this one)", ErrFormatTooNew, format, current)
	}
	for f := format; f < current; f++ {
		step := steps[f]
		if step.From != f {
			return res, fmt.Errorf("store: migration table is out of order at format %d", f)
		}
		if step.Apply != nil {
			if err := step.Apply(ctx, b); err != nil {
				return res, fmt.Errorf("store: migrate format %d to %d (%s): %w", f, f+1, step.Name, err)
			}
		}
		rev, err := b.Txn(ctx, []Op{Put(FormatKey, FormatValue(f+1)).If(modRev)})
		if err != nil {
			return res, err
		}
		modRev = rev
		res.To = f + 1
		res.Steps = append(res.Steps, step.Name)
	}
	return res, nil
}

// FormatValue encodes a format version as FormatKey's value.
func FormatValue(format int) []byte { return []byte(strconv.Itoa(format)) }

// ParseFormat decodes FormatKey's value.
func ParseFormat(v []byte) (int, error) {
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("store: %s holds %q, not a format version", FormatKey, v)
	}
	return n, nil
}

// errStop ends a Scan early.
var errStop = errors.New("stop")

// IsEmpty reports whether b holds no data: nothing but keys under
// RuntimePrefix and the format key.
func IsEmpty(ctx context.Context, b Backend) (bool, error) {
	empty := true
	visit := func(kv KV) error {
		if IsData(kv.Key) {
			empty = false
			return errStop
		}
		return nil
	}
	if sc, ok := b.(Scanner); ok {
		if _, err := sc.Scan(ctx, "", visit); err != nil && !errors.Is(err, errStop) {
			return false, err
		}
		return empty, nil
	}
	kvs, _, err := b.Range(ctx, "")
	if err != nil {
		return false, err
	}
	for _, kv := range kvs {
		if visit(kv) != nil {
			break
		}
	}
	return empty, nil
}

// IsData reports whether key is data, as opposed to the runtime keys
// (RuntimePrefix), the format key and the restore marker, which backups
// and emptiness checks leave out.
func IsData(key string) bool {
	return !strings.HasPrefix(key, RuntimePrefix) && key != FormatKey && key != RestoringKey
}
