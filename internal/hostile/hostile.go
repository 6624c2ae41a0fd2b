// Package hostile plays the clients that holdfast's listeners must outlast
// (see internal/netguard): connections that never send a request, request
// heads that trickle in, bodies that are announced and then held, requests
// signed with a key the server does not know or with a wrong secret. The
// limit tests and `holdfast bench flood` share it.
//
// Every function works on a raw TCP connection, so that a request can stop
// half way, which net/http's client never does.
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Dial opens a TCP connection to addr from the local IP src ("" lets the
// kernel choose). On Linux every 127.0.0.0/8 address is a valid source on
// loopback, so a test or bench gives each simulated client its own address.
func Dial(ctx context.Context, addr, src string) (net.Conn, error) {
	d := net.Dialer{}
	if src != "" {
		ip := net.ParseIP(src)
		if ip == nil {
			return nil, fmt.Errorf("hostile: bad source address %q", src)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return d.DialContext(ctx, "tcp", addr)
}

// Signer signs AWS JSON 1.1 requests for one key.
type Signer struct {
	AccessKeyID, SecretAccessKey, Region, Service string
}

// Head returns the request line and headers of a POST / for the AWS JSON
// 1.1 target, announcing contentLength bytes of body and signed, as
// botocore signs (host, x-amz-date, content-type, x-amz-target), over
// signedBody: pass the body that will be sent for a valid signature, any
// other for a wrong one. extra headers are added unsigned.
func (s Signer) Head(host, target string, contentLength int64, signedBody []byte, at time.Time, extra ...string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+host+"/", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256(signedBody)
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey}
	service := s.Service
	if service == "" {
		service = "ecs"
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, s.Region, at); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Add(extra[i], extra[i+1])
	}
	req.Header.Set("Content-Length", strconv.FormatInt(contentLength, 10))
	return RawHead(http.MethodPost, "/", host, req.Header), nil
}

// RawHead formats a request line and headers (sorted), ending with the
// empty line.
func RawHead(method, path, host string, h http.Header) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Response is one HTTP response read from a raw connection.
type Response struct {
	Status int
	Header http.Header
	Close  bool // the server said Connection: close
	Body   []byte
}

// ReadResponse reads one response, its body in full, from r (wrap a
// connection in one bufio.Reader and keep it for the connection's life).
func ReadResponse(r *bufio.Reader) (Response, error) {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Close: resp.Close, Body: body}, err
}

// Trickle writes p one byte at a time, every interval, until it is all
// written, the write fails or ctx ends.
func Trickle(ctx context.Context, c net.Conn, p []byte, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for i := range p {
		if _, err := c.Write(p[i : i+1]); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// ErrStillOpen is WaitClosed's answer when the connection's read deadline
// passed with the connection still open.
var ErrStillOpen = errors.New("hostile: the peer kept the connection open until the read deadline")

// WaitClosed reads from r (discarding what arrives) until the peer closes
// the connection, and returns nil then (EOF or a reset). If the
// connection's read deadline passes first it returns ErrStillOpen.
func WaitClosed(r *bufio.Reader) error {
	for {
		_, err := r.ReadByte()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ErrStillOpen
		}
		return nil
	}
}
