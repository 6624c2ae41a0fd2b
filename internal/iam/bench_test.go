package iam

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/domain"
)

// limitsStatements builds n statements in the style of real policies:
// several services, exact and wildcard actions, ARN patterns, and a
// condition on every third statement.
func limitsStatements(seed, n int) []map[string]any {
	services := []string{"ecs", "iam", "s3", "logs", "cloudwatch", "sqs", "dynamodb", "kms", "ec2", "sts"}
	verbs := []string{"Describe", "List", "Get", "Put", "Create", "Delete", "Update", "Tag"}
	var out []map[string]any
	for s := range n {
		svc := services[(seed+s)%len(services)]
		st := map[string]any{"Effect": "Allow", "Resource": fmt.Sprintf("arn:aws:%s:*:123456789012:team-%d/*", svc, seed)}
		switch s % 4 {
		case 0:
			st["Action"] = []string{svc + ":" + verbs[s%len(verbs)] + "*", svc + ":" + verbs[(s+1)%len(verbs)] + "Thing"}
		case 1:
			st["Action"] = fmt.Sprintf("%s:%sResource%d", svc, verbs[s%len(verbs)], seed)
		case 2:
			st["Action"] = svc + ":*"
			st["Effect"] = "Deny"
		default:
			st["Action"] = []string{svc + ":Describe*", svc + ":List*"}
		}
		if s%3 == 0 {
			st["Condition"] = map[string]any{"StringEquals": map[string]any{"aws:RequestTag/team": "blue"}}
		}
		out = append(out, st)
	}
	return out
}

func doc(stmts []map[string]any) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	return string(b)
}

// limitsPrincipal is a role session at IAM's limits: 20 attached managed
// policies of 20 statements each, plus inline policies of 20 statements,
// the last of which allows the benchmarked call.
func limitsPrincipal(tb testing.TB) (*Service, api.Credential, string) {
	tb.Helper()
	ctx := context.Background()
	s := newEnvAt(tb, tb.TempDir(), clock.NewFake(time.Now()), true).svc
	role, err := s.createRole(ctx, createRoleInput{RoleName: aws.String("limits"), AssumeRolePolicyDocument: aws.String(trustAccount)})
	if err != nil {
		tb.Fatal(err)
	}
	statements := 0
	for i := range 20 {
		p, err := s.createPolicy(ctx, createPolicyInput{PolicyName: aws.String(fmt.Sprintf("m%d", i)), PolicyDocument: aws.String(doc(limitsStatements(i, 20)))})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := s.attachPolicy("role")(ctx, attachInput{RoleName: aws.String("limits"), PolicyArn: aws.String(p.Policy.Arn)}); err != nil {
			tb.Fatal(err)
		}
		statements += 20
	}
	inline := limitsStatements(99, 19)
	inline = append(inline, map[string]any{"Effect": "Allow", "Action": []string{"ecs:UpdateTaskProtection", "ecs:GetTaskProtection"},
		"Resource": "arn:aws:ecs:*:123456789012:task/queue/*", "Condition": map[string]any{"ArnEquals": map[string]any{"ecs:cluster": "arn:aws:ecs:eu-west-3:123456789012:cluster/queue"}}})
	if _, err := s.putInlinePolicy("role")(ctx, putPolicyInput{RoleName: aws.String("limits"), PolicyName: aws.String("inline"), PolicyDocument: aws.String(doc(inline))}); err != nil {
		tb.Fatal(err)
	}
	statements += 20
	claims := sessionClaims{AccessKeyID: "ASIABENCHMARK0000001", RoleName: "limits", RoleID: role.Role.RoleID, Session: "task-1",
		Issued: time.Now().Unix(), Expires: time.Now().Add(time.Hour).Unix()}
	token := s.sessionToken(claims)
	cred, err := s.LookupAccessKey(ctx, claims.AccessKeyID, token)
	if err != nil {
		tb.Fatal(err)
	}
	if n := cred.Principal.Policies.(interface{ Statements() int }).Statements(); n != statements {
		tb.Fatalf("principal has %d statements, want %d", n, statements)
	}
	return s, cred, token
}

// protectionAction is what UpdateTaskProtection on one task asks, as the
// ECS action map builds it.
func protectionAction(tb testing.TB) api.Action {
	act := ECSActions(domain.Partition{Region: "eu-west-3", AccountID: testAccount}, nil)["UpdateTaskProtection"]
	a, err := act(context.Background(), []byte(`{"cluster":"queue","tasks":["0123456789abcdef0123456789abcdef"],"protectionEnabled":true}`))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func TestLimitsPrincipal(t *testing.T) {
	_, cred, _ := limitsPrincipal(t)
	a := protectionAction(t)
	if err := (Authorizer{}).Authorize(context.Background(), cred.Principal, a); err != nil {
		t.Fatalf("the benchmarked call is refused: %v", err)
	}
	a.Resources = []string{"arn:aws:ecs:eu-west-3:123456789012:task/web/x"}
	if err := (Authorizer{}).Authorize(context.Background(), cred.Principal, a); !api.IsAccessDenied(err) {
		t.Fatalf("another cluster's task: %v", err)
	}
}

// reportPercentiles times each call of fn and reports p50 and p99.
func reportPercentiles(b *testing.B, fn func()) {
	durations := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		fn()
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkAuthorize is the cost of authorizing one ECS call for a
// principal at IAM's limits (420 statements): Authorize alone (the policy
// set is compiled once and cached), and the whole identity step the front
// door runs per request (resolving the session credentials, then
// Authorize). Figures in docs/benchmarks.md.
func BenchmarkAuthorize(b *testing.B) {
	s, cred, token := limitsPrincipal(b)
	a := protectionAction(b)
	ctx := context.Background()
	az := Authorizer{}
	b.Run("authorize", func(b *testing.B) {
		b.ReportAllocs()
		reportPercentiles(b, func() {
			if err := az.Authorize(ctx, cred.Principal, a); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("lookup+authorize", func(b *testing.B) {
		b.ReportAllocs()
		reportPercentiles(b, func() {
			c, err := s.LookupAccessKey(ctx, "ASIABENCHMARK0000001", token)
			if err != nil {
				b.Fatal(err)
			}
			if err := az.Authorize(ctx, c.Principal, a); err != nil {
				b.Fatal(err)
			}
		})
	})
}
