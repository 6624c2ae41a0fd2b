package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/store/etcd"
	"github.com/holdfast/holdfast/internal/store/snapshot"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

var server *etcdcluster.Embedded

func TestMain(m *testing.M) {
	// A low ops limit, so that restores into etcd take many batches.
	os.Exit(etcdcluster.RunWithEmbedded(m.Run, etcdcluster.EmbeddedConfig{MaxTxnOps: 64, UnsafeNoFsync: true}, &server, true))
}

func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "holdfast.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var prefixes atomic.Int64

func openEtcd(t *testing.T, pageSize int) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(t.Context(), etcd.Options{
		Endpoints: []string{server.Endpoint()},
		Prefix:    fmt.Sprintf("/snapshot-test/%d/", prefixes.Add(1)),
		PageSize:  pageSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func txn(t *testing.T, b store.Backend, ops ...store.Op) int64 {
	t.Helper()
	rev, err := b.Txn(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// fill writes n data keys (binary values among them), a runtime key and
// the format key, and returns the data.
func fill(t *testing.T, b store.Backend, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	var ops []store.Op
	for i := range n {
		k := fmt.Sprintf("tasks/default/%05d", i)
		v := fmt.Sprintf(`{"taskArn":"%d","pad":"%s"}`, i, strings.Repeat("x", i%300))
		if i%17 == 0 {
			v = string([]byte{0, 1, 0xff, byte(i)})
		}
		want[k] = v
		ops = append(ops, store.Put(k, []byte(v)))
		if len(ops) == 50 {
			txn(t, b, ops...)
			ops = nil
		}
	}
	want["clusters/default"] = ""
	ops = append(ops, store.Put("clusters/default", nil), store.Put(store.RuntimePrefix+"leader/x", []byte("ephemeral")))
	if _, err := store.Migrate(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	txn(t, b, ops...)
	return want
}

func contents(t *testing.T, b store.Backend) map[string]string {
	t.Helper()
	kvs, _, err := b.Range(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[kv.Key] = string(kv.Value)
	}
	return got
}

func sameData(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Fatalf("key %q = %q (present %v), want %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && store.IsData(k) {
			t.Fatalf("unexpected key %q", k)
		}
		if strings.HasPrefix(k, store.RuntimePrefix) {
			t.Fatalf("runtime key %q was copied", k)
		}
	}
	if got[store.FormatKey] != fmt.Sprint(store.CurrentFormat) {
		t.Fatalf("format key = %q", got[store.FormatKey])
	}
	if _, ok := got[store.RestoringKey]; ok {
		t.Fatal("the restore marker was left behind")
	}
}

func backup(t *testing.T, b store.Backend) (string, snapshot.Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.hfb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := snapshot.Write(t.Context(), b, f, "test")
	if err != nil {
		t.Fatal(err)
	}
	return path, res
}

func restore(t *testing.T, path string, dst store.Backend, opts snapshot.Options) (snapshot.Result, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return snapshot.Restore(t.Context(), f, dst, opts)
}

// Every direction: bolt and etcd, through a file and directly.
func TestRoundTrips(t *testing.T) {
	backends := map[string]func(t *testing.T) store.Backend{
		"bolt": func(t *testing.T) store.Backend { return openBolt(t) },
		"etcd": func(t *testing.T) store.Backend { return openEtcd(t, 100) },
	}
	for srcName, openSrc := range backends {
		for dstName, openDst := range backends {
			t.Run(srcName+"-to-"+dstName, func(t *testing.T) {
				src := openSrc(t)
				want := fill(t, src, 700)
				path, res := backup(t, src)
				if res.Keys != len(want) || res.Format != store.CurrentFormat || res.Revision < src.Rev()-0 && res.Revision == 0 {
					t.Fatalf("backup result %+v, want %d keys", res, len(want))
				}
				dst := openDst(t)
				rres, err := restore(t, path, dst, snapshot.Options{})
				if err != nil {
					t.Fatal(err)
				}
				sameData(t, contents(t, dst), want)
				if rres.Keys != len(want) || rres.Bytes != res.Bytes {
					t.Fatalf("restore result %+v, backup %+v", rres, res)
				}
				if _, isBolt := dst.(*bolt.Store); isBolt {
					// The target's revisions jumped past the source's.
					if rres.Behind || rres.TargetRev <= res.Revision+snapshot.DefaultBumpRevision {
						t.Fatalf("bolt target at revision %d, want past %d", rres.TargetRev, res.Revision+snapshot.DefaultBumpRevision)
					}
				} else if rres.Behind != (rres.TargetRev <= res.Revision) {
					t.Fatalf("Behind = %v with target rev %d and source rev %d", rres.Behind, rres.TargetRev, res.Revision)
				}
				// A migrated store starts: nothing to do.
				if m, err := store.Migrate(t.Context(), dst); err != nil || len(m.Steps) != 0 {
					t.Fatalf("Migrate after restore = %+v, %v", m, err)
				}

				dst2 := openDst(t)
				cres, err := snapshot.Copy(t.Context(), src, dst2, snapshot.Options{Source: srcName})
				if err != nil {
					t.Fatal(err)
				}
				sameData(t, contents(t, dst2), want)
				if cres.Keys != len(want) {
					t.Fatalf("copy result %+v", cres)
				}
			})
		}
	}
}

func TestRestoreRefusesNonEmptyUnlessForced(t *testing.T) {
	src := openBolt(t)
	want := fill(t, src, 10)
	path, _ := backup(t, src)
	for name, dst := range map[string]store.Backend{"bolt": openBolt(t), "etcd": openEtcd(t, 0)} {
		t.Run(name, func(t *testing.T) {
			txn(t, dst, store.Put("clusters/other", []byte("{}")), store.Put("tasks/default/99999", []byte("old")))
			if _, err := restore(t, path, dst, snapshot.Options{}); !errors.Is(err, snapshot.ErrNotEmpty) {
				t.Fatalf("restore into a non-empty store: %v, want ErrNotEmpty", err)
			}
			if got := contents(t, dst); got["clusters/other"] != "{}" || len(got) != 2 {
				t.Fatalf("a refused restore changed the target: %v", got)
			}
			if _, err := restore(t, path, dst, snapshot.Options{Force: true}); err != nil {
				t.Fatal(err)
			}
			sameData(t, contents(t, dst), want)
		})
	}
}

// A file that is not a complete backup is refused before anything is
// written: truncated anywhere, a byte changed anywhere, data appended.
func TestRestoreRefusesDamagedFiles(t *testing.T) {
	src := openBolt(t)
	fill(t, src, 5)
	path, _ := backup(t, src)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := openBolt(t)
	try := func(what string, data []byte) {
		t.Helper()
		_, _, err := snapshot.Verify(bytes.NewReader(data))
		if !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("%s: Verify = %v, want ErrCorrupt", what, err)
		}
		if _, err := snapshot.Restore(t.Context(), bytes.NewReader(data), dst, snapshot.Options{}); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("%s: Restore = %v, want ErrCorrupt", what, err)
		}
	}
	for n := 0; n < len(good); n += max(1, len(good)/200) {
		try(fmt.Sprintf("truncated to %d bytes", n), good[:n])
	}
	for i := 0; i < len(good); i += max(1, len(good)/200) {
		bad := bytes.Clone(good)
		bad[i] ^= 0x20
		try(fmt.Sprintf("byte %d changed", i), bad)
	}
	try("data appended", append(bytes.Clone(good), 'x'))
	if got := contents(t, dst); len(got) != 0 || dst.Rev() != 0 {
		t.Fatalf("refused restores wrote %v (rev %d)", got, dst.Rev())
	}
}

// failAfter fails every Txn after the first n, as a crash would stop a
// restore.
type failAfter struct {
	store.Backend
	n atomic.Int64
}

func (f *failAfter) Limits() store.Limits { return store.LimitsOf(f.Backend) }

func (f *failAfter) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if f.n.Add(-1) < 0 {
		return 0, errors.New("power cut")
	}
	return f.Backend.Txn(ctx, ops)
}

// A restore that stops half-way leaves the marker: the control plane
// refuses to start on the store (store.Migrate), a plain restore refuses
// it, and a forced one finishes the job.
func TestInterruptedRestore(t *testing.T) {
	src := openEtcd(t, 0)
	want := fill(t, src, 300)
	path, _ := backup(t, src)
	dst := openEtcd(t, 0) // 64 ops per Txn: several batches
	if _, err := restore(t, path, &failAfter{Backend: dst}, snapshot.Options{}); err == nil {
		t.Fatal("restore through a failing store succeeded")
	}
	if got := contents(t, dst); len(got) != 0 {
		t.Fatalf("a restore whose first Txn failed wrote %v", got)
	}
	f := &failAfter{Backend: dst}
	f.n.Store(3)
	if _, err := restore(t, path, f, snapshot.Options{}); err == nil || !strings.Contains(err.Error(), "power cut") {
		t.Fatalf("restore cut after 3 Txns: %v", err)
	}
	if _, err := store.Migrate(t.Context(), dst); !errors.Is(err, store.ErrRestoring) {
		t.Fatalf("Migrate of a half-restored store: %v, want ErrRestoring", err)
	}
	if _, err := restore(t, path, dst, snapshot.Options{}); !errors.Is(err, snapshot.ErrNotEmpty) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("restore without --force over a half-restored store: %v", err)
	}
	if _, err := restore(t, path, dst, snapshot.Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	sameData(t, contents(t, dst), want)
	if _, err := store.Migrate(t.Context(), dst); err != nil {
		t.Fatal(err)
	}
}

// A backup is one snapshot at one revision, even while writers change the
// store and the scan takes many pages: every pair of keys written together
// is seen together.
func TestBackupIsConsistent(t *testing.T) {
	for name, b := range map[string]store.Backend{"bolt": openBolt(t), "etcd": openEtcd(t, 7)} {
		t.Run(name, func(t *testing.T) {
			const pairs = 30 // 60 ops per Txn: within the server's 64
			write := func(gen int) {
				ops := make([]store.Op, 0, 2*pairs)
				for i := range pairs {
					v := []byte(fmt.Sprint(gen))
					ops = append(ops, store.Put(fmt.Sprintf("a/%02d", i), v), store.Put(fmt.Sprintf("b/%02d", i), v))
				}
				txn(t, b, ops...)
			}
			write(0)
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			wg.Go(func() {
				for gen := 1; ctx.Err() == nil; gen++ {
					write(gen)
				}
			})
			for range 5 {
				var buf bytes.Buffer
				if _, err := snapshot.Write(t.Context(), b, &buf, name); err != nil {
					t.Fatal(err)
				}
				restored := openBolt(t)
				if _, err := snapshot.Restore(t.Context(), bytes.NewReader(buf.Bytes()), restored, snapshot.Options{}); err != nil {
					t.Fatal(err)
				}
				got := contents(t, restored)
				gen := got["a/00"]
				for i := range pairs {
					if got[fmt.Sprintf("a/%02d", i)] != gen || got[fmt.Sprintf("b/%02d", i)] != gen {
						t.Fatalf("backup mixes generations: a/00=%s a/%02d=%s b/%02d=%s", gen, i, got[fmt.Sprintf("a/%02d", i)], i, got[fmt.Sprintf("b/%02d", i)])
					}
				}
			}
			cancel()
			wg.Wait()
		})
	}
}

// A store from before format versions backs up as format 0 and restores
// without a format key; store.Migrate then stamps it as it would the
// original.
func TestFormatZeroAndTooNew(t *testing.T) {
	src := openBolt(t)
	txn(t, src, store.Put("clusters/default", []byte("{}")))
	path, res := backup(t, src)
	if res.Format != 0 {
		t.Fatalf("backup of an unversioned store: format %d, want 0", res.Format)
	}
	dst := openBolt(t)
	if _, err := restore(t, path, dst, snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := dst.Get(t.Context(), store.FormatKey); ok {
		t.Fatal("format key written for a format 0 backup")
	}
	if m, err := store.Migrate(t.Context(), dst); err != nil || m.From != 0 || m.To != store.CurrentFormat {
		t.Fatalf("Migrate after restoring format 0: %+v, %v", m, err)
	}

	newer := openBolt(t)
	txn(t, newer, store.Put(store.FormatKey, store.FormatValue(store.CurrentFormat+1)), store.Put("x/y", nil))
	path, _ = backup(t, newer)
	if _, err := restore(t, path, openBolt(t), snapshot.Options{}); !errors.Is(err, store.ErrFormatTooNew) {
		t.Fatalf("restore of a newer format: %v, want ErrFormatTooNew", err)
	}
}

// The backup decoder never panics and never accepts what it did not write.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	b, err := bolt.Open(filepath.Join(dir, "holdfast.db"), bolt.Options{NoFsync: true})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := b.Txn(context.Background(), []store.Op{store.Put("k", []byte("v")), store.Put("k2", nil)}); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snapshot.Write(context.Background(), b, &buf, "fuzz"); err != nil {
		f.Fatal(err)
	}
	b.Close()
	good := buf.Bytes() // differs per fuzz worker: it holds the time it was made
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("HOLDFAST-BACKUP 1\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := snapshot.Verify(bytes.NewReader(data))
		// Only a file that ends with the SHA-256 of the rest is accepted.
		if err == nil {
			sum := sha256.Sum256(data[:max(0, len(data)-sha256.Size)])
			if len(data) < sha256.Size || !bytes.Equal(sum[:], data[len(data)-sha256.Size:]) {
				t.Fatalf("accepted %q, whose checksum does not match", data)
			}
		}
		if err != nil && !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("Verify error %v does not wrap ErrCorrupt", err)
		}
	})
}
