package iam

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/holdfast/holdfast/internal/api/awsquery"
	"github.com/holdfast/holdfast/internal/iam/policy"
	"github.com/holdfast/holdfast/internal/state"
)

type xmlRole struct {
	Path                     string              `xml:"Path"`
	RoleName                 string              `xml:"RoleName"`
	RoleID                   string              `xml:"RoleId"`
	Arn                      string              `xml:"Arn"`
	CreateDate               time.Time           `xml:"CreateDate"`
	AssumeRolePolicyDocument string              `xml:"AssumeRolePolicyDocument"`
	Description              string              `xml:"Description,omitempty"`
	MaxSessionDuration       int32               `xml:"MaxSessionDuration"`
	Tags                     *awsquery.List[Tag] `xml:"Tags,omitempty"`
}

func (s *Service) xmlRole(r *Role, withTags bool) xmlRole {
	x := xmlRole{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: s.roleARN(r.Path, r.Name), CreateDate: r.CreateDate,
		AssumeRolePolicyDocument: urlEncode(r.TrustPolicy), Description: r.Description, MaxSessionDuration: r.MaxSessionDuration}
	if withTags {
		x.Tags = tagList(r.Tags)
	}
	return x
}

type roleResult struct {
	Role xmlRole `xml:"Role"`
}

type listRolesResult struct {
	Roles       awsquery.List[xmlRole] `xml:"Roles"`
	IsTruncated bool                   `xml:"IsTruncated"`
	Marker      string                 `xml:"Marker,omitempty"`
}

type createRoleInput struct {
	RoleName                 *string
	Path                     *string
	AssumeRolePolicyDocument *string
	Description              *string
	MaxSessionDuration       *int32
	PermissionsBoundary      *string
	Tags                     []Tag
}

type roleNameInput struct {
	RoleName *string
}

type updateTrustInput struct {
	RoleName       *string
	PolicyDocument *string
}

// urlEncode percent-encodes a policy document as IAM returns documents
// (RFC 3986: everything but the unreserved characters).
func urlEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// policySize is a document's size as IAM counts it against quotas:
// characters, not counting white space.
func policySize(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// checkTrustPolicy parses a trust policy and checks that the users and
// roles of this account it names exist (IAM refuses a principal it cannot
// resolve).
func (s *Service) checkTrustPolicy(r state.Reader, doc string) error {
	if policySize(doc) > maxTrustPolicySize {
		return limitExceeded("Cannot exceed quota for ACLSizePerRole: %d", maxTrustPolicySize)
	}
	p, err := s.parse(doc, policy.Trust)
	if err != nil {
		return err
	}
	for _, arn := range p.AWSPrincipalARNs() {
		prefix := "arn:aws:iam::" + s.account + ":"
		rest, ok := strings.CutPrefix(arn, prefix)
		if !ok {
			continue // another account's principal, or a session
		}
		typ, pathName, _ := strings.Cut(rest, "/")
		name := pathName[strings.LastIndexByte(pathName, '/')+1:]
		found := false
		switch typ {
		case "user":
			u := Users.Get(r, lowerName(name))
			found = u != nil && s.userARN(u.Path, u.Name) == arn
		case "role":
			ro := Roles.Get(r, lowerName(name))
			found = ro != nil && s.roleARN(ro.Path, ro.Name) == arn
		}
		if !found {
			return malformedPolicy("Invalid principal in policy: \"AWS\":\"" + arn + "\"")
		}
	}
	return nil
}

func (s *Service) createRole(ctx context.Context, in createRoleInput) (*roleResult, error) {
	var v validator
	v.name("RoleName", in.RoleName, 64)
	v.path("Path", in.Path)
	v.policyDocument("AssumeRolePolicyDocument", in.AssumeRolePolicyDocument)
	v.str("Description", in.Description, 0, 1000, reDescription, `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`)
	v.intRange("MaxSessionDuration", in.MaxSessionDuration, 3600, 43200)
	v.tags(in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	path, err := entityPath(in.Path, in.PermissionsBoundary)
	if err != nil {
		return nil, err
	}
	r := &Role{Name: *in.RoleName, Path: path, ID: genID("AROA", 17), CreateDate: s.now(),
		TrustPolicy: *in.AssumeRolePolicyDocument, MaxSessionDuration: defaultSessionDuration, Tags: in.Tags}
	if in.Description != nil {
		r.Description = *in.Description
	}
	if in.MaxSessionDuration != nil {
		r.MaxSessionDuration = *in.MaxSessionDuration
	}
	err = s.update(ctx, func(tx *state.Tx) error {
		if err := s.checkTrustPolicy(tx, *in.AssumeRolePolicyDocument); err != nil {
			return err
		}
		if Roles.Get(tx, lowerName(r.Name)) != nil {
			return entityExists("Role with name %s already exists.", *in.RoleName)
		}
		Roles.Put(tx, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &roleResult{Role: s.xmlRole(r, true)}, nil
}

func (s *Service) getRole(ctx context.Context, in roleNameInput) (*roleResult, error) {
	var v validator
	v.name("RoleName", in.RoleName, 64)
	if err := v.err(); err != nil {
		return nil, err
	}
	var r *Role
	s.view(func(rd state.Reader) { r = Roles.Get(rd, lowerName(*in.RoleName)) })
	if r == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", *in.RoleName)
	}
	return &roleResult{Role: s.xmlRole(r, true)}, nil
}

func (s *Service) listRoles(ctx context.Context, in listInput) (*listRolesResult, error) {
	got, truncated, marker, err := listByPath(s, in, Roles, func(r *Role) string { return r.Path })
	if err != nil {
		return nil, err
	}
	out := &listRolesResult{IsTruncated: truncated, Marker: marker}
	for _, r := range got {
		out.Roles.Member = append(out.Roles.Member, s.xmlRole(r, false))
	}
	return out, nil
}

func (s *Service) deleteRole(ctx context.Context, in roleNameInput) (any, error) {
	var v validator
	v.name("RoleName", in.RoleName, 64)
	if err := v.err(); err != nil {
		return nil, err
	}
	return nil, s.update(ctx, func(tx *state.Tx) error {
		h, err := s.holder(tx, "role", *in.RoleName)
		if err != nil {
			return err
		}
		return h.delete(tx)
	})
}

func (s *Service) updateAssumeRolePolicy(ctx context.Context, in updateTrustInput) (any, error) {
	var v validator
	v.name("RoleName", in.RoleName, 64)
	v.policyDocument("PolicyDocument", in.PolicyDocument)
	if err := v.err(); err != nil {
		return nil, err
	}
	return nil, s.update(ctx, func(tx *state.Tx) error {
		r := Roles.Get(tx, lowerName(*in.RoleName))
		if r == nil {
			return noSuchEntity("The role with name %s cannot be found.", *in.RoleName)
		}
		if err := s.checkTrustPolicy(tx, *in.PolicyDocument); err != nil {
			return err
		}
		updated := *r
		updated.TrustPolicy = *in.PolicyDocument
		Roles.Put(tx, &updated)
		return nil
	})
}
