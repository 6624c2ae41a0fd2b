package iam

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/api/awsquery"
	"github.com/holdfast/holdfast/internal/iam/policy"
)

// holder is a user or a role: what inline and managed policies attach to.
type holder struct {
	kind     string // "user" or "role"
	name     string
	inline   map[string]string
	attached []string
	// save returns the record change and installs the new state in the
	// model (the caller commits first).
	save func(c *changes, inline map[string]string, attached []string) func()
}

func (s *Service) holder(kind, name string) (*holder, error) {
	switch kind {
	case "user":
		u := s.m.users[lowerName(name)]
		if u == nil {
			return nil, noSuchEntity("The user with name %s cannot be found.", name)
		}
		return &holder{kind: kind, name: u.Name, inline: u.Inline, attached: u.Attached,
			save: func(c *changes, inline map[string]string, attached []string) func() {
				updated := *u
				updated.Inline, updated.Attached = inline, attached
				c.user(&updated)
				return func() { s.m.users[lowerName(u.Name)] = &updated }
			}}, nil
	default:
		r := s.m.roles[lowerName(name)]
		if r == nil {
			return nil, noSuchEntity("The role with name %s cannot be found.", name)
		}
		return &holder{kind: kind, name: r.Name, inline: r.Inline, attached: r.Attached,
			save: func(c *changes, inline map[string]string, attached []string) func() {
				updated := *r
				updated.Inline, updated.Attached = inline, attached
				c.role(&updated)
				return func() { s.m.roles[lowerName(r.Name)] = &updated }
			}}, nil
	}
}

// update commits the holder's new policies and installs them.
func (s *Service) update(ctx context.Context, h *holder, inline map[string]string, attached []string) error {
	var c changes
	install := h.save(&c, inline, attached)
	if err := s.commit(ctx, c); err != nil {
		return err
	}
	install()
	s.invalidate()
	return nil
}

// deleteHolder deletes a user or role that has no policies left (else
// DeleteConflict); the caller holds mu and has checked the rest.
func (s *Service) deleteHolder(ctx context.Context, h *holder) error {
	if len(h.inline) > 0 {
		return deleteConflict(msgDeletePoliciesFirst)
	}
	if len(h.attached) > 0 {
		return deleteConflict(msgDetachPoliciesFirst)
	}
	kind := KindUser
	if h.kind == "role" {
		kind = KindRole
	}
	var c changes
	c.del(kind, lowerName(h.name))
	if err := s.commit(ctx, c); err != nil {
		return err
	}
	if kind == KindUser {
		delete(s.m.users, lowerName(h.name))
	} else {
		delete(s.m.roles, lowerName(h.name))
	}
	s.invalidate()
	return nil
}

// Inline policies.

type putPolicyInput struct {
	UserName       *string
	RoleName       *string
	PolicyName     *string
	PolicyDocument *string
}

type inlinePolicyInput struct {
	UserName   *string
	RoleName   *string
	PolicyName *string
}

type listInlineInput struct {
	UserName *string
	RoleName *string
	Marker   *string
	MaxItems *int32
}

type getUserPolicyResult struct {
	UserName       string `xml:"UserName"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

type getRolePolicyResult struct {
	RoleName       string `xml:"RoleName"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

type listPolicyNamesResult struct {
	PolicyNames awsquery.List[string] `xml:"PolicyNames"`
	IsTruncated bool                  `xml:"IsTruncated"`
	Marker      string                `xml:"Marker,omitempty"`
}

// holderName validates the UserName or RoleName member of an inline or
// attach operation on kind.
func holderName(v *validator, kind string, user, role *string) *string {
	if kind == "user" {
		v.name("UserName", user, 128)
		return user
	}
	v.name("RoleName", role, 64)
	return role
}

func (s *Service) putInlinePolicy(kind string) func(context.Context, putPolicyInput) (any, error) {
	return func(ctx context.Context, in putPolicyInput) (any, error) {
		var v validator
		name := holderName(&v, kind, in.UserName, in.RoleName)
		v.name("PolicyName", in.PolicyName, 128)
		v.policyDocument("PolicyDocument", in.PolicyDocument)
		if err := v.err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		h, err := s.holder(kind, *name)
		if err != nil {
			return nil, err
		}
		if _, err := s.parse(*in.PolicyDocument, policy.Identity); err != nil {
			return nil, err
		}
		inline := maps.Clone(h.inline)
		if inline == nil {
			inline = map[string]string{}
		}
		// Policy names are unique without regard to case: the new one
		// replaces any of the same name.
		for n := range inline {
			if strings.EqualFold(n, *in.PolicyName) {
				delete(inline, n)
			}
		}
		inline[*in.PolicyName] = *in.PolicyDocument
		total := 0
		for _, d := range inline {
			total += policySize(d)
		}
		if kind == "user" && total > maxUserInlineSize {
			return nil, limitExceeded("Maximum policy size of %d bytes exceeded for user %s", maxUserInlineSize, h.name)
		}
		if kind == "role" && total > maxRoleInlineSize {
			return nil, limitExceeded("Maximum policy size of %d bytes exceeded for role %s", maxRoleInlineSize, h.name)
		}
		return nil, s.update(ctx, h, inline, h.attached)
	}
}

// inlineName finds an inline policy by name without regard to case.
func inlineName(inline map[string]string, name string) (string, bool) {
	for n := range inline {
		if strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

func noSuchInline(kind, name string) error {
	return noSuchEntity("The %s policy with name %s cannot be found.", kind, name)
}

// inlinePolicy validates a Get/Delete*Policy request and finds the
// policy (its holder and its name as stored); the caller holds mu.
func (s *Service) inlinePolicy(kind string, in inlinePolicyInput) (*holder, string, error) {
	var v validator
	name := holderName(&v, kind, in.UserName, in.RoleName)
	v.name("PolicyName", in.PolicyName, 128)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	h, err := s.holder(kind, *name)
	if err != nil {
		return nil, "", err
	}
	pn, ok := inlineName(h.inline, *in.PolicyName)
	if !ok {
		return nil, "", noSuchInline(kind, *in.PolicyName)
	}
	return h, pn, nil
}

func (s *Service) getInlinePolicy(kind string) func(context.Context, inlinePolicyInput) (any, error) {
	return func(ctx context.Context, in inlinePolicyInput) (any, error) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		h, pn, err := s.inlinePolicy(kind, in)
		if err != nil {
			return nil, err
		}
		doc := urlEncode(h.inline[pn])
		if kind == "user" {
			return &getUserPolicyResult{UserName: h.name, PolicyName: pn, PolicyDocument: doc}, nil
		}
		return &getRolePolicyResult{RoleName: h.name, PolicyName: pn, PolicyDocument: doc}, nil
	}
}

func (s *Service) deleteInlinePolicy(kind string) func(context.Context, inlinePolicyInput) (any, error) {
	return func(ctx context.Context, in inlinePolicyInput) (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		h, pn, err := s.inlinePolicy(kind, in)
		if err != nil {
			return nil, err
		}
		inline := maps.Clone(h.inline)
		delete(inline, pn)
		if len(inline) == 0 {
			inline = nil
		}
		return nil, s.update(ctx, h, inline, h.attached)
	}
}

func (s *Service) listInlinePolicies(kind string) func(context.Context, listInlineInput) (*listPolicyNamesResult, error) {
	return func(ctx context.Context, in listInlineInput) (*listPolicyNamesResult, error) {
		var v validator
		name := holderName(&v, kind, in.UserName, in.RoleName)
		v.listParams(in.Marker, in.MaxItems)
		if err := v.err(); err != nil {
			return nil, err
		}
		s.mu.RLock()
		h, err := s.holder(kind, *name)
		var names []string
		if err == nil {
			names = slices.Sorted(maps.Keys(h.inline))
		}
		s.mu.RUnlock()
		if err != nil {
			return nil, err
		}
		got, truncated, marker, err := page(names, func(n string) string { return n }, in.Marker, in.MaxItems)
		if err != nil {
			return nil, err
		}
		return &listPolicyNamesResult{PolicyNames: awsquery.ListOf(got), IsTruncated: truncated, Marker: marker}, nil
	}
}

// Customer managed policies.

type xmlPolicy struct {
	PolicyName                    string              `xml:"PolicyName"`
	PolicyID                      string              `xml:"PolicyId"`
	Arn                           string              `xml:"Arn"`
	Path                          string              `xml:"Path"`
	DefaultVersionID              string              `xml:"DefaultVersionId"`
	AttachmentCount               int                 `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int                 `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool                `xml:"IsAttachable"`
	Description                   string              `xml:"Description,omitempty"`
	CreateDate                    time.Time           `xml:"CreateDate"`
	UpdateDate                    time.Time           `xml:"UpdateDate"`
	Tags                          *awsquery.List[Tag] `xml:"Tags,omitempty"`
}

type policyResult struct {
	Policy xmlPolicy `xml:"Policy"`
}

func (s *Service) xmlPolicy(p *ManagedPolicy) xmlPolicy {
	x := xmlPolicy{PolicyName: p.Name, PolicyID: p.ID, Arn: p.ARN, Path: p.Path, DefaultVersionID: "v1",
		AttachmentCount: s.m.attachments(p.ARN), IsAttachable: true, Description: p.Description,
		CreateDate: p.CreateDate, UpdateDate: p.UpdateDate}
	x.Tags = tagList(p.Tags)
	return x
}

type createPolicyInput struct {
	PolicyName     *string
	Path           *string
	PolicyDocument *string
	Description    *string
	Tags           []Tag
}

type policyArnInput struct {
	PolicyArn *string
}

type attachInput struct {
	UserName  *string
	RoleName  *string
	PolicyArn *string
}

type listAttachedInput struct {
	UserName   *string
	RoleName   *string
	PathPrefix *string
	Marker     *string
	MaxItems   *int32
}

type xmlAttachedPolicy struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type listAttachedResult struct {
	AttachedPolicies awsquery.List[xmlAttachedPolicy] `xml:"AttachedPolicies"`
	IsTruncated      bool                             `xml:"IsTruncated"`
	Marker           string                           `xml:"Marker,omitempty"`
}

func noSuchPolicy(arn string) error {
	return noSuchEntity("Policy %s does not exist or is not attachable.", arn)
}

func (v *validator) policyArn(p *string) {
	v.required("PolicyArn", p != nil)
	v.str("PolicyArn", p, 20, 2048, nil, "")
}

func (s *Service) createPolicy(ctx context.Context, in createPolicyInput) (*policyResult, error) {
	var v validator
	v.name("PolicyName", in.PolicyName, 128)
	v.str("Path", in.Path, 1, 512, rePolicyPath, `((/[A-Za-z0-9\.,\+@=_-]+)*)/`)
	v.policyDocument("PolicyDocument", in.PolicyDocument)
	v.str("Description", in.Description, 0, 1000, nil, "")
	v.tags(in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	path := "/"
	if in.Path != nil {
		path = *in.Path
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if policySize(*in.PolicyDocument) > maxManagedPolicySize {
		return nil, limitExceeded("Cannot exceed quota for PolicySize: %d", maxManagedPolicySize)
	}
	if _, err := s.parse(*in.PolicyDocument, policy.Identity); err != nil {
		return nil, err
	}
	for _, p := range s.m.policies {
		if strings.EqualFold(p.Name, *in.PolicyName) {
			return nil, entityExists("A policy called %s already exists. Duplicate names are not allowed.", *in.PolicyName)
		}
	}
	now := s.now()
	p := &ManagedPolicy{ARN: s.policyARN(path, *in.PolicyName), Name: *in.PolicyName, Path: path, ID: genID("ANPA", 17),
		Document: *in.PolicyDocument, CreateDate: now, UpdateDate: now, Tags: in.Tags}
	if in.Description != nil {
		p.Description = *in.Description
	}
	var c changes
	c.policy(p)
	if err := s.commit(ctx, c); err != nil {
		return nil, err
	}
	s.m.policies[p.ARN] = p
	return &policyResult{Policy: s.xmlPolicy(p)}, nil
}

func (s *Service) getPolicy(ctx context.Context, in policyArnInput) (*policyResult, error) {
	var v validator
	v.policyArn(in.PolicyArn)
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.m.policies[*in.PolicyArn]
	if p == nil {
		return nil, noSuchPolicy(*in.PolicyArn)
	}
	return &policyResult{Policy: s.xmlPolicy(p)}, nil
}

func (s *Service) deletePolicy(ctx context.Context, in policyArnInput) (any, error) {
	var v validator
	v.policyArn(in.PolicyArn)
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.m.policies[*in.PolicyArn]
	if p == nil {
		return nil, noSuchPolicy(*in.PolicyArn)
	}
	if s.m.attachments(p.ARN) > 0 {
		return nil, deleteConflict(msgPolicyAttached)
	}
	var c changes
	c.del(KindPolicy, p.ARN)
	if err := s.commit(ctx, c); err != nil {
		return nil, err
	}
	delete(s.m.policies, p.ARN)
	return nil, nil
}

// attachTarget validates an Attach/Detach*Policy request and finds its user
// or role; the caller holds mu.
func (s *Service) attachTarget(kind string, in attachInput) (*holder, error) {
	var v validator
	name := holderName(&v, kind, in.UserName, in.RoleName)
	v.policyArn(in.PolicyArn)
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.holder(kind, *name)
}

func (s *Service) attachPolicy(kind string) func(context.Context, attachInput) (any, error) {
	return func(ctx context.Context, in attachInput) (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		h, err := s.attachTarget(kind, in)
		if err != nil {
			return nil, err
		}
		if s.m.policies[*in.PolicyArn] == nil {
			return nil, noSuchPolicy(*in.PolicyArn)
		}
		if slices.Contains(h.attached, *in.PolicyArn) {
			return nil, nil // attaching twice is not an error
		}
		if len(h.attached) >= maxAttachedPolicies {
			quota := "PoliciesPerUser"
			if kind == "role" {
				quota = "PoliciesPerRole"
			}
			return nil, limitExceeded("Cannot exceed quota for %s: %d", quota, maxAttachedPolicies)
		}
		attached := append(slices.Clone(h.attached), *in.PolicyArn)
		return nil, s.update(ctx, h, h.inline, attached)
	}
}

func (s *Service) detachPolicy(kind string) func(context.Context, attachInput) (any, error) {
	return func(ctx context.Context, in attachInput) (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		h, err := s.attachTarget(kind, in)
		if err != nil {
			return nil, err
		}
		i := slices.Index(h.attached, *in.PolicyArn)
		if i < 0 {
			return nil, noSuchEntity("Policy %s was not found.", *in.PolicyArn)
		}
		attached := slices.Delete(slices.Clone(h.attached), i, i+1)
		if len(attached) == 0 {
			attached = nil
		}
		return nil, s.update(ctx, h, h.inline, attached)
	}
}

func (s *Service) listAttachedPolicies(kind string) func(context.Context, listAttachedInput) (*listAttachedResult, error) {
	return func(ctx context.Context, in listAttachedInput) (*listAttachedResult, error) {
		var v validator
		name := holderName(&v, kind, in.UserName, in.RoleName)
		v.str("PathPrefix", in.PathPrefix, 1, 512, rePolicyPath, `((/[A-Za-z0-9\.,\+@=_-]+)*)/`)
		v.listParams(in.Marker, in.MaxItems)
		if err := v.err(); err != nil {
			return nil, err
		}
		s.mu.RLock()
		h, err := s.holder(kind, *name)
		var list []xmlAttachedPolicy
		if err == nil {
			for _, arn := range h.attached {
				p := s.m.policies[arn]
				if p == nil || (in.PathPrefix != nil && !strings.HasPrefix(p.Path, *in.PathPrefix)) {
					continue
				}
				list = append(list, xmlAttachedPolicy{PolicyName: p.Name, PolicyArn: p.ARN})
			}
		}
		s.mu.RUnlock()
		if err != nil {
			return nil, err
		}
		sort.Slice(list, func(i, j int) bool { return list[i].PolicyArn < list[j].PolicyArn })
		got, truncated, marker, err := page(list, func(a xmlAttachedPolicy) string { return a.PolicyArn }, in.Marker, in.MaxItems)
		if err != nil {
			return nil, err
		}
		return &listAttachedResult{AttachedPolicies: awsquery.ListOf(got), IsTruncated: truncated, Marker: marker}, nil
	}
}
