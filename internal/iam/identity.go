package iam

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/iam/policy"
	"github.com/holdfast/holdfast/internal/state"
)

// STS session credentials are stateless: the session token carries the
// session (role, session name, expiry) and an HMAC under the account's STS
// signing key, which is kept in the repository so that sessions survive a
// restart. The secret access key is derived from the same key and the
// access key id, so nothing per session is stored.

type sessionClaims struct {
	AccessKeyID string `json:"k"`
	RoleName    string `json:"r"`
	RoleID      string `json:"i"`
	Session     string `json:"s"`
	Expires     int64  `json:"e"`
	Issued      int64  `json:"t"`
}

func (s *Service) mac(purpose string, data []byte) []byte {
	h := hmac.New(sha256.New, s.signing)
	h.Write([]byte(purpose))
	h.Write(data)
	return h.Sum(nil)
}

// sessionSecret derives the secret access key of a session.
func (s *Service) sessionSecret(accessKeyID string) string {
	return base64.StdEncoding.EncodeToString(s.mac("secret:", []byte(accessKeyID)))[:40]
}

func (s *Service) sessionToken(c sessionClaims) string {
	payload, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(payload) + "." +
		base64.RawURLEncoding.EncodeToString(s.mac("token:", payload))
}

// parseSessionToken checks a token's MAC and returns its claims.
func (s *Service) parseSessionToken(token string) (sessionClaims, bool) {
	var c sessionClaims
	p, m, ok := strings.Cut(token, ".")
	if !ok || len(token) > 4096 {
		return c, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sum, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, s.mac("token:", payload)) {
		return c, false
	}
	if json.Unmarshal(payload, &c) != nil {
		return c, false
	}
	return c, true
}

// assumedRoleARN is arn:aws:sts::<account>:assumed-role/<role>/<session>
// (without the role's path, as AWS writes it).
func (s *Service) assumedRoleARN(role, session string) string {
	return "arn:aws:sts::" + s.account + ":assumed-role/" + role + "/" + session
}

// LookupAccessKey resolves an IAM user's access key or an STS session's
// temporary credentials (api.CredentialSource). Deleted or inactive keys,
// sessions whose token does not verify and sessions of a role that no
// longer exists are api.ErrUnknownAccessKey.
func (s *Service) LookupAccessKey(ctx context.Context, accessKeyID, token string) (api.Credential, error) {
	if strings.HasPrefix(accessKeyID, "ASIA") {
		c, ok := s.parseSessionToken(token)
		if !ok || c.AccessKeyID != accessKeyID {
			return api.Credential{}, api.ErrUnknownAccessKey
		}
		var cred api.Credential
		var err error
		s.view(func(r state.Reader) { cred, err = s.session(r, c, token) })
		return cred, err
	}
	var cred api.Credential
	err := api.ErrUnknownAccessKey
	s.view(func(r state.Reader) {
		k := AccessKeys.Get(r, accessKeyID)
		if k == nil || k.Status != "Active" {
			return
		}
		u := Users.Get(r, lowerName(k.UserName))
		if u == nil {
			return
		}
		cred, err = api.Credential{
			SecretAccessKey: k.Secret,
			Principal: api.Principal{
				Account:  s.account,
				Type:     api.PrincipalUser,
				ARN:      s.userARN(u.Path, u.Name),
				UserID:   u.ID,
				UserName: u.Name,
				Policies: s.policySet(r, "user", u, u.Inline, u.Attached),
			},
		}, nil
	})
	return cred, err
}

// session resolves the verified claims of a session token to the
// session's credential, if its role still exists.
func (s *Service) session(r state.Reader, c sessionClaims, token string) (api.Credential, error) {
	ro := Roles.Get(r, lowerName(c.RoleName))
	if ro == nil || ro.ID != c.RoleID {
		return api.Credential{}, api.ErrUnknownAccessKey
	}
	return api.Credential{
		SecretAccessKey: s.sessionSecret(c.AccessKeyID),
		SessionToken:    token,
		Expiration:      time.Unix(c.Expires, 0).UTC(),
		Principal: api.Principal{
			Account:     s.account,
			Type:        api.PrincipalAssumedRole,
			ARN:         s.assumedRoleARN(ro.Name, c.Session),
			UserID:      ro.ID + ":" + c.Session,
			RoleName:    ro.Name,
			RoleARN:     s.roleARN(ro.Path, ro.Name),
			SessionName: c.Session,
			Policies:    s.policySet(r, "role", ro, ro.Inline, ro.Attached),
		},
	}, nil
}

// policySet returns the compiled identity policies of a user or role
// (rec, whose inline and attached policies are given), from the cache
// when rec is the record the cached set was compiled from.
func (s *Service) policySet(r state.Reader, kind string, rec any, inline map[string]string, attached []string) *policy.Set {
	var name string
	switch v := rec.(type) {
	case *User:
		name = v.Name
	case *Role:
		name = v.Name
	}
	key := kind + "/" + lowerName(name)
	s.cacheMu.Lock()
	c, ok := s.sets[key]
	s.cacheMu.Unlock()
	if ok && c.from == rec {
		return c.set
	}
	var ps []*policy.Policy
	add := func(doc string) {
		// Documents were validated when they were written.
		if p, err := s.parse(doc, policy.Identity); err == nil {
			ps = append(ps, p)
		}
	}
	for _, doc := range inline {
		add(doc)
	}
	for _, arn := range attached {
		if mp := policyByARN(r, arn); mp != nil {
			add(mp.Document)
		}
	}
	set := policy.NewSet(ps...)
	s.cacheMu.Lock()
	s.sets[key] = cachedSet{from: rec, set: set}
	s.cacheMu.Unlock()
	return set
}

// Authorizer evaluates the caller's identity-based policies
// (api.Authorizer). The root is allowed everything.
type Authorizer struct {
	// Now is aws:CurrentTime; nil means time.Now.
	Now func() time.Time
}

// principalContext is the global condition keys of a caller.
func principalContext(ctx context.Context, p api.Principal, now time.Time) policy.Context {
	c := policy.Context{}
	c.Set("aws:PrincipalAccount", p.Account)
	c.Set("aws:userid", p.UserID)
	switch p.Type {
	case api.PrincipalUser:
		c.Set("aws:username", p.UserName)
		c.Set("aws:PrincipalArn", p.ARN)
		c.Set("aws:PrincipalType", "User")
	case api.PrincipalAssumedRole:
		c.Set("aws:PrincipalArn", p.RoleARN)
		c.Set("aws:PrincipalType", "AssumedRole")
	default:
		c.Set("aws:PrincipalArn", p.ARN)
		c.Set("aws:PrincipalType", "Account")
	}
	if ci, ok := api.CallFrom(ctx); ok {
		if ci.SourceIP != "" {
			c.Set("aws:SourceIp", ci.SourceIP)
		}
		c.Set("aws:SecureTransport", strconv.FormatBool(ci.SecureTransport))
	}
	c.Set("aws:CurrentTime", now.UTC().Format(time.RFC3339))
	c.Set("aws:EpochTime", strconv.FormatInt(now.Unix(), 10))
	return c
}

// Authorize implements api.Authorizer: every resource of the action must
// be allowed, and an explicit deny anywhere refuses the call.
func (a Authorizer) Authorize(ctx context.Context, p api.Principal, act api.Action) error {
	if p.Type == api.PrincipalRoot {
		return nil
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	set, _ := p.Policies.(*policy.Set)
	c := principalContext(ctx, p, now)
	for k, v := range act.Context {
		c.Set(k, v...)
	}
	resources := act.Resources
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	req := policy.Request{Action: act.Name, Context: c}
	for _, r := range resources {
		req.Resource = r
		switch set.Evaluate(&req) {
		case policy.Allow:
		case policy.ExplicitDeny:
			return api.AccessDeniedError(p, act.Name, r, true)
		default:
			return api.AccessDeniedError(p, act.Name, r, false)
		}
	}
	return nil
}
