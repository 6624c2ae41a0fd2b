// Package storecfg selects and opens the store backend from the command
// line: `--store bolt|etcd` with `--data-dir` for bolt and the `--etcd-*`
// flags for etcd. It is shared by `holdfast server` and the store
// operations (`backup`, `restore`, `migrate`).
package storecfg

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/store/etcd"
)

// Kinds of store.
const (
	Bolt = "bolt"
	Etcd = "etcd"
)

// BoltFile is the bbolt file's name in the data dir.
const BoltFile = "holdfast.db"

// Config says which store to open. The zero value is bolt in DataDir.
type Config struct {
	Kind    string // Bolt (default) or Etcd
	DataDir string // bolt: the directory of BoltFile
	Etcd    EtcdConfig
}

// EtcdConfig holds the --etcd-* flags.
type EtcdConfig struct {
	Endpoints []string
	Prefix    string
	CACert    string // PEM file of the CA that signed the members' certificates
	Cert, Key string // PEM files of the client certificate and key
}

// AddFlags registers --store and the --etcd-* flags (not --data-dir, which
// the commands declare with their own help).
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Kind, "store", Bolt, "store backend: bolt (a file in --data-dir) or etcd (--etcd-endpoints)")
	c.Etcd.AddFlags(fs)
}

// AddFlags registers the --etcd-* flags.
func (e *EtcdConfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&e.Endpoints, "etcd-endpoints", nil, "etcd client URLs, comma-separated (http://host:2379 or https://...)")
	fs.StringVar(&e.Prefix, "etcd-prefix", etcd.DefaultPrefix, "key prefix of this installation's data in etcd")
	fs.StringVar(&e.CACert, "etcd-cacert", "", "PEM file of the CA that signed the etcd members' certificates")
	fs.StringVar(&e.Cert, "etcd-cert", "", "PEM file of the client certificate for etcd")
	fs.StringVar(&e.Key, "etcd-key", "", "PEM file of the client certificate's key")
}

// Validate checks the flags' combination.
func (c Config) Validate() error {
	switch c.kind() {
	case Bolt:
		if c.DataDir == "" {
			return errors.New("--store bolt needs --data-dir")
		}
	case Etcd:
		if len(c.Etcd.Endpoints) == 0 {
			return errors.New("--store etcd needs --etcd-endpoints")
		}
		if c.Etcd.Prefix == "" {
			return errors.New("--etcd-prefix must not be empty (it keeps holdfast's keys apart from the rest of the cluster)")
		}
		if (c.Etcd.Cert == "") != (c.Etcd.Key == "") {
			return errors.New("--etcd-cert and --etcd-key go together")
		}
	default:
		return fmt.Errorf("--store %q: want bolt or etcd", c.Kind)
	}
	return nil
}

func (c Config) kind() string {
	if c.Kind == "" {
		return Bolt
	}
	return strings.ToLower(c.Kind)
}

// IsEtcd reports whether the config selects etcd.
func (c Config) IsEtcd() bool { return c.kind() == Etcd }

// BoltPath is the bbolt file.
func (c Config) BoltPath() string { return filepath.Join(c.DataDir, BoltFile) }

// String describes the store for messages: "bolt DIR/holdfast.db" or
// "etcd URL,URL prefix /holdfast/".
func (c Config) String() string {
	if c.kind() == Etcd {
		return fmt.Sprintf("etcd %s prefix %s", strings.Join(c.Etcd.Endpoints, ","), c.Etcd.Prefix)
	}
	return "bolt " + c.BoltPath()
}

// OpenOptions tunes Open.
type OpenOptions struct {
	// Exclusive: this process is the only writer (a control plane, a
	// restore). bolt always is (its file lock); etcd takes its owner lock.
	Exclusive bool
	// MustExist refuses to create a new bolt file (the source of a backup
	// or a migration).
	MustExist bool
	// LockWait bounds the wait for another process's lock; 0 keeps each
	// backend's default.
	LockWait time.Duration
	// DialTimeout bounds reaching etcd; 0 keeps the backend's default.
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// ErrInUse is wrapped by Open's error when another process holds the store.
var ErrInUse = errors.New("the store is in use by another process (stop that holdfast first)")

// Open opens the configured store. ctx bounds connecting to etcd.
func (c Config) Open(ctx context.Context, o OpenOptions) (store.Backend, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.kind() == Bolt {
		path := c.BoltPath()
		if o.MustExist {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("no holdfast store at %s: %w", path, err)
			}
		} else if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
			return nil, err
		}
		b, err := bolt.Open(path, bolt.Options{Logger: o.Logger, LockTimeout: o.LockWait})
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w", path, ErrInUse)
		}
		return b, err
	}
	tlsConfig, err := c.Etcd.tls()
	if err != nil {
		return nil, err
	}
	s, err := etcd.Open(ctx, etcd.Options{
		Endpoints:   c.Etcd.Endpoints,
		Prefix:      c.Etcd.Prefix,
		TLS:         tlsConfig,
		Exclusive:   o.Exclusive,
		LockWait:    o.LockWait,
		DialTimeout: o.DialTimeout,
		Logger:      o.Logger,
	})
	if errors.Is(err, etcd.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", ErrInUse, err)
	}
	return s, err
}

// tls builds the client's TLS configuration; nil when no flag asks for it
// and no endpoint is https.
func (e EtcdConfig) tls() (*tls.Config, error) {
	https := false
	for _, ep := range e.Endpoints {
		if strings.HasPrefix(ep, "https://") {
			https = true
		}
	}
	if !https && e.CACert == "" && e.Cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CACert != "" {
		pem, err := os.ReadFile(e.CACert)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cacert %s: no PEM certificate in it", e.CACert)
		}
		cfg.RootCAs = pool
	}
	if e.Cert != "" {
		pair, err := tls.LoadX509KeyPair(e.Cert, e.Key)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
