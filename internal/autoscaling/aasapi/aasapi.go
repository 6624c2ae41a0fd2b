// Package aasapi puts Application Auto Scaling on holdfast's one listener:
// AWS JSON 1.1 with X-Amz-Target AnyScaleFrontendService.<Op>, signed for
// "application-autoscaling", over the operations of package aas. Errors
// carry the model's "Message" member.
package aasapi

import (
	"context"
	"errors"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/autoscaling/aas"
)

// Names of the service (from the model's metadata).
const (
	TargetPrefix = "AnyScaleFrontendService"
	SigningName  = "application-autoscaling"
)

// Service describes Application Auto Scaling to the front door.
var Service = &api.Service{
	SigningName:  SigningName,
	ActionPrefix: "application-autoscaling",
	TargetPrefix: TargetPrefix,
	JSONVersion:  "1.1",
	InternalError: &api.Error{Status: 500, Type: aas.InternalServiceException, Code: aas.InternalServiceException,
		MessageKey: "Message"},
}

func wireError(err error) error {
	var e *aas.Error
	if !errors.As(err, &e) {
		return err
	}
	status, typ, msg := aas.Wire(e)
	return &api.Error{Status: status, Type: typ, Code: typ, Message: msg, MessageKey: "Message"}
}

func op[I any, O any](f func(context.Context, *I) (*O, error)) api.Handler {
	return api.Op(func(ctx context.Context, in I) (*O, error) {
		out, err := f(ctx, &in)
		return out, wireError(err)
	})
}

// Register installs every Application Auto Scaling operation holdfast
// serves on srv.
func Register(srv *api.Server, s *aas.Service) {
	ops := map[string]api.Handler{
		"RegisterScalableTarget":    op(s.RegisterScalableTarget),
		"DescribeScalableTargets":   op(s.DescribeScalableTargets),
		"DeregisterScalableTarget":  op(s.DeregisterScalableTarget),
		"PutScalingPolicy":          op(s.PutScalingPolicy),
		"DescribeScalingPolicies":   op(s.DescribeScalingPolicies),
		"DeleteScalingPolicy":       op(s.DeleteScalingPolicy),
		"PutScheduledAction":        op(s.PutScheduledAction),
		"DescribeScheduledActions":  op(s.DescribeScheduledActions),
		"DeleteScheduledAction":     op(s.DeleteScheduledAction),
		"DescribeScalingActivities": op(s.DescribeScalingActivities),
		"TagResource":               op(s.TagResource),
		"UntagResource":             op(s.UntagResource),
		"ListTagsForResource":       op(s.ListTagsForResource),
	}
	for name, h := range ops {
		srv.Handle(Service, name, api.Operation{Handler: h})
	}
}
