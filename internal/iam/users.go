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
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u := s.m.users[lowerName(*name)]; u != nil {
		return s.userARN(u.Path, u.Name)
	}
	return s.userARN("/", *name)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.m.users[lowerName(*in.UserName)]; dup {
		return nil, entityExists("User with name %s already exists.", *in.UserName)
	}
	u := &User{Name: *in.UserName, Path: path, ID: genID("AIDA", 17), CreateDate: s.now(), Tags: in.Tags}
	var c changes
	c.user(u)
	if err := s.commit(ctx, c); err != nil {
		return nil, err
	}
	s.m.users[lowerName(u.Name)] = u
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.m.users[lowerName(name)]
	if u == nil {
		return nil, noSuchEntity("The user with name %s cannot be found.", name)
	}
	return &userResult{User: s.xmlUser(u, true)}, nil
}

func (s *Service) listUsers(ctx context.Context, in listInput) (*listUsersResult, error) {
	got, truncated, marker, err := listByPath(s, in, s.m.users, func(u *User) string { return u.Path })
	if err != nil {
		return nil, err
	}
	out := &listUsersResult{IsTruncated: truncated, Marker: marker}
	for _, u := range got {
		out.Users.Member = append(out.Users.Member, s.xmlUser(u, false))
	}
	return out, nil
}

// listByPath is ListUsers and ListRoles: the page of the entities of m
// (keyed by lower-cased name, listed in that order) whose path starts with
// the PathPrefix.
func listByPath[T any](s *Service, in listInput, m map[string]*T, path func(*T) string) ([]*T, bool, string, error) {
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
	s.mu.RLock()
	var all []named
	for k, e := range m {
		if in.PathPrefix == nil || strings.HasPrefix(path(e), *in.PathPrefix) {
			all = append(all, named{k, e})
		}
	}
	s.mu.RUnlock()
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
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.holder("user", *in.UserName)
	if err != nil {
		return nil, err
	}
	for _, k := range s.m.keys {
		if strings.EqualFold(k.UserName, h.name) {
			return nil, deleteConflict(msgDeleteKeysFirst)
		}
	}
	return nil, s.deleteHolder(ctx, h)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.m.users[lowerName(name)]
	if u == nil {
		return nil, noSuchEntity("The user with name %s cannot be found.", name)
	}
	n := 0
	for _, k := range s.m.keys {
		if strings.EqualFold(k.UserName, u.Name) {
			n++
		}
	}
	if n >= maxAccessKeysPerUser {
		return nil, limitExceeded("Cannot exceed quota for AccessKeysPerUser: %d", maxAccessKeysPerUser)
	}
	k := &AccessKey{ID: genID("AKIA", 16), UserName: u.Name, Secret: genSecret(), Status: "Active", CreateDate: s.now()}
	var c changes
	c.key(k)
	if err := s.commit(ctx, c); err != nil {
		return nil, err
	}
	s.m.keys[k.ID] = k
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
	s.mu.RLock()
	u := s.m.users[lowerName(name)]
	var keys []*AccessKey
	if u != nil {
		for _, k := range s.m.keys {
			if strings.EqualFold(k.UserName, u.Name) {
				keys = append(keys, k)
			}
		}
	}
	s.mu.RUnlock()
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
func (s *Service) userKey(ctx context.Context, name, id *string) (*AccessKey, error) {
	user, err := callerUserName(ctx, name)
	if err != nil {
		return nil, err
	}
	if s.m.users[lowerName(user)] == nil {
		return nil, noSuchEntity("The user with name %s cannot be found.", user)
	}
	k := s.m.keys[*id]
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
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.userKey(ctx, in.UserName, in.AccessKeyID)
	if err != nil {
		return nil, err
	}
	updated := *k
	updated.Status = *in.Status
	var c changes
	c.key(&updated)
	if err := s.commit(ctx, c); err != nil {
		return nil, err
	}
	s.m.keys[k.ID] = &updated
	return nil, nil
}

func (s *Service) deleteAccessKey(ctx context.Context, in accessKeyInput) (any, error) {
	if err := s.validateKeyInput(in, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.userKey(ctx, in.UserName, in.AccessKeyID)
	if err != nil {
		return nil, err
	}
	var c changes
	c.del(KindAccessKey, k.ID)
	if err := s.commit(ctx, c); err != nil {
		return nil, err
	}
	delete(s.m.keys, k.ID)
	return nil, nil
}
