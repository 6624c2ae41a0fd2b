package iam

import (
	"context"
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
	issued := now.UTC().Truncate(time.Second)
	claims := sessionClaims{
		AccessKeyID: genID("ASIA", 16),
		RoleName:    role.Name,
		RoleID:      role.ID,
		Session:     *in.RoleSessionName,
		Issued:      issued.Unix(),
		Expires:     issued.Add(time.Duration(duration) * time.Second).Unix(),
	}
	token, secret := s.sessionToken(claims), s.sessionSecret(claims.AccessKeyID)
	return &assumeRoleResult{
		Credentials: xmlCredentials{AccessKeyID: claims.AccessKeyID, SecretAccessKey: secret, SessionToken: token,
			Expiration: time.Unix(claims.Expires, 0).UTC()},
		AssumedRoleUser: xmlAssumedRoleUser{AssumedRoleID: role.ID + ":" + claims.Session,
			Arn: s.assumedRoleARN(role.Name, claims.Session)},
	}, nil
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
