package bolt

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/internal/store"
)

const (
	benchKeysPerTxn = 10
	benchValueLen   = 300
	benchWriters    = 64
)

// benchOps fills ops with benchKeysPerTxn puts of fresh keys for Txn n.
func benchOps(ops []store.Op, n int64, val []byte) {
	for i := range ops {
		ops[i] = store.Put(fmt.Sprintf("bench/%010d/%02d", n, i), val)
	}
}

func reportTxn(b *testing.B, s *Store) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
	if st := s.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Txns)/float64(st.Commits), "txn/commit")
	}
}

// BenchmarkTxnParallel: ~64 goroutines, each Txn writes 10 keys of 300 bytes,
// fsync on. Group commit is what makes this scale.
func BenchmarkTxnParallel(b *testing.B) {
	s := openTemp(b, Options{})
	val := bytes.Repeat([]byte("v"), benchValueLen)
	var seq atomic.Int64
	b.SetParallelism(max(1, benchWriters/runtime.GOMAXPROCS(0)))
	b.SetBytes(benchKeysPerTxn * benchValueLen)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ops := make([]store.Op, benchKeysPerTxn)
		for pb.Next() {
			benchOps(ops, seq.Add(1), val)
			if _, err := s.Txn(context.Background(), ops); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportTxn(b, s)
}

// BenchmarkTxnSerial: one writer, so one fsync per Txn.
func BenchmarkTxnSerial(b *testing.B) {
	s := openTemp(b, Options{})
	val := bytes.Repeat([]byte("v"), benchValueLen)
	ops := make([]store.Op, benchKeysPerTxn)
	b.SetBytes(benchKeysPerTxn * benchValueLen)
	var n int64
	for b.Loop() {
		n++
		benchOps(ops, n, val)
		if _, err := s.Txn(context.Background(), ops); err != nil {
			b.Fatal(err)
		}
	}
	reportTxn(b, s)
}

// BenchmarkGet reads one key of a 10,000-key store.
func BenchmarkGet(b *testing.B) {
	s := openTemp(b, Options{NoFsync: true})
	val := bytes.Repeat([]byte("v"), benchValueLen)
	ops := make([]store.Op, 100)
	for i := range 100 {
		for j := range ops {
			ops[j] = store.Put(fmt.Sprintf("get/%03d/%03d", i, j), val)
		}
		if _, err := s.Txn(context.Background(), ops); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		i++
		if _, ok, err := s.Get(context.Background(), fmt.Sprintf("get/%03d/%03d", i%100, i%97)); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
