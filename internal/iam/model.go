package iam

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// The IAM entities as holdfast keeps them. Names are unique without regard
// to case (as in IAM); the model indexes them by lower-cased name and keeps
// the case they were created with.

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

// Record kinds in the repository.
const (
	KindUser       = "user"
	KindAccessKey  = "accesskey"
	KindRole       = "role"
	KindPolicy     = "policy"
	KindSigningKey = "signingkey"
)

// Record is one stored IAM entity: its kind, its id within the kind (the
// lower-cased name, the access key id, the policy ARN) and its JSON. A nil
// Value in a Commit deletes the record.
type Record struct {
	Kind  string
	ID    string
	Value []byte
}

// Repository is where the IAM model lives durably. The service keeps the
// whole model in memory (it is small: users, roles, keys and policies)
// and writes through: every change is one Commit, durable before the call
// is answered.
type Repository interface {
	// Load returns every record.
	Load(ctx context.Context) ([]Record, error)
	// Commit applies the puts and deletes atomically and durably.
	Commit(ctx context.Context, changes []Record) error
}

// MemoryRepository is a Repository in memory, for tests.
type MemoryRepository struct {
	mu      sync.Mutex
	records map[string]Record
	// Fail, when set, makes Commit fail with it (to test write errors).
	Fail error
}

// NewMemoryRepository returns an empty in-memory repository.
func NewMemoryRepository() *MemoryRepository {
	return &MemoryRepository{records: map[string]Record{}}
}

// Load implements Repository.
func (m *MemoryRepository) Load(context.Context) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, 0, len(m.records))
	for _, r := range m.records {
		out = append(out, Record{Kind: r.Kind, ID: r.ID, Value: append([]byte(nil), r.Value...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind+"/"+out[i].ID < out[j].Kind+"/"+out[j].ID })
	return out, nil
}

// Commit implements Repository.
func (m *MemoryRepository) Commit(_ context.Context, changes []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	for _, c := range changes {
		key := c.Kind + "/" + c.ID
		if c.Value == nil {
			delete(m.records, key)
			continue
		}
		m.records[key] = Record{Kind: c.Kind, ID: c.ID, Value: append([]byte(nil), c.Value...)}
	}
	return nil
}

// model is the whole IAM state of the account, in memory.
type model struct {
	users    map[string]*User // by lower-cased name
	keys     map[string]*AccessKey
	roles    map[string]*Role
	policies map[string]*ManagedPolicy // by ARN
	signing  []byte                    // the STS session token key
}

func newModel() *model {
	return &model{users: map[string]*User{}, keys: map[string]*AccessKey{}, roles: map[string]*Role{}, policies: map[string]*ManagedPolicy{}}
}

func loadModel(records []Record) (*model, error) {
	m := newModel()
	for _, r := range records {
		var err error
		switch r.Kind {
		case KindUser:
			var u User
			if err = json.Unmarshal(r.Value, &u); err == nil {
				m.users[strings.ToLower(u.Name)] = &u
			}
		case KindAccessKey:
			var k AccessKey
			if err = json.Unmarshal(r.Value, &k); err == nil {
				m.keys[k.ID] = &k
			}
		case KindRole:
			var ro Role
			if err = json.Unmarshal(r.Value, &ro); err == nil {
				m.roles[strings.ToLower(ro.Name)] = &ro
			}
		case KindPolicy:
			var p ManagedPolicy
			if err = json.Unmarshal(r.Value, &p); err == nil {
				m.policies[p.ARN] = &p
			}
		case KindSigningKey:
			m.signing = append([]byte(nil), r.Value...)
		}
		if err != nil {
			return nil, fmt.Errorf("iam: decode %s record %s: %w", r.Kind, r.ID, err)
		}
	}
	return m, nil
}

// changes accumulates the records one operation writes.
type changes []Record

func (c *changes) put(kind, id string, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the model's types always marshal
		panic(err)
	}
	*c = append(*c, Record{Kind: kind, ID: id, Value: b})
}

func (c *changes) del(kind, id string) { *c = append(*c, Record{Kind: kind, ID: id}) }

func (c *changes) user(u *User)     { c.put(KindUser, strings.ToLower(u.Name), u) }
func (c *changes) role(r *Role)     { c.put(KindRole, strings.ToLower(r.Name), r) }
func (c *changes) key(k *AccessKey) { c.put(KindAccessKey, k.ID, k) }
func (c *changes) policy(p *ManagedPolicy) {
	c.put(KindPolicy, p.ARN, p)
}

// attachments counts the users and roles a managed policy is attached to.
func (m *model) attachments(arn string) int {
	n := 0
	for _, u := range m.users {
		for _, a := range u.Attached {
			if a == arn {
				n++
			}
		}
	}
	for _, r := range m.roles {
		for _, a := range r.Attached {
			if a == arn {
				n++
			}
		}
	}
	return n
}
