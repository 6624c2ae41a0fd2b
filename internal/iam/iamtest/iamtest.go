// Package iamtest is the conformance suite of holdfast's IAM and STS API:
// every operation and its error paths, driven with aws-sdk-go-v2's iam and
// sts clients over HTTP. internal/iam runs it against the IAM service on
// a bare front door; internal/server runs it against the whole control
// plane (server.New), so that what is tested is what holdfast serves.
package iamtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/clock"
)

// Account is the account id a Target must serve: the suite's expected
// ARNs name it.
const Account = "123456789012"

const account = Account

// Target is one running IAM and STS API, fresh (no users, roles or
// policies) for each test.
type Target struct {
	// URL is the API's base URL (http://127.0.0.1:port).
	URL string
	// Region is the region the API is configured with; IAM and STS
	// clients are also signed for us-east-1, as the SDKs sign them.
	Region string
	// RootAccessKeyID and RootSecretAccessKey are the account's root.
	RootAccessKeyID, RootSecretAccessKey string
	// Clock, when set, is the identities' clock (signature times and
	// session expiry); the suite advances it at most 15 minutes, within
	// SigV4's window. Nil: expiry is not checked.
	Clock *clock.Fake
	// Restart, when set, restarts the API on the same store and returns
	// its new URL. Nil: survival across restarts is not checked.
	Restart func(t *testing.T) string
}

// Run runs every test of the suite; start returns a fresh Target.
func Run(t *testing.T, start func(t *testing.T) *Target) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, func(*testing.T) *Target)
	}{
		{"Users", users},
		{"AccessKeys", accessKeys},
		{"Roles", roles},
		{"InlinePolicies", inlinePolicies},
		{"ManagedPolicies", managedPolicies},
		{"GetCallerIdentity", getCallerIdentity},
		{"AssumeRole", assumeRole},
		{"SessionCredentials", sessionCredentials},
		{"IAMPermissionsEnforced", iamPermissionsEnforced},
		{"ConcurrentRequestsAndPolicyChanges", concurrentRequestsAndPolicyChanges},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, start) })
	}
}

// env is one test's view of its Target.
type env struct {
	*Clients
	t      *testing.T
	target *Target
}

func newEnv(t *testing.T, start func(*testing.T) *Target) *env {
	t.Helper()
	tg := start(t)
	return &env{Clients: &Clients{T: t, URL: tg.URL, Region: tg.Region, Root: Creds{tg.RootAccessKeyID, tg.RootSecretAccessKey, ""}},
		t: t, target: tg}
}

// now is the identities' time.
func (e *env) now() time.Time {
	if e.target.Clock != nil {
		return e.target.Clock.Now()
	}
	return time.Now()
}

// restart restarts the target, when it can.
func (e *env) restart() {
	e.t.Helper()
	if e.target.Restart == nil {
		e.t.Log("the target cannot restart: survival across restarts not checked")
		return
	}
	e.URL = e.target.Restart(e.t)
}

// Creds are an access key, with its session token when temporary.
type Creds struct{ ID, Secret, Token string }

// Clients makes aws-sdk-go-v2 IAM and STS clients for an API and creates
// users and roles through it as the root.
type Clients struct {
	T      testing.TB
	URL    string
	Region string
	Root   Creds
}

// IAM is a real aws-sdk-go-v2 IAM client signing with c. It signs for the
// API's region; the AWS CLI and the SDKs with a custom endpoint do the
// same.
func (e *Clients) IAM(c Creds) *awsiam.Client {
	return awsiam.New(awsiam.Options{
		Region:       e.Region,
		BaseEndpoint: aws.String(e.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(c.ID, c.Secret, c.Token),
		Retryer:      aws.NopRetryer{},
	})
}

// STS is an STS client signing with c (for us-east-1, as SDKs sign STS).
func (e *Clients) STS(c Creds) *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(c.ID, c.Secret, c.Token),
		Retryer:      aws.NopRetryer{},
	})
}

// User creates an IAM user with an access key and the given inline
// policy (if any), as the root, and returns its credentials.
func (e *Clients) User(name, policyDoc string) Creds {
	e.T.Helper()
	ctx := context.Background()
	c := e.IAM(e.Root)
	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		e.T.Fatal(err)
	}
	if policyDoc != "" {
		if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(name),
			PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)}); err != nil {
			e.T.Fatal(err)
		}
	}
	out, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		e.T.Fatal(err)
	}
	return Creds{aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey), ""}
}

// Role creates a role with a trust policy and an inline policy (if any).
func (e *Clients) Role(name, trust, policyDoc string) string {
	e.T.Helper()
	ctx := context.Background()
	c := e.IAM(e.Root)
	out, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		e.T.Fatal(err)
	}
	if policyDoc != "" {
		if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String(name),
			PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)}); err != nil {
			e.T.Fatal(err)
		}
	}
	return aws.ToString(out.Role.Arn)
}

// Assume assumes a role as c and returns the session's credentials.
func (e *Clients) Assume(c Creds, roleArn, session string) Creds {
	e.T.Helper()
	out, err := e.STS(c).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleArn), RoleSessionName: aws.String(session)})
	if err != nil {
		e.T.Fatal(err)
	}
	return Creds{aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}
}

// WantErr asserts an API error's code, message ("" = not checked) and
// HTTP status.
func WantErr(t testing.TB, err error, code, message string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %T %v", code, err, err)
	}
	if ae.ErrorCode() != code {
		t.Errorf("code %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	if message != "" && ae.ErrorMessage() != message {
		t.Errorf("message\n  %q\nwant\n  %q", ae.ErrorMessage(), message)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Errorf("status %v, want %d", err, status)
	}
}

func decodeDoc(t *testing.T, s string) string {
	t.Helper()
	d, err := url.QueryUnescape(s)
	if err != nil {
		t.Fatalf("not URL-encoded: %q", s)
	}
	return d
}

const (
	trustAccount = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	trustTasks   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	allowAll     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
)

func users(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	c := e.IAM(e.Root)
	ctx := context.Background()

	out, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("alice"), Path: aws.String("/team/"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}}})
	if err != nil {
		t.Fatal(err)
	}
	u := out.User
	if aws.ToString(u.Arn) != "arn:aws:iam::123456789012:user/team/alice" || aws.ToString(u.Path) != "/team/" ||
		!strings.HasPrefix(aws.ToString(u.UserId), "AIDA") || len(aws.ToString(u.UserId)) != 21 || u.CreateDate == nil ||
		len(u.Tags) != 1 || aws.ToString(u.Tags[0].Value) != "blue" {
		t.Fatalf("CreateUser answered %+v", u)
	}

	_, err = c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("ALICE")})
	WantErr(t, err, "EntityAlreadyExists", "User with name ALICE already exists.", 409)
	var exists *types.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("not a typed EntityAlreadyExistsException: %T", err)
	}
	_, err = c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("a b")})
	WantErr(t, err, "ValidationError", `1 validation error detected: Value 'a b' at 'userName' failed to satisfy constraint: `+
		`Member must satisfy regular expression pattern: [\w+=,.@-]+`, 400)
	_, err = c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(strings.Repeat("x", 65)), Path: aws.String("nope")})
	WantErr(t, err, "ValidationError", "", 400)
	if !strings.HasPrefix(err.Error(), "") || !strings.Contains(err.Error(), "2 validation errors detected") {
		t.Errorf("two violations: %v", err)
	}

	got, err := c.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("Alice")})
	if err != nil || aws.ToString(got.User.UserName) != "alice" || len(got.User.Tags) != 1 {
		t.Fatalf("GetUser: %+v %v", got, err)
	}
	_, err = c.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("nobody")})
	WantErr(t, err, "NoSuchEntity", "The user with name nobody cannot be found.", 404)
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("not a typed NoSuchEntityException: %T", err)
	}
	// The root without a user name gets the account's identity.
	me, err := c.GetUser(ctx, &awsiam.GetUserInput{})
	if err != nil || aws.ToString(me.User.Arn) != "arn:aws:iam::123456789012:root" || aws.ToString(me.User.UserId) != account {
		t.Fatalf("GetUser as root: %+v %v", me, err)
	}

	// ListUsers: sorted, paged, filtered by path.
	for i := range 5 {
		if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(fmt.Sprintf("u%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var marker *string
	pages := 0
	for {
		l, err := c.ListUsers(ctx, &awsiam.ListUsersInput{MaxItems: aws.Int32(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, u := range l.Users {
			names = append(names, aws.ToString(u.UserName))
		}
		if !l.IsTruncated {
			break
		}
		marker = l.Marker
	}
	if strings.Join(names, ",") != "alice,u0,u1,u2,u3,u4" || pages != 3 {
		t.Fatalf("ListUsers pages %d: %v", pages, names)
	}
	l, err := c.ListUsers(ctx, &awsiam.ListUsersInput{PathPrefix: aws.String("/team/")})
	if err != nil || len(l.Users) != 1 || aws.ToString(l.Users[0].UserName) != "alice" || l.IsTruncated {
		t.Fatalf("ListUsers by path: %+v %v", l, err)
	}
	_, err = c.ListUsers(ctx, &awsiam.ListUsersInput{MaxItems: aws.Int32(0)})
	WantErr(t, err, "ValidationError", "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: "+
		"Member must have value greater than or equal to 1", 400)
	_, err = c.ListUsers(ctx, &awsiam.ListUsersInput{Marker: aws.String("!!not-a-marker")})
	WantErr(t, err, "InvalidInput", "Invalid Marker.", 400)

	// DeleteUser refuses while keys and policies remain.
	key, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	WantErr(t, err, "DeleteConflict", "Cannot delete entity, must delete access keys first.", 409)
	if _, err := c.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: key.AccessKey.AccessKeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("p"), PolicyDocument: aws.String(allowAll)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	WantErr(t, err, "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
	if _, err := c.DeleteUserPolicy(ctx, &awsiam.DeleteUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("p")}); err != nil {
		t.Fatal(err)
	}
	pol, err := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("mp"), PolicyDocument: aws.String(allowAll)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	WantErr(t, err, "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
	if _, err := c.DetachUserPolicy(ctx, &awsiam.DetachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	WantErr(t, err, "NoSuchEntity", "The user with name alice cannot be found.", 404)
}

func accessKeys(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	c := e.IAM(e.Root)
	ctx := context.Background()
	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	var keys []types.AccessKey
	for range 2 {
		out, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("bob")})
		if err != nil {
			t.Fatal(err)
		}
		k := *out.AccessKey
		if !strings.HasPrefix(aws.ToString(k.AccessKeyId), "AKIA") || len(aws.ToString(k.AccessKeyId)) != 20 ||
			len(aws.ToString(k.SecretAccessKey)) != 40 || k.Status != types.StatusTypeActive || aws.ToString(k.UserName) != "bob" {
			t.Fatalf("CreateAccessKey answered %+v", k)
		}
		keys = append(keys, k)
	}
	_, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("bob")})
	WantErr(t, err, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
	_, err = c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("nobody")})
	WantErr(t, err, "NoSuchEntity", "The user with name nobody cannot be found.", 404)
	// The root has no user to default to.
	_, err = c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{})
	WantErr(t, err, "ValidationError", "Must specify userName when calling with non-User credentials", 400)

	l, err := c.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("bob")})
	if err != nil || len(l.AccessKeyMetadata) != 2 {
		t.Fatalf("ListAccessKeys: %+v %v", l, err)
	}

	// A new key signs at once; an Inactive one is refused as IAM refuses
	// it, and comes back when reactivated; a deleted one is gone.
	bob := Creds{aws.ToString(keys[0].AccessKeyId), aws.ToString(keys[0].SecretAccessKey), ""}
	if _, err := e.STS(bob).GetCallerIdentity(ctx, nil); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: keys[0].AccessKeyId,
		Status: types.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	_, err = e.STS(bob).GetCallerIdentity(ctx, nil)
	WantErr(t, err, "InvalidClientTokenId", "The security token included in the request is invalid.", 403)
	l, _ = c.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("bob")})
	statuses := map[string]types.StatusType{}
	for _, m := range l.AccessKeyMetadata {
		statuses[aws.ToString(m.AccessKeyId)] = m.Status
	}
	if statuses[bob.ID] != types.StatusTypeInactive {
		t.Errorf("statuses %v", statuses)
	}
	if _, err := c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: keys[0].AccessKeyId,
		Status: types.StatusTypeActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.STS(bob).GetCallerIdentity(ctx, nil); err != nil {
		t.Fatalf("reactivated key: %v", err)
	}
	_, err = c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String("AKIAAAAAAAAAAAAAAAAA"),
		Status: types.StatusTypeActive})
	WantErr(t, err, "NoSuchEntity", "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.", 404)
	_, err = c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: keys[0].AccessKeyId, Status: "Sleepy"})
	WantErr(t, err, "ValidationError", "1 validation error detected: Value 'Sleepy' at 'status' failed to satisfy constraint: "+
		"Member must satisfy enum value set: [Active, Inactive, Expired]", 400)

	// A user manages its own keys without naming itself.
	self := e.IAM(bob)
	if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("bob"), PolicyName: aws.String("self"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["iam:ListAccessKeys","iam:DeleteAccessKey","iam:GetUser"],"Resource":"arn:aws:iam::*:user/${aws:username}"}}`)}); err != nil {
		t.Fatal(err)
	}
	mine, err := self.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{})
	if err != nil || len(mine.AccessKeyMetadata) != 2 {
		t.Fatalf("own keys: %+v %v", mine, err)
	}
	who, err := self.GetUser(ctx, &awsiam.GetUserInput{})
	if err != nil || aws.ToString(who.User.UserName) != "bob" {
		t.Fatalf("own user: %+v %v", who, err)
	}
	if _, err := self.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{AccessKeyId: keys[1].AccessKeyId}); err != nil {
		t.Fatal(err)
	}
	_, err = e.STS(Creds{aws.ToString(keys[1].AccessKeyId), aws.ToString(keys[1].SecretAccessKey), ""}).GetCallerIdentity(ctx, nil)
	WantErr(t, err, "InvalidClientTokenId", "", 403)
	_, err = self.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{AccessKeyId: keys[1].AccessKeyId})
	WantErr(t, err, "NoSuchEntity", fmt.Sprintf("The Access Key with id %s cannot be found.", aws.ToString(keys[1].AccessKeyId)), 404)
}

func roles(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	c := e.IAM(e.Root)
	ctx := context.Background()
	out, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("worker"), Path: aws.String("/ecs/"),
		AssumeRolePolicyDocument: aws.String(trustTasks), Description: aws.String("queue worker"), MaxSessionDuration: aws.Int32(7200)})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Role
	if aws.ToString(r.Arn) != "arn:aws:iam::123456789012:role/ecs/worker" || !strings.HasPrefix(aws.ToString(r.RoleId), "AROA") ||
		aws.ToInt32(r.MaxSessionDuration) != 7200 || aws.ToString(r.Description) != "queue worker" ||
		decodeDoc(t, aws.ToString(r.AssumeRolePolicyDocument)) != trustTasks {
		t.Fatalf("CreateRole answered %+v", r)
	}
	// The trust policy comes back URL-encoded, as IAM returns documents.
	if strings.Contains(aws.ToString(r.AssumeRolePolicyDocument), "{") {
		t.Errorf("document not URL-encoded: %s", aws.ToString(r.AssumeRolePolicyDocument))
	}
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("Worker"), AssumeRolePolicyDocument: aws.String(trustTasks)})
	WantErr(t, err, "EntityAlreadyExists", "Role with name Worker already exists.", 409)
	for _, tc := range []struct{ doc, msg string }{
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`, "Missing required field Principal"},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/ghost"},"Action":"sts:AssumeRole"}]}`,
			`Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/ghost"`},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}`, "Has prohibited field Resource"},
		{`{"Version":"2012-10-17",`, "Syntax errors in policy."},
	} {
		_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("bad"), AssumeRolePolicyDocument: aws.String(tc.doc)})
		WantErr(t, err, "MalformedPolicyDocument", tc.msg, 400)
	}
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("big"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"` + strings.Repeat("x", 2100) + `","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`)})
	WantErr(t, err, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048", 409)
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("short"), AssumeRolePolicyDocument: aws.String(trustTasks), MaxSessionDuration: aws.Int32(60)})
	WantErr(t, err, "ValidationError", "1 validation error detected: Value '60' at 'maxSessionDuration' failed to satisfy constraint: "+
		"Member must have value greater than or equal to 3600", 400)

	g, err := c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("WORKER")})
	if err != nil || aws.ToString(g.Role.RoleName) != "worker" {
		t.Fatalf("GetRole: %+v %v", g, err)
	}
	_, err = c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("ghost")})
	WantErr(t, err, "NoSuchEntity", "The role with name ghost cannot be found.", 404)

	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("worker"), PolicyDocument: aws.String(trustAccount)}); err != nil {
		t.Fatal(err)
	}
	g, _ = c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("worker")})
	if decodeDoc(t, aws.ToString(g.Role.AssumeRolePolicyDocument)) != trustAccount {
		t.Errorf("trust policy not updated: %s", aws.ToString(g.Role.AssumeRolePolicyDocument))
	}
	_, err = c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("worker"), PolicyDocument: aws.String(`{"Statement":[]}`)})
	WantErr(t, err, "MalformedPolicyDocument", "Syntax errors in policy.", 400)
	_, err = c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("ghost"), PolicyDocument: aws.String(trustAccount)})
	WantErr(t, err, "NoSuchEntity", "The role with name ghost cannot be found.", 404)

	if _, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("admin"), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
		t.Fatal(err)
	}
	l, err := c.ListRoles(ctx, &awsiam.ListRolesInput{})
	if err != nil || len(l.Roles) != 2 || aws.ToString(l.Roles[0].RoleName) != "admin" || aws.ToString(l.Roles[1].RoleName) != "worker" {
		t.Fatalf("ListRoles: %+v %v", l, err)
	}
	l, err = c.ListRoles(ctx, &awsiam.ListRolesInput{PathPrefix: aws.String("/ecs/")})
	if err != nil || len(l.Roles) != 1 {
		t.Fatalf("ListRoles by path: %+v %v", l, err)
	}

	if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("worker"), PolicyName: aws.String("p"), PolicyDocument: aws.String(allowAll)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")})
	WantErr(t, err, "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
	if _, err := c.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String("worker"), PolicyName: aws.String("P")}); err != nil {
		t.Fatal(err)
	}
	pol, _ := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("mp"), PolicyDocument: aws.String(allowAll)})
	if _, err := c.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("worker"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")})
	WantErr(t, err, "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
	if _, err := c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("worker"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")})
	WantErr(t, err, "NoSuchEntity", "The role with name worker cannot be found.", 404)
}

func inlinePolicies(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	c := e.IAM(e.Root)
	ctx := context.Background()
	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("carol")}); err != nil {
		t.Fatal(err)
	}
	e.Role("ops", trustAccount, "")
	doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}}`
	for _, kind := range []string{"user", "role"} {
		t.Run(kind, func(t *testing.T) {
			put := func(name, d string) error {
				if kind == "user" {
					_, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("carol"), PolicyName: aws.String(name), PolicyDocument: aws.String(d)})
					return err
				}
				_, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("ops"), PolicyName: aws.String(name), PolicyDocument: aws.String(d)})
				return err
			}
			get := func(name string) (string, error) {
				if kind == "user" {
					out, err := c.GetUserPolicy(ctx, &awsiam.GetUserPolicyInput{UserName: aws.String("carol"), PolicyName: aws.String(name)})
					if err != nil {
						return "", err
					}
					return aws.ToString(out.PolicyDocument), nil
				}
				out, err := c.GetRolePolicy(ctx, &awsiam.GetRolePolicyInput{RoleName: aws.String("ops"), PolicyName: aws.String(name)})
				if err != nil {
					return "", err
				}
				return aws.ToString(out.PolicyDocument), nil
			}
			list := func() []string {
				if kind == "user" {
					out, err := c.ListUserPolicies(ctx, &awsiam.ListUserPoliciesInput{UserName: aws.String("carol")})
					if err != nil {
						t.Fatal(err)
					}
					return out.PolicyNames
				}
				out, err := c.ListRolePolicies(ctx, &awsiam.ListRolePoliciesInput{RoleName: aws.String("ops")})
				if err != nil {
					t.Fatal(err)
				}
				return out.PolicyNames
			}
			del := func(name string) error {
				if kind == "user" {
					_, err := c.DeleteUserPolicy(ctx, &awsiam.DeleteUserPolicyInput{UserName: aws.String("carol"), PolicyName: aws.String(name)})
					return err
				}
				_, err := c.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String("ops"), PolicyName: aws.String(name)})
				return err
			}

			if err := put("b", doc); err != nil {
				t.Fatal(err)
			}
			if err := put("a", allowAll); err != nil {
				t.Fatal(err)
			}
			if got := list(); strings.Join(got, ",") != "a,b" {
				t.Fatalf("list: %v", got)
			}
			d, err := get("B")
			if err != nil || decodeDoc(t, d) != doc {
				t.Fatalf("get: %q %v", d, err)
			}
			_, err = get("zz")
			WantErr(t, err, "NoSuchEntity", fmt.Sprintf("The %s policy with name zz cannot be found.", kind), 404)
			err = put("bad", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*"}}`)
			WantErr(t, err, "MalformedPolicyDocument", "Policy statement must contain resources.", 400)
			err = put("bad", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecs:*","Resource":"*"}}`)
			WantErr(t, err, "MalformedPolicyDocument", "Policy document should not specify a principal.", 400)
			big := `{"Version":"2012-10-17","Statement":{"Sid":"` + strings.Repeat("x", 10300) + `","Effect":"Allow","Action":"ecs:*","Resource":"*"}}`
			err = put("big", big)
			want := "Maximum policy size of 2048 bytes exceeded for user carol"
			if kind == "role" {
				want = "Maximum policy size of 10240 bytes exceeded for role ops"
			}
			WantErr(t, err, "LimitExceeded", want, 409)
			if err := del("A"); err != nil {
				t.Fatal(err)
			}
			WantErr(t, del("a"), "NoSuchEntity", fmt.Sprintf("The %s policy with name a cannot be found.", kind), 404)
			if got := list(); strings.Join(got, ",") != "b" {
				t.Fatalf("list after delete: %v", got)
			}
		})
	}
	_, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("ghost"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
	WantErr(t, err, "NoSuchEntity", "The user with name ghost cannot be found.", 404)
	_, err = c.ListRolePolicies(ctx, &awsiam.ListRolePoliciesInput{RoleName: aws.String("ghost")})
	WantErr(t, err, "NoSuchEntity", "The role with name ghost cannot be found.", 404)
}

func managedPolicies(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	c := e.IAM(e.Root)
	ctx := context.Background()
	out, err := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("TaskProtection"), Path: aws.String("/ecs/"),
		Description:    aws.String("lets a task protect itself"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	p := out.Policy
	arn := aws.ToString(p.Arn)
	if arn != "arn:aws:iam::123456789012:policy/ecs/TaskProtection" || !strings.HasPrefix(aws.ToString(p.PolicyId), "ANPA") ||
		aws.ToString(p.DefaultVersionId) != "v1" || !p.IsAttachable || aws.ToInt32(p.AttachmentCount) != 0 {
		t.Fatalf("CreatePolicy answered %+v", p)
	}
	_, err = c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("taskprotection"), PolicyDocument: aws.String(allowAll)})
	WantErr(t, err, "EntityAlreadyExists", "A policy called taskprotection already exists. Duplicate names are not allowed.", 409)
	_, err = c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("x"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`)})
	WantErr(t, err, "MalformedPolicyDocument", "Policy statement must contain actions.", 400)
	_, err = c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("x"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"UpdateService","Resource":"*"}}`)})
	WantErr(t, err, "MalformedPolicyDocument", "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.", 400)

	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("dave")}); err != nil {
		t.Fatal(err)
	}
	e.Role("ops", trustAccount, "")
	for range 2 { // attaching twice is not an error, nor a second attachment
		if _, err := c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("dave"), PolicyArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	g, err := c.GetPolicy(ctx, &awsiam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err != nil || aws.ToInt32(g.Policy.AttachmentCount) != 2 || aws.ToString(g.Policy.Description) != "lets a task protect itself" {
		t.Fatalf("GetPolicy: %+v %v", g, err)
	}
	_, err = c.GetPolicy(ctx, &awsiam.GetPolicyInput{PolicyArn: aws.String("arn:aws:iam::123456789012:policy/none")})
	WantErr(t, err, "NoSuchEntity", "Policy arn:aws:iam::123456789012:policy/none does not exist or is not attachable.", 404)
	_, err = c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("dave"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")})
	WantErr(t, err, "NoSuchEntity", "Policy arn:aws:iam::aws:policy/AdministratorAccess does not exist or is not attachable.", 404)

	la, err := c.ListAttachedUserPolicies(ctx, &awsiam.ListAttachedUserPoliciesInput{UserName: aws.String("dave")})
	if err != nil || len(la.AttachedPolicies) != 1 || aws.ToString(la.AttachedPolicies[0].PolicyName) != "TaskProtection" {
		t.Fatalf("ListAttachedUserPolicies: %+v %v", la, err)
	}
	lr, err := c.ListAttachedRolePolicies(ctx, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String("ops"), PathPrefix: aws.String("/other/")})
	if err != nil || len(lr.AttachedPolicies) != 0 {
		t.Fatalf("ListAttachedRolePolicies by path: %+v %v", lr, err)
	}

	_, err = c.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: aws.String(arn)})
	WantErr(t, err, "DeleteConflict", "Cannot delete a policy attached to entities.", 409)
	_, err = c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: aws.String("arn:aws:iam::123456789012:policy/none")})
	WantErr(t, err, "NoSuchEntity", "Policy arn:aws:iam::123456789012:policy/none was not found.", 404)
	for _, detach := range []func() error{
		func() error {
			_, err := c.DetachUserPolicy(ctx, &awsiam.DetachUserPolicyInput{UserName: aws.String("dave"), PolicyArn: aws.String(arn)})
			return err
		},
		func() error {
			_, err := c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: aws.String(arn)})
			return err
		},
	} {
		if err := detach(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: aws.String(arn)})
	WantErr(t, err, "NoSuchEntity", "", 404)

	// The attach quota: 20 managed policies per user.
	for i := range 21 {
		p, err := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String(fmt.Sprintf("q%d", i)), PolicyDocument: aws.String(allowAll)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("dave"), PolicyArn: p.Policy.Arn})
		if i < 20 && err != nil {
			t.Fatal(err)
		}
		if i == 20 {
			WantErr(t, err, "LimitExceeded", "Cannot exceed quota for PoliciesPerUser: 20", 409)
		}
	}
}

func getCallerIdentity(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	ctx := context.Background()
	id, err := e.STS(e.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::123456789012:root" || aws.ToString(id.Account) != account ||
		aws.ToString(id.UserId) != account {
		t.Fatalf("root: %+v %v", id, err)
	}
	// No permission is needed, not even for a user without policies.
	dan := e.User("dan", "")
	id, err = e.STS(dan).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::123456789012:user/dan" || !strings.HasPrefix(aws.ToString(id.UserId), "AIDA") {
		t.Fatalf("user: %+v %v", id, err)
	}
	roleArn := e.Role("ops", trustAccount, "")
	if _, err := e.IAM(e.Root).PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("dan"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}`)}); err != nil {
		t.Fatal(err)
	}
	session := e.Assume(dan, roleArn, "dan-session")
	id, err = e.STS(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	g, _ := e.IAM(e.Root).GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("ops")})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::123456789012:assumed-role/ops/dan-session" ||
		aws.ToString(id.UserId) != aws.ToString(g.Role.RoleId)+":dan-session" {
		t.Fatalf("assumed role: %+v %v", id, err)
	}
}

func assumeRole(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	ctx := context.Background()
	c := e.IAM(e.Root)
	accountRole := e.Role("by-account", trustAccount, "")
	eve := e.User("eve", "")
	namedRole := e.Role("by-name", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/eve"},"Action":"sts:AssumeRole"}]}`, "")
	tasksRole := e.Role("tasks", trustTasks, "")

	// The root may not assume roles, as on AWS.
	_, err := e.STS(e.Root).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0")})
	WantErr(t, err, "AccessDenied", "Roles may not be assumed by root accounts.", 403)

	// A trust policy that names the account needs the caller's own
	// sts:AssumeRole permission too.
	_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0")})
	WantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/eve is not authorized to perform: sts:AssumeRole on resource: "+
		accountRole+" because no identity-based policy allows the sts:AssumeRole action", 403)
	// One that names the user itself does not.
	out, err := e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(namedRole), RoleSessionName: aws.String("direct")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/by-name/direct" ||
		!strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || aws.ToString(out.Credentials.SessionToken) == "" ||
		!strings.HasSuffix(aws.ToString(out.AssumedRoleUser.AssumedRoleId), ":direct") {
		t.Fatalf("AssumeRole answered %+v %+v", out.AssumedRoleUser, out.Credentials)
	}
	if got := out.Credentials.Expiration.Sub(e.now()); got < 3599*time.Second || got > 3600*time.Second {
		t.Errorf("default session lasts %v, want one hour", got)
	}

	// With the permission, the account's trust policy admits eve.
	if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("eve"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/by-*"},
			{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/by-name"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0")}); err != nil {
		t.Fatal(err)
	}
	// An explicit deny wins even over a trust policy naming the user.
	_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(namedRole), RoleSessionName: aws.String("s0")})
	WantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/eve is not authorized to perform: sts:AssumeRole on resource: "+
		namedRole+" with an explicit deny in an identity-based policy", 403)
	// A role whose trust policy does not admit the caller, and a role that
	// does not exist, are refused alike.
	for _, arn := range []string{tasksRole, "arn:aws:iam::123456789012:role/ghost"} {
		_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("s0")})
		WantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/eve is not authorized to perform: sts:AssumeRole on resource: "+arn, 403)
	}

	// Validation and durations.
	_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("bad name")})
	WantErr(t, err, "ValidationError", `1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy constraint: `+
		`Member must satisfy regular expression pattern: [\w+=,.@-]*`, 400)
	_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(7200)})
	WantErr(t, err, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", 400)
	_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(60)})
	WantErr(t, err, "ValidationError", "1 validation error detected: Value '60' at 'durationSeconds' failed to satisfy constraint: "+
		"Member must have value greater than or equal to 900", 400)
	_, err = e.STS(eve).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(accountRole), RoleSessionName: aws.String("s0"), Policy: aws.String(allowAll)})
	WantErr(t, err, "ValidationError", "Session policies (Policy, PolicyArns) are not supported by holdfast.", 400)

	// Role chaining: a session may assume another role for at most an hour.
	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("tasks"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/by-account"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		t.Fatal(err)
	}
	session := e.Assume(eve, accountRole, "first")
	chained, err := e.STS(session).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tasksRole), RoleSessionName: aws.String("second")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(chained.AssumedRoleUser.Arn) != "arn:aws:sts::123456789012:assumed-role/tasks/second" {
		t.Fatalf("chained: %+v", chained.AssumedRoleUser)
	}
	_, err = e.STS(session).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tasksRole), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(3601)})
	WantErr(t, err, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.", 400)
}

func sessionCredentials(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	ctx := context.Background()
	roleArn := e.Role("worker", trustAccount, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}}`)
	frank := e.User("frank", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}`)
	out, err := e.STS(frank).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleArn), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	session := Creds{aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}

	// The session acts with the role's policies, not the user's.
	if _, err := e.IAM(session).ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil {
		t.Fatalf("role's permission: %v", err)
	}
	_, err = e.IAM(session).ListUsers(ctx, &awsiam.ListUsersInput{})
	WantErr(t, err, "AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/worker/s1 is not authorized to perform: iam:ListUsers "+
		"on resource: arn:aws:iam::123456789012:user/ because no identity-based policy allows the iam:ListUsers action", 403)
	// The session's token is checked: another session's, or none, is invalid.
	forged := session
	forged.Token = strings.Replace(session.Token, session.Token[:4], "AAAA", 1)
	_, err = e.IAM(forged).ListRoles(ctx, &awsiam.ListRolesInput{})
	WantErr(t, err, "InvalidClientTokenId", "The security token included in the request is invalid.", 403)
	_, err = e.IAM(Creds{session.ID, session.Secret, ""}).ListRoles(ctx, &awsiam.ListRolesInput{})
	WantErr(t, err, "InvalidClientTokenId", "", 403)
	_, err = e.IAM(Creds{session.ID, "wrong", session.Token}).ListRoles(ctx, &awsiam.ListRolesInput{})
	WantErr(t, err, "SignatureDoesNotMatch", "", 403)

	// Deleting the role ends its sessions.
	c := e.IAM(e.Root)
	doomedArn := e.Role("doomed", trustAccount, "")
	doomed := e.Assume(frank, doomedArn, "s2")
	if _, err := e.STS(doomed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("doomed")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.STS(doomed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	WantErr(t, err, "InvalidClientTokenId", "", 403)
	// A role created again under the same name does not revive them.
	e.Role("doomed", trustAccount, "")
	_, err = e.STS(doomed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	WantErr(t, err, "InvalidClientTokenId", "", 403)

	// A session survives a restart (the signing key is stored), and ends
	// at its expiry. (The SDK signs with the real clock: the fake one only
	// moves within SigV4's 15 minutes.)
	e.restart()
	if _, err := e.IAM(session).ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if e.target.Clock == nil {
		t.Log("the target has no fake identity clock: session expiry not checked")
		return
	}
	e.target.Clock.Advance(899 * time.Second)
	if _, err := e.IAM(session).ListRoles(ctx, &awsiam.ListRolesInput{}); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.target.Clock.Advance(time.Second)
	_, err = e.IAM(session).ListRoles(ctx, &awsiam.ListRolesInput{})
	WantErr(t, err, "ExpiredToken", "The security token included in the request is expired", 403)
	_, err = e.STS(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	WantErr(t, err, "ExpiredToken", "The security token included in the request is expired", 403)
}

// Every IAM action is enforced: a user is refused what its policies do not
// allow, with AWS's text naming the resource, and a policy change applies
// to the next call.
func iamPermissionsEnforced(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	ctx := context.Background()
	c := e.IAM(e.Root)
	gina := e.User("gina", "")
	g := e.IAM(gina)
	_, err := g.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("mallory"), Path: aws.String("/x/")})
	WantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: iam:CreateUser "+
		"on resource: arn:aws:iam::123456789012:user/x/mallory because no identity-based policy allows the iam:CreateUser action", 403)
	_, err = g.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("ghost")})
	WantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: iam:GetRole "+
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
	WantErr(t, err, "AccessDenied", "", 403)
	_, err = g.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("mallory")})
	WantErr(t, err, "AccessDenied", "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: iam:DeleteUser "+
		"on resource: arn:aws:iam::123456789012:user/x/mallory with an explicit deny in an identity-based policy", 403)
	tp, _ := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("TaskProtection"), PolicyDocument: aws.String(allowAll)})
	other, _ := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("Other"), PolicyDocument: aws.String(allowAll)})
	if _, err := g.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("mallory"), PolicyArn: tp.Policy.Arn}); err != nil {
		t.Fatalf("attach allowed by iam:PolicyARN: %v", err)
	}
	_, err = g.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("mallory2"), PolicyArn: other.Policy.Arn})
	WantErr(t, err, "AccessDenied", "", 403)

	// Detaching the policy takes effect on the next call.
	if _, err := c.DetachUserPolicy(ctx, &awsiam.DetachUserPolicyInput{UserName: aws.String("gina"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = g.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("mallory")})
	WantErr(t, err, "AccessDenied", "", 403)
}

// Requests authenticate and authorize while the policies they use are
// being changed: every answer is either allowed or AccessDenied, and the
// race detector sees the locking (run with -race).
func concurrentRequestsAndPolicyChanges(t *testing.T, start func(*testing.T) *Target) {
	e := newEnv(t, start)
	ctx := context.Background()
	ivy := e.User("ivy", "")
	pol, err := e.IAM(e.Root).CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("list"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for range 3 {
		go func() {
			c := e.IAM(ivy)
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
		c := e.IAM(e.Root)
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
	_, err = e.IAM(ivy).ListRoles(ctx, &awsiam.ListRolesInput{})
	WantErr(t, err, "AccessDenied", "", 403)
}
