// Package iam is the account's identity and access management: the IAM
// and STS API subset (users, access keys, roles with trust policies,
// inline and customer managed policies; GetCallerIdentity, AssumeRole),
// the credential source that resolves IAM users' keys and STS sessions to
// principals, and the authorizer that enforces their policies on every
// call of every service.
//
// # The model
//
// Users, access keys, roles, managed policies and the STS signing key are
// records of the state engine (internal/state; the kinds are in model.go),
// so they are durable, loaded at start, and visible to every replica that
// follows the store. Reads take a view; each operation validates and
// writes inside one state Update, which runs alone on the engine's apply
// loop, so a check (a name is free, a user has no keys left, a policy is
// not attached) and the write it guards cannot race; an error writes
// nothing, and the call is answered once the write is durable. Names of
// users, roles and policies are unique without regard to case, as in IAM.
//
// # Identities
//
//   - The root: the --access-key-id/--secret-access-key credentials
//     (api.Config.Credentials), arn:aws:iam::<account>:root, allowed
//     everything. It cannot assume roles, as on AWS.
//   - IAM users sign with their access keys (two at most, Active or
//     Inactive); their permissions are their inline and attached policies.
//   - Role sessions (AssumeRole) sign with temporary credentials and their
//     session token; their permissions are the role's policies. Sessions
//     are stateless: the token carries the session and an HMAC under the
//     account's STS signing key (a state record, so sessions
//     survive restarts); the secret is derived from the same key.
//     Deleting the role ends its sessions.
//
// LookupAccessKey resolves a key to an api.Principal whose Policies are a
// compiled *policy.Set, cached per user and role record (records are
// immutable, so a new record is a policy change); Authorizer evaluates it for each api.Action with the global
// condition keys (aws:username, aws:userid, aws:PrincipalArn,
// aws:PrincipalAccount, aws:PrincipalType, aws:SourceIp,
// aws:SecureTransport, aws:CurrentTime, aws:EpochTime) and the action's
// own (aws:RequestTag/*, aws:TagKeys, ecs:cluster, iam:PolicyARN...).
//
// # What each call is checked against
//
// IAM operations are checked on the user, role or policy they name (the
// caller's own user when UserName is omitted), ListUsers and ListRoles on
// arn:aws:iam::<account>:user<path prefix> (role...). ECSActions is the
// ECS map, from the Service Authorization Reference. GetCallerIdentity
// needs no permission; AssumeRole combines the role's trust policy with
// the caller's identity policies itself (see Service.assumeRole).
package iam
