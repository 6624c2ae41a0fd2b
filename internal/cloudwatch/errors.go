package cloudwatch

import (
	"errors"
	"fmt"
	"net/http"
)

// Code names a CloudWatch error by its Query-protocol code (the "code" of
// the model's awsQueryError trait), which is what users of every protocol
// see: the SDKs read it from the x-amzn-query-error header on JSON and CBOR.
type Code string

// The error codes holdfast's CloudWatch returns.
const (
	CodeInvalidParameterValue       Code = "InvalidParameterValue"
	CodeMissingParameter            Code = "MissingParameter"
	CodeInvalidParameterCombination Code = "InvalidParameterCombination"
	CodeResourceNotFound            Code = "ResourceNotFound"          // an alarm
	CodeResourceNotFoundException   Code = "ResourceNotFoundException" // a tagged resource
	CodeLimitExceeded               Code = "LimitExceeded"
	CodeInvalidNextToken            Code = "InvalidNextToken"
	CodeInvalidFormat               Code = "InvalidFormat"
	CodeValidationError             Code = "ValidationError"
	CodeInternalServiceError        Code = "InternalServiceError"
)

// wireError is one row of the error table: the shape name (the __type of
// JSON and CBOR errors), the HTTP status, and whether the caller is at fault.
type wireError struct {
	shape  string
	status int
	sender bool
}

// errorTable is THE table from CloudWatch error codes to their wire form,
// from the model's error shapes. ValidationError is the awsQueryError code of
// the ValidationException shape, which newer models (aws-sdk-go-v2's
// cloudwatch v1.75) have and spec/models/cloudwatch-service-2.json does not:
// CloudWatch returns it for requests that fail validation.
var errorTable = map[Code]wireError{
	CodeInvalidParameterValue:       {"InvalidParameterValueException", http.StatusBadRequest, true},
	CodeMissingParameter:            {"MissingRequiredParameterException", http.StatusBadRequest, true},
	CodeInvalidParameterCombination: {"InvalidParameterCombinationException", http.StatusBadRequest, true},
	CodeResourceNotFound:            {"ResourceNotFound", http.StatusNotFound, true},
	CodeResourceNotFoundException:   {"ResourceNotFoundException", http.StatusNotFound, true},
	CodeLimitExceeded:               {"LimitExceededFault", http.StatusBadRequest, true},
	CodeInvalidNextToken:            {"InvalidNextToken", http.StatusBadRequest, true},
	CodeInvalidFormat:               {"InvalidFormatFault", http.StatusBadRequest, true},
	CodeValidationError:             {"ValidationException", http.StatusBadRequest, true},
	CodeInternalServiceError:        {"InternalServiceFault", http.StatusInternalServerError, false},
}

// Error is a CloudWatch error.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// MsgInternal is the only text a caller sees for an unexpected failure.
const MsgInternal = "The request processing has failed because of an unknown error, exception or failure."

// Wire describes err as the protocols need it: the HTTP status, the shape
// name (__type of JSON and CBOR errors), the Query error code, whether the
// sender is at fault (the Type of a Query error and the suffix of the
// x-amzn-query-error header), and the message. An error that is not an
// *Error is an InternalServiceError with a generic message.
func Wire(err error) (status int, shape string, code Code, sender bool, message string) {
	var e *Error
	if errors.As(err, &e) {
		if w, ok := errorTable[e.Code]; ok {
			return w.status, w.shape, e.Code, w.sender, e.Message
		}
	}
	w := errorTable[CodeInternalServiceError]
	return w.status, w.shape, CodeInternalServiceError, false, MsgInternal
}

// Helpers for the texts CloudWatch uses.

func missing(param string) *Error {
	return errorf(CodeMissingParameter, "The parameter %s is required.", param)
}

func invalidValue(value, param string) *Error {
	return errorf(CodeInvalidParameterValue, "The value %s for parameter %s is invalid.", value, param)
}

func exclusive(a, b string) *Error {
	return errorf(CodeInvalidParameterCombination, "The parameters %s and %s are mutually exclusive and you have specified both.", a, b)
}

func validation(format string, args ...any) *Error {
	return errorf(CodeValidationError, format, args...)
}
