// Package cwapi puts CloudWatch on holdfast's one listener: it describes the
// service to the front door (signing name "monitoring", smithy RPC v2 CBOR at
// /service/GraniteServiceVersion20100801/operation/<Op>, AWS JSON 1.0 with
// X-Amz-Target GraniteServiceVersion20100801.<Op>, and the Query protocol,
// version 2010-08-01; awsQueryCompatible, so JSON and CBOR errors carry
// x-amzn-query-error) and registers the operations of package cloudwatch.
// The front door decodes and encodes; this package supplies the CBOR codec
// and turns *cloudwatch.Error values into the front door's *api.Error.
package cwapi

import (
	"context"
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/cloudwatch"
)

// Names of the service in its protocols (from the model's metadata).
const (
	ServiceName  = "GraniteServiceVersion20100801"
	SigningName  = "monitoring"
	APIVersion   = "2010-08-01"
	XMLNamespace = "http://monitoring.amazonaws.com/doc/2010-08-01/"
)

// Service describes CloudWatch to the front door.
var Service = &api.Service{
	SigningName:     SigningName,
	ActionPrefix:    "cloudwatch",
	TargetPrefix:    ServiceName,
	JSONVersion:     "1.0",
	QueryVersion:    APIVersion,
	XMLNamespace:    XMLNamespace,
	CBORService:     ServiceName,
	CBOR:            Codec{},
	QueryCompatible: true,
	InternalError:   &api.Error{Status: 500, Type: "InternalServiceFault", Code: string(cloudwatch.CodeInternalServiceError)},
}

// Codec is smithy RPC v2 CBOR on fxamacker/cbor: struct fields by their json
// tags, definite- and indefinite-length items accepted, nil lists and maps
// written as empty ones, timestamps as tag 1 (cloudwatch.Timestamp).
type Codec struct{}

var (
	encMode = func() cbor.EncMode {
		m, err := cbor.EncOptions{NilContainers: cbor.NilContainerAsEmpty}.EncMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
	decMode = func() cbor.DecMode {
		m, err := cbor.DecOptions{
			MaxNestedLevels:  32,
			MaxArrayElements: 100000,
			MaxMapPairs:      100000,
			DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
)

// Marshal encodes v.
func (Codec) Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data into v; trailing bytes are an error.
func (Codec) Unmarshal(data []byte, v any) error {
	rest, err := decMode.UnmarshalFirst(data, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errors.New("trailing data after the CBOR item")
	}
	return nil
}

// wireError turns a *cloudwatch.Error into the front door's *api.Error
// through cloudwatch.Wire's table; other errors pass through (the front
// door answers them as InternalServiceFault and logs them).
func wireError(err error) error {
	var e *cloudwatch.Error
	if !errors.As(err, &e) {
		return err
	}
	status, shape, code, _, msg := cloudwatch.Wire(e)
	return &api.Error{Status: status, Type: shape, Code: string(code), Message: msg}
}

// op adapts a service method to an api.Handler.
func op[I any, O any](f func(context.Context, *I) (*O, error)) api.Handler {
	return api.Op(func(ctx context.Context, in I) (*O, error) {
		out, err := f(ctx, &in)
		return out, wireError(err)
	})
}

// noOutput adapts a method whose output is empty: JSON and CBOR answer {},
// the Query protocol an envelope without a result element, as AWS does.
func noOutput[I any](f func(context.Context, *I) (*cloudwatch.Empty, error)) api.Handler {
	return api.Op(func(ctx context.Context, in I) (*cloudwatch.Empty, error) {
		_, err := f(ctx, &in)
		return nil, wireError(err)
	})
}

// Register installs every CloudWatch operation holdfast serves on srv.
func Register(srv *api.Server, s *cloudwatch.Service) {
	ops := map[string]api.Handler{
		"PutMetricData":           noOutput(s.PutMetricData),
		"GetMetricData":           op(s.GetMetricData),
		"GetMetricStatistics":     op(s.GetMetricStatistics),
		"ListMetrics":             op(s.ListMetrics),
		"PutMetricAlarm":          noOutput(s.PutMetricAlarm),
		"DescribeAlarms":          op(s.DescribeAlarms),
		"DescribeAlarmsForMetric": op(s.DescribeAlarmsForMetric),
		"DescribeAlarmHistory":    op(s.DescribeAlarmHistory),
		"DeleteAlarms":            noOutput(s.DeleteAlarms),
		"SetAlarmState":           noOutput(s.SetAlarmState),
		"EnableAlarmActions":      noOutput(s.EnableAlarmActions),
		"DisableAlarmActions":     noOutput(s.DisableAlarmActions),
		"TagResource":             op(s.TagResource), // these two have (empty) result elements
		"UntagResource":           op(s.UntagResource),
		"ListTagsForResource":     op(s.ListTagsForResource),
	}
	for name, h := range ops {
		srv.Handle(Service, name, api.Operation{Handler: h})
	}
}
