package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The vocabulary of the random policies and requests: small enough that
// statements often apply, varied enough to cover every element.
var (
	genServices = []string{"ecs", "iam", "sts"}
	genOps      = []string{"ListClusters", "UpdateService", "UpdateTaskProtection", "GetTaskProtection", "CreateUser", "GetUser", "AssumeRole"}
	genARNs     = []string{
		"*",
		"arn:aws:ecs:us-east-1:123456789012:task/queue/t1",
		"arn:aws:ecs:us-east-1:123456789012:task/web/t2",
		"arn:aws:ecs:us-east-1:123456789012:service/queue/worker",
		"arn:aws:iam::123456789012:user/alice",
		"arn:aws:iam::123456789012:user/bob",
		"arn:aws:iam::123456789012:role/ops",
	}
	genUsers    = []string{"alice", "bob"}
	genClusters = []string{"arn:aws:ecs:us-east-1:123456789012:cluster/queue", "arn:aws:ecs:us-east-1:123456789012:cluster/web"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func genAction(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return "*"
	case 1:
		return pick(r, genServices) + ":*"
	case 2:
		op := pick(r, genOps)
		return pick(r, genServices) + ":" + op[:1+r.IntN(len(op))] + "*"
	case 3:
		op := pick(r, genOps)
		i := r.IntN(len(op))
		return pick(r, genServices) + ":" + op[:i] + "?" + op[i+1:]
	}
	return pick(r, genServices) + ":" + pick(r, genOps)
}

func genResourcePattern(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0:
		return "*"
	case 1:
		a := pick(r, genARNs)
		if a == "*" {
			return a
		}
		return a[:strings.LastIndexByte(a, '/')+1] + "*"
	case 2:
		return "arn:aws:iam::*:user/${aws:username}"
	}
	return pick(r, genARNs)
}

func genCondition(r *rand.Rand) map[string]map[string]any {
	switch r.IntN(7) {
	case 0:
		return map[string]map[string]any{"StringEquals": {"aws:username": pick(r, genUsers)}}
	case 1:
		return map[string]map[string]any{"StringNotEquals": {"aws:username": pick(r, genUsers)}}
	case 2:
		return map[string]map[string]any{"ArnLike": {"ecs:cluster": pick(r, genClusters)}}
	case 3:
		return map[string]map[string]any{"ArnEqualsIfExists": {"ecs:cluster": pick(r, genClusters)}}
	case 4:
		return map[string]map[string]any{"ForAllValues:StringEquals": {"aws:TagKeys": []string{"team", "env"}}}
	case 5:
		return map[string]map[string]any{"Null": {"ecs:cluster": r.IntN(2) == 0}}
	}
	return nil
}

func genStatement(r *rand.Rand, effect string) map[string]any {
	st := map[string]any{"Effect": effect}
	actions := []string{genAction(r)}
	if r.IntN(3) == 0 {
		actions = append(actions, genAction(r))
	}
	if r.IntN(6) == 0 {
		st["NotAction"] = actions
	} else {
		st["Action"] = actions
	}
	res := []string{genResourcePattern(r)}
	if r.IntN(6) == 0 {
		st["NotResource"] = res
	} else {
		st["Resource"] = res
	}
	if c := genCondition(r); c != nil {
		st["Condition"] = c
	}
	return st
}

func genPolicy(r *rand.Rand, effect string) string {
	var stmts []map[string]any
	for range 1 + r.IntN(4) {
		e := effect
		if e == "" {
			e = pick(r, []string{"Allow", "Allow", "Deny"})
		}
		stmts = append(stmts, genStatement(r, e))
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	return string(b)
}

func genRequest(r *rand.Rand) *Request {
	c := Context{}
	if r.IntN(4) != 0 {
		c.Set("aws:username", pick(r, genUsers))
	}
	if r.IntN(2) == 0 {
		c.Set("ecs:cluster", pick(r, genClusters))
	}
	if r.IntN(3) == 0 {
		c.Set("aws:TagKeys", pick(r, [][]string{{"team"}, {"team", "owner"}, {}})...)
	}
	return &Request{Action: pick(r, genServices) + ":" + pick(r, genOps), Resource: pick(r, genARNs), Context: c}
}

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse(doc)
	if err != nil {
		t.Fatalf("generated policy does not parse (%v): %s", err, doc)
	}
	return p
}

// denyFor is a statement that applies to exactly r: its action, its
// resource, no condition.
func denyFor(r *Request) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": map[string]any{
		"Effect": "Deny", "Action": r.Action, "Resource": r.Resource}})
	return string(b)
}

// TestPropertyDenyAlwaysWins: whatever else applies, a Deny that applies
// to the request makes it an ExplicitDeny, and it does not matter which
// policy (or in which order) it comes in.
func TestPropertyDenyAlwaysWins(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var ps []*Policy
		for range r.IntN(6) {
			ps = append(ps, mustParse(t, genPolicy(r, "")))
		}
		req := genRequest(r)
		deny := mustParse(t, denyFor(req))
		at := r.IntN(len(ps) + 1)
		withDeny := append(append(append([]*Policy{}, ps[:at]...), deny), ps[at:]...)
		if got := NewSet(withDeny...).Evaluate(req); got != ExplicitDeny {
			t.Fatalf("case %d: %s with an applicable Deny: %s", i, req.Action, got)
		}
	}
}

// TestPropertyAllowNeverRemovesAccess: adding an Allow policy never turns
// an Allow into anything else, nor an ExplicitDeny into anything else, and
// the indexed Set always agrees with the plain reference evaluation and
// with itself in any policy order.
func TestPropertyAllowNeverRemovesAccess(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	allows := 0
	for i := range 3000 {
		var ps []*Policy
		for range r.IntN(6) {
			ps = append(ps, mustParse(t, genPolicy(r, "")))
		}
		req := genRequest(r)
		before := NewSet(ps...).Evaluate(req)
		if ref := referenceEvaluate(ps, req); ref != before {
			t.Fatalf("case %d: Set %s, reference %s", i, before, ref)
		}
		shuffled := append([]*Policy{}, ps...)
		r.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := NewSet(shuffled...).Evaluate(req); got != before {
			t.Fatalf("case %d: order changed %s to %s", i, before, got)
		}
		extra := mustParse(t, genPolicy(r, "Allow"))
		after := NewSet(append(ps, extra)...).Evaluate(req)
		switch {
		case before == Allow && after != Allow,
			before == ExplicitDeny && after != ExplicitDeny,
			before == Deny && after == ExplicitDeny:
			t.Fatalf("case %d: adding an Allow changed %s to %s for %+v", i, before, after, req)
		}
		if before == Allow {
			allows++
		}
	}
	if allows < 100 {
		t.Fatalf("only %d of 3000 random cases were allowed: the generator does not exercise Allow", allows)
	}
}

// FuzzParse: no document makes Parse or ParseTrust panic; every refusal
// is a MalformedError with a message; a parsed policy evaluates.
func FuzzParse(f *testing.F) {
	for _, tc := range evalCases {
		for _, d := range tc.policies {
			f.Add(d)
		}
	}
	for _, d := range []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}}`,
		`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["123456789012"]},"NotAction":"sts:*","Condition":{"Null":{"a:b":"true"}}}}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"arn:a:b:c:d:${aws:username,'x'}${$}${?}"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"ForAnyValue:NumericLessThanIfExists":{"a:b":[1,"2",true]}}}]}`,
		`{}`, `null`, `{"Statement":null}`, `{"Statement":[null]}`, "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"a:\\u0000\",\"Resource\":\"*\"}}",
	} {
		f.Add(d)
	}
	reqs := []*Request{
		{Action: "ecs:ListClusters", Resource: "*"},
		{Action: "iam:GetUser", Resource: "arn:aws:iam::123456789012:user/alice", Context: ctx("aws:username", "alice", "a:b", "1")},
		{Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/r", Context: ctx("aws:SourceIp", "10.0.0.1", "aws:CurrentTime", "2026-01-01T00:00:00Z")},
	}
	f.Fuzz(func(t *testing.T, doc string) {
		for _, kind := range []Kind{Identity, Trust} {
			p, err := parse(doc, kind)
			if err != nil {
				var me *MalformedError
				if !errors.As(err, &me) || me.Msg == "" {
					t.Fatalf("non-Malformed error %T %v", err, err)
				}
				continue
			}
			for _, r := range reqs {
				_ = NewSet(p).Evaluate(r)
				_ = p.EvaluateTrust(r, Caller{Account: acct, ARNs: []string{"arn:aws:iam::123456789012:user/alice"}})
			}
		}
	})
}

// benchPolicies builds a principal at IAM's limits: 20 attached managed
// policies plus inline policies, 20 statements each, across services, with
// wildcards and conditions, as real policies are written.
func benchPolicies(n, statements int) []*Policy {
	services := []string{"ecs", "iam", "s3", "logs", "cloudwatch", "sqs", "dynamodb", "kms", "ec2", "sts"}
	verbs := []string{"Describe", "List", "Get", "Put", "Create", "Delete", "Update", "Tag"}
	var out []*Policy
	for p := range n {
		var stmts []map[string]any
		for s := range statements {
			svc := services[(p+s)%len(services)]
			st := map[string]any{"Sid": fmt.Sprintf("S%d", s), "Effect": "Allow"}
			switch s % 5 {
			case 0:
				st["Action"] = []string{svc + ":" + verbs[s%len(verbs)] + "*", svc + ":" + verbs[(s+1)%len(verbs)] + "Thing"}
			case 1:
				st["Action"] = []string{fmt.Sprintf("%s:%sResource%d", svc, verbs[s%len(verbs)], p), fmt.Sprintf("%s:Other%d", svc, s)}
			case 2:
				st["Action"] = svc + ":*"
				st["Effect"] = "Deny"
			case 3:
				st["Action"] = []string{svc + ":Describe*", svc + ":List*", svc + ":Get*"}
			default:
				st["Action"] = fmt.Sprintf("%s:Action%d", svc, s)
			}
			st["Resource"] = []string{
				fmt.Sprintf("arn:aws:%s:us-east-1:123456789012:thing/team-%d/*", svc, p),
				fmt.Sprintf("arn:aws:%s:*:123456789012:other/%d-*", svc, s),
			}
			if s%3 == 0 {
				st["Condition"] = map[string]any{
					"StringEquals": map[string]any{"aws:RequestTag/team": []string{"blue", "green"}},
					"ArnLike":      map[string]any{"ecs:cluster": fmt.Sprintf("arn:aws:ecs:*:*:cluster/team-%d-*", p)},
				}
			}
			stmts = append(stmts, st)
		}
		doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
		pol, err := Parse(string(doc))
		if err != nil {
			panic(err)
		}
		out = append(out, pol)
	}
	return out
}

// The request the benchmark authorizes: a task protecting itself, allowed
// by the last inline policy (so every candidate statement is looked at).
func benchRequest() *Request {
	c := Context{}
	c.Set("aws:username", "worker")
	c.Set("aws:PrincipalArn", "arn:aws:sts::123456789012:assumed-role/worker/task-1")
	c.Set("aws:SourceIp", "10.0.0.7")
	c.Set("aws:CurrentTime", "2026-11-25T12:00:00Z")
	c.Set("ecs:cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/queue")
	return &Request{Action: "ecs:UpdateTaskProtection", Resource: "arn:aws:ecs:us-east-1:123456789012:task/queue/0123456789abcdef0123456789abcdef", Context: c}
}

func benchSet() *Set {
	ps := benchPolicies(25, 20) // 20 managed + 5 inline
	allow, _ := Parse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],
		"Resource":"arn:aws:ecs:us-east-1:123456789012:task/queue/*","Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:123456789012:cluster/queue"}}}]}`)
	return NewSet(append(ps, allow)...)
}

func TestBenchSetIsAtTheLimits(t *testing.T) {
	s := benchSet()
	if s.Statements() != 25*20+1 {
		t.Fatalf("%d statements", s.Statements())
	}
	if got := s.Evaluate(benchRequest()); got != Allow {
		t.Fatalf("benchmark request: %s", got)
	}
	deny := benchRequest()
	deny.Resource = "arn:aws:ecs:us-east-1:123456789012:task/web/x"
	if got := s.Evaluate(deny); got != Deny {
		t.Fatalf("benchmark deny request: %s", got)
	}
}

// BenchmarkEvaluate is the policy engine's share of authorizing one call
// for a principal at IAM's limits (the full authorizer is measured in
// internal/iam).
func BenchmarkEvaluate(b *testing.B) {
	s := benchSet()
	for _, tc := range []struct {
		name string
		req  *Request
	}{
		{"allow", benchRequest()},
		{"implicit-deny", func() *Request {
			r := benchRequest()
			r.Resource = "arn:aws:ecs:us-east-1:123456789012:task/web/x"
			return r
		}()},
		{"wildcard-service", func() *Request { r := benchRequest(); r.Action = "s3:GetThing"; return r }()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Evaluate(tc.req)
			}
		})
	}
}
