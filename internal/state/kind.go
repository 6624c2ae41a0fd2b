package state

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/holdfast/holdfast/internal/store"
)

// AnyKind is a record kind of any type: what the change feed and the
// registry hold. Every AnyKind is a *Kind[T].
type AnyKind interface {
	// Name is the kind's name ("tasks"), for logs and errors.
	Name() string
	// Prefix is the store key prefix of the kind's records ("tasks/").
	Prefix() string
	info() *kindInfo
}

// kindInfo is the untyped part of a kind, used by the engine's generic
// paths (load, commit, follow, feed).
type kindInfo struct {
	id     int
	name   string
	prefix string
	// newTable makes the kind's empty in-memory table.
	newTable func() table
	// decode decodes a stored value (key relative to the prefix).
	decode func(key string, value []byte) (any, error)
	// encode encodes a record for the store.
	encode func(v any) ([]byte, error)
	// link fills a decoded record's derived fields (may be nil).
	link func(v any, r Reader)
	// intern deduplicates a loaded record's strings (may be nil).
	intern func(v any, in *Interner)
	// indexes is the number of the kind's indexes; they are built after
	// every record (and every link) is in place.
	indexes int
}

// Kind describes one record kind: its Go type T, the store prefix its
// records live under, the key of a record, its codec and its indexes.
// Records of a kind are *T values that are never modified once written:
// to change one, copy it, change the copy and Put the copy.
//
// Define kinds with Define, at package level: the engine knows the kinds
// defined before it opens.
type Kind[T any] struct {
	ki      kindInfo
	key     func(*T) string
	enc     func(*T) ([]byte, error)
	dec     func(key string, b []byte) (*T, error)
	link    func(v *T, r Reader)
	intern  func(v *T, in *Interner)
	indexes []*Index[T]
}

// Option configures a kind at Define.
type Option[T any] func(*Kind[T])

// WithCodec replaces the default JSON codec. dec gets the key relative to
// the kind's prefix, so a record may keep part of its identity in its key
// only.
func WithCodec[T any](enc func(*T) ([]byte, error), dec func(key string, b []byte) (*T, error)) Option[T] {
	return func(k *Kind[T]) { k.enc, k.dec = enc, dec }
}

// WithCheck rejects a decoded record that is malformed (the default JSON
// decoder accepts any object).
func WithCheck[T any](check func(*T) error) Option[T] {
	return func(k *Kind[T]) {
		dec := k.dec
		k.dec = func(key string, b []byte) (*T, error) {
			v, err := dec(key, b)
			if err != nil {
				return nil, err
			}
			return v, check(v)
		}
	}
}

// WithLink sets fields of a record that are derived from other records and
// not stored with it (for example the service of a task's protection, kept
// with the task). The engine calls it for records that come from the store
// (at load, once every record is in memory, and in follow mode); records
// that an Update puts must arrive with those fields already set. link may
// read other kinds through r.
func WithLink[T any](link func(v *T, r Reader)) Option[T] {
	return func(k *Kind[T]) { k.link = link }
}

// WithIntern deduplicates repeated strings of loaded records (ARNs,
// statuses, names), so that 100,000 records of a few services share one
// copy of each.
func WithIntern[T any](intern func(v *T, in *Interner)) Option[T] {
	return func(k *Kind[T]) { k.intern = intern }
}

var registry struct {
	sync.Mutex
	kinds  []AnyKind
	frozen bool // an engine has opened: no new kinds
}

// Define registers a record kind. name is for humans; prefix is the store
// key prefix (it must end in "/" and must not overlap another kind's);
// key returns the record's key relative to the prefix. The codec defaults
// to JSON. Define panics on a bad or duplicate prefix: kinds are program
// constants.
func Define[T any](name, prefix string, key func(*T) string, opts ...Option[T]) *Kind[T] {
	if !strings.HasSuffix(prefix, "/") || strings.Count(prefix, "/") != 1 {
		panic(fmt.Sprintf("state: kind %s: prefix %q must be one path segment ending in /", name, prefix))
	}
	if prefix == store.RuntimePrefix || strings.HasPrefix(store.FormatKey, prefix) {
		panic(fmt.Sprintf("state: kind %s: prefix %q belongs to the store", name, prefix))
	}
	k := &Kind[T]{key: key}
	k.enc = func(v *T) ([]byte, error) { return json.Marshal(v) }
	k.dec = func(_ string, b []byte) (*T, error) {
		v := new(T)
		return v, json.Unmarshal(b, v)
	}
	for _, o := range opts {
		o(k)
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.frozen {
		panic("state: kind " + name + " defined after an engine opened; define kinds at package level")
	}
	for _, o := range registry.kinds {
		if o.Prefix() == prefix {
			panic(fmt.Sprintf("state: kinds %s and %s share the prefix %q", o.Name(), name, prefix))
		}
	}
	k.ki = kindInfo{
		id:       len(registry.kinds),
		name:     name,
		prefix:   prefix,
		newTable: func() table { return newTableOf(k) },
		decode: func(key string, b []byte) (any, error) {
			v, err := k.dec(key, b)
			if err != nil {
				return nil, err
			}
			return v, nil
		},
		encode: func(v any) ([]byte, error) { return k.enc(v.(*T)) },
	}
	if k.link != nil {
		k.ki.link = func(v any, r Reader) { k.link(v.(*T), r) }
	}
	if k.intern != nil {
		k.ki.intern = func(v any, in *Interner) { k.intern(v.(*T), in) }
	}
	registry.kinds = append(registry.kinds, k)
	return k
}

// kinds returns the registered kinds, by id, and stops further Defines
// from changing what an open engine knows.
func kinds() []AnyKind {
	registry.Lock()
	defer registry.Unlock()
	registry.frozen = true
	return slices.Clone(registry.kinds)
}

// Name implements AnyKind.
func (k *Kind[T]) Name() string { return k.ki.name }

// Prefix implements AnyKind.
func (k *Kind[T]) Prefix() string { return k.ki.prefix }

func (k *Kind[T]) info() *kindInfo { return &k.ki }

// Key returns v's key relative to the kind's prefix.
func (k *Kind[T]) Key(v *T) string { return k.key(v) }

// StoreKey returns the store key of the record with relative key key.
func (k *Kind[T]) StoreKey(key string) string { return k.ki.prefix + key }

// Get returns the record with key key (relative to the prefix), or nil.
// Inside an Update it sees the Update's own writes.
func (k *Kind[T]) Get(r Reader, key string) *T {
	return r.view().table(&k.ki).(*tableOf[T]).rows[key].v
}

// Rev returns the store revision that last wrote the record with key key:
// 0 if absent, -1 while the commit that wrote it is in flight.
func (k *Kind[T]) Rev(r Reader, key string) int64 {
	return r.view().table(&k.ki).(*tableOf[T]).rows[key].rev
}

// Len returns the number of records of the kind.
func (k *Kind[T]) Len(r Reader) int { return len(r.view().table(&k.ki).(*tableOf[T]).rows) }

// All iterates every record of the kind, in no particular order.
func (k *Kind[T]) All(r Reader) iter.Seq2[string, *T] {
	t := r.view().table(&k.ki).(*tableOf[T])
	return func(yield func(string, *T) bool) {
		for key, row := range t.rows {
			if !yield(key, row.v) {
				return
			}
		}
	}
}

// Put writes v under its key. It must be a new value, not one read from
// the state and modified in place: readers may hold the old pointer.
func (k *Kind[T]) Put(tx *Tx, v *T) {
	if v == nil {
		panic("state: Put of a nil " + k.ki.name + " record")
	}
	tx.write(&k.ki, k.key(v), v)
}

// Delete removes the record with key key, if there is one.
func (k *Kind[T]) Delete(tx *Tx, key string) {
	tx.write(&k.ki, key, nil)
}

// Index groups a kind's records by a value derived from each record, such
// as the cluster of a service or the service of a task, so that one group
// is read without scanning the kind. Like every read, an index read inside
// an Update sees the Update's own writes.
type Index[T any] struct {
	k     *Kind[T]
	pos   int
	name  string
	group func(*T) (string, bool)
}

// NewIndex adds an index to k. group returns a record's group and whether
// the record belongs to the index at all (for example only tasks that are
// not STOPPED). group must depend only on the record itself. Call it at
// package level, right after Define.
func NewIndex[T any](k *Kind[T], name string, group func(*T) (string, bool)) *Index[T] {
	registry.Lock()
	defer registry.Unlock()
	if registry.frozen {
		panic("state: index " + name + " defined after an engine opened; define indexes at package level")
	}
	ix := &Index[T]{k: k, pos: len(k.indexes), name: name, group: group}
	k.indexes = append(k.indexes, ix)
	k.ki.indexes = len(k.indexes)
	return ix
}

// Group iterates the records of one group, in no particular order.
func (ix *Index[T]) Group(r Reader, group string) iter.Seq2[string, *T] {
	g := r.view().table(&ix.k.ki).(*tableOf[T]).idx[ix.pos][group]
	return func(yield func(string, *T) bool) {
		if g == nil {
			return
		}
		for key, v := range g.m {
			if !yield(key, v) {
				return
			}
		}
	}
}

// Keys returns the keys of one group, sorted.
func (ix *Index[T]) Keys(r Reader, group string) []string {
	g := r.view().table(&ix.k.ki).(*tableOf[T]).idx[ix.pos][group]
	if g == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(g.m))
}

// Groups returns the index's non-empty groups, sorted.
func (ix *Index[T]) Groups(r Reader) []string {
	return slices.Sorted(maps.Keys(r.view().table(&ix.k.ki).(*tableOf[T]).idx[ix.pos]))
}

// Len returns the size of one group.
func (ix *Index[T]) Len(r Reader, group string) int {
	if g := r.view().table(&ix.k.ki).(*tableOf[T]).idx[ix.pos][group]; g != nil {
		return len(g.m)
	}
	return 0
}

// Version is a number that changes whenever a record joins, leaves or
// changes within the group (and only then); 0 for an empty group. A value
// computed from a group (a count, say) stays right while its version is
// the same: a cheap way to keep such a value across Updates and batches.
// Inside an Update it reflects the Update's own writes.
func (ix *Index[T]) Version(r Reader, group string) uint64 {
	if g := r.view().table(&ix.k.ki).(*tableOf[T]).idx[ix.pos][group]; g != nil {
		return g.ver
	}
	return 0
}

// table is a kind's in-memory records, used through the untyped paths.
type table interface {
	getAny(key string) (v any, rev int64)
	// setAny installs v (nil = delete) under key with revision rev and
	// keeps the indexes current.
	setAny(key string, v any, rev int64)
	// settle sets the revision of key's record if it is still v.
	settle(key string, v any, rev int64)
	link(r Reader, fn func(v any, r Reader))
	buildIndexes()
	size() int
}

type row[T any] struct {
	v   *T
	rev int64
}

type tableOf[T any] struct {
	k    *Kind[T]
	rows map[string]row[T]
	idx  []map[string]*group[T] // per index: group name -> group
	// ver stamps group versions: it only grows, so a group emptied and made
	// again never shows a version it had before.
	ver uint64
}

// group is one group of an index.
type group[T any] struct {
	m   map[string]*T // key -> record
	ver uint64
}

func newTableOf[T any](k *Kind[T]) *tableOf[T] {
	t := &tableOf[T]{k: k, rows: map[string]row[T]{}}
	t.idx = make([]map[string]*group[T], len(k.indexes))
	for i := range t.idx {
		t.idx[i] = map[string]*group[T]{}
	}
	return t
}

func (t *tableOf[T]) getAny(key string) (any, int64) {
	r, ok := t.rows[key]
	if !ok {
		return nil, 0
	}
	return r.v, r.rev
}

func (t *tableOf[T]) setAny(key string, v any, rev int64) {
	var nv *T
	if v != nil {
		nv = v.(*T)
	}
	t.set(key, nv, rev)
}

func (t *tableOf[T]) set(key string, v *T, rev int64) {
	old := t.rows[key].v
	if v == nil {
		delete(t.rows, key)
	} else {
		t.rows[key] = row[T]{v: v, rev: rev}
	}
	for i, ix := range t.k.indexes {
		m := t.idx[i]
		var og, ng string
		var oin, nin bool
		if old != nil {
			og, oin = ix.group(old)
		}
		if v != nil {
			ng, nin = ix.group(v)
		}
		if oin && (!nin || og != ng) {
			if g := m[og]; g != nil {
				delete(g.m, key)
				t.ver++
				g.ver = t.ver
				if len(g.m) == 0 {
					delete(m, og)
				}
			}
		}
		if nin {
			g := m[ng]
			if g == nil {
				g = &group[T]{m: map[string]*T{}}
				m[ng] = g
			}
			g.m[key] = v
			t.ver++
			g.ver = t.ver
		}
	}
}

func (t *tableOf[T]) settle(key string, v any, rev int64) {
	if r, ok := t.rows[key]; ok && r.v == v.(*T) {
		r.rev = rev
		t.rows[key] = r
	}
}

// load installs a record from the store, without indexing it: indexes are
// built once every record is in (see buildIndexes).
func (t *tableOf[T]) load(key string, v *T, rev int64) { t.rows[key] = row[T]{v: v, rev: rev} }

func (t *tableOf[T]) link(r Reader, fn func(v any, r Reader)) {
	for _, row := range t.rows {
		fn(row.v, r)
	}
}

func (t *tableOf[T]) buildIndexes() {
	for i, ix := range t.k.indexes {
		m := map[string]*group[T]{}
		for key, row := range t.rows {
			g, in := ix.group(row.v)
			if !in {
				continue
			}
			gm := m[g]
			if gm == nil {
				t.ver++
				gm = &group[T]{m: map[string]*T{}, ver: t.ver}
				m[g] = gm
			}
			gm.m[key] = row.v
		}
		t.idx[i] = m
	}
}

func (t *tableOf[T]) size() int { return len(t.rows) }

// Interner keeps one copy of each repeated string of a load.
type Interner struct{ m map[string]string }

// String replaces *p by the kept copy of its value.
func (in *Interner) String(p *string) {
	if *p == "" {
		return
	}
	if v, ok := in.m[*p]; ok {
		*p = v
		return
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	in.m[*p] = *p
}
