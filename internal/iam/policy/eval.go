package policy

import "strings"

// Decision is the outcome of an evaluation.
type Decision int

const (
	// Deny is the default: no statement allows the request.
	Deny Decision = iota
	// Allow: a statement allows it and none denies it.
	Allow
	// ExplicitDeny: a statement denies it (whatever else allows it).
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "Deny"
}

// Request is one authorization question: may the principal perform Action
// on Resource, given the condition keys in Context?
type Request struct {
	// Action is "service:Operation" in any case.
	Action string
	// Resource is an ARN, or "*" for actions without a resource type.
	Resource string
	// Context holds the condition keys (aws:username, aws:PrincipalArn,
	// aws:SourceIp, aws:CurrentTime, aws:RequestTag/..., ecs:cluster...).
	Context Context
}

// entry is a statement in a Set index; actionKnown says the index already
// proved that one of its Action patterns matches.
type entry struct {
	st          *statement
	actionKnown bool
}

// Set is the compiled identity-based policies of one principal, indexed by
// action so that evaluating a request looks only at the statements that
// can apply to it. A Set is immutable and safe for concurrent use.
type Set struct {
	exact     map[string][]entry // action without wildcards -> statements naming it
	byService map[string][]entry // service -> statements with a wildcard action in it
	global    []entry            // "*", "*:x" wildcards and NotAction
	n         int
}

// NewSet compiles the policies (in any order) into a Set. A nil Set (or
// one of no policies) denies everything.
func NewSet(policies ...*Policy) *Set {
	s := &Set{exact: map[string][]entry{}, byService: map[string][]entry{}}
	for _, p := range policies {
		if p == nil {
			continue
		}
		for _, st := range p.statements {
			s.n++
			if st.notAction {
				s.global = append(s.global, entry{st: st})
				continue
			}
			seenExact := map[string]bool{}
			seenSvc := map[string]bool{}
			global := false
			for _, a := range st.actions {
				switch {
				case !a.wild:
					if !seenExact[a.full] {
						seenExact[a.full] = true
						s.exact[a.full] = append(s.exact[a.full], entry{st: st, actionKnown: true})
					}
				case a.service != "":
					if !seenSvc[a.service] {
						seenSvc[a.service] = true
						s.byService[a.service] = append(s.byService[a.service], entry{st: st})
					}
				default:
					global = true
				}
			}
			if global {
				s.global = append(s.global, entry{st: st})
			}
		}
	}
	return s
}

// Statements is the number of statements compiled into the set.
func (s *Set) Statements() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Evaluate decides r: ExplicitDeny if any applicable statement denies it,
// else Allow if one allows it, else Deny.
func (s *Set) Evaluate(r *Request) Decision {
	if s == nil {
		return Deny
	}
	action := lower(r.Action)
	service, _, _ := strings.Cut(action, ":")
	allowed := false
	for _, list := range [...][]entry{s.exact[action], s.byService[service], s.global} {
		for _, e := range list {
			if !e.st.deny && allowed {
				continue // only a Deny can change the answer now
			}
			if !e.actionKnown && !e.st.matchesAction(action) {
				continue
			}
			if !e.st.matchesResource(r) || !e.st.conditionsHold(r.Context) {
				continue
			}
			if e.st.deny {
				return ExplicitDeny
			}
			allowed = true
		}
	}
	if allowed {
		return Allow
	}
	return Deny
}

// Evaluate decides r against this one policy.
func (p *Policy) Evaluate(r *Request) Decision { return NewSet(p).Evaluate(r) }

func (st *statement) matchesAction(action string) bool {
	matched := false
	for _, a := range st.actions {
		if a.full == "*" || a.glob.match(action) {
			matched = true
			break
		}
	}
	return matched != st.notAction
}

func (st *statement) matchesResource(r *Request) bool {
	if st.resources == nil { // trust policies have no Resource
		return true
	}
	matched := false
	for _, rp := range st.resources {
		if rp.any {
			matched = true
			break
		}
		if rp.vars {
			pattern, ok := substitute(rp.pattern, r.Context, true)
			if ok && globMatch(pattern, r.Resource) {
				matched = true
				break
			}
			continue
		}
		if rp.glob.match(r.Resource) {
			matched = true
			break
		}
	}
	return matched != st.notResource
}

func (st *statement) conditionsHold(ctx Context) bool {
	for _, c := range st.conditions {
		if !c.holds(ctx) {
			return false
		}
	}
	return true
}
