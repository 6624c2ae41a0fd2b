package state

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/holdfast/holdfast/internal/store"
)

// kindOf returns the kind whose prefix key has, and the key relative to
// it; nil for keys of no registered kind (other data in the same store,
// such as an election key, is not the engine's).
func (e *Engine) kindOf(key string) (*kindInfo, string) {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return nil, ""
	}
	ki := e.byPrefix[key[:i+1]]
	if ki == nil {
		return nil, ""
	}
	return ki, key[i+1:]
}

// loader is implemented by every table: it installs a loaded record
// without indexing it.
type loader interface {
	loadAny(key string, v any, rev int64)
}

func (t *tableOf[T]) loadAny(key string, v any, rev int64) { t.load(key, v.(*T), rev) }

// load reads the whole store into memory. With a store.Scanner it
// streams: values are decoded by one worker per CPU while the store is
// read, and never held all at once. Then every kind's links are filled
// and its indexes built.
func (e *Engine) load(ctx context.Context) error {
	type job struct {
		ki    *kindInfo
		key   string
		value []byte
		rev   int64
	}
	type result struct {
		ki  *kindInfo
		key string
		v   any
		rev int64
		err error
	}
	jobs := make(chan job, 1024)
	results := make(chan result, 1024)
	var wg sync.WaitGroup
	for range max(runtime.NumCPU(), 1) {
		wg.Go(func() {
			for j := range jobs {
				v, err := j.ki.decode(j.key, j.value)
				results <- result{ki: j.ki, key: j.key, v: v, rev: j.rev, err: err}
			}
		})
	}
	var rev int64
	var readErr error
	var reader sync.WaitGroup
	reader.Go(func() {
		defer func() {
			close(jobs)
			wg.Wait()
			close(results)
		}()
		send := func(kv store.KV, copyValue bool) {
			ki, key := e.kindOf(kv.Key)
			if ki == nil {
				return
			}
			v := kv.Value
			if copyValue {
				v = append([]byte(nil), v...)
			}
			jobs <- job{ki: ki, key: key, value: v, rev: kv.ModRev}
		}
		if sc, ok := e.backend.(store.Scanner); ok {
			rev, readErr = sc.Scan(ctx, "", func(kv store.KV) error {
				send(kv, true)
				return nil
			})
			return
		}
		var kvs []store.KV
		kvs, rev, readErr = e.backend.Range(ctx, "")
		for _, kv := range kvs {
			send(kv, false)
		}
	})
	var in Interner
	var firstErr error
	for r := range results {
		if firstErr != nil {
			continue
		}
		if r.err != nil {
			firstErr = fmt.Errorf("state: load %s%s: %w", r.ki.prefix, r.key, r.err)
			continue
		}
		if r.ki.intern != nil {
			r.ki.intern(r.v, &in)
		}
		e.tables[r.ki.id].(loader).loadAny(r.key, r.v, r.rev)
	}
	reader.Wait()
	if readErr != nil {
		return fmt.Errorf("state: load: %w", readErr)
	}
	if firstErr != nil {
		return firstErr
	}
	v := &View{e: e, now: e.clock.Now(), rev: rev}
	for i, k := range e.kinds {
		if ki := k.info(); ki.link != nil {
			e.tables[i].link(v, ki.link)
		}
	}
	for _, t := range e.tables {
		t.buildIndexes()
	}
	e.loadRev = rev
	e.durable.Store(rev)
	// Hand the decode buffers back to the OS now rather than at the
	// scavenger's pace: a control plane's resident memory should be its
	// state, not its start-up garbage.
	debug.FreeOSMemory()
	return nil
}
