package api

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeContentEncoding(t *testing.T) {
	req := func(enc string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		if enc != "" {
			r.Header.Set("Content-Encoding", enc)
		}
		return r
	}
	plain := []byte(`{"Namespace":"q"}`)
	for _, enc := range []string{"", "identity"} {
		if out, err := decodeContentEncoding(req(enc), plain, 1024); err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("%q: %q %v", enc, out, err)
		}
	}
	if out, err := decodeContentEncoding(req("gzip"), gzipped(t, plain), 1024); err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("gzip: %q %v", out, err)
	}
	for _, c := range []struct {
		enc  string
		body []byte
		want string
	}{
		{"br", plain, `Unsupported Content-Encoding "br"`},
		{"gzip", plain, "The gzip request body is corrupt."},
		{"gzip", gzipped(t, plain)[:10], "The gzip request body is corrupt."},
		{"gzip", gzipped(t, bytes.Repeat([]byte("x"), 9000)), "exceeds the maximum size of 8192 bytes once decompressed"},
	} {
		_, err := decodeContentEncoding(req(c.enc), c.body, 1024)
		if !IsSerializationError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a SerializationException containing %q", c.enc, err, c.want)
		}
	}
}
