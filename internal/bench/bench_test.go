package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/storecfg"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

// TestProtectSmoke runs the protection load briefly, so that the harness
// itself is exercised by the test suite: every call must succeed and
// change protection (no failures).
func TestProtectSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	d := 300 * time.Millisecond
	if os.Getenv("HOLDFAST_BENCH") != "" {
		d = 10 * time.Second
	}
	// As the root, and as an IAM user whose policy is evaluated on every
	// call: both succeed every time.
	for _, as := range []string{AsRoot, AsUser} {
		r, err := Protect(context.Background(), as, 8, 10, d, storecfg.Config{})
		if os.Getenv("HOLDFAST_BENCH") != "" {
			r, err = Protect(context.Background(), as, 64, 10, d, storecfg.Config{})
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("as %s: calls=%d errors=%d %.0f calls/s %s", as, r.Calls, r.Errors, r.CallsPerSecond(), r.Latency)
		if r.Calls == 0 || r.Errors != 0 {
			t.Fatalf("as %s: calls=%d errors=%d", as, r.Calls, r.Errors)
		}
	}
}

// The same against a control plane on etcd (one embedded member): the
// bench refuses a prefix that holds data and deletes what it wrote.
func TestProtectSmokeEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv, err := etcdcluster.StartEmbedded(t.TempDir(), etcdcluster.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sc := storecfg.Config{Kind: storecfg.Etcd, Etcd: storecfg.EtcdConfig{Endpoints: []string{srv.Endpoint()}, Prefix: "/bench-smoke/"}}
	r, err := Protect(t.Context(), AsRoot, 8, 10, 300*time.Millisecond, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("calls=%d errors=%d %.0f calls/s %s", r.Calls, r.Errors, r.CallsPerSecond(), r.Latency)
	if r.Calls == 0 || r.Errors != 0 {
		t.Fatalf("calls=%d errors=%d", r.Calls, r.Errors)
	}
	if err := emptyEtcdPrefix(t.Context(), sc, false); err != nil {
		t.Fatalf("the bench left data behind: %v", err)
	}
	b, err := sc.Open(t.Context(), storecfg.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Txn(t.Context(), []store.Op{store.Put("someone/else", nil)}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := Protect(t.Context(), AsRoot, 1, 1, time.Millisecond, sc); err == nil || !strings.Contains(err.Error(), "empty prefix") {
		t.Fatalf("bench on a prefix with data: %v", err)
	}
}
