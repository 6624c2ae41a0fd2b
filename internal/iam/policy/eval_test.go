package policy

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

const acct = "123456789012"

// ctx builds a request context.
func ctx(kv ...string) Context {
	c := Context{}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], append(c[lower(kv[i])], kv[i+1])...)
	}
	return c
}

type evalCase struct {
	name     string
	policies []string // identity policies that apply to the principal
	action   string
	resource string
	context  Context
	want     Decision
}

// The cases follow the examples of the IAM User Guide ("Policy evaluation
// logic", "Example IAM identity-based policies", "IAM JSON policy
// elements", "Condition operators", "IAM policy elements: Variables and
// tags") and the ECS identity-based policy examples, each reduced to the
// request that tells the rule apart.
var evalCases = []evalCase{
	// Default deny, explicit allow, explicit deny wins.
	{"no policy: implicit deny", nil, "ecs:ListClusters", "*", nil, Deny},
	{"allow matching action and resource",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}}`},
		"ecs:ListClusters", "*", nil, Allow},
	{"action names are case-insensitive",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ECS:listclusters","Resource":"*"}}`},
		"ecs:ListClusters", "*", nil, Allow},
	{"other action: implicit deny",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}}`},
		"ecs:ListServices", "*", nil, Deny},
	{"explicit deny in another policy overrides an allow",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecs:DeleteCluster","Resource":"*"}}`},
		"ecs:DeleteCluster", "arn:aws:ecs:us-east-1:123456789012:cluster/prod", nil, ExplicitDeny},
	{"explicit deny in the same policy overrides an allow",
		[]string{`{"Version":"2012-10-17","Statement":[
			{"Effect":"Deny","Action":"ecs:UpdateService","Resource":"arn:aws:ecs:*:*:service/prod/*"},
			{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}`},
		"ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/prod/web", nil, ExplicitDeny},
	{"deny on another resource does not apply",
		[]string{`{"Version":"2012-10-17","Statement":[
			{"Effect":"Deny","Action":"ecs:UpdateService","Resource":"arn:aws:ecs:*:*:service/prod/*"},
			{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}`},
		"ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/dev/web", nil, Allow},

	// Wildcards in actions and resources.
	{"action wildcard prefix",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"}}`},
		"ecs:DescribeTasks", "arn:aws:ecs:us-east-1:123456789012:task/default/abc", nil, Allow},
	{"action ? wildcard",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:?etUser","Resource":"*"}}`},
		"iam:GetUser", "arn:aws:iam::123456789012:user/bob", nil, Allow},
	{"action * everything",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`},
		"sts:AssumeRole", "arn:aws:iam::123456789012:role/r", nil, Allow},
	{"resource ARN wildcard matches the task of the cluster",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"arn:aws:ecs:us-east-1:123456789012:task/queue/*"}}`},
		"ecs:UpdateTaskProtection", "arn:aws:ecs:us-east-1:123456789012:task/queue/0123456789abcdef", nil, Allow},
	{"resource ARN wildcard does not match another cluster",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:UpdateTaskProtection","Resource":"arn:aws:ecs:us-east-1:123456789012:task/queue/*"}}`},
		"ecs:UpdateTaskProtection", "arn:aws:ecs:us-east-1:123456789012:task/web/0123456789abcdef", nil, Deny},
	{"resource ARNs are case-sensitive",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:StopTask","Resource":"arn:aws:ecs:us-east-1:123456789012:task/Queue/*"}}`},
		"ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task/queue/x", nil, Deny},
	{"a specific resource does not grant an action checked on *",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"arn:aws:ecs:us-east-1:123456789012:cluster/x"}}`},
		"ecs:ListClusters", "*", nil, Deny},

	// NotAction and NotResource (IAM docs: "Allow everything except IAM",
	// "Deny access to everything but the payroll objects").
	{"Allow with NotAction: everything except IAM (ECS allowed)",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`},
		"ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", nil, Allow},
	{"Allow with NotAction: everything except IAM (IAM implicitly denied)",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`},
		"iam:CreateUser", "arn:aws:iam::123456789012:user/eve", nil, Deny},
	{"Deny with NotAction denies everything else",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":["iam:GetUser","iam:ListAccessKeys"],"Resource":"*"}}`},
		"ecs:ListClusters", "*", nil, ExplicitDeny},
	{"Deny with NotAction leaves the named actions",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":["iam:GetUser","iam:ListAccessKeys"],"Resource":"*"}}`},
		"iam:getuser", "arn:aws:iam::123456789012:user/bob", nil, Allow},
	{"Deny with NotResource denies other resources",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecs:*","NotResource":["arn:aws:ecs:*:*:cluster/dev","arn:aws:ecs:*:*:*/dev/*"]}}`},
		"ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task/prod/abc", nil, ExplicitDeny},
	{"Deny with NotResource leaves the named resources",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecs:*","NotResource":["arn:aws:ecs:*:*:cluster/dev","arn:aws:ecs:*:*:*/dev/*"]}}`},
		"ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task/dev/abc", nil, Allow},

	// Conditions.
	{"ecs:cluster condition allows in that cluster (ECS docs example)",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*",
			"Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:123456789012:cluster/default"}}}}`},
		"ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
		ctx("ecs:cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/default"), Allow},
	{"ecs:cluster condition refuses another cluster",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*",
			"Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:123456789012:cluster/default"}}}}`},
		"ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
		ctx("ecs:cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/prod"), Deny},
	{"condition key names are case-insensitive",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListServices","Resource":"*",
			"Condition":{"ArnLike":{"ECS:Cluster":"arn:aws:ecs:*:*:cluster/dev-*"}}}}`},
		"ecs:ListServices", "*", ctx("ecs:cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/dev-1"), Allow},
	{"a missing key fails a positive condition",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListServices","Resource":"*",
			"Condition":{"ArnLike":{"ecs:cluster":"*"}}}}`},
		"ecs:ListServices", "*", nil, Deny},
	{"IfExists passes when the key is missing",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListServices","Resource":"*",
			"Condition":{"ArnLikeIfExists":{"ecs:cluster":"arn:aws:ecs:*:*:cluster/dev-*"}}}}`},
		"ecs:ListServices", "*", nil, Allow},
	{"IfExists still checks a present key",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:ListServices","Resource":"*",
			"Condition":{"ArnLikeIfExists":{"ecs:cluster":"arn:aws:ecs:*:*:cluster/dev-*"}}}}`},
		"ecs:ListServices", "*", ctx("ecs:cluster", "arn:aws:ecs:us-east-1:1:cluster/prod"), Deny},
	{"a negated operator holds when the key is missing",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"StringNotEquals":{"aws:RequestTag/env":"prod"}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", nil, Allow},
	{"StringNotEquals with a matching value fails",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"StringNotEquals":{"aws:RequestTag/env":["prod","staging"]}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:RequestTag/env", "staging"), Deny},
	{"values of one key are ORed",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:CreateCluster","Resource":"*",
			"Condition":{"StringEquals":{"aws:RequestTag/team":["blue","green"]}}}}`},
		"ecs:CreateCluster", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:RequestTag/team", "green"), Allow},
	{"keys and operators are ANDed",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:CreateCluster","Resource":"*",
			"Condition":{"StringEquals":{"aws:RequestTag/team":"blue","aws:RequestTag/env":"dev"},"StringLike":{"aws:username":"dev-*"}}}}`},
		"ecs:CreateCluster", "arn:aws:ecs:us-east-1:123456789012:cluster/x",
		ctx("aws:RequestTag/team", "blue", "aws:RequestTag/env", "prod", "aws:username", "dev-ann"), Deny},
	{"StringEquals is case-sensitive, IgnoreCase is not",
		[]string{`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":"ecs:CreateCluster","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"Blue"}}},
			{"Effect":"Allow","Action":"ecs:DeleteCluster","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"aws:RequestTag/team":"Blue"}}}]}`},
		"ecs:DeleteCluster", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:RequestTag/team", "BLUE"), Allow},
	{"StringLike with wildcards on aws:PrincipalArn",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecs:DeleteService","Resource":"*",
			"Condition":{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/admin-*"}}}}`},
		"ecs:DeleteService", "arn:aws:ecs:us-east-1:123456789012:service/x/y",
		ctx("aws:PrincipalArn", "arn:aws:iam::123456789012:user/bob"), ExplicitDeny},
	{"aws:SourceIp deny outside the office range (IAM docs example)",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*",
				"Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}}}`},
		"ecs:ListClusters", "*", ctx("aws:SourceIp", "198.51.100.7"), ExplicitDeny},
	{"aws:SourceIp inside the office range",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*",
				"Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}}}`},
		"ecs:ListClusters", "*", ctx("aws:SourceIp", "203.0.113.9"), Allow},
	{"IpAddress with a single address and IPv6",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*",
			"Condition":{"IpAddress":{"aws:SourceIp":["127.0.0.1","2001:db8::/32"]}}}}`},
		"ecs:ListClusters", "*", ctx("aws:SourceIp", "2001:db8::1"), Allow},
	{"aws:CurrentTime inside a date window (IAM docs example)",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*",
			"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2026-12-31T23:59:59Z"}}}}`},
		"ecs:ListClusters", "*", ctx("aws:CurrentTime", "2026-11-25T12:00:00Z"), Allow},
	{"aws:CurrentTime after the window",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*",
			"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2026-06-30T23:59:59Z"}}}}`},
		"ecs:ListClusters", "*", ctx("aws:CurrentTime", "2026-11-25T12:00:00Z"), Deny},
	{"Date operators take epoch seconds",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*",
			"Condition":{"DateLessThanEquals":{"aws:CurrentTime":"1795608000"}}}}`},
		"ecs:ListClusters", "*", ctx("aws:CurrentTime", "2026-11-25T12:00:00Z"), Allow},
	{"Numeric operators",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:RegisterTaskDefinition","Resource":"*",
			"Condition":{"NumericLessThanEquals":{"ecs:task-cpu":1024},"NumericGreaterThan":{"ecs:task-memory":"255.5"}}}}`},
		"ecs:RegisterTaskDefinition", "arn:aws:ecs:us-east-1:123456789012:task-definition/a:1",
		ctx("ecs:task-cpu", "1024", "ecs:task-memory", "512"), Allow},
	{"Numeric operator with a non-number never matches",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:RegisterTaskDefinition","Resource":"*",
			"Condition":{"NumericLessThan":{"ecs:task-cpu":1024}}}}`},
		"ecs:RegisterTaskDefinition", "*", ctx("ecs:task-cpu", "lots"), Deny},
	{"Bool condition (aws:SecureTransport false denies)",
		[]string{
			`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}}`},
		"ecs:ListClusters", "*", ctx("aws:SecureTransport", "false"), ExplicitDeny},
	{"Null: true requires the key to be absent (temporary credentials only)",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*",
			"Condition":{"Null":{"aws:TokenIssueTime":"false"}}}}`},
		"ecs:ListClusters", "*", nil, Deny},
	{"Null: false with the key present",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*",
			"Condition":{"Null":{"aws:TokenIssueTime":"false"}}}}`},
		"ecs:ListClusters", "*", ctx("aws:TokenIssueTime", "2026-11-25T00:00:00Z"), Allow},
	{"ForAllValues: every request tag key is allowed",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:TagKeys", "team", "aws:TagKeys", "env"), Allow},
	{"ForAllValues: one key outside the list",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:TagKeys", "team", "aws:TagKeys", "owner"), Deny},
	{"ForAllValues with no values holds",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", nil, Allow},
	{"ForAnyValue: one matching value",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["cost-center"]}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:TagKeys", "a", "aws:TagKeys", "cost-center"), Allow},
	{"ForAnyValue with no values fails",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["cost-center"]}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", nil, Deny},

	// Policy variables ("Allows IAM users to manage their own access keys").
	{"${aws:username} in the resource: own user",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys"],
			"Resource":"arn:aws:iam::*:user/${aws:username}"}}`},
		"iam:CreateAccessKey", "arn:aws:iam::123456789012:user/alice", ctx("aws:username", "alice"), Allow},
	{"${aws:username} in the resource: another user",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys"],
			"Resource":"arn:aws:iam::*:user/${aws:username}"}}`},
		"iam:CreateAccessKey", "arn:aws:iam::123456789012:user/bob", ctx("aws:username", "alice"), Deny},
	{"a variable missing from the context matches nothing",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::*:user/${aws:username}"}}`},
		"iam:GetUser", "arn:aws:iam::123456789012:user/", nil, Deny},
	{"variables are literal text under Version 2008-10-17",
		[]string{`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::*:user/${aws:username}"}}`},
		"iam:GetUser", "arn:aws:iam::123456789012:user/${aws:username}", ctx("aws:username", "alice"), Allow},
	{"variables in condition values",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*",
			"Condition":{"StringEquals":{"aws:RequestTag/owner":"${aws:username}"}}}}`},
		"ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:cluster/x", ctx("aws:RequestTag/owner", "alice", "aws:username", "alice"), Allow},
	{"${*} is a literal star",
		[]string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"arn:aws:ecs:*:*:cluster/a${*}b"}}`},
		"ecs:DeleteCluster", "arn:aws:ecs:us-east-1:123456789012:cluster/axxb", nil, Deny},
	{"single statement instead of a list, no Version",
		[]string{`{"Statement":{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}}`},
		"ecs:ListClusters", "*", nil, Allow},
}

func parseAll(t testing.TB, docs []string) []*Policy {
	t.Helper()
	var out []*Policy
	for _, d := range docs {
		p, err := Parse(d)
		if err != nil {
			t.Fatalf("parse %s: %v", d, err)
		}
		out = append(out, p)
	}
	return out
}

func TestEvaluationExamples(t *testing.T) {
	for _, tc := range evalCases {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(parseAll(t, tc.policies)...)
			got := set.Evaluate(&Request{Action: tc.action, Resource: tc.resource, Context: tc.context})
			if got != tc.want {
				t.Fatalf("%s on %s: got %s, want %s", tc.action, tc.resource, got, tc.want)
			}
			// The indexed Set agrees with evaluating statement by statement.
			if ref := referenceEvaluate(parseAll(t, tc.policies), &Request{Action: tc.action, Resource: tc.resource, Context: tc.context}); ref != got {
				t.Fatalf("Set says %s, the statement-by-statement reference says %s", got, ref)
			}
		})
	}
}

// referenceEvaluate is the evaluation logic written as plainly as possible
// (no index): the yardstick for Set.Evaluate.
func referenceEvaluate(ps []*Policy, r *Request) Decision {
	allowed := false
	for _, p := range ps {
		for _, st := range p.statements {
			if !st.matchesAction(lower(r.Action)) || !st.matchesResource(r) || !st.conditionsHold(r.Context) {
				continue
			}
			if st.deny {
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

func TestMalformedDocuments(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		kind Kind
		msg  string
	}{
		{`not json`, Identity, MsgSyntax},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]`, Identity, MsgSyntax},
		{`[]`, Identity, MsgSyntax},
		{`{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`, Identity, MsgSyntax},
		{`{"Version":"2012-10-17T00:00:00Z","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`, Identity, MsgSyntax},
		{`{"Version":"2012-10-17"}`, Identity, MsgNoStatement},
		{`{"Version":"2012-10-17","Statement":[]}`, Identity, MsgSyntax},
		{`{"Version":"2012-10-17","Statement":{"Action":"s3:*","Resource":"*"}}`, Identity, MsgNoEffect},
		{`{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"s3:*","Resource":"*"}}`, Identity, MsgSyntax},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`, Identity, MsgNoActions},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`, Identity, MsgNoActions},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*"}}`, Identity, MsgNoResources},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}`, Identity, MsgVendor},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}}`, Identity,
			`Resource bucket must be in ARN format or "*".`},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}}`, Identity, MsgPrincipalForbidden},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}}`,
			Identity, "Invalid Condition type : StringEqualz"},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"username":"a"}}}}`,
			Identity, MsgVendor},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:username":{"a":1}}}}}`,
			Identity, MsgSyntax},
		{`{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"a","Effect":"Deny","Action":"s3:*","Resource":"*"}]}`,
			Identity, MsgDuplicateSid},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Bogus":1}}`, Identity, MsgSyntax},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}`, Trust, MsgNoPrincipal},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Resource":"*"}}`, Trust, MsgResourceForbidden},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecs:RunTask"}}`, Trust, MsgTrustActions},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"}}`, Trust,
			`Invalid principal in policy: "AWS":"bob"`},
		{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"sts:AssumeRole"}}`, Trust,
			`Invalid principal in policy: "Robot":"x"`},
	} {
		p, err := parse(tc.doc, tc.kind)
		var me *MalformedError
		if p != nil || !errors.As(err, &me) || me.Msg != tc.msg {
			t.Errorf("%s: got %v %v, want MalformedPolicyDocument %q", tc.doc, p, err, tc.msg)
		}
	}
}

func TestTrustPolicies(t *testing.T) {
	const userBob = "arn:aws:iam::123456789012:user/bob"
	bob := Caller{Account: acct, ARNs: []string{userBob}}
	session := Caller{Account: acct, ARNs: []string{"arn:aws:sts::123456789012:assumed-role/ops/s1", "arn:aws:iam::123456789012:role/ops"}}
	other := Caller{Account: "210987654321", ARNs: []string{"arn:aws:iam::210987654321:user/bob"}}
	tasks := Caller{Service: "ecs-tasks.amazonaws.com"}
	assume := &Request{Action: "sts:AssumeRole"}
	for _, tc := range []struct {
		name   string
		doc    string
		caller Caller
		want   TrustDecision
	}{
		{"ECS tasks trust policy admits the service", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`,
			tasks, TrustDecision{Allow, true}},
		{"ECS tasks trust policy refuses a user", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`,
			bob, TrustDecision{Deny, false}},
		{"the account root delegates to identity policies", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}}`,
			bob, TrustDecision{Allow, false}},
		{"an account id is the same as its root", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}}`,
			session, TrustDecision{Allow, false}},
		{"another account is not admitted", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}}`,
			other, TrustDecision{Deny, false}},
		{"naming the user admits it specifically", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/bob"]},"Action":"sts:AssumeRole"}}`,
			bob, TrustDecision{Allow, true}},
		{"naming a role admits its sessions (role chaining)", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/ops"},"Action":"sts:AssumeRole"}}`,
			session, TrustDecision{Allow, true}},
		{"a deny for the user wins", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"},
			{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:*"}]}`,
			bob, TrustDecision{ExplicitDeny, false}},
		{"a condition on the trust statement", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"abc"}}}}`,
			bob, TrustDecision{Deny, false}},
		{"another action is not admitted", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:TagSession"}}`,
			bob, TrustDecision{Deny, false}},
		{"NotPrincipal with Deny denies everyone else", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
			{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:AssumeRole"}]}`,
			session, TrustDecision{ExplicitDeny, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseTrust(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.EvaluateTrust(assume, tc.caller); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	p, _ := ParseTrust(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/b","123456789012","arn:aws:iam::123456789012:role/a"]},"Action":"sts:AssumeRole"}}`)
	if got := strings.Join(p.AWSPrincipalARNs(), ","); got != "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:user/b" {
		t.Errorf("AWSPrincipalARNs = %s", got)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"*", "", true}, {"a*", "a", true}, {"a*b", "axxb", true}, {"a*b", "axxbx", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*a*a*a*", "aaa", true}, {"*a*a*a*", "aa", false},
		{"arn:aws:ecs:*:*:task/q/*", "arn:aws:ecs:us-east-1:1:task/q/t", true}, {"**", "x", true},
		{"a\x00*b", "a*b", true}, {"a\x00*b", "axb", false}, {"*\x00?", "xx?", true}, {"*\x00?", "xxy", false},
	} {
		if got := globMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

// The compiled glob agrees with the reference globMatch on random patterns.
func TestCompiledGlobAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "b", ":", "/", "*", "*", "?", "ab", "\x00*"}
	for range 20000 {
		var p, s strings.Builder
		for range r.IntN(8) {
			p.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		for range r.IntN(10) {
			s.WriteString(alphabet[r.IntN(4)])
		}
		g := compileGlob(p.String())
		if got, want := g.match(s.String()), globMatch(p.String(), s.String()); got != want {
			t.Fatalf("pattern %q, string %q: compiled %v, reference %v", p.String(), s.String(), got, want)
		}
	}
}
