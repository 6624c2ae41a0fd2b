package iam

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/holdfast/holdfast/internal/clock"
)

func TestGetCallerIdentity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, err := e.sts(root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::123456789012:root" || aws.ToString(id.Account) != testAccount ||
		aws.ToString(id.UserId) != testAccount {
		t.Fatalf("root: %+v %v", id, err)
	}
	// No permission is needed, not even for a user without policies.
	dan := e.user("dan", "")
	id, err = e.sts(dan).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::123456789012:user/dan" || !strings.HasPrefix(aws.ToString(id.UserId), "AIDA") {
		t.Fatalf("user: %+v %v", id, err)
	}
	roleArn := e.role("ops", trustAccount, "")
	if _, err := e.iam(root).PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("dan"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}`)}); err != nil {
		t.Fatal(err)
	}
	session := e.assume(dan, roleArn, "dan-session")
	id, err = e.sts(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	g, _ := e.iam(root).GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("ops")})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::123456789012:assumed-role/ops/dan-session" ||
		aws.ToString(id.UserId) != aws.ToString(g.Role.RoleId)+":dan-session" {
		t.Fatalf("assumed role: %+v %v", id, err)
	}
}

func TestAssumeRole(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.iam(root)
	accountRole := e.role("by-account", trustAccount, "")
	eve := e.user("eve", "")
	namedRole := e.role("by-name", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/eve"},"Action":"sts:AssumeRole"}]}`, "")
	tasksRole := e.role("tasks", trustTasks, "")

	// The root may not assume roles, as on AWS.
	_, err := e.sts(root).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0")})
	wantErr(t, err, "AccessDenied", "Roles may not be assumed by root accounts.", 403)

	// A trust policy that names the account needs the caller's own
	// sts:AssumeRole permission too.
	_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0")})
	wantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/eve is not authorized to perform: sts:AssumeRole on resource: "+
		accountRole+" because no identity-based policy allows the sts:AssumeRole action", 403)
	// One that names the user itself does not.
	out, err := e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(namedRole), RoleSessionName: aws.String("direct")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/by-name/direct" ||
		!strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || aws.ToString(out.Credentials.SessionToken) == "" ||
		!strings.HasSuffix(aws.ToString(out.AssumedRoleUser.AssumedRoleId), ":direct") {
		t.Fatalf("AssumeRole answered %+v %+v", out.AssumedRoleUser, out.Credentials)
	}
	if got := out.Credentials.Expiration.Sub(e.clock.Now()); got < 3599*time.Second || got > 3600*time.Second {
		t.Errorf("default session lasts %v, want one hour", got)
	}

	// With the permission, the account's trust policy admits eve.
	if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("eve"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/by-*"},
			{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/by-name"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0")}); err != nil {
		t.Fatal(err)
	}
	// An explicit deny wins even over a trust policy naming the user.
	_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(namedRole), RoleSessionName: aws.String("s0")})
	wantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/eve is not authorized to perform: sts:AssumeRole on resource: "+
		namedRole+" with an explicit deny in an identity-based policy", 403)
	// A role whose trust policy does not admit the caller, and a role that
	// does not exist, are refused alike.
	for _, arn := range []string{tasksRole, "arn:aws:iam::123456789012:role/ghost"} {
		_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s0")})
		wantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/eve is not authorized to perform: sts:AssumeRole on resource: "+arn, 403)
	}

	// Validation and durations.
	_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("bad name")})
	wantErr(t, err, "ValidationError", `1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy constraint: `+
		`Member must satisfy regular expression pattern: [\w+=,.@-]*`, 400)
	_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(7200)})
	wantErr(t, err, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", 400)
	_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(60)})
	wantErr(t, err, "ValidationError", "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy constraint: "+
		"Member must have value greater than or equal to 900", 400)
	_, err = e.sts(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0"), Policy: aws.String(allowAll)})
	wantErr(t, err, "ValidationError", "Session policies (Policy, PolicyArns) are not supported by holdfast.", 400)

	// Role chaining: a session may assume another role for at most an hour.
	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("tasks"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/by-account"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		t.Fatal(err)
	}
	session := e.assume(eve, accountRole, "first")
	chained, err := e.sts(session).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tasksRole), RoleSessionName: aws.String("second")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(chained.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/tasks/second" {
		t.Fatalf("chained: %+v", chained.AssumedRoleUser)
	}
	_, err = e.sts(session).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tasksRole), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(3601)})
	wantErr(t, err, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.", 400)
}

func TestSessionCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	roleArn := e.role("worker", trustAccount, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}}`)
	frank := e.user("frank", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}`)
	out, err := e.sts(frank).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleArn), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	session := creds{aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}

	// The session acts with the role's policies, not the user's.
	if _, err := e.iam(session).ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil {
		t.Fatalf("role's permission: %v", err)
	}
	_, err = e.iam(session).ListUsers(ctx, &awsiam.ListUsersInput{})
	wantErr(t, err, "AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/worker/s1 is not authorized to perform: iam:ListUsers "+
		"on resource: arn:aws:iam::123456789012:user/ because no identity-based policy allows the iam:ListUsers action", 403)
	// The session's token is checked: another session's, or none, is invalid.
	forged := session
	forged.token = strings.Replace(session.token, session.token[:4], "AAAA", 1)
	_, err = e.iam(forged).ListRoles(ctx, &awsiam.ListRolesInput{})
	wantErr(t, err, "InvalidClientTokenId", "The security token included in the request is invalid.", 403)
	_, err = e.iam(creds{session.id, session.secret, ""}).ListRoles(ctx, &awsiam.ListRolesInput{})
	wantErr(t, err, "InvalidClientTokenId", "", 403)
	_, err = e.iam(creds{session.id, "wrong", session.token}).ListRoles(ctx, &awsiam.ListRolesInput{})
	wantErr(t, err, "SignatureDoesNotMatch", "", 403)

	// Deleting the role ends its sessions.
	c := e.iam(root)
	doomedArn := e.role("doomed", trustAccount, "")
	doomed := e.assume(frank, doomedArn, "s2")
	if _, err := e.sts(doomed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("doomed")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sts(doomed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantErr(t, err, "InvalidClientTokenId", "", 403)
	// A role created again under the same name does not revive them.
	e.role("doomed", trustAccount, "")
	_, err = e.sts(doomed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantErr(t, err, "InvalidClientTokenId", "", 403)

	// A session survives a restart (the signing key is stored), and ends
	// at its expiry. (The SDK signs with the real clock: the fake one only
	// moves within SigV4's 15 minutes.)
	e.close()
	e = newEnvAt(t, e.dir, e.clock, false)
	if _, err := e.iam(session).ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	e.clock.Advance(899 * time.Second)
	if _, err := e.iam(session).ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err = e.iam(session).ListRoles(ctx, &awsiam.ListRolesInput{})
	wantErr(t, err, "ExpiredToken", "The security token included in the request is expired", 403)
	_, err = e.sts(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantErr(t, err, "ExpiredToken", "The security token included in the request is expired", 403)
}

// Every IAM action is enforced: a user is refused what its policies do not
// allow, with AWS's text naming the resource, and a policy change applies
// to the next call.
func TestIAMPermissionsEnforced(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.iam(root)
	gina := e.user("gina", "")
	g := e.iam(gina)
	_, err := g.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("mallory"), Path: aws.String("/x/")})
	wantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: iam:CreateUser "+
		"on resource: arn:aws:iam::123456789012:user/x/mallory because no identity-based policy allows the iam:CreateUser action", 403)
	_, err = g.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("ghost")})
	wantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: iam:GetRole "+
		"on resource: arn:aws:iam::123456789012:role/ghost because no identity-based policy allows the iam:GetRole action", 403)

	// Allow managing users under /x/ only, and never deleting them; attach
	// only the TaskProtection policy.
	pol, err := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("admins"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::123456789012:user/x/*"},
		{"Effect":"Deny","Action":"iam:DeleteUser","Resource":"*"},
		{"Effect":"Allow","Action":"iam:AttachUserPolicy","Resource":"*","Condition":{"ArnEquals":{"iam:PolicyARN":"arn:aws:iam::123456789012:policy/TaskProtection"}}}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("gina"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("mallory"), Path: aws.String("/x/")}); err != nil {
		t.Fatalf("allowed CreateUser: %v", err)
	}
	_, err = g.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("root2")})
	wantErr(t, err, "AccessDenied", "", 403)
	_, err = g.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("mallory")})
	wantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: iam:DeleteUser "+
		"on resource: arn:aws:iam::123456789012:user/x/mallory with an explicit deny in an identity-based policy", 403)
	tp, _ := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("TaskProtection"), PolicyDocument: aws.String(allowAll)})
	other, _ := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("Other"), PolicyDocument: aws.String(allowAll)})
	if _, err := g.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("mallory"), PolicyArn: tp.Policy.Arn}); err != nil {
		t.Fatalf("attach allowed by iam:PolicyARN: %v", err)
	}
	_, err = g.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("mallory2"), PolicyArn: other.Policy.Arn})
	wantErr(t, err, "AccessDenied", "", 403)

	// Detaching the policy takes effect on the next call.
	if _, err := c.DetachUserPolicy(ctx, &awsiam.DetachUserPolicyInput{UserName: aws.String("gina"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = g.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("mallory")})
	wantErr(t, err, "AccessDenied", "", 403)
}

// The model is durable: a service reopened on the same store has the
// users, keys, roles and policies; a write whose commit fails is answered
// ServiceFailure and is not there after a restart.
func TestModelSurvivesReopenAndFailedWrites(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	e := newEnvAt(t, dir, clk, false)
	ctx := context.Background()
	hank := e.user("hank", allowAll)
	e.role("ops", trustAccount, allowAll)
	pol, err := e.iam(root).CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("mp"), PolicyDocument: aws.String(allowAll)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.iam(root).AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	e.close()

	again := newEnvAt(t, dir, clk, false)
	if _, err := again.iam(hank).ListUsers(ctx, &awsiam.ListUsersInput{}); err != nil {
		t.Fatalf("the key and its policy after reopening: %v", err)
	}
	la, err := again.iam(root).ListAttachedRolePolicies(ctx, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String("ops")})
	if err != nil || len(la.AttachedPolicies) != 1 {
		t.Fatalf("attachment after reopening: %+v %v", la, err)
	}

	again.backend.fail.Store(true)
	_, err = again.iam(root).CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("ivy")})
	wantErr(t, err, "ServiceFailure", "The request processing has failed because of an unknown error, exception or failure.", 500)
	again.close()
	third := newEnvAt(t, dir, clk, false)
	_, err = third.iam(root).GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("ivy")})
	wantErr(t, err, "NoSuchEntity", "", 404)
	if _, err := third.iam(hank).ListUsers(ctx, &awsiam.ListUsersInput{}); err != nil {
		t.Fatalf("hank after the failed write and a restart: %v", err)
	}
}

// Requests authenticate and authorize while the policies they use are
// being changed: every answer is either allowed or AccessDenied, and the
// race detector sees the locking (run with -race).
func TestConcurrentRequestsAndPolicyChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ivy := e.user("ivy", "")
	pol, err := e.iam(root).CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("list"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for range 3 {
		go func() {
			c := e.iam(ivy)
			for range 30 {
				if _, err := c.ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil && !strings.Contains(err.Error(), "AccessDenied") {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	go func() {
		c := e.iam(root)
		for range 30 {
			if _, err := c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("ivy"), PolicyArn: pol.Policy.Arn}); err != nil {
				done <- err
				return
			}
			if _, err := c.DetachUserPolicy(ctx, &awsiam.DetachUserPolicyInput{UserName: aws.String("ivy"), PolicyArn: pol.Policy.Arn}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// Detached at the end: refused.
	_, err = e.iam(ivy).ListRoles(ctx, &awsiam.ListRolesInput{})
	wantErr(t, err, "AccessDenied", "", 403)
}
