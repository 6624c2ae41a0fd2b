package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// PrincipalType is the kind of identity that signed a request.
type PrincipalType string

// The principal types holdfast knows.
const (
	// PrincipalRoot is the account's root: the --access-key-id /
	// --secret-access-key credentials. It is allowed everything.
	PrincipalRoot PrincipalType = "root"
	// PrincipalUser is an IAM user signing with one of its access keys.
	PrincipalUser PrincipalType = "user"
	// PrincipalAssumedRole is a role session from sts:AssumeRole.
	PrincipalAssumedRole PrincipalType = "assumed-role"
)

// Principal is the authenticated caller, as AWS names it:
//
//	root          arn:aws:iam::<account>:root
//	user          arn:aws:iam::<account>:user/<path><name>
//	assumed-role  arn:aws:sts::<account>:assumed-role/<role>/<session>
type Principal struct {
	AccessKeyID string
	Account     string
	Type        PrincipalType
	ARN         string
	// UserID is what sts:GetCallerIdentity answers as UserId: the account
	// id for the root, the user's unique id (AIDA...) for a user, and
	// "<role id>:<session>" (AROA...:name) for an assumed role.
	UserID string
	// UserName is the IAM user's name (users only); it is aws:username.
	UserName string
	// RoleName, RoleARN and SessionName describe an assumed role.
	RoleName    string
	RoleARN     string
	SessionName string
	// Policies are the identity-based policies that apply to the caller
	// (evaluated by the Authorizer). They are nil for the root.
	Policies any
}

// RootPrincipal is the root of account, signing with accessKeyID.
func RootPrincipal(account, accessKeyID string) Principal {
	return Principal{
		AccessKeyID: accessKeyID,
		Account:     account,
		Type:        PrincipalRoot,
		ARN:         "arn:aws:iam::" + account + ":root",
		UserID:      account,
	}
}

// Credential is what an access key id resolves to.
type Credential struct {
	SecretAccessKey string
	// SessionToken is set for temporary credentials: a request must carry
	// exactly this X-Amz-Security-Token.
	SessionToken string
	// Expiration ends temporary credentials (zero: never). A request at or
	// after it is refused with ExpiredTokenException / ExpiredToken.
	Expiration time.Time
	Principal  Principal
}

// ErrUnknownAccessKey is what a CredentialSource answers for a key that
// does not exist, was deleted or is inactive, and for temporary
// credentials whose session token does not check out. The caller gets
// UnrecognizedClientException (JSON) / InvalidClientTokenId (Query).
var ErrUnknownAccessKey = errors.New("api: unknown or inactive access key")

// CredentialSource resolves access keys other than the root's (IAM users'
// keys, STS session credentials).
type CredentialSource interface {
	// LookupAccessKey resolves accessKeyID; sessionToken is the request's
	// X-Amz-Security-Token ("" when absent). It returns ErrUnknownAccessKey
	// (possibly wrapped) when the key is not usable; any other error is a
	// server fault.
	LookupAccessKey(ctx context.Context, accessKeyID, sessionToken string) (Credential, error)
}

// Authorizer decides whether a principal may perform an action. It runs
// once per call, after authentication and routing and before throttling
// and the handler; handlers may ask for more with Authorize.
//
// A nil error allows the call. AccessDeniedError builds the refusal in
// AWS's words; a *domain.Error, *Error or other transport error is
// answered as is; any other error is an access denial with the
// "no identity-based policy allows" text.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, a Action) error
}

// AccessDeniedError is AWS's refusal: AccessDeniedException (400) in AWS
// JSON and RPC v2 CBOR, AccessDenied (403) in the Query protocol, with the
// text
//
//	User: <principal ARN> is not authorized to perform: <action> on resource: <resource> because no identity-based policy allows the <action> action
//
// or, when explicit, "... with an explicit deny in an identity-based policy".
func AccessDeniedError(p Principal, action, resource string, explicit bool) error {
	if resource == "" {
		resource = "*"
	}
	msg := "User: " + p.ARN + " is not authorized to perform: " + action + " on resource: " + resource
	if explicit {
		msg += " with an explicit deny in an identity-based policy"
	} else {
		msg += " because no identity-based policy allows the " + action + " action"
	}
	return AccessDenied(msg)
}

// AccessDenied is an access denial with a message of the caller's choice
// (e.g. a trust policy's refusal, whose AWS text has no "because" clause).
func AccessDenied(message string) error {
	return newProtocolError(http.StatusBadRequest, TypeAccessDenied, message)
}

// IsAccessDenied reports whether err is an access denial from the
// transport or an Authorizer.
func IsAccessDenied(err error) bool {
	var pe *protocolError
	return errors.As(err, &pe) && pe.typ == TypeAccessDenied
}

// Authorize asks the server's Authorizer whether the caller of ctx may
// perform a (for checks a handler makes beyond its own action, such as
// sts:AssumeRole's or iam:PassRole's). Outside a request, or without an
// Authorizer, everything is allowed.
func Authorize(ctx context.Context, a Action) error {
	c := callFrom(ctx)
	if c == nil || c.authorizer == nil || !c.hasUser {
		return nil
	}
	return c.authorize(ctx, a)
}

func (c *call) authorize(ctx context.Context, a Action) error {
	err := c.authorizer.Authorize(ctx, c.user, a)
	if err == nil {
		return nil
	}
	if isWireError(err) {
		return err
	}
	resource := "*"
	if len(a.Resources) > 0 {
		resource = a.Resources[0]
	}
	return AccessDeniedError(c.user, a.Name, resource, false)
}

// isWireError reports whether err already has a wire identity.
func isWireError(err error) bool {
	var pe *protocolError
	var se *Error
	return errors.As(err, &pe) || errors.As(err, &se) || isDomainError(err)
}

// defaultAction is the action of an operation registered without an
// ActionFunc: "<ActionPrefix>:<Operation>" on "*".
func defaultAction(svc *Service, op string) Action {
	prefix := svc.ActionPrefix
	if prefix == "" {
		prefix = strings.ToLower(svc.SigningName)
	}
	return Action{Name: prefix + ":" + op}
}
