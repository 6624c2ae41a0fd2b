package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "holdfast.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func put(t *testing.T, b store.Backend, ops ...store.Op) int64 {
	t.Helper()
	rev, err := b.Txn(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func format(t *testing.T, b store.Backend) string {
	t.Helper()
	kv, ok, err := b.Get(context.Background(), store.FormatKey)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "absent"
	}
	return string(kv.Value)
}

func TestMigrateEmptyStoreIsStamped(t *testing.T) {
	b := openBolt(t)
	res, err := store.Migrate(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Empty || res.To != store.CurrentFormat || format(t, b) != fmt.Sprint(store.CurrentFormat) {
		t.Fatalf("Migrate of an empty store = %+v, format %s", res, format(t, b))
	}
	// Again: nothing to do.
	res, err = store.Migrate(t.Context(), b)
	if err != nil || res.Empty || res.From != store.CurrentFormat || len(res.Steps) != 0 {
		t.Fatalf("second Migrate = %+v, %v", res, err)
	}
	// Runtime keys alone do not make a store non-empty.
	b2 := openBolt(t)
	put(t, b2, store.Put(store.RuntimePrefix+"leader/1", []byte("x")))
	if res, err := store.Migrate(t.Context(), b2); err != nil || !res.Empty {
		t.Fatalf("Migrate of a store with only runtime keys = %+v, %v", res, err)
	}
}

// A store written before format versions (data, no format key) is format
// 0 and is brought to the current format; its data is untouched.
func TestMigrateUnversionedStore(t *testing.T) {
	b := openBolt(t)
	rev := put(t, b, store.Put("clusters/default", []byte(`{"clusterName":"default"}`)))
	res, err := store.Migrate(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 0 || res.To != store.CurrentFormat || len(res.Steps) != store.CurrentFormat || res.Empty {
		t.Fatalf("Migrate = %+v", res)
	}
	if got := format(t, b); got != fmt.Sprint(store.CurrentFormat) {
		t.Fatalf("format = %s", got)
	}
	kv, ok, _ := b.Get(t.Context(), "clusters/default")
	if !ok || kv.ModRev != rev {
		t.Fatalf("data changed by the migration: %v %v", kv, ok)
	}
}

func TestMigrateRefusesNewerFormatAndUnfinishedRestore(t *testing.T) {
	b := openBolt(t)
	put(t, b, store.Put(store.FormatKey, store.FormatValue(store.CurrentFormat+1)), store.Put("clusters/x", []byte("{}")))
	_, err := store.Migrate(t.Context(), b)
	if !errors.Is(err, store.ErrFormatTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("format %d", store.CurrentFormat+1)) {
		t.Fatalf("Migrate of a newer store: %v, want ErrFormatTooNew naming the format", err)
	}
	if got := format(t, b); got != fmt.Sprint(store.CurrentFormat+1) {
		t.Fatalf("format changed to %s", got)
	}

	b2 := openBolt(t)
	put(t, b2, store.Put(store.RestoringKey, []byte("restore of backup.hfb started ...")))
	if _, err := store.Migrate(t.Context(), b2); !errors.Is(err, store.ErrRestoring) {
		t.Fatalf("Migrate of a half-restored store: %v, want ErrRestoring", err)
	}

	b3 := openBolt(t)
	put(t, b3, store.Put(store.FormatKey, []byte("x1")))
	if _, err := store.Migrate(t.Context(), b3); err == nil {
		t.Fatal("Migrate accepted a malformed format key")
	}
}

// The machinery, with a table of three steps: each runs once, in order,
// from the store's format on; a step that fails leaves the format where it
// was, and running again finishes; two processes migrating at once agree.
func TestMigrateSteps(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	step := func(name string, fail *bool) func(context.Context, store.Backend) error {
		return func(ctx context.Context, b store.Backend) error {
			mu.Lock()
			ran = append(ran, name)
			mu.Unlock()
			// Idempotent: rename old/* to new/*, key by key.
			kvs, _, err := b.Range(ctx, name+"-old/")
			if err != nil {
				return err
			}
			for i, kv := range kvs {
				if fail != nil && *fail && i == 1 {
					return errors.New("disk on fire")
				}
				nk := name + "-new/" + strings.TrimPrefix(kv.Key, name+"-old/")
				if _, err := b.Txn(ctx, []store.Op{store.Del(kv.Key).If(kv.ModRev), store.Put(nk, kv.Value)}); err != nil && !errors.Is(err, store.ErrConflict) {
					return err
				}
			}
			return nil
		}
	}
	fail := true
	steps := []store.Migration{
		{From: 0, Name: "a"},
		{From: 1, Name: "b", Apply: step("b", nil)},
		{From: 2, Name: "c", Apply: step("c", &fail)},
	}
	b := openBolt(t)
	put(t, b, store.Put(store.FormatKey, store.FormatValue(1)),
		store.Put("b-old/1", []byte("1")), store.Put("b-old/2", []byte("2")),
		store.Put("c-old/1", []byte("1")), store.Put("c-old/2", []byte("2")))

	_, err := store.MigrateWith(t.Context(), b, steps, 3)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "format 2 to 3") {
		t.Fatalf("Migrate with a failing step: %v", err)
	}
	if got := format(t, b); got != "2" {
		t.Fatalf("format after a failed step = %s, want 2 (b done, c not)", got)
	}
	fail = false
	var wg sync.WaitGroup
	results := make([]store.MigrateResult, 2)
	for i := range results {
		wg.Go(func() {
			var err error
			results[i], err = store.MigrateWith(t.Context(), b, steps, 3)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := format(t, b); got != "3" {
		t.Fatalf("format = %s, want 3", got)
	}
	if !slices.Equal(ran[:2], []string{"b", "c"}) {
		t.Fatalf("steps ran %v, want b then c first", ran)
	}
	for _, r := range results {
		if r.To != 3 {
			t.Fatalf("a concurrent Migrate ended at %+v", r)
		}
	}
	kvs, _, _ := b.Range(t.Context(), "")
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	if want := []string{"b-new/1", "b-new/2", "c-new/1", "c-new/2", store.FormatKey}; !slices.Equal(keys, want) {
		t.Fatalf("keys after migration = %v, want %v", keys, want)
	}
}
