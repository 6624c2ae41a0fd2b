package endpoint

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/time/rate"
)

// FuzzUpdateBody feeds arbitrary PUT bodies to the handler. It must never
// panic, and every answer must be one of the specified shapes.
func FuzzUpdateBody(f *testing.F) {
	for _, seed := range []string{
		``, `{`, `[]`, `"bad"`, `null`, `{}`, `5`, ` `,
		`{"ProtectionEnabled":true}`,
		`{"ProtectionEnabled":false,"ExpiresInMinutes":10}`,
		`{"protectionEnabled":true,"expiresInMinutes":5}`,
		`{"ProtectionEnabled":true} xyz`,
		`{"ProtectionEnabled":false,"ProtectionEnabled":true}`,
		`{"ProtectionEnabled":true,"ExpiresInMinutes":null}`,
		`{"ProtectionEnabled":true,"ExpiresInMinutes":4294967297}`,
		`{"ProtectionEnabled":true,"ExpiresInMinutes":-2147483649}`,
		`{"ProtectionEnabled":true,"ExpiresInMinutes":5.5}`,
		`{"ProtectionEnabled":true,"ExpiresInMinutes":1e2}`,
		`{"ProtectionEnabled":"true"}`,
		`{"ProtectionEnabled":null,"ExpiresInMinutes":5}`,
		`{"ProtectionEnabled":true,"Foo":1}`,
		"{\"Protection\u212aEnabled\":true}",
		`{"ProtectionEnabled":true,"ExpiresInMinutes":9223372036854775807}`,
	} {
		f.Add([]byte(seed))
	}
	const (
		arn       = "t1"
		okBody    = `{"protection":{"ExpirationDate":null,"ProtectionEnabled":true,"TaskArn":"t1"}}`
		decodeErr = `{"error":{"Code":"InvalidParameterException","Message":"UpdateTaskProtection: failed to decode request"}}`
		missing   = `{"error":{"Arn":"t1","Code":"InvalidParameterException","Message":"Invalid request: does not contain 'ProtectionEnabled' field"}}`
		rangeErr  = `{"error":{"Arn":"t1","Code":"InvalidParameterException","Message":"ExpiresInMinutes must be between 1 and 2880"}}`
	)
	st := newFakeState()
	st.add("id", TaskMetadata{TaskARN: arn}, "app")
	f.Fuzz(func(t *testing.T, body []byte) {
		stub := &stubECS{out: []ecstypes.ProtectedTask{{ProtectionEnabled: true, TaskArn: aws.String(arn)}}}
		h := newHandler(Config{Cluster: "c", State: st, RateLimit: rate.Inf}, stub)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/api/id/task-protection/v1/state", bytes.NewReader(body)))
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		got := rec.Body.String()
		switch {
		case rec.Code == 200 && got == okBody:
			in := stub.upd
			if in == nil || aws.ToString(in.Cluster) != "c" || len(in.Tasks) != 1 || in.Tasks[0] != arn {
				t.Fatalf("ECS input %+v", in)
			}
		case rec.Code == 400 && (got == decodeErr || got == missing || got == rangeErr):
			if stub.upd != nil {
				t.Fatalf("ECS called on a 400: %+v", stub.upd)
			}
		default:
			t.Fatalf("unexpected answer %d %q for body %q", rec.Code, got, body)
		}
	})
}
