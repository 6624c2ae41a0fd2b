package aas

import (
	"errors"
	"fmt"
	"net/http"
)

// The error types of Application Auto Scaling (the model's error shapes).
const (
	ValidationException           = "ValidationException"
	ObjectNotFoundException       = "ObjectNotFoundException"
	ConcurrentUpdateException     = "ConcurrentUpdateException"
	LimitExceededException        = "LimitExceededException"
	FailedResourceAccessException = "FailedResourceAccessException"
	InvalidNextTokenException     = "InvalidNextTokenException"
	ResourceNotFoundException     = "ResourceNotFoundException"
	TooManyTagsException          = "TooManyTagsException"
	InternalServiceException      = "InternalServiceException"
)

// statusOf is THE table from Application Auto Scaling error types to HTTP
// statuses: every error is a client fault except InternalServiceException.
var statusOf = map[string]int{
	ValidationException:           http.StatusBadRequest,
	ObjectNotFoundException:       http.StatusBadRequest,
	ConcurrentUpdateException:     http.StatusBadRequest,
	LimitExceededException:        http.StatusBadRequest,
	FailedResourceAccessException: http.StatusBadRequest,
	InvalidNextTokenException:     http.StatusBadRequest,
	ResourceNotFoundException:     http.StatusBadRequest,
	TooManyTagsException:          http.StatusBadRequest,
	InternalServiceException:      http.StatusInternalServerError,
}

// Error is an Application Auto Scaling error.
type Error struct {
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

func validation(format string, args ...any) *Error {
	return errorf(ValidationException, format, args...)
}

// Wire returns the HTTP status, the error type (the JSON __type) and the
// message of err; an error that is not an *Error is an
// InternalServiceException with a generic message (the caller logs it).
func Wire(err error) (status int, typ, message string) {
	var e *Error
	if errors.As(err, &e) {
		if st, ok := statusOf[e.Type]; ok {
			return st, e.Type, e.Message
		}
	}
	return http.StatusInternalServerError, InternalServiceException, "The request processing has failed because of an unknown error, exception or failure."
}
