package iam

import (
	"context"
	"encoding/base64"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/api/awsquery"
	"github.com/holdfast/holdfast/internal/state"
)

// The XML shapes of the IAM responses (member names from iam-service-2.json).

type xmlUser struct {
	Path       string              `xml:"Path"`
	UserName   string              `xml:"UserName"`
	UserID     string              `xml:"UserId"`
	Arn        string              `xml:"Arn"`
	CreateDate time.Time           `xml:"CreateDate"`
	Tags       *awsquery.List[Tag] `xml:"Tags,omitempty"`
}

func (s *Service) xmlUser(u *User, withTags bool) xmlUser {
	x := xmlUser{Path: u.Path, UserName: u.Name, UserID: u.ID, Arn: s.userARN(u.Path, u.Name), CreateDate: u.CreateDate}
	if withTags {
		x.Tags = tagList(u.Tags)
	}
	return x
}

// tagList is the Tags member of a response: absent when there are none.
func tagList(tags []Tag) *awsquery.List[Tag] {
	if len(tags) == 0 {
		return nil
	}
	l := awsquery.ListOf(tags)
	return &l
}

type userResult struct {
	User xmlUser `xml:"User"`
}

type listUsersResult struct {
	Users       awsquery.List[xmlUser] `xml:"Users"`
	IsTruncated bool                   `xml:"IsTruncated"`
	Marker      string                 `xml:"Marker,omitempty"`
}

type xmlAccessKey struct {
	UserName        string    `xml:"UserName"`
	AccessKeyID     string    `xml:"AccessKeyId"`
	Status          string    `xml:"Status"`
	SecretAccessKey string    `xml:"SecretAccessKey"`
	CreateDate      time.Time `xml:"CreateDate"`
}

type createAccessKeyResult struct {
	AccessKey xmlAccessKey `xml:"AccessKey"`
}

type xmlAccessKeyMetadata struct {
	UserName    string    `xml:"UserName"`
	AccessKeyID string    `xml:"AccessKeyId"`
	Status      string    `xml:"Status"`
	CreateDate  time.Time `xml:"CreateDate"`
}

type listAccessKeysResult struct {
	AccessKeyMetadata awsquery.List[xmlAccessKeyMetadata] `xml:"AccessKeyMetadata"`
	IsTruncated       bool                                `xml:"IsTruncated"`
	Marker            string                              `xml:"Marker,omitempty"`
}

// Inputs (Query parameter names are the field names).

type createUserInput struct {
	UserName            *string
	Path                *string
	PermissionsBoundary *string
	Tags                []Tag
}

type userNameInput struct {
	UserName *string
}

type listInput struct {
	PathPrefix *string
	Marker     *string
	MaxItems   *int32
}

type accessKeyInput struct {
	UserName    *string
	AccessKeyID *string `query:"AccessKeyId"`
	Status      *string
}

// page cuts a sorted list of keys at an opaque marker (the next key,
// base64) and MaxItems (default 100).
func page[T any](items []T, key func(T) string, marker *string, maxItems *int32) ([]T, bool, string, error) {
	start := 0
	if marker != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*marker)
		if err != nil {
			return nil, false, "", invalidInput("Invalid Marker.")
		}
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) >= string(raw) })
	}
	n := 100
	if maxItems != nil {
		n = int(*maxItems)
	}
	rest := items[start:]
	if len(rest) <= n {
		return rest, false, "", nil
	}
	return rest[:n], true, base64.RawURLEncoding.EncodeToString([]byte(key(rest[n]))), nil
}

// callerUserName resolves an omitted UserName to the calling IAM user, as
// IAM does for its "own user" operations.
func callerUserName(ctx context.Context, name *string) (string, error) {
	if name != nil {
		return *name, nil
	}
	p, _ := api.PrincipalFrom(ctx)
	if p.Type != api.PrincipalUser {
		return "", validationError("Must specify userName when calling with non-User credentials")
	}
	return p.UserName, nil
}

// userResource is the ARN an action on a user is checked against: the
// user's own ARN (with its path) when it exists.
func (s *Service) userResource(ctx context.Context, name *string) string {
	if name == nil {
		if p, ok := api.PrincipalFrom(ctx); ok && p.Type == api.PrincipalUser {
			return p.ARN
		}
		if p, ok := api.PrincipalFrom(ctx); ok && p.Type == api.PrincipalRoot {
			return p.ARN
		}
		return s.userARN("/", "")
	}
	arn := s.userARN("/", *name)
	s.view(func(r state.Reader) {
		if u := Users.Get(r, lowerName(*name)); u != nil {
			arn = s.userARN(u.Path, u.Name)
		}
	})
	return arn
}

func tagContext(tags []Tag) map[string][]string {
	if len(tags) == 0 {
		return nil
	}
	c := map[string][]string{}
	for _, t := range tags {
		c["aws:RequestTag/"+t.Key] = []string{t.Value}
		c["aws:TagKeys"] = append(c["aws:TagKeys"], t.Key)
	}
	return c
}

// entityPath is the path of a new user or role ("/" by default); a
// permissions boundary is refused, as holdfast does not evaluate them.
func entityPath(path, boundary *string) (string, error) {
	if boundary != nil {
		return "", invalidInput("Permissions boundaries are not supported by holdfast.")
	}
	if path == nil {
		return "/", nil
	}
	return *path, nil
}

func (s *Service) createUser(ctx context.Context, in createUserInput) (*userResult, error) {
	var v validator
	v.name("UserName", in.UserName, 64)
	v.path("Path", in.Path)
	v.tags(in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	path, err := entityPath(in.Path, in.PermissionsBoundary)
	if err != nil {
		return nil, err
	}
	u := &User{Name: *in.UserName, Path: path, ID: genID("AIDA", 17), CreateDate: s.now(), Tags: in.Tags}
	err = s.update(ctx, func(tx *state.Tx) error {
		if Users.Get(tx, lowerName(u.Name)) != nil {
			return entityExists("User with name %s already exists.", *in.UserName)
		}
		Users.Put(tx, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &userResult{User: s.xmlUser(u, true)}, nil
}

func (s *Service) getUser(ctx context.Context, in userNameInput) (*userResult, error) {
	var v validator
	v.str("UserName", in.UserName, 1, 128, reName, `[\w+=,.@-]+`)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.UserName == nil {
		if p, _ := api.PrincipalFrom(ctx); p.Type == api.PrincipalRoot {
			// The root has no IAM user; GetUser answers with the account.
			return &userResult{User: xmlUser{Path: "/", UserID: p.Account, Arn: p.ARN}}, nil
		}
	}
	name, err := callerUserName(ctx, in.UserName)
	if err != nil {
		return nil, err
	}
	var u *User
	s.view(func(r state.Reader) { u = Users.Get(r, lowerName(name)) })
	if u == nil {
		return nil, noSuchEntity("The user with name %s cannot be found.", name)
	}
	return &userResult{User: s.xmlUser(u, true)}, nil
}

func (s *Service) listUsers(ctx context.Context, in listInput) (*listUsersResult, error) {
	got, truncated, marker, err := listByPath(s, in, Users, func(u *User) string { return u.Path })
	if err != nil {
		return nil, err
	}
	out := &listUsersResult{IsTruncated: truncated, Marker: marker}
	for _, u := range got {
		out.Users.Member = append(out.Users.Member, s.xmlUser(u, false))
	}
	return out, nil
}

// listByPath is ListUsers and ListRoles: the page of the records of kind
// (keyed by lower-cased name, listed in that order) whose path starts with
// the PathPrefix.
func listByPath[T any](s *Service, in listInput, kind *state.Kind[T], path func(*T) string) ([]*T, bool, string, error) {
	var v validator
	v.str("PathPrefix", in.PathPrefix, 1, 512, rePathPrefix, `\u002F[\u0021-\u007F]*`)
	v.listParams(in.Marker, in.MaxItems)
	if err := v.err(); err != nil {
		return nil, false, "", err
	}
	type named struct {
		key string
		v   *T
	}
	var all []named
	s.view(func(r state.Reader) {
		for k, e := range kind.All(r) {
			if in.PathPrefix == nil || strings.HasPrefix(path(e), *in.PathPrefix) {
				all = append(all, named{k, e})
			}
		}
	})
	sort.Slice(all, func(i, j int) bool { return all[i].key < all[j].key })
	got, truncated, marker, err := page(all, func(n named) string { return n.key }, in.Marker, in.MaxItems)
	out := make([]*T, len(got))
	for i, n := range got {
		out[i] = n.v
	}
	return out, truncated, marker, err
}

func (s *Service) deleteUser(ctx context.Context, in userNameInput) (any, error) {
	var v validator
	v.name("UserName", in.UserName, 64)
	if err := v.err(); err != nil {
		return nil, err
	}
	return nil, s.update(ctx, func(tx *state.Tx) error {
		h, err := s.holder(tx, "user", *in.UserName)
		if err != nil {
			return err
		}
		if keysByUser.Len(tx, lowerName(h.name)) > 0 {
			return deleteConflict(msgDeleteKeysFirst)
		}
		return h.delete(tx)
	})
}

func (s *Service) createAccessKey(ctx context.Context, in userNameInput) (*createAccessKeyResult, error) {
	var v validator
	v.str("UserName", in.UserName, 1, 128, reName, `[\w+=,.@-]+`)
	if err := v.err(); err != nil {
		return nil, err
	}
	name, err := callerUserName(ctx, in.UserName)
	if err != nil {
		return nil, err
	}
	k := &AccessKey{ID: genID("AKIA", 16), Secret: genSecret(), Status: "Active", CreateDate: s.now()}
	err = s.update(ctx, func(tx *state.Tx) error {
		u := Users.Get(tx, lowerName(name))
		if u == nil {
			return noSuchEntity("The user with name %s cannot be found.", name)
		}
		if keysByUser.Len(tx, lowerName(u.Name)) >= maxAccessKeysPerUser {
			return limitExceeded("Cannot exceed quota for AccessKeysPerUser: %d", maxAccessKeysPerUser)
		}
		k.UserName = u.Name
		AccessKeys.Put(tx, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &createAccessKeyResult{AccessKey: xmlAccessKey{UserName: k.UserName, AccessKeyID: k.ID, Status: k.Status,
		SecretAccessKey: k.Secret, CreateDate: k.CreateDate}}, nil
}

func (s *Service) listAccessKeys(ctx context.Context, in struct {
	UserName *string
	Marker   *string
	MaxItems *int32
}) (*listAccessKeysResult, error) {
	var v validator
	v.str("UserName", in.UserName, 1, 128, reName, `[\w+=,.@-]+`)
	v.listParams(in.Marker, in.MaxItems)
	if err := v.err(); err != nil {
		return nil, err
	}
	name, err := callerUserName(ctx, in.UserName)
	if err != nil {
		return nil, err
	}
	var u *User
	var keys []*AccessKey
	s.view(func(r state.Reader) {
		if u = Users.Get(r, lowerName(name)); u != nil {
			for _, k := range keysByUser.Group(r, lowerName(u.Name)) {
				keys = append(keys, k)
			}
		}
	})
	if u == nil {
		return nil, noSuchEntity("The user with name %s cannot be found.", name)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ID < keys[j].ID })
	got, truncated, marker, err := page(keys, func(k *AccessKey) string { return k.ID }, in.Marker, in.MaxItems)
	if err != nil {
		return nil, err
	}
	out := &listAccessKeysResult{IsTruncated: truncated, Marker: marker}
	for _, k := range got {
		out.AccessKeyMetadata.Member = append(out.AccessKeyMetadata.Member,
			xmlAccessKeyMetadata{UserName: k.UserName, AccessKeyID: k.ID, Status: k.Status, CreateDate: k.CreateDate})
	}
	return out, nil
}

// userKey finds the access key id of the user (the caller when name is nil).
func (s *Service) userKey(ctx context.Context, r state.Reader, name, id *string) (*AccessKey, error) {
	user, err := callerUserName(ctx, name)
	if err != nil {
		return nil, err
	}
	if Users.Get(r, lowerName(user)) == nil {
		return nil, noSuchEntity("The user with name %s cannot be found.", user)
	}
	k := AccessKeys.Get(r, *id)
	if k == nil || !strings.EqualFold(k.UserName, user) {
		return nil, noSuchEntity("The Access Key with id %s cannot be found.", *id)
	}
	return k, nil
}

func (s *Service) validateKeyInput(in accessKeyInput, withStatus bool) error {
	var v validator
	v.str("UserName", in.UserName, 1, 128, reName, `[\w+=,.@-]+`)
	v.required("AccessKeyId", in.AccessKeyID != nil)
	v.str("AccessKeyId", in.AccessKeyID, 16, 128, reKeyID, `[\w]+`)
	if withStatus {
		v.required("Status", in.Status != nil)
		if in.Status != nil && !slices.Contains([]string{"Active", "Inactive", "Expired"}, *in.Status) {
			v.fail(*in.Status, "Status", "Member must satisfy enum value set: [Active, Inactive, Expired]")
		}
	}
	return v.err()
}

func (s *Service) updateAccessKey(ctx context.Context, in accessKeyInput) (any, error) {
	if err := s.validateKeyInput(in, true); err != nil {
		return nil, err
	}
	if *in.Status == "Expired" {
		return nil, invalidInput("Status Expired cannot be set; use Active or Inactive.")
	}
	return nil, s.update(ctx, func(tx *state.Tx) error {
		k, err := s.userKey(ctx, tx, in.UserName, in.AccessKeyID)
		if err != nil {
			return err
		}
		updated := *k
		updated.Status = *in.Status
		AccessKeys.Put(tx, &updated)
		return nil
	})
}

func (s *Service) deleteAccessKey(ctx context.Context, in accessKeyInput) (any, error) {
	if err := s.validateKeyInput(in, false); err != nil {
		return nil, err
	}
	return nil, s.update(ctx, func(tx *state.Tx) error {
		k, err := s.userKey(ctx, tx, in.UserName, in.AccessKeyID)
		if err != nil {
			return err
		}
		AccessKeys.Delete(tx, k.ID)
		return nil
	})
}
