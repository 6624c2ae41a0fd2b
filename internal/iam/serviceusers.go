package iam

import (
	"context"
	"crypto/subtle"

	"github.com/holdfast/holdfast/internal/iam/policy"
	"github.com/holdfast/holdfast/internal/state"
)

// Identities holdfast makes for its own parts (its agents): ordinary IAM
// users, visible to ListUsers and GetUser under their path, with an inline
// policy and an access key, created and removed by the control plane
// rather than through the API.

// UserKey is a user's access key.
type UserKey struct {
	UserARN         string
	AccessKeyID     string
	SecretAccessKey string
}

// CreateServiceUser creates the user name at path with the inline policy
// policyName and one access key, in one write. EntityAlreadyExists if the
// name is taken; MalformedPolicyDocument for a bad policy.
func (s *Service) CreateServiceUser(ctx context.Context, path, name, policyName, policyDoc string) (UserKey, error) {
	if _, err := s.parse(policyDoc, policy.Identity); err != nil {
		return UserKey{}, err
	}
	u := &User{Name: name, Path: path, ID: genID("AIDA", 17), CreateDate: s.now(), Inline: map[string]string{policyName: policyDoc}}
	k := &AccessKey{ID: genID("AKIA", 16), UserName: name, Secret: genSecret(), Status: "Active", CreateDate: s.now()}
	err := s.update(ctx, func(tx *state.Tx) error {
		if Users.Get(tx, lowerName(name)) != nil {
			return entityExists("User with name %s already exists.", name)
		}
		Users.Put(tx, u)
		AccessKeys.Put(tx, k)
		return nil
	})
	if err != nil {
		return UserKey{}, err
	}
	return UserKey{UserARN: s.userARN(path, name), AccessKeyID: k.ID, SecretAccessKey: k.Secret}, nil
}

// AddUserKey creates another access key for the user name (LimitExceeded
// at two).
func (s *Service) AddUserKey(ctx context.Context, name string) (UserKey, error) {
	out, err := s.createAccessKey(ctx, userNameInput{UserName: &name})
	if err != nil {
		return UserKey{}, err
	}
	var arn string
	s.view(func(r state.Reader) {
		if u := Users.Get(r, lowerName(name)); u != nil {
			arn = s.userARN(u.Path, u.Name)
		}
	})
	return UserKey{UserARN: arn, AccessKeyID: out.AccessKey.AccessKeyID, SecretAccessKey: out.AccessKey.SecretAccessKey}, nil
}

// OldestActiveKey returns the user's oldest active access key, if it has
// one.
func (s *Service) OldestActiveKey(name string) (UserKey, bool) {
	var best *AccessKey
	var arn string
	s.view(func(r state.Reader) {
		u := Users.Get(r, lowerName(name))
		if u == nil {
			return
		}
		arn = s.userARN(u.Path, u.Name)
		for _, k := range keysByUser.Group(r, lowerName(name)) {
			if k.Status == "Active" && (best == nil || k.CreateDate.Before(best.CreateDate) ||
				k.CreateDate.Equal(best.CreateDate) && k.ID < best.ID) {
				best = k
			}
		}
	})
	if best == nil {
		return UserKey{}, false
	}
	return UserKey{UserARN: arn, AccessKeyID: best.ID, SecretAccessKey: best.Secret}, true
}

// UserKeyActive reports whether accessKeyID is an active access key of the
// user name, with that secret.
func (s *Service) UserKeyActive(name, accessKeyID, secret string) bool {
	ok := false
	s.view(func(r state.Reader) {
		k := AccessKeys.Get(r, accessKeyID)
		ok = k != nil && k.Status == "Active" && lowerName(k.UserName) == lowerName(name) &&
			subtle.ConstantTimeCompare([]byte(k.Secret), []byte(secret)) == 1
	})
	return ok
}

// UserExists reports whether the user name exists.
func (s *Service) UserExists(name string) bool {
	ok := false
	s.view(func(r state.Reader) { ok = Users.Get(r, lowerName(name)) != nil })
	return ok
}

// DeleteServiceUser deletes the user name with its access keys and inline
// policies; a missing user is not an error. It refuses (DeleteConflict) a
// user with attached managed policies: not one holdfast made.
func (s *Service) DeleteServiceUser(ctx context.Context, name string) error {
	return s.update(ctx, func(tx *state.Tx) error {
		u := Users.Get(tx, lowerName(name))
		if u == nil {
			return nil
		}
		if len(u.Attached) > 0 {
			return deleteConflict(msgDetachPoliciesFirst)
		}
		for _, id := range keysByUser.Keys(tx, lowerName(name)) {
			AccessKeys.Delete(tx, id)
		}
		Users.Delete(tx, lowerName(name))
		return nil
	})
}

// UserARNOf returns the ARN of the user name ("" if there is none).
func (s *Service) UserARNOf(name string) string {
	arn := ""
	s.view(func(r state.Reader) {
		if u := Users.Get(r, lowerName(name)); u != nil {
			arn = s.userARN(u.Path, u.Name)
		}
	})
	return arn
}
