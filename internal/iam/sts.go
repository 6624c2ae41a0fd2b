package iam

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/iam/policy"
	"github.com/holdfast/holdfast/internal/state"
)

type callerIdentityResult struct {
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
}

func (s *Service) getCallerIdentity(ctx context.Context, _ struct{}) (*callerIdentityResult, error) {
	p, _ := api.PrincipalFrom(ctx)
	return &callerIdentityResult{UserID: p.UserID, Account: p.Account, Arn: p.ARN}, nil
}

type assumeRoleInput struct {
	RoleArn         *string
	RoleSessionName *string
	DurationSeconds *int32
	Policy          *string
	PolicyArns      []struct {
		Arn *string `query:"arn"`
	}
	ExternalID     *string `query:"ExternalId"`
	SerialNumber   *string
	TokenCode      *string
	SourceIdentity *string
	Tags           []Tag
	TransitiveTags []string `query:"TransitiveTagKeys"`
}

type xmlCredentials struct {
	AccessKeyID     string    `xml:"AccessKeyId"`
	SecretAccessKey string    `xml:"SecretAccessKey"`
	SessionToken    string    `xml:"SessionToken"`
	Expiration      time.Time `xml:"Expiration"`
}

type xmlAssumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type assumeRoleResult struct {
	Credentials     xmlCredentials     `xml:"Credentials"`
	AssumedRoleUser xmlAssumedRoleUser `xml:"AssumedRoleUser"`
}

// The STS refusals with AWS's texts.
const (
	msgRootCannotAssume = "Roles may not be assumed by root accounts."
	msgDurationTooLong  = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
	msgChainedTooLong   = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
)

// assumeRole issues temporary credentials for a role when its trust policy
// admits the caller and, unless the trust policy names the caller itself,
// the caller's identity-based policies allow sts:AssumeRole on the role.
// An explicit deny in either refuses it. A role that does not exist is
// refused the same way, so that AssumeRole does not reveal which roles
// exist.
func (s *Service) assumeRole(ctx context.Context, in assumeRoleInput) (*assumeRoleResult, error) {
	var v validator
	v.required("RoleArn", in.RoleArn != nil)
	v.str("RoleArn", in.RoleArn, 20, 2048, nil, "")
	v.required("RoleSessionName", in.RoleSessionName != nil)
	v.str("RoleSessionName", in.RoleSessionName, 2, 64, reSessionName, `[\w+=,.@-]*`)
	v.intRange("DurationSeconds", in.DurationSeconds, 900, 43200)
	v.str("ExternalId", in.ExternalID, 2, 1224, nil, "")
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.Policy != nil || len(in.PolicyArns) > 0 {
		return nil, validationError("Session policies (Policy, PolicyArns) are not supported by holdfast.")
	}
	p, _ := api.PrincipalFrom(ctx)
	if p.Type == api.PrincipalRoot {
		return nil, api.AccessDenied(msgRootCannotAssume)
	}
	const action = "sts:AssumeRole"
	notAuthorized := api.AccessDenied("User: " + p.ARN + " is not authorized to perform: " + action + " on resource: " + *in.RoleArn)

	var role *Role
	s.view(func(r state.Reader) { role = s.roleByARN(r, *in.RoleArn) })
	var trust *policy.Policy
	var identity *policy.Set
	if role != nil {
		trust, _ = s.parse(role.TrustPolicy, policy.Trust)
		identity, _ = p.Policies.(*policy.Set)
	}
	if role == nil || trust == nil {
		return nil, notAuthorized
	}

	now := s.clock.Now()
	c := principalContext(ctx, p, now)
	if in.ExternalID != nil {
		c.Set("sts:ExternalId", *in.ExternalID)
	}
	if in.SourceIdentity != nil {
		c.Set("sts:SourceIdentity", *in.SourceIdentity)
	}
	caller := policy.Caller{Account: p.Account}
	switch p.Type {
	case api.PrincipalUser:
		caller.ARNs = []string{p.ARN}
	case api.PrincipalAssumedRole:
		caller.ARNs = []string{p.ARN, p.RoleARN}
	}
	req := &policy.Request{Action: action, Resource: *in.RoleArn, Context: c}
	td := trust.EvaluateTrust(req, caller)
	if td.Decision != policy.Allow {
		return nil, notAuthorized
	}
	switch identity.Evaluate(req) {
	case policy.ExplicitDeny:
		return nil, api.AccessDeniedError(p, action, *in.RoleArn, true)
	case policy.Deny:
		if !td.Specific {
			return nil, api.AccessDeniedError(p, action, *in.RoleArn, false)
		}
	}

	duration := int32(defaultSessionDuration)
	if in.DurationSeconds != nil {
		duration = *in.DurationSeconds
	}
	switch {
	case p.Type == api.PrincipalAssumedRole && duration > chainedSessionLimit:
		return nil, validationError(msgChainedTooLong)
	case duration > role.MaxSessionDuration:
		return nil, validationError(msgDurationTooLong)
	}
	tc := s.issue(role, *in.RoleSessionName, now.UTC().Truncate(time.Second), time.Duration(duration)*time.Second)
	return &assumeRoleResult{
		Credentials: xmlCredentials{AccessKeyID: tc.AccessKeyID, SecretAccessKey: tc.SecretAccessKey, SessionToken: tc.SessionToken,
			Expiration: tc.Expiration},
		AssumedRoleUser: xmlAssumedRoleUser{AssumedRoleID: role.ID + ":" + *in.RoleSessionName,
			Arn: s.assumedRoleARN(role.Name, *in.RoleSessionName)},
	}, nil
}

// issue makes the credentials of a new session of role.
func (s *Service) issue(role *Role, session string, issued time.Time, d time.Duration) TemporaryCredentials {
	claims := sessionClaims{
		AccessKeyID: genID("ASIA", 16),
		RoleName:    role.Name,
		RoleID:      role.ID,
		Session:     session,
		Issued:      issued.Unix(),
		Expires:     issued.Add(d).Unix(),
	}
	return TemporaryCredentials{
		RoleARN:         s.roleARN(role.Path, role.Name),
		AccessKeyID:     claims.AccessKeyID,
		SecretAccessKey: s.sessionSecret(claims.AccessKeyID),
		SessionToken:    s.sessionToken(claims),
		Expiration:      time.Unix(claims.Expires, 0).UTC(),
	}
}

// roleByARN finds a role of this account by its ARN (path included).
func (s *Service) roleByARN(r state.Reader, arn string) *Role {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::"+s.account+":role/")
	if !ok {
		return nil
	}
	ro := Roles.Get(r, lowerName(rest[strings.LastIndexByte(rest, '/')+1:]))
	if ro == nil || s.roleARN(ro.Path, ro.Name) != arn {
		return nil
	}
	return ro
}

// ErrNotAssumable is IssueServiceSession's refusal: the role does not exist
// or its trust policy does not let the service assume it.
var ErrNotAssumable = errors.New("iam: the role does not exist or does not trust the service")

// TemporaryCredentials are a role session's credentials.
type TemporaryCredentials struct {
	RoleARN         string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// serviceTrust evaluates a role's trust policy for an AWS service
// principal acting for this account from sourceARN (aws:SourceAccount,
// aws:SourceArn), as when ECS assumes a task role.
func (s *Service) serviceTrust(role *Role, service, sourceARN string) bool {
	trust, err := s.parse(role.TrustPolicy, policy.Trust)
	if err != nil {
		return false
	}
	now := s.clock.Now()
	c := policy.Context{}
	c.Set("aws:SourceAccount", s.account)
	if sourceARN != "" {
		c.Set("aws:SourceArn", sourceARN)
	}
	c.Set("aws:CurrentTime", now.UTC().Format(time.RFC3339))
	c.Set("aws:EpochTime", strconv.FormatInt(now.Unix(), 10))
	req := &policy.Request{Action: "sts:AssumeRole", Resource: s.roleARN(role.Path, role.Name), Context: c}
	return trust.EvaluateTrust(req, policy.Caller{Service: service}).Decision == policy.Allow
}

// TrustsService reports whether the role roleARN exists and its trust
// policy lets the AWS service principal service (e.g.
// "ecs-tasks.amazonaws.com") assume it for sourceARN.
func (s *Service) TrustsService(roleARN, service, sourceARN string) bool {
	var role *Role
	s.view(func(r state.Reader) { role = s.roleByARN(r, roleARN) })
	return role != nil && s.serviceTrust(role, service, sourceARN)
}

// IssueServiceSession issues the credentials of a session of roleARN named
// session, lasting d, for the AWS service principal service acting from
// sourceARN: what ECS does for each task with a task role. The trust
// policy is evaluated at every issue, so a role that stops trusting the
// service (or is deleted) gets no more credentials. ErrNotAssumable
// refuses.
func (s *Service) IssueServiceSession(roleARN, service, sourceARN, session string, d time.Duration) (TemporaryCredentials, error) {
	var role *Role
	s.view(func(r state.Reader) { role = s.roleByARN(r, roleARN) })
	if role == nil || !s.serviceTrust(role, service, sourceARN) {
		return TemporaryCredentials{}, ErrNotAssumable
	}
	return s.issue(role, session, s.now(), d), nil
}
