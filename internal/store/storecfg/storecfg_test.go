package storecfg

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
	"github.com/holdfast/holdfast/internal/store/etcd"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

func parse(t *testing.T, args ...string) Config {
	t.Helper()
	var c Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFlags(t *testing.T) {
	c := parse(t)
	if c.Kind != Bolt || c.Etcd.Prefix != "/holdfast/" || c.IsEtcd() {
		t.Fatalf("defaults = %+v", c)
	}
	c = parse(t, "--store", "etcd", "--etcd-endpoints", "http://a:2379,http://b:2379", "--etcd-endpoints", "http://c:2379", "--etcd-prefix", "/x/")
	if !c.IsEtcd() || strings.Join(c.Etcd.Endpoints, " ") != "http://a:2379 http://b:2379 http://c:2379" || c.Etcd.Prefix != "/x/" {
		t.Fatalf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != "etcd http://a:2379,http://b:2379,http://c:2379 prefix /x/" {
		t.Fatalf("String() = %q", got)
	}
	for args, want := range map[string]string{
		"--store etcd": "needs --etcd-endpoints",
		"--store etcd --etcd-endpoints x --etcd-prefix=":    "must not be empty",
		"--store etcd --etcd-endpoints x --etcd-cert c.pem": "go together",
		"--store zookeeper": "want bolt or etcd",
	} {
		c := parse(t, strings.Fields(args)...)
		c.DataDir = "/tmp"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v, want %q", args, err, want)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("bolt without a data dir: %v", err)
	}
}

func TestOpenBolt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := (Config{DataDir: dir}).Open(t.Context(), OpenOptions{MustExist: true}); err == nil {
		t.Fatal("MustExist opened a missing store")
	}
	b, err := (Config{DataDir: dir}).Open(t.Context(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.(*bolt.Store); !ok {
		t.Fatalf("Open returned %T", b)
	}
	_, err = (Config{DataDir: dir}).Open(t.Context(), OpenOptions{LockWait: 100 * time.Millisecond})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open of a bolt store: %v, want ErrInUse", err)
	}
}

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all PEM, into dir.
func pki(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	serverCert, serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

// The TLS flags reach an etcd that serves https and requires client
// certificates; without them the connection is refused.
func TestOpenEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	ca, sc, sk, cc, ck := pki(t, dir)
	srv, err := etcdcluster.StartEmbedded(filepath.Join(dir, "etcd"), etcdcluster.EmbeddedConfig{
		UnsafeNoFsync: true,
		TLS:           etcdcluster.TLSFiles{CertFile: sc, KeyFile: sk, TrustedCAFile: ca},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.Endpoint(), "https://") {
		t.Fatalf("endpoint %s", srv.Endpoint())
	}
	c := parse(t, "--store", "etcd", "--etcd-endpoints", srv.Endpoint(), "--etcd-cacert", ca, "--etcd-cert", cc, "--etcd-key", ck)
	b, err := c.Open(t.Context(), OpenOptions{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Txn(t.Context(), []store.Op{store.Put("k", []byte("v"))}); err != nil {
		t.Fatal(err)
	}
	// A second exclusive Open is refused as in use.
	c2 := c
	if _, err := c2.Open(t.Context(), OpenOptions{Exclusive: true, LockWait: 200 * time.Millisecond}); !errors.Is(err, ErrInUse) || !errors.Is(err, etcd.ErrLocked) {
		t.Fatalf("second exclusive Open: %v", err)
	}
	b.Close()

	// No client certificate: refused. No CA: the server is not trusted.
	for _, args := range [][]string{
		{"--etcd-cacert", ca},
		{"--etcd-cert", cc, "--etcd-key", ck},
	} {
		c := parse(t, append([]string{"--store", "etcd", "--etcd-endpoints", srv.Endpoint()}, args...)...)
		c.Etcd.Endpoints = []string{srv.Endpoint()}
		ctxb, err := c.Open(t.Context(), OpenOptions{DialTimeout: time.Second})
		if err == nil {
			ctxb.Close()
			t.Fatalf("Open with %v succeeded", args)
		}
	}
	if _, err := parse(t, "--store", "etcd", "--etcd-endpoints", srv.Endpoint(), "--etcd-cacert", filepath.Join(dir, "nope.pem")).Open(t.Context(), OpenOptions{DialTimeout: time.Second}); err == nil || !strings.Contains(err.Error(), "--etcd-cacert") {
		t.Fatalf("missing CA file: %v", err)
	}
}
