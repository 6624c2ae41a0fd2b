package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"github.com/fxamacker/cbor/v2"
)

// cborCodec is a Codec on fxamacker/cbor, as a CBOR service brings one.
type cborCodec struct{}

func (cborCodec) Marshal(v any) ([]byte, error)   { return cbor.Marshal(v) }
func (cborCodec) Unmarshal(b []byte, v any) error { return cbor.Unmarshal(b, v) }

// newMonitoringService describes CloudWatch the way its model does: three
// protocols, awsQueryCompatible.
func newMonitoringService() *Service {
	return &Service{
		SigningName:     "monitoring",
		ActionPrefix:    "cloudwatch",
		TargetPrefix:    "GraniteServiceVersion20100801",
		JSONVersion:     "1.0",
		QueryVersion:    "2010-08-01",
		XMLNamespace:    "http://monitoring.amazonaws.com/doc/2010-08-01/",
		CBORService:     "GraniteServiceVersion20100801",
		CBOR:            cborCodec{},
		QueryCompatible: true,
	}
}

// The stub CloudWatch operations: one input and output shape for all three
// protocols (json tags serve JSON and CBOR, xml tags the Query response).
type dimensionFilter struct {
	Name  string
	Value *string
}

type listMetricsInput struct {
	Namespace  *string
	MetricName *string
	Dimensions []dimensionFilter
}

type metric struct {
	Namespace  string `json:"Namespace" xml:"Namespace"`
	MetricName string `json:"MetricName" xml:"MetricName"`
}

type listMetricsOutput struct {
	Metrics []metric `json:"Metrics" xml:"Metrics>member"`
}

// monitoringStubs serves ListMetrics (echoing its input as one metric) and
// DeleteAlarms (always a ResourceNotFound), and records what it saw.
type monitoringStubs struct {
	mu    sync.Mutex
	calls []CallInfo
	ins   []listMetricsInput
}

func (m *monitoringStubs) register(s *Server, svc *Service) {
	s.Handle(svc, "ListMetrics", Operation{Handler: Op(func(ctx context.Context, in listMetricsInput) (*listMetricsOutput, error) {
		ci, _ := CallFrom(ctx)
		m.mu.Lock()
		m.calls = append(m.calls, ci)
		m.ins = append(m.ins, in)
		m.mu.Unlock()
		name := aws.ToString(in.MetricName)
		for _, d := range in.Dimensions {
			name += "/" + d.Name + "=" + aws.ToString(d.Value)
		}
		return &listMetricsOutput{Metrics: []metric{{Namespace: aws.ToString(in.Namespace), MetricName: name}}}, nil
	})})
	s.Handle(svc, "DeleteAlarms", Operation{Handler: func(ctx context.Context, body []byte) (any, error) {
		return nil, &Error{Status: 404, Type: "ResourceNotFound", Code: "ResourceNotFound", Message: "no such alarm"}
	}})
}

func startMultiProtocol(t *testing.T, cfg Config) (*httptest.Server, *monitoringStubs) {
	t.Helper()
	s := New(cfg)
	registerStubs(s, nil)
	stubs := &monitoringStubs{}
	stubs.register(s, newMonitoringService())
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return hs, stubs
}

// cloudwatchClients are real aws-sdk-go-v2 CloudWatch clients, one per
// protocol the service model allows: RPC v2 CBOR (the SDK's default), AWS
// JSON 1.0 and the Query protocol.
func cloudwatchClients(url, akid, secret string) map[Protocol]*cloudwatch.Client {
	mk := func(p func(*cloudwatch.Options)) *cloudwatch.Client {
		return cloudwatch.New(cloudwatch.Options{
			Region:       testRegion,
			BaseEndpoint: aws.String(url),
			Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, ""),
			Retryer:      aws.NopRetryer{},
		}, p)
	}
	return map[Protocol]*cloudwatch.Client{
		ProtocolCBOR: mk(func(*cloudwatch.Options) {}),
		ProtocolJSON: mk(func(o *cloudwatch.Options) { o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801) }),
		ProtocolQuery: mk(func(o *cloudwatch.Options) {
			o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
		}),
	}
}

func TestEveryProtocolWithARealClient(t *testing.T) {
	hs, stubs := startMultiProtocol(t, baseConfig())
	for proto, c := range cloudwatchClients(hs.URL, testAKID, testSecret) {
		t.Run(proto.String(), func(t *testing.T) {
			out, err := c.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{
				Namespace:  aws.String("AWS/ECS"),
				MetricName: aws.String("CPUUtilization"),
				Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("ClusterName"), Value: aws.String("default")}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Metrics) != 1 || aws.ToString(out.Metrics[0].Namespace) != "AWS/ECS" ||
				aws.ToString(out.Metrics[0].MetricName) != "CPUUtilization/ClusterName=default" {
				t.Fatalf("ListMetrics answered %+v", out.Metrics)
			}
			stubs.mu.Lock()
			last := stubs.calls[len(stubs.calls)-1]
			stubs.mu.Unlock()
			if last.Protocol != proto || last.Operation != "ListMetrics" || last.Service.SigningName != "monitoring" {
				t.Errorf("handler saw %+v", last)
			}
		})
	}
}

func TestEveryProtocolErrors(t *testing.T) {
	hs, _ := startMultiProtocol(t, baseConfig())
	ctx := context.Background()
	for proto, c := range cloudwatchClients(hs.URL, testAKID, testSecret) {
		t.Run(proto.String()+"/service error", func(t *testing.T) {
			_, err := c.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"a"}})
			apiError(t, err, "ResourceNotFound", "no such alarm", 404)
		})
	}
	// Transport errors take each protocol's names: the Query code and 403
	// for the Query protocol; the JSON __type and 400 for JSON and CBOR,
	// whose x-amzn-query-error header lets an awsQueryCompatible client
	// report the Query code.
	for proto, c := range cloudwatchClients(hs.URL, testAKID, "wrong-secret") {
		t.Run(proto.String()+"/bad signature", func(t *testing.T) {
			_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			status := 400
			if proto == ProtocolQuery {
				status = 403
			}
			apiError(t, err, "SignatureDoesNotMatch", msgSignatureMismatch, status)
		})
	}
	for proto, c := range cloudwatchClients(hs.URL, "AKIDUNKNOWN", testSecret) {
		t.Run(proto.String()+"/unknown key", func(t *testing.T) {
			_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			status := 400
			if proto == ProtocolQuery {
				status = 403
			}
			apiError(t, err, "InvalidClientTokenId", msgUnrecognizedClient, status)
		})
	}
}

// postSigned posts body to url+path with the given headers, signed with so,
// and returns the response and its body.
func postSigned(t *testing.T, url, path string, headers map[string]string, body []byte, so signOptions) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	signInPlace(t, req, body, so)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// rawQuery posts a signed Query request.
func rawQuery(t *testing.T, url string, form url.Values, so signOptions) (*http.Response, []byte) {
	t.Helper()
	return postSigned(t, url, "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		[]byte(form.Encode()), so)
}

func TestQueryProtocolEnvelope(t *testing.T) {
	hs, _ := startMultiProtocol(t, baseConfig())
	so := defaultSign(time.Now())
	so.service = "monitoring"
	form := url.Values{"Action": {"ListMetrics"}, "Version": {"2010-08-01"}, "Namespace": {"N&<x>"}}
	resp, raw := rawQuery(t, hs.URL, form, so)
	reqID := resp.Header.Get("X-Amzn-Requestid")
	want := `<ListMetricsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ListMetricsResult>` +
		`<Metrics><member><Namespace>N&amp;&lt;x&gt;</Namespace><MetricName></MetricName></member></Metrics></ListMetricsResult>` +
		`<ResponseMetadata><RequestId>` + reqID + `</RequestId></ResponseMetadata></ListMetricsResponse>`
	if resp.StatusCode != 200 || string(raw) != want || resp.Header.Get("Content-Type") != "text/xml" || !uuidRE.MatchString(reqID) {
		t.Fatalf("got %d %s %v\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), reqID, raw, want)
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
		msg    string
	}{
		{"unknown action", url.Values{"Action": {"Frobnicate"}, "Version": {"2010-08-01"}}, 400, "InvalidAction",
			"Could not find operation Frobnicate for version 2010-08-01"},
		{"wrong version", url.Values{"Action": {"ListMetrics"}, "Version": {"2011-01-01"}}, 400, "InvalidAction",
			"Could not find operation ListMetrics for version 2011-01-01"},
		{"no action", url.Values{"Version": {"2010-08-01"}}, 400, "MissingAction", "The request must contain the parameter Action."},
		{"bad list index", url.Values{"Action": {"ListMetrics"}, "Version": {"2010-08-01"}, "Dimensions.member.x.Name": {"a"}},
			400, "ValidationError", "Invalid parameter Dimensions.member.x.Name: the member number must be a positive integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := rawQuery(t, hs.URL, tc.form, so)
			reqID := resp.Header.Get("X-Amzn-Requestid")
			want := `<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type>` +
				`<Code>` + tc.code + `</Code><Message>` + tc.msg + `</Message></Error><RequestId>` + reqID + `</RequestId></ErrorResponse>`
			if resp.StatusCode != tc.status || string(raw) != want {
				t.Fatalf("got %d\n%s\nwant\n%s", resp.StatusCode, raw, want)
			}
		})
	}

	// Unsigned: MissingAuthenticationToken, 403, in XML.
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(raw), "<Code>MissingAuthenticationToken</Code><Message>Request is missing Authentication Token</Message>") {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, raw)
	}
}

func TestCBOREnvelope(t *testing.T) {
	hs, _ := startMultiProtocol(t, baseConfig())
	post := func(path string, body []byte, so signOptions) (*http.Response, []byte) {
		return postSigned(t, hs.URL, path, map[string]string{"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, body, so)
	}
	so := defaultSign(time.Now())
	so.service = "monitoring"
	in, _ := cbor.Marshal(map[string]any{"Namespace": "NS"})
	resp, raw := post("/service/GraniteServiceVersion20100801/operation/ListMetrics", in, so)
	var out listMetricsOutput
	if err := cbor.Unmarshal(raw, &out); err != nil || resp.StatusCode != 200 || len(out.Metrics) != 1 || out.Metrics[0].Namespace != "NS" {
		t.Fatalf("got %d %x (%v) %+v", resp.StatusCode, raw, err, out)
	}
	if resp.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || resp.Header.Get("Content-Type") != "application/cbor" {
		t.Errorf("headers %v", resp.Header)
	}

	// Errors are CBOR maps {__type, message} with x-amzn-query-error.
	for _, tc := range []struct {
		name, path string
		body       []byte
		so         signOptions
		status     int
		typ, query string
	}{
		{"unknown operation", "/service/GraniteServiceVersion20100801/operation/Nope", nil, so, 404,
			TypeUnknownOperation, "InvalidAction;Sender"},
		{"malformed body", "/service/GraniteServiceVersion20100801/operation/ListMetrics", []byte{0xff, 0x00}, so, 400,
			TypeSerializationException, "ValidationError;Sender"},
		{"signed for ecs", "/service/GraniteServiceVersion20100801/operation/ListMetrics", in, defaultSign(time.Now()), 400,
			TypeInvalidSignature, "SignatureDoesNotMatch;Sender"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := post(tc.path, tc.body, tc.so)
			var eb map[string]string
			if err := cbor.Unmarshal(raw, &eb); err != nil {
				t.Fatalf("error body is not a CBOR map: %x (%v)", raw, err)
			}
			if resp.StatusCode != tc.status || eb["__type"] != tc.typ || eb["message"] == "" || len(eb) != 2 ||
				resp.Header.Get("X-Amzn-Query-Error") != tc.query {
				t.Fatalf("got %d %v %v", resp.StatusCode, eb, resp.Header)
			}
		})
	}
}

// An Authorizer's denial takes each protocol's shape: AccessDenied 403 in
// XML for Query, AccessDeniedException 400 for JSON and CBOR.
func TestAccessDeniedEveryProtocol(t *testing.T) {
	cfg := baseConfig()
	var seen []Action
	var mu sync.Mutex
	cfg.Authorizer = authorizerFunc(func(ctx context.Context, p Principal, a Action) error {
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
		return AccessDeniedError(p, a.Name, "", true)
	})
	hs, _ := startMultiProtocol(t, cfg)
	want := "User: arn:aws:iam::000000000000:root is not authorized to perform: cloudwatch:ListMetrics on resource: * " +
		"with an explicit deny in an identity-based policy"
	for proto, c := range cloudwatchClients(hs.URL, testAKID, testSecret) {
		t.Run(proto.String(), func(t *testing.T) {
			_, err := c.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{})
			status := 400
			if proto == ProtocolQuery {
				status = 403
			}
			apiError(t, err, "AccessDenied", want, status)
		})
	}
	if len(seen) != 3 || seen[0].Name != "cloudwatch:ListMetrics" || len(seen[0].Resources) != 0 {
		t.Errorf("authorizer saw %+v", seen)
	}
}

type authorizerFunc func(ctx context.Context, p Principal, a Action) error

func (f authorizerFunc) Authorize(ctx context.Context, p Principal, a Action) error {
	return f(ctx, p, a)
}

func TestHandleValidatesServices(t *testing.T) {
	noop := Operation{Handler: func(context.Context, []byte) (any, error) { return nil, nil }}
	for name, fn := range map[string]func(s *Server){
		"no protocol":        func(s *Server) { s.Handle(&Service{SigningName: "x"}, "Op", noop) },
		"cbor without codec": func(s *Server) { s.Handle(&Service{SigningName: "x", CBORService: "X"}, "Op", noop) },
		"prefix clash": func(s *Server) {
			s.Handle(&Service{SigningName: "a", TargetPrefix: "P"}, "Op", noop)
			s.Handle(&Service{SigningName: "b", TargetPrefix: "P"}, "Op2", noop)
		},
		"query signing clash": func(s *Server) {
			s.Handle(&Service{SigningName: "a", QueryVersion: "1"}, "Op", noop)
			s.Handle(&Service{SigningName: "a", QueryVersion: "2"}, "Op2", noop)
		},
		"twice": func(s *Server) {
			svc := newMonitoringService()
			s.Handle(svc, "Op", noop)
			s.Handle(svc, "Op", noop)
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			fn(New(baseConfig()))
		})
	}
}

// A handler that fails with a plain error is the service's internal error.
func TestInternalErrorPerService(t *testing.T) {
	s := New(baseConfig())
	svc := newMonitoringService()
	svc.InternalError = &Error{Status: 500, Type: "InternalServiceFault", Code: "InternalServiceError", MessageKey: "Message"}
	s.Handle(svc, "ListMetrics", Operation{Handler: func(context.Context, []byte) (any, error) {
		return nil, errors.New("disk on fire")
	}})
	hs := httptest.NewServer(s)
	defer hs.Close()
	for proto, c := range cloudwatchClients(hs.URL, testAKID, testSecret) {
		t.Run(proto.String(), func(t *testing.T) {
			_, err := c.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{})
			// The Query client names the modeled shape its code maps to;
			// the others report x-amzn-query-error's code.
			code := "InternalServiceError"
			if proto == ProtocolQuery {
				code = "InternalServiceFault"
			}
			apiError(t, err, code, MsgServerException, 500)
		})
	}
}
