package domain

import (
	"errors"
	"fmt"
)

// ErrorKind names a class of domain error. The API layer maps each kind to
// exactly one AWS wire error (__type and HTTP status) through a single table;
// nothing outside that table looks at error texts.
type ErrorKind int

const (
	// KindInternal is an unexpected failure (ServerException, 500).
	KindInternal ErrorKind = iota
	// KindInvalidParameter is a bad field value (InvalidParameterException).
	KindInvalidParameter
	// KindClient is a request the caller should not have made (ClientException).
	KindClient
	// KindClusterNotFound is an unknown cluster (ClusterNotFoundException).
	KindClusterNotFound
	// KindServiceNotFound is an unknown service (ServiceNotFoundException).
	KindServiceNotFound
	// KindServiceNotActive is a service that is DRAINING or INACTIVE (ServiceNotActiveException).
	KindServiceNotActive
	// KindResourceNotFound is an unknown resource (ResourceNotFoundException).
	KindResourceNotFound
	// KindResourceInUse is a resource that cannot be changed now (ResourceInUseException).
	KindResourceInUse
	// KindClusterContainsServices blocks DeleteCluster (ClusterContainsServicesException).
	KindClusterContainsServices
	// KindClusterContainsTasks blocks DeleteCluster (ClusterContainsTasksException).
	KindClusterContainsTasks
	// KindClusterContainsInstances blocks DeleteCluster (ClusterContainsContainerInstancesException).
	KindClusterContainsInstances
	// KindAccessDenied is an authorization failure (AccessDeniedException).
	KindAccessDenied
	// KindThrottling is a rate limit (ThrottlingException).
	KindThrottling
	// KindLimitExceeded is a quota (LimitExceededException).
	KindLimitExceeded
	// KindUnsupportedFeature is something holdfast does not do (UnsupportedFeatureException).
	KindUnsupportedFeature
)

// Error is a domain error: a kind plus the message the caller sees.
type Error struct {
	Kind    ErrorKind
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf builds a domain error of the given kind.
func Errorf(kind ErrorKind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, or KindInternal for errors that are not
// domain errors.
func KindOf(err error) ErrorKind {
	var de *Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return KindInternal
}

// Messages that users and tools grep for; they are ECS's texts.
const (
	MsgClusterNotFound       = "Cluster not found."
	MsgServiceNotFound       = "Service not found."
	MsgServiceNotActive      = "Service was not ACTIVE."
	MsgServiceNotIdempotent  = "Creation of service was not idempotent."
	MsgRateExceeded          = "Rate exceeded"
	MsgClusterInactive       = "The referenced cluster was inactive."
	MsgTaskDefinitionUnknown = "Unable to describe task definition."
)

// Common constructors.
var (
	ErrClusterNotFound  = &Error{Kind: KindClusterNotFound, Message: MsgClusterNotFound}
	ErrServiceNotFound  = &Error{Kind: KindServiceNotFound, Message: MsgServiceNotFound}
	ErrServiceNotActive = &Error{Kind: KindServiceNotActive, Message: MsgServiceNotActive}
)
