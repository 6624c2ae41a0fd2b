package api

import (
	"errors"
	"net/http"

	"github.com/holdfast/holdfast/internal/domain"
)

// Wire error type names that the transport itself produces (not through a
// domain.ErrorKind).
const (
	TypeServerException        = "ServerException"
	TypeSerializationException = "SerializationException"
	TypeUnknownOperation       = "UnknownOperationException"
	TypeMissingAuthToken       = "MissingAuthenticationTokenException"
	TypeUnrecognizedClient     = "UnrecognizedClientException"
	TypeInvalidSignature       = "InvalidSignatureException"
	TypeIncompleteSignature    = "IncompleteSignatureException"
	TypeAccessDenied           = "AccessDeniedException"
	TypeThrottling             = "ThrottlingException"
)

// MsgServerException is the only text a caller sees for an unexpected
// failure; the real error is logged with the request id. It is the AWS
// common-errors description of InternalFailure.
const MsgServerException = "The request processing has failed because of an unknown error, exception or failure."

// wireKind is one row of the domain error table.
type wireKind struct {
	status int
	typ    string
}

// kindTable is THE table from domain.ErrorKind to the AWS wire error. Every
// ECS exception is a client fault (400) except ServerException (500); see
// spec/ecs-behaviour.md §6.1. Nothing else in holdfast maps kinds to wire
// names.
var kindTable = map[domain.ErrorKind]wireKind{
	domain.KindInternal:                 {http.StatusInternalServerError, TypeServerException},
	domain.KindInvalidParameter:         {http.StatusBadRequest, "InvalidParameterException"},
	domain.KindClient:                   {http.StatusBadRequest, "ClientException"},
	domain.KindClusterNotFound:          {http.StatusBadRequest, "ClusterNotFoundException"},
	domain.KindServiceNotFound:          {http.StatusBadRequest, "ServiceNotFoundException"},
	domain.KindServiceNotActive:         {http.StatusBadRequest, "ServiceNotActiveException"},
	domain.KindResourceNotFound:         {http.StatusBadRequest, "ResourceNotFoundException"},
	domain.KindResourceInUse:            {http.StatusBadRequest, "ResourceInUseException"},
	domain.KindClusterContainsServices:  {http.StatusBadRequest, "ClusterContainsServicesException"},
	domain.KindClusterContainsTasks:     {http.StatusBadRequest, "ClusterContainsTasksException"},
	domain.KindClusterContainsInstances: {http.StatusBadRequest, "ClusterContainsContainerInstancesException"},
	domain.KindAccessDenied:             {http.StatusBadRequest, TypeAccessDenied},
	domain.KindThrottling:               {http.StatusBadRequest, TypeThrottling},
	domain.KindLimitExceeded:            {http.StatusBadRequest, "LimitExceededException"},
	domain.KindUnsupportedFeature:       {http.StatusBadRequest, "UnsupportedFeatureException"},
}

// protocolError is an error raised by the transport itself (authentication,
// routing, serialization, throttling). It is not a domain error: these
// conditions never come out of the domain services.
type protocolError struct {
	status  int
	typ     string
	message string
}

func (e *protocolError) Error() string { return e.typ + ": " + e.message }

func newProtocolError(status int, typ, message string) *protocolError {
	return &protocolError{status: status, typ: typ, message: message}
}

// IsSerializationError reports whether err is a SerializationException
// produced by Decode.
func IsSerializationError(err error) bool {
	var pe *protocolError
	return errors.As(err, &pe) && pe.typ == TypeSerializationException
}

// WireError converts any error to the HTTP status, the __type and the message
// of the AWS JSON error response. Domain errors go through the kind table;
// transport errors (from Decode, authentication, routing) keep their own
// type; anything else is a 500 ServerException with a generic message (the
// caller logs the real error). A domain error of an unknown kind is also a
// ServerException.
func WireError(err error) (status int, errType, message string) {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.status, pe.typ, pe.message
	}
	var de *domain.Error
	if errors.As(err, &de) {
		if wk, ok := kindTable[de.Kind]; ok {
			msg := de.Message
			if wk.status >= 500 && msg == "" {
				msg = MsgServerException
			}
			return wk.status, wk.typ, msg
		}
	}
	return http.StatusInternalServerError, TypeServerException, MsgServerException
}

// exposesInternal reports whether WireError(err) hides err behind the
// generic ServerException text, i.e. whether err must be logged.
func exposesInternal(err error) bool {
	status, _, _ := WireError(err)
	return status >= 500
}
