package policy

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The policy language versions.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// MalformedError is a policy document that is not valid; Error() is the
// MalformedPolicyDocument message.
type MalformedError struct{ Msg string }

func (e *MalformedError) Error() string { return e.Msg }

func malformed(msg string) error { return &MalformedError{Msg: msg} }

// The MalformedPolicyDocument messages. The first group are AWS's texts
// for these mistakes; the rest are holdfast's, in the same style, where
// AWS's exact text is not documented.
const (
	MsgSyntax             = "Syntax errors in policy."
	MsgNoActions          = "Policy statement must contain actions."
	MsgNoResources        = "Policy statement must contain resources."
	MsgPrincipalForbidden = "Policy document should not specify a principal."
	MsgNoPrincipal        = "Missing required field Principal"
	MsgResourceForbidden  = "Has prohibited field Resource"
	MsgVendor             = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
	MsgDuplicateSid       = "Statement IDs (SID) in a single policy must be unique."

	MsgTrustActions = "AssumeRole policy may only specify STS AssumeRole actions."
	MsgNoEffect     = "Missing required field Effect"
	MsgNoStatement  = "Missing required field Statement"
)

// Kind is what a document is for.
type Kind int

const (
	// Identity policies are attached to users and roles: no Principal,
	// Resource required.
	Identity Kind = iota
	// Trust policies are roles' AssumeRolePolicyDocument: Principal
	// required, no Resource, only sts: actions.
	Trust
)

// Policy is a parsed, compiled policy document.
type Policy struct {
	Version    string
	statements []*statement
}

// Statements is the number of statements in the document.
func (p *Policy) Statements() int { return len(p.statements) }

type statement struct {
	sid       string
	deny      bool
	notAction bool
	actions   []actionPattern
	// resources; for NotResource, notResource is set.
	notResource bool
	resources   []resourcePattern
	// principals (trust policies).
	notPrincipal bool
	principals   *principalSet
	conditions   []*condition
}

type actionPattern struct {
	full    string // lower case, e.g. "ecs:get*"
	service string // lower case part before ':' ("" if it has wildcards)
	wild    bool
	glob    glob
}

type resourcePattern struct {
	pattern string
	any     bool // "*"
	vars    bool // has ${...} policy variables (Version 2012-10-17 only)
	glob    glob
}

// Parse parses an identity-based policy document.
func Parse(doc string) (*Policy, error) { return parse(doc, Identity) }

// ParseTrust parses a role's trust policy document.
func ParseTrust(doc string) (*Policy, error) { return parse(doc, Trust) }

// stringOrList decodes a JSON string or a non-empty list of strings.
func stringOrList(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return []string{s}, true
	}
	var l []string
	if raw[0] != '[' || json.Unmarshal(raw, &l) != nil {
		return nil, false
	}
	return l, true
}

// objectKeys decodes a JSON object into its raw members, keeping the
// order of the keys (for error messages) and refusing anything else.
func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

func parse(doc string, kind Kind) (*Policy, error) {
	top, ok := object(json.RawMessage(doc))
	if !ok || !json.Valid([]byte(doc)) {
		return nil, malformed(MsgSyntax)
	}
	p := &Policy{Version: Version2008}
	for k, v := range top {
		switch k {
		case "Version":
			var ver string
			if json.Unmarshal(v, &ver) != nil || (ver != Version2012 && ver != Version2008) {
				return nil, malformed(MsgSyntax)
			}
			p.Version = ver
		case "Id":
			var id string
			if json.Unmarshal(v, &id) != nil {
				return nil, malformed(MsgSyntax)
			}
		case "Statement":
		default:
			return nil, malformed(MsgSyntax)
		}
	}
	rawStmts, ok := top["Statement"]
	if !ok {
		return nil, malformed(MsgNoStatement)
	}
	var list []json.RawMessage
	switch t := bytes.TrimSpace(rawStmts); {
	case len(t) > 0 && t[0] == '{':
		list = []json.RawMessage{t}
	case len(t) > 0 && t[0] == '[':
		if json.Unmarshal(t, &list) != nil || len(list) == 0 {
			return nil, malformed(MsgSyntax)
		}
	default:
		return nil, malformed(MsgSyntax)
	}
	sids := map[string]bool{}
	for _, raw := range list {
		st, err := parseStatement(raw, kind, p.Version == Version2012)
		if err != nil {
			return nil, err
		}
		if st.sid != "" {
			if sids[st.sid] {
				return nil, malformed(MsgDuplicateSid)
			}
			sids[st.sid] = true
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

func parseStatement(raw json.RawMessage, kind Kind, vars bool) (*statement, error) {
	m, ok := object(raw)
	if !ok {
		return nil, malformed(MsgSyntax)
	}
	st := &statement{}
	for k := range m {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition":
		default:
			return nil, malformed(MsgSyntax)
		}
	}
	if v, ok := m["Sid"]; ok && json.Unmarshal(v, &st.sid) != nil {
		return nil, malformed(MsgSyntax)
	}
	v, ok := m["Effect"]
	if !ok {
		return nil, malformed(MsgNoEffect)
	}
	var effect string
	if json.Unmarshal(v, &effect) != nil || (effect != "Allow" && effect != "Deny") {
		return nil, malformed(MsgSyntax)
	}
	st.deny = effect == "Deny"

	// Action / NotAction.
	action, hasA := m["Action"]
	notAction, hasNA := m["NotAction"]
	switch {
	case hasA && hasNA:
		return nil, malformed(MsgSyntax)
	case !hasA && !hasNA:
		return nil, malformed(MsgNoActions)
	case hasNA:
		action, st.notAction = notAction, true
	}
	names, ok := stringOrList(action)
	if !ok {
		return nil, malformed(MsgSyntax)
	}
	if len(names) == 0 {
		return nil, malformed(MsgNoActions)
	}
	for _, a := range names {
		ap, err := parseAction(a)
		if err != nil {
			return nil, err
		}
		if kind == Trust && !st.notAction && !strings.HasPrefix(ap.full, "sts:") && ap.full != "*" {
			return nil, malformed(MsgTrustActions)
		}
		st.actions = append(st.actions, ap)
	}

	// Resource / NotResource.
	res, hasR := m["Resource"]
	notRes, hasNR := m["NotResource"]
	switch {
	case kind == Trust && (hasR || hasNR):
		return nil, malformed(MsgResourceForbidden)
	case kind == Identity && hasR && hasNR:
		return nil, malformed(MsgSyntax)
	case kind == Identity && !hasR && !hasNR:
		return nil, malformed(MsgNoResources)
	case hasNR:
		res, st.notResource = notRes, true
	}
	if kind == Identity {
		list, ok := stringOrList(res)
		if !ok {
			return nil, malformed(MsgSyntax)
		}
		if len(list) == 0 {
			return nil, malformed(MsgNoResources)
		}
		for _, r := range list {
			rp, err := parseResource(r, vars)
			if err != nil {
				return nil, err
			}
			st.resources = append(st.resources, rp)
		}
	}

	// Principal / NotPrincipal.
	pr, hasP := m["Principal"]
	notPr, hasNP := m["NotPrincipal"]
	switch {
	case kind == Identity && (hasP || hasNP):
		return nil, malformed(MsgPrincipalForbidden)
	case kind == Trust && hasP && hasNP:
		return nil, malformed(MsgSyntax)
	case kind == Trust && !hasP && !hasNP:
		return nil, malformed(MsgNoPrincipal)
	case hasNP:
		pr, st.notPrincipal = notPr, true
	}
	if kind == Trust {
		ps, err := parsePrincipals(pr)
		if err != nil {
			return nil, err
		}
		st.principals = ps
	}

	if c, ok := m["Condition"]; ok {
		conds, err := parseConditions(c, vars)
		if err != nil {
			return nil, err
		}
		st.conditions = conds
	}
	return st, nil
}

func parseAction(a string) (actionPattern, error) {
	if a == "*" {
		return actionPattern{full: "*", wild: true}, nil
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" {
		return actionPattern{}, malformed(MsgVendor)
	}
	full := lower(a)
	ap := actionPattern{full: full, wild: hasWildcard(full), glob: compileGlob(full)}
	if !hasWildcard(svc) {
		ap.service = lower(svc)
	}
	return ap, nil
}

func parseResource(r string, vars bool) (resourcePattern, error) {
	if r == "*" {
		return resourcePattern{pattern: r, any: true}, nil
	}
	if !strings.HasPrefix(r, "arn:") || strings.Count(r, ":") < 5 || strings.IndexByte(r, globEscape) >= 0 {
		return resourcePattern{}, malformed("Resource " + r + " must be in ARN format or \"*\".")
	}
	return resourcePattern{pattern: r, vars: vars && strings.Contains(r, "${"), glob: compileGlob(r)}, nil
}
