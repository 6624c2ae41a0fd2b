package iam

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/api/awsquery"
	"github.com/holdfast/holdfast/internal/iam/policy"
	"github.com/holdfast/holdfast/internal/state"
)

// holder is a user or a role: what inline and managed policies attach to.
type holder struct {
	kind     string // "user" or "role"
	name     string
	inline   map[string]string
	attached []string
	// put writes the holder with new policies; del deletes it.
	put func(tx *state.Tx, inline map[string]string, attached []string)
	del func(tx *state.Tx)
}

// holder finds a user or role in r.
func (s *Service) holder(r state.Reader, kind, name string) (*holder, error) {
	switch kind {
	case "user":
		u := Users.Get(r, lowerName(name))
		if u == nil {
			return nil, noSuchEntity("The user with name %s cannot be found.", name)
		}
		return &holder{kind: kind, name: u.Name, inline: u.Inline, attached: u.Attached,
			put: func(tx *state.Tx, inline map[string]string, attached []string) {
				updated := *u
				updated.Inline, updated.Attached = inline, attached
				Users.Put(tx, &updated)
			},
			del: func(tx *state.Tx) { Users.Delete(tx, lowerName(u.Name)) }}, nil
	default:
		ro := Roles.Get(r, lowerName(name))
		if ro == nil {
			return nil, noSuchEntity("The role with name %s cannot be found.", name)
		}
		return &holder{kind: kind, name: ro.Name, inline: ro.Inline, attached: ro.Attached,
			put: func(tx *state.Tx, inline map[string]string, attached []string) {
				updated := *ro
				updated.Inline, updated.Attached = inline, attached
				Roles.Put(tx, &updated)
			},
			del: func(tx *state.Tx) { Roles.Delete(tx, lowerName(ro.Name)) }}, nil
	}
}

// delete deletes a user or role that has no policies left (else
// DeleteConflict); the caller has checked the rest.
func (h *holder) delete(tx *state.Tx) error {
	if len(h.inline) > 0 {
		return deleteConflict(msgDeletePoliciesFirst)
	}
	if len(h.attached) > 0 {
		return deleteConflict(msgDetachPoliciesFirst)
	}
	h.del(tx)
	return nil
}

// updateHolder runs change on the named user or role inside one update:
// change returns the holder's new policies (or an error, which writes
// nothing).
func (s *Service) updateHolder(ctx context.Context, kind, name string,
	change func(tx *state.Tx, h *holder) (inline map[string]string, attached []string, err error)) error {
	return s.update(ctx, func(tx *state.Tx) error {
		h, err := s.holder(tx, kind, name)
		if err != nil {
			return err
		}
		inline, attached, err := change(tx, h)
		if err != nil {
			return err
		}
		h.put(tx, inline, attached)
		return nil
	})
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
		if _, err := s.parse(*in.PolicyDocument, policy.Identity); err != nil {
			return nil, err
		}
		return nil, s.updateHolder(ctx, kind, *name, func(_ *state.Tx, h *holder) (map[string]string, []string, error) {
			return putInline(kind, h, *in.PolicyName, *in.PolicyDocument)
		})
	}
}

// putInline is h's inline policies with the named one put.
func putInline(kind string, h *holder, policyName, doc string) (map[string]string, []string, error) {
	inline := maps.Clone(h.inline)
	if inline == nil {
		inline = map[string]string{}
	}
	// Policy names are unique without regard to case: the new one
	// replaces any of the same name.
	for n := range inline {
		if strings.EqualFold(n, policyName) {
			delete(inline, n)
		}
	}
	inline[policyName] = doc
	total := 0
	for _, d := range inline {
		total += policySize(d)
	}
	if kind == "user" && total > maxUserInlineSize {
		return nil, nil, limitExceeded("Maximum policy size of %d bytes exceeded for user %s", maxUserInlineSize, h.name)
	}
	if kind == "role" && total > maxRoleInlineSize {
		return nil, nil, limitExceeded("Maximum policy size of %d bytes exceeded for role %s", maxRoleInlineSize, h.name)
	}
	return inline, h.attached, nil
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

// validateInline validates a Get/Delete*Policy request and returns the
// user's or role's name.
func validateInline(kind string, in inlinePolicyInput) (string, error) {
	var v validator
	name := holderName(&v, kind, in.UserName, in.RoleName)
	v.name("PolicyName", in.PolicyName, 128)
	if err := v.err(); err != nil {
		return "", err
	}
	return *name, nil
}

// inlinePolicy finds the policy of a validated Get/Delete*Policy request
// in r: its holder and its name as stored.
func (s *Service) inlinePolicy(r state.Reader, kind, name string, in inlinePolicyInput) (*holder, string, error) {
	h, err := s.holder(r, kind, name)
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
		name, err := validateInline(kind, in)
		if err != nil {
			return nil, err
		}
		var h *holder
		var pn string
		s.view(func(r state.Reader) { h, pn, err = s.inlinePolicy(r, kind, name, in) })
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
		name, err := validateInline(kind, in)
		if err != nil {
			return nil, err
		}
		return nil, s.update(ctx, func(tx *state.Tx) error {
			h, pn, err := s.inlinePolicy(tx, kind, name, in)
			if err != nil {
				return err
			}
			inline := maps.Clone(h.inline)
			delete(inline, pn)
			if len(inline) == 0 {
				inline = nil
			}
			h.put(tx, inline, h.attached)
			return nil
		})
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
		var names []string
		var err error
		s.view(func(r state.Reader) {
			var h *holder
			if h, err = s.holder(r, kind, *name); err == nil {
				names = slices.Sorted(maps.Keys(h.inline))
			}
		})
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

func (s *Service) xmlPolicy(p *ManagedPolicy, attachmentCount int) xmlPolicy {
	x := xmlPolicy{PolicyName: p.Name, PolicyID: p.ID, Arn: p.ARN, Path: p.Path, DefaultVersionID: "v1",
		AttachmentCount: attachmentCount, IsAttachable: true, Description: p.Description,
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
	if policySize(*in.PolicyDocument) > maxManagedPolicySize {
		return nil, limitExceeded("Cannot exceed quota for PolicySize: %d", maxManagedPolicySize)
	}
	if _, err := s.parse(*in.PolicyDocument, policy.Identity); err != nil {
		return nil, err
	}
	now := s.now()
	p := &ManagedPolicy{ARN: s.policyARN(path, *in.PolicyName), Name: *in.PolicyName, Path: path, ID: genID("ANPA", 17),
		Document: *in.PolicyDocument, CreateDate: now, UpdateDate: now, Tags: in.Tags}
	if in.Description != nil {
		p.Description = *in.Description
	}
	err := s.update(ctx, func(tx *state.Tx) error {
		if Policies.Get(tx, lowerName(p.Name)) != nil {
			return entityExists("A policy called %s already exists. Duplicate names are not allowed.", *in.PolicyName)
		}
		Policies.Put(tx, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &policyResult{Policy: s.xmlPolicy(p, 0)}, nil
}

func (s *Service) getPolicy(ctx context.Context, in policyArnInput) (*policyResult, error) {
	var v validator
	v.policyArn(in.PolicyArn)
	if err := v.err(); err != nil {
		return nil, err
	}
	var p *ManagedPolicy
	n := 0
	s.view(func(r state.Reader) {
		if p = policyByARN(r, *in.PolicyArn); p != nil {
			n = attachments(r, p.ARN)
		}
	})
	if p == nil {
		return nil, noSuchPolicy(*in.PolicyArn)
	}
	return &policyResult{Policy: s.xmlPolicy(p, n)}, nil
}

func (s *Service) deletePolicy(ctx context.Context, in policyArnInput) (any, error) {
	var v validator
	v.policyArn(in.PolicyArn)
	if err := v.err(); err != nil {
		return nil, err
	}
	return nil, s.update(ctx, func(tx *state.Tx) error {
		p := policyByARN(tx, *in.PolicyArn)
		if p == nil {
			return noSuchPolicy(*in.PolicyArn)
		}
		if attachments(tx, p.ARN) > 0 {
			return deleteConflict(msgPolicyAttached)
		}
		Policies.Delete(tx, lowerName(p.Name))
		return nil
	})
}

// attachTarget validates an Attach/Detach*Policy request and returns its
// user's or role's name.
func attachTarget(kind string, in attachInput) (string, error) {
	var v validator
	name := holderName(&v, kind, in.UserName, in.RoleName)
	v.policyArn(in.PolicyArn)
	if err := v.err(); err != nil {
		return "", err
	}
	return *name, nil
}

// errUnchanged ends an update that has nothing to write.
var errUnchanged = errors.New("iam: unchanged")

func (s *Service) attachPolicy(kind string) func(context.Context, attachInput) (any, error) {
	return func(ctx context.Context, in attachInput) (any, error) {
		name, err := attachTarget(kind, in)
		if err != nil {
			return nil, err
		}
		err = s.updateHolder(ctx, kind, name, func(tx *state.Tx, h *holder) (map[string]string, []string, error) {
			if policyByARN(tx, *in.PolicyArn) == nil {
				return nil, nil, noSuchPolicy(*in.PolicyArn)
			}
			if slices.Contains(h.attached, *in.PolicyArn) {
				return nil, nil, errUnchanged // attaching twice is not an error
			}
			if len(h.attached) >= maxAttachedPolicies {
				quota := "PoliciesPerUser"
				if kind == "role" {
					quota = "PoliciesPerRole"
				}
				return nil, nil, limitExceeded("Cannot exceed quota for %s: %d", quota, maxAttachedPolicies)
			}
			return h.inline, append(slices.Clone(h.attached), *in.PolicyArn), nil
		})
		if errors.Is(err, errUnchanged) {
			err = nil
		}
		return nil, err
	}
}

func (s *Service) detachPolicy(kind string) func(context.Context, attachInput) (any, error) {
	return func(ctx context.Context, in attachInput) (any, error) {
		name, err := attachTarget(kind, in)
		if err != nil {
			return nil, err
		}
		return nil, s.updateHolder(ctx, kind, name, func(_ *state.Tx, h *holder) (map[string]string, []string, error) {
			i := slices.Index(h.attached, *in.PolicyArn)
			if i < 0 {
				return nil, nil, noSuchEntity("Policy %s was not found.", *in.PolicyArn)
			}
			attached := slices.Delete(slices.Clone(h.attached), i, i+1)
			if len(attached) == 0 {
				attached = nil
			}
			return h.inline, attached, nil
		})
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
		var list []xmlAttachedPolicy
		var err error
		s.view(func(r state.Reader) {
			var h *holder
			if h, err = s.holder(r, kind, *name); err != nil {
				return
			}
			for _, arn := range h.attached {
				p := policyByARN(r, arn)
				if p == nil || (in.PathPrefix != nil && !strings.HasPrefix(p.Path, *in.PathPrefix)) {
					continue
				}
				list = append(list, xmlAttachedPolicy{PolicyName: p.Name, PolicyArn: p.ARN})
			}
		})
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
