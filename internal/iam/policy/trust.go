package policy

import (
	"encoding/json"
	"sort"
	"strings"
)

// principalSet is the Principal (or NotPrincipal) element of a trust
// policy statement.
type principalSet struct {
	any      bool                // "*" or {"AWS": "*"}
	accounts map[string]bool     // account ids (from "123456789012" or the root ARN)
	arns     map[string]bool     // user, role and session ARNs
	services map[string]bool     // service principals (e.g. ecs-tasks.amazonaws.com)
	others   map[string][]string // Federated, CanonicalUser: kept, never match
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parsePrincipals(raw json.RawMessage) (*principalSet, error) {
	ps := &principalSet{accounts: map[string]bool{}, arns: map[string]bool{}, services: map[string]bool{}, others: map[string][]string{}}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, malformed("Invalid principal in policy: " + strings.TrimSpace(string(raw)))
		}
		ps.any = true
		return ps, nil
	}
	m, ok := object(raw)
	if !ok || len(m) == 0 {
		return nil, malformed(MsgSyntax)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, typ := range keys {
		vals, ok := stringOrList(m[typ])
		if !ok || len(vals) == 0 {
			return nil, malformed(MsgSyntax)
		}
		for _, v := range vals {
			bad := malformed("Invalid principal in policy: \"" + typ + "\":\"" + v + "\"")
			switch typ {
			case "AWS":
				switch {
				case v == "*":
					ps.any = true
				case isAccountID(v):
					ps.accounts[v] = true
				case strings.HasPrefix(v, "arn:aws:iam::") || strings.HasPrefix(v, "arn:aws:sts::"):
					parts := strings.SplitN(v, ":", 6)
					if len(parts) != 6 || !isAccountID(parts[4]) || parts[5] == "" {
						return nil, bad
					}
					if parts[2] == "iam" && parts[5] == "root" {
						ps.accounts[parts[4]] = true
					} else {
						ps.arns[v] = true
					}
				default:
					return nil, bad
				}
			case "Service":
				if v == "" || strings.ContainsAny(v, "*?") {
					return nil, bad
				}
				ps.services[v] = true
			case "Federated", "CanonicalUser":
				ps.others[typ] = append(ps.others[typ], v)
			default:
				return nil, bad
			}
		}
	}
	return ps, nil
}

// AWSPrincipalARNs lists the user, role and session ARNs a trust policy
// names (IAM checks that they exist when the policy is set).
func (p *Policy) AWSPrincipalARNs() []string {
	var out []string
	for _, st := range p.statements {
		if st.principals == nil {
			continue
		}
		for a := range st.principals.arns {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Caller is who asks to assume a role.
type Caller struct {
	// Account of the caller ("" for a service).
	Account string
	// ARNs that name the caller specifically: an IAM user's ARN; for an
	// assumed-role session, the session ARN and the role's ARN.
	ARNs []string
	// Service is set when an AWS service assumes the role (e.g.
	// "ecs-tasks.amazonaws.com").
	Service string
}

// match tells whether the principal set names the caller, and whether
// specifically (not only through its account or a wildcard).
func (ps *principalSet) match(c Caller) (matched, specific bool) {
	if c.Service != "" {
		return ps.services[c.Service], ps.services[c.Service]
	}
	for _, a := range c.ARNs {
		if ps.arns[a] {
			return true, true
		}
	}
	if ps.any || (c.Account != "" && ps.accounts[c.Account]) {
		return true, false
	}
	return false, false
}

// TrustDecision is a trust policy's answer.
type TrustDecision struct {
	// Decision is Allow, ExplicitDeny, or Deny when no statement applies.
	Decision Decision
	// Specific is set with Allow when a statement named the caller itself
	// (its ARN, its role, or its service). When only the caller's account
	// (or "*") is named, the caller's identity-based policies must also
	// allow the action, as IAM requires within an account.
	Specific bool
}

// EvaluateTrust decides whether caller may perform r.Action (e.g.
// "sts:AssumeRole") under this trust policy.
func (p *Policy) EvaluateTrust(r *Request, caller Caller) TrustDecision {
	action := lower(r.Action)
	var out TrustDecision
	for _, st := range p.statements {
		if st.principals == nil || !st.matchesAction(action) || !st.conditionsHold(r.Context) {
			continue
		}
		matched, specific := st.principals.match(caller)
		if st.notPrincipal {
			matched, specific = !matched, false
		}
		if !matched {
			continue
		}
		if st.deny {
			return TrustDecision{Decision: ExplicitDeny}
		}
		out.Decision = Allow
		out.Specific = out.Specific || specific
	}
	return out
}
