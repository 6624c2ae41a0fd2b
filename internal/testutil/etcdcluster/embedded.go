package etcdcluster

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"
)

// Limits of the etcd servers the tests start (embedded and member
// processes): what docs/operations.md recommends for holdfast.
const (
	MaxTxnOps       = 10_000
	MaxRequestBytes = 10 << 20
)

// EmbeddedConfig configures StartEmbedded. The zero value is a
// single-member cluster with fsync on and the recommended limits.
type EmbeddedConfig struct {
	// MaxTxnOps and MaxRequestBytes override the server's limits
	// (tests of the backend's limit handling); zero keeps the defaults above.
	MaxTxnOps       uint
	MaxRequestBytes uint
	// UnsafeNoFsync turns fsync off (tests that do not test durability).
	UnsafeNoFsync bool
	// TLS, when CertFile is set, serves clients over https with this
	// certificate, and requires client certificates signed by
	// TrustedCAFile when that is set.
	TLS TLSFiles
}

// TLSFiles are PEM files.
type TLSFiles struct {
	CertFile, KeyFile, TrustedCAFile string
}

// Embedded is an etcd server running inside the test process, for unit
// tests of code that talks to etcd (the store backend). Multi-member tests
// use Start, which runs members as separate processes.
type Embedded struct {
	etcd     *embed.Etcd
	endpoint string
}

// StartEmbedded starts a single-member etcd in dir on free loopback ports
// and waits until it serves. It takes no testing.TB so that a TestMain can
// share one server between a package's tests; call Close.
func StartEmbedded(dir string, c EmbeddedConfig) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "embedded"
	cfg.Dir = dir
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	cfg.MaxTxnOps = MaxTxnOps
	cfg.MaxRequestBytes = MaxRequestBytes
	if c.MaxTxnOps != 0 {
		cfg.MaxTxnOps = c.MaxTxnOps
	}
	if c.MaxRequestBytes != 0 {
		cfg.MaxRequestBytes = c.MaxRequestBytes
	}
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	// Port 0 everywhere: the kernel picks free ports, nothing can race us
	// for them. The advertised peer URL only has to be consistent with the
	// initial cluster of this one member.
	scheme := "http"
	if c.TLS.CertFile != "" {
		scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       c.TLS.CertFile,
			KeyFile:        c.TLS.KeyFile,
			TrustedCAFile:  c.TLS.TrustedCAFile,
			ClientCertAuth: c.TLS.TrustedCAFile != "",
		}
	}
	client, _ := url.Parse(scheme + "://127.0.0.1:0")
	peer, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready in 60 s")
	}
	return &Embedded{etcd: e, endpoint: scheme + "://" + e.Clients[0].Addr().String()}, nil
}

// RunWithEmbedded is the body of a TestMain whose tests share one
// embedded etcd: it starts it in a temporary directory, sets *srv, runs the
// tests (through run, e.g. m.Run or testutil.RunMain), stops the server,
// removes the directory and returns the exit code. With checkLeaks it then
// fails a passing run that left goroutines behind (goleak).
func RunWithEmbedded(run func() int, c EmbeddedConfig, srv **Embedded, checkLeaks bool) int {
	dir, err := os.MkdirTemp("", "holdfast-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e, err := StartEmbedded(dir, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = e
	code := run()
	e.Close()
	if code == 0 && checkLeaks {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// Endpoint is the client URL.
func (e *Embedded) Endpoint() string { return e.endpoint }

// Close stops the server.
func (e *Embedded) Close() { e.etcd.Close() }
