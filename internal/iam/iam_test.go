package iam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

func TestUsers(t *testing.T) {
	e := newEnv(t)
	c := e.iam(root)
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
	wantErr(t, err, "EntityAlreadyExists", "User with name ALICE already exists.", 409)
	var exists *types.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("not a typed EntityAlreadyExistsException: %T", err)
	}
	_, err = c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("a b")})
	wantErr(t, err, "ValidationError", `1 validation error detected: Value 'a b' at 'userName' failed to satisfy constraint: `+
		`Member must satisfy regular expression pattern: [\w+=,.@-]+`, 400)
	_, err = c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(strings.Repeat("x", 65)), Path: aws.String("nope")})
	wantErr(t, err, "ValidationError", "", 400)
	if !strings.HasPrefix(err.Error(), "") || !strings.Contains(err.Error(), "2 validation errors detected") {
		t.Errorf("two violations: %v", err)
	}

	got, err := c.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("Alice")})
	if err != nil || aws.ToString(got.User.UserName) != "alice" || len(got.User.Tags) != 1 {
		t.Fatalf("GetUser: %+v %v", got, err)
	}
	_, err = c.GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("nobody")})
	wantErr(t, err, "NoSuchEntity", "The user with name nobody cannot be found.", 404)
	var nse *types.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("not a typed NoSuchEntityException: %T", err)
	}
	// The root without a user name gets the account's identity.
	me, err := c.GetUser(ctx, &awsiam.GetUserInput{})
	if err != nil || aws.ToString(me.User.Arn) != "arn:aws:iam::123456789012:root" || aws.ToString(me.User.UserId) != testAccount {
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
	wantErr(t, err, "ValidationError", "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: "+
		"Member must have value greater than or equal to 1", 400)
	_, err = c.ListUsers(ctx, &awsiam.ListUsersInput{Marker: aws.String("!!not-a-marker")})
	wantErr(t, err, "InvalidInput", "Invalid Marker.", 400)

	// DeleteUser refuses while keys and policies remain.
	key, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	wantErr(t, err, "DeleteConflict", "Cannot delete entity, must delete access keys first.", 409)
	if _, err := c.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: key.AccessKey.AccessKeyId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("p"), PolicyDocument: aws.String(allowAll)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	wantErr(t, err, "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
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
	wantErr(t, err, "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
	if _, err := c.DetachUserPolicy(ctx, &awsiam.DetachUserPolicyInput{UserName: aws.String("alice"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("alice")})
	wantErr(t, err, "NoSuchEntity", "The user with name alice cannot be found.", 404)
}

func TestAccessKeys(t *testing.T) {
	e := newEnv(t)
	c := e.iam(root)
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
	wantErr(t, err, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
	_, err = c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("nobody")})
	wantErr(t, err, "NoSuchEntity", "The user with name nobody cannot be found.", 404)
	// The root has no user to default to.
	_, err = c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{})
	wantErr(t, err, "ValidationError", "Must specify userName when calling with non-User credentials", 400)

	l, err := c.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("bob")})
	if err != nil || len(l.AccessKeyMetadata) != 2 {
		t.Fatalf("ListAccessKeys: %+v %v", l, err)
	}

	// A new key signs at once; an Inactive one is refused as IAM refuses
	// it, and comes back when reactivated; a deleted one is gone.
	bob := creds{aws.ToString(keys[0].AccessKeyId), aws.ToString(keys[0].SecretAccessKey), ""}
	if _, err := e.sts(bob).GetCallerIdentity(ctx, nil); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: keys[0].AccessKeyId,
		Status: types.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sts(bob).GetCallerIdentity(ctx, nil)
	wantErr(t, err, "InvalidClientTokenId", "The security token included in the request is invalid.", 403)
	l, _ = c.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("bob")})
	statuses := map[string]types.StatusType{}
	for _, m := range l.AccessKeyMetadata {
		statuses[aws.ToString(m.AccessKeyId)] = m.Status
	}
	if statuses[bob.id] != types.StatusTypeInactive {
		t.Errorf("statuses %v", statuses)
	}
	if _, err := c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: keys[0].AccessKeyId,
		Status: types.StatusTypeActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sts(bob).GetCallerIdentity(ctx, nil); err != nil {
		t.Fatalf("reactivated key: %v", err)
	}
	_, err = c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: aws.String("AKIAAAAAAAAAAAAAAAAA"),
		Status: types.StatusTypeActive})
	wantErr(t, err, "NoSuchEntity", "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.", 404)
	_, err = c.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("bob"), AccessKeyId: keys[0].AccessKeyId, Status: "Sleepy"})
	wantErr(t, err, "ValidationError", "1 validation error detected: Value 'Sleepy' at 'status' failed to satisfy constraint: "+
		"Member must satisfy enum value set: [Active, Inactive, Expired]", 400)

	// A user manages its own keys without naming itself.
	self := e.iam(bob)
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
	_, err = e.sts(creds{aws.ToString(keys[1].AccessKeyId), aws.ToString(keys[1].SecretAccessKey), ""}).GetCallerIdentity(ctx, nil)
	wantErr(t, err, "InvalidClientTokenId", "", 403)
	_, err = self.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{AccessKeyId: keys[1].AccessKeyId})
	wantErr(t, err, "NoSuchEntity", fmt.Sprintf("The Access Key with id %s cannot be found.", aws.ToString(keys[1].AccessKeyId)), 404)
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	c := e.iam(root)
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
	wantErr(t, err, "EntityAlreadyExists", "Role with name Worker already exists.", 409)
	for _, tc := range []struct{ doc, msg string }{
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`, "Missing required field Principal"},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/ghost"},"Action":"sts:AssumeRole"}]}`,
			`Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/ghost"`},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}`, "Has prohibited field Resource"},
		{`{"Version":"2012-10-17",`, "Syntax errors in policy."},
	} {
		_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("bad"), AssumeRolePolicyDocument: aws.String(tc.doc)})
		wantErr(t, err, "MalformedPolicyDocument", tc.msg, 400)
	}
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("big"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"` + strings.Repeat("x", 2100) + `","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`)})
	wantErr(t, err, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048", 409)
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("short"), AssumeRolePolicyDocument: aws.String(trustTasks), MaxSessionDuration: aws.Int32(60)})
	wantErr(t, err, "ValidationError", "1 validation error detected: Value '60' at 'maxSessionDuration' failed to satisfy constraint: "+
		"Member must have value greater than or equal to 3600", 400)

	g, err := c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("WORKER")})
	if err != nil || aws.ToString(g.Role.RoleName) != "worker" {
		t.Fatalf("GetRole: %+v %v", g, err)
	}
	_, err = c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("ghost")})
	wantErr(t, err, "NoSuchEntity", "The role with name ghost cannot be found.", 404)

	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("worker"), PolicyDocument: aws.String(trustAccount)}); err != nil {
		t.Fatal(err)
	}
	g, _ = c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("worker")})
	if decodeDoc(t, aws.ToString(g.Role.AssumeRolePolicyDocument)) != trustAccount {
		t.Errorf("trust policy not updated: %s", aws.ToString(g.Role.AssumeRolePolicyDocument))
	}
	_, err = c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("worker"), PolicyDocument: aws.String(`{"Statement":[]}`)})
	wantErr(t, err, "MalformedPolicyDocument", "Syntax errors in policy.", 400)
	_, err = c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("ghost"), PolicyDocument: aws.String(trustAccount)})
	wantErr(t, err, "NoSuchEntity", "The role with name ghost cannot be found.", 404)

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
	wantErr(t, err, "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
	if _, err := c.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String("worker"), PolicyName: aws.String("P")}); err != nil {
		t.Fatal(err)
	}
	pol, _ := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("mp"), PolicyDocument: aws.String(allowAll)})
	if _, err := c.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("worker"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")})
	wantErr(t, err, "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
	if _, err := c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("worker"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("worker")})
	wantErr(t, err, "NoSuchEntity", "The role with name worker cannot be found.", 404)
}

func TestInlinePolicies(t *testing.T) {
	e := newEnv(t)
	c := e.iam(root)
	ctx := context.Background()
	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("carol")}); err != nil {
		t.Fatal(err)
	}
	e.role("ops", trustAccount, "")
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
			wantErr(t, err, "NoSuchEntity", fmt.Sprintf("The %s policy with name zz cannot be found.", kind), 404)
			err = put("bad", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*"}}`)
			wantErr(t, err, "MalformedPolicyDocument", "Policy statement must contain resources.", 400)
			err = put("bad", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecs:*","Resource":"*"}}`)
			wantErr(t, err, "MalformedPolicyDocument", "Policy document should not specify a principal.", 400)
			big := `{"Version":"2012-10-17","Statement":{"Sid":"` + strings.Repeat("x", 10300) + `","Effect":"Allow","Action":"ecs:*","Resource":"*"}}`
			err = put("big", big)
			want := "Maximum policy size of 2048 bytes exceeded for user carol"
			if kind == "role" {
				want = "Maximum policy size of 10240 bytes exceeded for role ops"
			}
			wantErr(t, err, "LimitExceeded", want, 409)
			if err := del("A"); err != nil {
				t.Fatal(err)
			}
			wantErr(t, del("a"), "NoSuchEntity", fmt.Sprintf("The %s policy with name a cannot be found.", kind), 404)
			if got := list(); strings.Join(got, ",") != "b" {
				t.Fatalf("list after delete: %v", got)
			}
		})
	}
	_, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("ghost"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
	wantErr(t, err, "NoSuchEntity", "The user with name ghost cannot be found.", 404)
	_, err = c.ListRolePolicies(ctx, &awsiam.ListRolePoliciesInput{RoleName: aws.String("ghost")})
	wantErr(t, err, "NoSuchEntity", "The role with name ghost cannot be found.", 404)
}

func TestManagedPolicies(t *testing.T) {
	e := newEnv(t)
	c := e.iam(root)
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
	wantErr(t, err, "EntityAlreadyExists", "A policy called taskprotection already exists. Duplicate names are not allowed.", 409)
	_, err = c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("x"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`)})
	wantErr(t, err, "MalformedPolicyDocument", "Policy statement must contain actions.", 400)
	_, err = c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("x"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"UpdateService","Resource":"*"}}`)})
	wantErr(t, err, "MalformedPolicyDocument", "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.", 400)

	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("dave")}); err != nil {
		t.Fatal(err)
	}
	e.role("ops", trustAccount, "")
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
	wantErr(t, err, "NoSuchEntity", "Policy arn:aws:iam::123456789012:policy/none does not exist or is not attachable.", 404)
	_, err = c.AttachUserPolicy(ctx, &awsiam.AttachUserPolicyInput{UserName: aws.String("dave"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")})
	wantErr(t, err, "NoSuchEntity", "Policy arn:aws:iam::aws:policy/AdministratorAccess does not exist or is not attachable.", 404)

	la, err := c.ListAttachedUserPolicies(ctx, &awsiam.ListAttachedUserPoliciesInput{UserName: aws.String("dave")})
	if err != nil || len(la.AttachedPolicies) != 1 || aws.ToString(la.AttachedPolicies[0].PolicyName) != "TaskProtection" {
		t.Fatalf("ListAttachedUserPolicies: %+v %v", la, err)
	}
	lr, err := c.ListAttachedRolePolicies(ctx, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String("ops"), PathPrefix: aws.String("/other/")})
	if err != nil || len(lr.AttachedPolicies) != 0 {
		t.Fatalf("ListAttachedRolePolicies by path: %+v %v", lr, err)
	}

	_, err = c.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: aws.String(arn)})
	wantErr(t, err, "DeleteConflict", "Cannot delete a policy attached to entities.", 409)
	_, err = c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("ops"), PolicyArn: aws.String("arn:aws:iam::123456789012:policy/none")})
	wantErr(t, err, "NoSuchEntity", "Policy arn:aws:iam::123456789012:policy/none was not found.", 404)
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
	wantErr(t, err, "NoSuchEntity", "", 404)

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
			wantErr(t, err, "LimitExceeded", "Cannot exceed quota for PoliciesPerUser: 20", 409)
		}
	}
}
