package iam

import (
	"context"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/state"
)

// target is what the IAM operations name: decoded from any operation's
// parameters to find the resource its action is checked against.
type target struct {
	UserName   *string
	RoleName   *string
	PolicyArn  *string
	PolicyName *string
	Path       *string
	PathPrefix *string
	Tags       []Tag
}

// resourceKind is what an IAM operation acts on, per the Service
// Authorization Reference ("Actions, resources, and condition keys for
// AWS Identity and Access Management").
type resourceKind int

const (
	onUser      resourceKind = iota // user* (the caller's own user when UserName is omitted)
	onRole                          // role*
	onPolicy                        // policy* by PolicyArn
	onNewPolicy                     // policy* from Path and PolicyName
	onUsers                         // ListUsers: arn:aws:iam::<account>:user<path prefix>
	onRoles                         // ListRoles
)

// iamAction is the ActionFunc of an IAM operation: "iam:<op>" on its
// resource, with aws:RequestTag/* and aws:TagKeys for the tags it sets and
// iam:PolicyARN for attach and detach.
func (s *Service) iamAction(op string, kind resourceKind) api.ActionFunc {
	return func(ctx context.Context, body []byte) (api.Action, error) {
		var t target
		if err := api.DecodeRequest(ctx, body, &t); err != nil {
			return api.Action{}, err
		}
		a := api.Action{Name: "iam:" + op, Context: tagContext(t.Tags)}
		var res string
		switch kind {
		case onUser:
			res = s.userResource(ctx, t.UserName)
			if op == "CreateUser" && t.UserName != nil {
				path := "/"
				if t.Path != nil {
					path = *t.Path
				}
				res = s.userARN(path, *t.UserName)
			}
		case onRole:
			name := ""
			if t.RoleName != nil {
				name = *t.RoleName
			}
			path := "/"
			if op == "CreateRole" && t.Path != nil {
				path = *t.Path
			}
			if op != "CreateRole" {
				s.view(func(r state.Reader) {
					if ro := Roles.Get(r, lowerName(name)); ro != nil {
						path, name = ro.Path, ro.Name
					}
				})
			}
			res = s.roleARN(path, name)
		case onPolicy:
			if t.PolicyArn != nil {
				res = *t.PolicyArn
			}
		case onNewPolicy:
			path, name := "/", ""
			if t.Path != nil {
				path = *t.Path
			}
			if t.PolicyName != nil {
				name = *t.PolicyName
			}
			res = s.policyARN(path, name)
		case onUsers, onRoles:
			prefix := "/"
			if t.PathPrefix != nil {
				prefix = *t.PathPrefix
			}
			typ := "user"
			if kind == onRoles {
				typ = "role"
			}
			res = "arn:aws:iam::" + s.account + ":" + typ + prefix
		}
		a.Resources = []string{res}
		if (kind == onUser || kind == onRole) && t.PolicyArn != nil {
			if a.Context == nil {
				a.Context = map[string][]string{}
			}
			a.Context["iam:PolicyARN"] = []string{*t.PolicyArn}
		}
		return a, nil
	}
}

func (s *Service) iamOperations() map[string]api.Operation {
	op := func(name string, kind resourceKind, h api.Handler) api.Operation {
		return api.Operation{Handler: h, Action: s.iamAction(name, kind)}
	}
	ops := map[string]api.Operation{
		"CreateUser":      op("CreateUser", onUser, api.Op(s.createUser)),
		"GetUser":         op("GetUser", onUser, api.Op(s.getUser)),
		"ListUsers":       op("ListUsers", onUsers, api.Op(s.listUsers)),
		"DeleteUser":      op("DeleteUser", onUser, api.Op(s.deleteUser)),
		"CreateAccessKey": op("CreateAccessKey", onUser, api.Op(s.createAccessKey)),
		"ListAccessKeys":  op("ListAccessKeys", onUser, api.Op(s.listAccessKeys)),
		"UpdateAccessKey": op("UpdateAccessKey", onUser, api.Op(s.updateAccessKey)),
		"DeleteAccessKey": op("DeleteAccessKey", onUser, api.Op(s.deleteAccessKey)),

		"CreateRole":             op("CreateRole", onRole, api.Op(s.createRole)),
		"GetRole":                op("GetRole", onRole, api.Op(s.getRole)),
		"ListRoles":              op("ListRoles", onRoles, api.Op(s.listRoles)),
		"DeleteRole":             op("DeleteRole", onRole, api.Op(s.deleteRole)),
		"UpdateAssumeRolePolicy": op("UpdateAssumeRolePolicy", onRole, api.Op(s.updateAssumeRolePolicy)),

		"CreatePolicy": op("CreatePolicy", onNewPolicy, api.Op(s.createPolicy)),
		"GetPolicy":    op("GetPolicy", onPolicy, api.Op(s.getPolicy)),
		"DeletePolicy": op("DeletePolicy", onPolicy, api.Op(s.deletePolicy)),
	}
	for _, kind := range []struct {
		name string
		on   resourceKind
	}{{"User", onUser}, {"Role", onRole}} {
		lower := "user"
		if kind.name == "Role" {
			lower = "role"
		}
		ops["Put"+kind.name+"Policy"] = op("Put"+kind.name+"Policy", kind.on, api.Op(s.putInlinePolicy(lower)))
		ops["Get"+kind.name+"Policy"] = op("Get"+kind.name+"Policy", kind.on, api.Op(s.getInlinePolicy(lower)))
		ops["Delete"+kind.name+"Policy"] = op("Delete"+kind.name+"Policy", kind.on, api.Op(s.deleteInlinePolicy(lower)))
		ops["List"+kind.name+"Policies"] = op("List"+kind.name+"Policies", kind.on, api.Op(s.listInlinePolicies(lower)))
		ops["Attach"+kind.name+"Policy"] = op("Attach"+kind.name+"Policy", kind.on, api.Op(s.attachPolicy(lower)))
		ops["Detach"+kind.name+"Policy"] = op("Detach"+kind.name+"Policy", kind.on, api.Op(s.detachPolicy(lower)))
		ops["ListAttached"+kind.name+"Policies"] = op("ListAttached"+kind.name+"Policies", kind.on, api.Op(s.listAttachedPolicies(lower)))
	}
	return ops
}

func (s *Service) stsOperations() map[string]api.Operation {
	return map[string]api.Operation{
		// GetCallerIdentity needs no permission (as on AWS); AssumeRole
		// makes its own check, which combines the role's trust policy with
		// the caller's identity-based policies.
		"GetCallerIdentity": {Handler: api.Op(s.getCallerIdentity), Unauthorized: true},
		"AssumeRole":        {Handler: api.Op(s.assumeRole), Unauthorized: true},
	}
}
