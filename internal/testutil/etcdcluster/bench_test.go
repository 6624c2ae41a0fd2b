package etcdcluster_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/etcd"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

// The store's Txn on three etcd member processes (loopback, fsync on), the
// same load as internal/store/bolt's BenchmarkTxn*: 10 keys of 300 bytes
// per Txn, 64 writers or one.
func benchTxn(b *testing.B, writers int) {
	c := etcdcluster.Start(b, etcdcluster.Config{})
	s := openStore(b, c.Endpoints(), etcd.Options{})
	val := bytes.Repeat([]byte("v"), 300)
	var seq atomic.Int64
	txn := func(ops []store.Op) bool {
		n := seq.Add(1)
		for i := range ops {
			ops[i] = store.Put(fmt.Sprintf("bench/%010d/%02d", n, i), val)
		}
		if _, err := s.Txn(context.Background(), ops); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
	b.SetBytes(10 * 300)
	b.ResetTimer()
	if writers == 1 {
		ops := make([]store.Op, 10)
		for range b.N {
			if !txn(ops) {
				return
			}
		}
	} else {
		b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			ops := make([]store.Op, 10)
			for pb.Next() && txn(ops) {
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
}

func BenchmarkTxnParallel3Members(b *testing.B) { benchTxn(b, 64) }
func BenchmarkTxnSerial3Members(b *testing.B)   { benchTxn(b, 1) }
