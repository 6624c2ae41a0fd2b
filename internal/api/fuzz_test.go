package api

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/domain"
)

// FuzzServe feeds arbitrary targets and bodies through the whole server,
// signed properly so that they get past authentication and reach routing,
// decoding and the handlers. Whatever comes in, the server must not panic
// and must answer 200 or an AWS-shaped JSON error.
func FuzzServe(f *testing.F) {
	for _, seed := range []struct {
		target string
		body   string
	}{
		{ecsTarget("ListClusters"), ""},
		{ecsTarget("ListClusters"), "{}"},
		{ecsTarget("UpdateService"), `{"service":"web","desiredCount":3}`},
		{ecsTarget("UpdateService"), `{"service":"web","desiredCount":"x"}`},
		{ecsTarget("UpdateService"), `{"service":{"a":[1,2,{"b":null}]}}`},
		{ecsTarget("UpdateService"), `{"service":"\ud800","desiredCount":1e400}`},
		{ecsTarget("ListServices"), `{"cluster":"3"}`},
		{ecsTarget("ListServices"), `{"cluster":"0"}`},
		{ecsTarget("ListServices"), `{"cluster":"-1"}`},
		{ecsTarget("ListServices"), `{"cluster":"x"}`},
		{ecsTarget("DescribeServices"), `{}`},
		{ecsTarget("NoSuchOperation"), `{}`},
		{"HoldfastAgentV1.Poll", `[`},
		{"", `{}`},
		{"\x00\xff", "\xff\xfe"},
	} {
		f.Add(seed.target, []byte(seed.body))
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cfg := baseConfig()
	cfg.Clock = func() time.Time { return at }
	cfg.MaxBodyBytes = 4096
	s := New(cfg)
	registerStubs(s, nil)
	f.Fuzz(func(t *testing.T, target string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "http://holdfast.test/", bytes.NewReader(body))
		req.Header.Set("Content-Type", ContentType)
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		signInPlace(t, req, body, defaultSign(at))
		req.Body = ioNopCloser(string(body))

		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		w := checkWire(t, rec.Code, rec.Header(), rec.Body.Bytes())
		switch {
		case w.status == http.StatusOK:
		case w.status == http.StatusBadRequest:
			if w.errType == TypeInvalidSignature || w.errType == TypeIncompleteSignature {
				t.Fatalf("a properly signed request was refused: %s", w.raw)
			}
		case w.status == http.StatusInternalServerError:
			if w.errType != TypeServerException {
				t.Fatalf("500 with __type %s", w.errType)
			}
		default:
			t.Fatalf("unexpected status %d: %s", w.status, w.raw)
		}
		// A registered target with a body Decode accepts reaches its handler.
		if target == ecsTarget("ListClusters") && w.status != http.StatusOK && len(body) <= 4096 {
			t.Fatalf("ListClusters failed: %s", w.raw)
		}
	})
}

// FuzzDecode checks that Decode never panics, that it fails exactly when
// encoding/json does, and that every failure is a SerializationException.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		"", "{}", "null", `{"name":"x","count":3,"tags":["a"],"labels":{"k":"v"}}`,
		`{"count":"x"}`, `{"name":{}}`, `{"tags":"a"}`, `[`, `{"nested":{"A":1.5}}`,
		`{"since":"2026-01-01T00:00:00Z"}`, `{"data":"AAEC"}`, "\xff", `{"children":[{"children":[{}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v decodeTarget
		err := Decode(body, &v)
		if len(bytes.TrimSpace(body)) == 0 {
			if err != nil {
				t.Fatalf("empty body: %v", err)
			}
			return
		}
		var ref decodeTarget
		refErr := json.Unmarshal(body, &ref)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Decode err %v, encoding/json err %v", err, refErr)
		}
		if err == nil {
			return
		}
		status, typ, msg := WireError(err)
		if status != 400 || typ != TypeSerializationException || msg == "" || !IsSerializationError(err) {
			t.Fatalf("Decode error maps to %d %s %q", status, typ, msg)
		}
		if _, ok := err.(*domain.Error); ok {
			t.Fatalf("Decode returned a domain error")
		}
	})
}

// FuzzQueryServe feeds arbitrary form bodies, signed for a Query service,
// through the whole server: it must answer 200 with the operation's XML
// envelope or a Query error envelope, never panic, and never refuse the
// (valid) signature.
func FuzzQueryServe(f *testing.F) {
	for _, seed := range []string{
		"Action=ListMetrics&Version=2010-08-01",
		"Action=ListMetrics&Version=2010-08-01&Namespace=a&Dimensions.member.1.Name=x&Dimensions.member.1.Value=y",
		"Action=ListMetrics&Version=2010-08-01&Dimensions.member.0.Name=x",
		"Action=ListMetrics&Version=2010-08-01&Dimensions=",
		"Action=DeleteAlarms&Version=2010-08-01",
		"Action=Nope&Version=2010-08-01",
		"Version=2010-08-01",
		"%zz&Action=ListMetrics",
		"Action=ListMetrics&Version=2010-08-01&Namespace=%00%ff<&>",
	} {
		f.Add([]byte(seed))
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cfg := baseConfig()
	cfg.Clock = func() time.Time { return at }
	s := New(cfg)
	(&monitoringStubs{}).register(s, newMonitoringService())
	so := defaultSign(at)
	so.service = "monitoring"
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "http://holdfast.test/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		signInPlace(t, req, body, so)
		req.Body = ioNopCloser(string(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		raw := rec.Body.String()
		if rec.Header().Get("Content-Type") != "text/xml" || !uuidRE.MatchString(headerFold(rec.Header(), "x-amzn-RequestId")) {
			t.Fatalf("headers %v", rec.Header())
		}
		var envelope struct {
			XMLName xml.Name
			Error   struct{ Code, Message string }
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &envelope); err != nil {
			t.Fatalf("not XML (%v): %s", err, raw)
		}
		switch {
		case rec.Code == http.StatusOK:
			if !strings.HasSuffix(envelope.XMLName.Local, "Response") || envelope.XMLName.Local == "ErrorResponse" {
				t.Fatalf("200 with %s", raw)
			}
		case envelope.XMLName.Local != "ErrorResponse" || envelope.Error.Code == "" || envelope.Error.Message == "":
			t.Fatalf("%d without an error envelope: %s", rec.Code, raw)
		case envelope.Error.Code == "SignatureDoesNotMatch" || envelope.Error.Code == "IncompleteSignature":
			t.Fatalf("a properly signed request was refused: %s", raw)
		case rec.Code >= 500:
			t.Fatalf("server fault: %s", raw)
		}
	})
}
