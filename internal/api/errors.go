package api

import (
	"errors"
	"net/http"

	"github.com/holdfast/holdfast/internal/domain"
)

// Wire error type names that the transport itself produces (not through a
// domain.ErrorKind). These are the AWS JSON (and RPC v2 CBOR) __type
// names; queryRendition gives each one's Query protocol code.
const (
	TypeServerException        = "ServerException"
	TypeSerializationException = "SerializationException"
	TypeUnknownOperation       = "UnknownOperationException"
	TypeMissingAuthToken       = "MissingAuthenticationTokenException"
	TypeUnrecognizedClient     = "UnrecognizedClientException"
	TypeExpiredToken           = "ExpiredTokenException"
	TypeInvalidSignature       = "InvalidSignatureException"
	TypeIncompleteSignature    = "IncompleteSignatureException"
	TypeAccessDenied           = "AccessDeniedException"
	TypeThrottling             = "ThrottlingException"
	TypeRequestTimeout         = "RequestTimeoutException"
)

// msgRequestTimeout answers a request whose body did not arrive in time,
// in S3's words for its RequestTimeout (the SDKs retry both codes).
const msgRequestTimeout = "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."

// MsgServerException is the only text a caller sees for an unexpected
// failure; the real error is logged with the request id. It is the AWS
// common-errors description of InternalFailure.
const MsgServerException = "The request processing has failed because of an unknown error, exception or failure."

// Error is a service's own error with its wire identity, for services
// whose handlers do not speak domain.Error (IAM, STS, CloudWatch, ...).
// The front door renders it in the caller's protocol: Type as the JSON or
// CBOR __type, Code as the Query <Code> (and, for awsQueryCompatible
// services, in x-amzn-query-error).
type Error struct {
	Status  int    // HTTP status; >= 500 is a server fault
	Type    string // JSON/CBOR __type; "" means Code
	Code    string // Query <Code>; "" means Type
	Message string
	// MessageKey is the error shape's message member in JSON and CBOR
	// bodies: "message" (the default) or, for the services whose model
	// says so, "Message".
	MessageKey string
}

func (e *Error) Error() string { return e.code() + ": " + e.Message }

func (e *Error) typ() string {
	if e.Type != "" {
		return e.Type
	}
	return e.Code
}

func (e *Error) code() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Type
}

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

// queryForm is how a transport error reads in the Query protocol.
type queryForm struct {
	code    string
	status  int
	message string // "" keeps the JSON message
}

// queryRendition is THE table from the transport's JSON error types to the
// Query protocol's codes and statuses, as IAM and STS answer them (the
// AWS common errors: InvalidClientTokenId 403, ExpiredToken 403,
// SignatureDoesNotMatch 403, MissingAuthenticationToken 403, AccessDenied
// 403, InvalidAction 400, ...).
var queryRendition = map[string]queryForm{
	TypeMissingAuthToken:       {"MissingAuthenticationToken", http.StatusForbidden, "Request is missing Authentication Token"},
	TypeUnrecognizedClient:     {"InvalidClientTokenId", http.StatusForbidden, ""},
	TypeExpiredToken:           {"ExpiredToken", http.StatusForbidden, ""},
	TypeInvalidSignature:       {"SignatureDoesNotMatch", http.StatusForbidden, ""},
	TypeIncompleteSignature:    {"IncompleteSignature", http.StatusBadRequest, ""},
	TypeAccessDenied:           {"AccessDenied", http.StatusForbidden, ""},
	TypeSerializationException: {"ValidationError", http.StatusBadRequest, ""},
	TypeUnknownOperation:       {"InvalidAction", http.StatusBadRequest, ""},
	TypeThrottling:             {"Throttling", http.StatusBadRequest, ""},
	TypeRequestTimeout:         {"RequestTimeout", http.StatusBadRequest, ""},
	TypeServerException:        {"InternalFailure", http.StatusInternalServerError, ""},
}

// protocolError is an error raised by the transport itself (authentication,
// routing, serialization, throttling). It is not a domain error: these
// conditions never come out of the domain services. typ and status are its
// AWS JSON form; queryRendition gives its Query form.
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
// type; an *Error keeps its own; anything else is a 500 ServerException.
// A domain error of an unknown kind is also a ServerException.
//
// A domain error's 5xx answer carries only MsgServerException, whatever the
// error says: a server-side failure's text holds internal detail (file
// paths, wrapped error chains such as "store commit failed: write
// /var/lib/...: no space left on device") that is for the operator, not the
// caller. The server logs the real error with the request id (see
// exposesInternal).
func WireError(err error) (status int, errType, message string) {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.status, pe.typ, pe.message
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Status, se.typ(), se.Message
	}
	var de *domain.Error
	if errors.As(err, &de) {
		if wk, ok := kindTable[de.Kind]; ok {
			if wk.status >= 500 {
				return wk.status, wk.typ, MsgServerException
			}
			return wk.status, wk.typ, de.Message
		}
	}
	return http.StatusInternalServerError, TypeServerException, MsgServerException
}

// rendered is an error as one protocol shows it.
type rendered struct {
	status     int
	typ        string // JSON/CBOR __type
	code       string // Query code, and the x-amzn-query-error code
	message    string
	messageKey string // "" is "message"
}

// defaultInternal is how an unexpected failure is answered by a service
// without its own InternalError.
var defaultInternal = &Error{Status: http.StatusInternalServerError, Type: TypeServerException, Code: "InternalFailure"}

// render is WireError for the protocol and the service of a call: transport
// errors take their Query form from queryRendition, an *Error keeps its
// own Type and Code, and an unexpected failure is the service's
// InternalError.
func render(err error, proto Protocol, svc *Service) rendered {
	var pe *protocolError
	var se *Error
	var de *domain.Error
	switch {
	case errors.As(err, &pe):
		r := rendered{status: pe.status, typ: pe.typ, code: pe.typ, message: pe.message}
		if qf, ok := queryRendition[pe.typ]; ok {
			r.code = qf.code
			if proto == ProtocolQuery {
				r.status = qf.status
				if qf.message != "" {
					r.message = qf.message
				}
			}
		}
		return r
	case errors.As(err, &se):
		return rendered{status: se.Status, typ: se.typ(), code: se.code(), message: se.Message, messageKey: se.MessageKey}
	case errors.As(err, &de):
		if wk, ok := kindTable[de.Kind]; ok && wk.status < 500 {
			return rendered{status: wk.status, typ: wk.typ, code: wk.typ, message: de.Message}
		}
	}
	ie := defaultInternal
	if svc != nil && svc.InternalError != nil {
		ie = svc.InternalError
	}
	status, _, msg := WireError(err)
	if status < 500 {
		status = ie.Status
	}
	return rendered{status: status, typ: ie.typ(), code: ie.code(), message: msg, messageKey: ie.MessageKey}
}

// exposesInternal reports whether WireError(err) hides err behind the
// generic ServerException text, i.e. whether err must be logged.
func exposesInternal(err error) bool {
	var se *Error
	if errors.As(err, &se) {
		return false
	}
	status, _, _ := WireError(err)
	return status >= 500
}
