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
	h := hmac.New(sha256.New, s.m.signing)
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	if strings.HasPrefix(accessKeyID, "ASIA") {
		c, ok := s.parseSessionToken(token)
		if !ok || c.AccessKeyID != accessKeyID {
			return api.Credential{}, api.ErrUnknownAccessKey
		}
		r := s.m.roles[lowerName(c.RoleName)]
		if r == nil || r.ID != c.RoleID {
			return api.Credential{}, api.ErrUnknownAccessKey
		}
		return api.Credential{
			SecretAccessKey: s.sessionSecret(accessKeyID),
			SessionToken:    token,
			Expiration:      time.Unix(c.Expires, 0).UTC(),
			Principal: api.Principal{
				Account:     s.account,
				Type:        api.PrincipalAssumedRole,
				ARN:         s.assumedRoleARN(r.Name, c.Session),
				UserID:      r.ID + ":" + c.Session,
				RoleName:    r.Name,
				RoleARN:     s.roleARN(r.Path, r.Name),
				SessionName: c.Session,
				Policies:    s.policySet("role", r.Name),
			},
		}, nil
	}
	k := s.m.keys[accessKeyID]
	if k == nil || k.Status != "Active" {
		return api.Credential{}, api.ErrUnknownAccessKey
	}
	u := s.m.users[lowerName(k.UserName)]
	if u == nil {
		return api.Credential{}, api.ErrUnknownAccessKey
	}
	return api.Credential{
		SecretAccessKey: k.Secret,
		Principal: api.Principal{
			Account:  s.account,
			Type:     api.PrincipalUser,
			ARN:      s.userARN(u.Path, u.Name),
			UserID:   u.ID,
			UserName: u.Name,
			Policies: s.policySet("user", u.Name),
		},
	}, nil
}

// policySet returns the compiled identity policies of a user or role
// (inline and attached), from the cache when nothing changed since. The
// caller holds s.mu (for reading at least).
func (s *Service) policySet(kind, name string) *policy.Set {
	key := kind + "/" + lowerName(name)
	s.cacheMu.Lock()
	set, ok := s.sets[key]
	s.cacheMu.Unlock()
	if ok {
		return set
	}
	var inline map[string]string
	var attached []string
	switch kind {
	case "user":
		if u := s.m.users[lowerName(name)]; u != nil {
			inline, attached = u.Inline, u.Attached
		}
	default:
		if r := s.m.roles[lowerName(name)]; r != nil {
			inline, attached = r.Inline, r.Attached
		}
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
		if mp := s.m.policies[arn]; mp != nil {
			add(mp.Document)
		}
	}
	set = policy.NewSet(ps...)
	s.cacheMu.Lock()
	s.sets[key] = set
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
