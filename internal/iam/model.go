package iam

import (
	"strings"
	"time"

	"github.com/holdfast/holdfast/internal/state"
)

// The IAM entities as holdfast keeps them: records of the state engine
// (internal/state), so that they are durable, reloaded at start and, with
// several control-plane replicas, shared. Names are unique without regard
// to case (as in IAM): records are keyed by the lower-cased name and keep
// the case they were created with. Records are immutable once written;
// every change writes a new copy.

// Tag is an IAM tag.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// User is an IAM user with its inline and attached policies.
type User struct {
	Name       string            `json:"name"`
	Path       string            `json:"path"`
	ID         string            `json:"id"`
	CreateDate time.Time         `json:"createDate"`
	Tags       []Tag             `json:"tags,omitempty"`
	Inline     map[string]string `json:"inline,omitempty"`   // policy name -> document
	Attached   []string          `json:"attached,omitempty"` // managed policy ARNs, in attach order
}

// AccessKey is a user's long-term access key.
type AccessKey struct {
	ID         string    `json:"id"`
	UserName   string    `json:"userName"`
	Secret     string    `json:"secret"`
	Status     string    `json:"status"` // Active | Inactive
	CreateDate time.Time `json:"createDate"`
}

// Role is an IAM role.
type Role struct {
	Name               string            `json:"name"`
	Path               string            `json:"path"`
	ID                 string            `json:"id"`
	CreateDate         time.Time         `json:"createDate"`
	TrustPolicy        string            `json:"trustPolicy"`
	Description        string            `json:"description,omitempty"`
	MaxSessionDuration int32             `json:"maxSessionDuration"`
	Tags               []Tag             `json:"tags,omitempty"`
	Inline             map[string]string `json:"inline,omitempty"`
	Attached           []string          `json:"attached,omitempty"`
}

// ManagedPolicy is a customer managed policy (one version, v1).
type ManagedPolicy struct {
	ARN         string    `json:"arn"`
	Name        string    `json:"name"`
	Path        string    `json:"path"`
	ID          string    `json:"id"`
	Document    string    `json:"document"`
	Description string    `json:"description,omitempty"`
	CreateDate  time.Time `json:"createDate"`
	UpdateDate  time.Time `json:"updateDate"`
	Tags        []Tag     `json:"tags,omitempty"`
}

// signingKey is the account's STS session key (one record).
type signingKey struct {
	Key []byte `json:"key"`
}

// The IAM record kinds. Keys are relative to the prefix: the store key of
// user Alice is "iam-users/alice".
var (
	// Users: "iam-users/<lower-cased name>".
	Users = state.Define("IAM users", "iam-users/", func(u *User) string { return lowerName(u.Name) })
	// AccessKeys: "iam-access-keys/<access key id>".
	AccessKeys = state.Define("IAM access keys", "iam-access-keys/", func(k *AccessKey) string { return k.ID })
	// Roles: "iam-roles/<lower-cased name>".
	Roles = state.Define("IAM roles", "iam-roles/", func(r *Role) string { return lowerName(r.Name) })
	// Policies: "iam-policies/<lower-cased name>" (managed policy names
	// are unique in the account, whatever their path).
	Policies = state.Define("IAM managed policies", "iam-policies/", func(p *ManagedPolicy) string { return lowerName(p.Name) })
	// signingKeys: "iam-sts/signing-key".
	signingKeys = state.Define("STS signing key", "iam-sts/", func(*signingKey) string { return signingKeyName })
)

const signingKeyName = "signing-key"

// keysByUser groups access keys by their user's lower-cased name.
var keysByUser = state.NewIndex(AccessKeys, "by user", func(k *AccessKey) (string, bool) { return lowerName(k.UserName), true })

func lowerName(n string) string { return strings.ToLower(n) }

// policyByARN finds a managed policy by its ARN (path included).
func policyByARN(r state.Reader, arn string) *ManagedPolicy {
	p := Policies.Get(r, lowerName(arn[strings.LastIndexByte(arn, '/')+1:]))
	if p == nil || p.ARN != arn {
		return nil
	}
	return p
}

// attachments counts the users and roles a managed policy is attached to.
func attachments(r state.Reader, arn string) int {
	n := 0
	for _, u := range Users.All(r) {
		for _, a := range u.Attached {
			if a == arn {
				n++
			}
		}
	}
	for _, ro := range Roles.All(r) {
		for _, a := range ro.Attached {
			if a == arn {
				n++
			}
		}
	}
	return n
}
