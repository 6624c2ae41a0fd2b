package testutil

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Reply is an HTTP response as the tests compare it.
type Reply struct {
	Status      int
	ContentType string
	Header      http.Header
	Body        string
}

// Do sends method url through client with body (none when "") and the
// header name/value pairs, and reads the whole reply; a transport error
// fails t.
func Do(t testing.TB, client *http.Client, method, url, body string, header ...string) Reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return Reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: string(b)}
}

// ExpectReply checks the status, the Content-Type and the exact body,
// reporting a mismatch with t.Errorf.
func ExpectReply(t testing.TB, what string, got Reply, status int, ctype, body string) {
	t.Helper()
	if got.Status != status || got.ContentType != ctype || got.Body != body {
		t.Errorf("%s:\n got  %d %q %q\n want %d %q %q", what, got.Status, got.ContentType, got.Body, status, ctype, body)
	}
}
