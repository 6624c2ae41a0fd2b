package iam

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/iam/policy"
	"github.com/holdfast/holdfast/internal/state"
)

// IAMService is the IAM API on the front door: the Query protocol, signed
// for "iam". IAM is a global service: requests signed for us-east-1 (what
// the SDKs use for IAM) are accepted whatever the configured region.
var IAMService = &api.Service{
	SigningName:   "iam",
	ActionPrefix:  "iam",
	QueryVersion:  "2010-05-08",
	XMLNamespace:  "https://iam.amazonaws.com/doc/2010-05-08/",
	SigningRegion: "us-east-1",
	InternalError: &api.Error{Status: 500, Code: "ServiceFailure", Type: "ServiceFailureException"},
}

// STSService is the STS API: the Query protocol, signed for "sts" (the
// global endpoint signs for us-east-1 too).
var STSService = &api.Service{
	SigningName:   "sts",
	ActionPrefix:  "sts",
	QueryVersion:  "2011-06-15",
	XMLNamespace:  "https://sts.amazonaws.com/doc/2011-06-15/",
	SigningRegion: "us-east-1",
}

// Quotas holdfast enforces, IAM's (docs "IAM and AWS STS quotas"); the
// managed policies per user or role is IAM's maximum (20), not its
// default (10), so that a principal at IAM's limits can be modelled.
const (
	maxAccessKeysPerUser   = 2
	maxAttachedPolicies    = 20
	maxUserInlineSize      = 2048
	maxRoleInlineSize      = 10240
	maxManagedPolicySize   = 6144
	maxTrustPolicySize     = 2048
	defaultSessionDuration = 3600
	chainedSessionLimit    = 3600
)

// Config configures the IAM and STS service.
type Config struct {
	AccountID string
	// State holds the IAM records (see model.go); the service reads and
	// writes nothing else.
	State *state.Engine
	// Clock dates entities and sessions; nil means the engine's clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Service is the account's IAM: users, access keys, roles and policies,
// their API, the credential source that resolves their keys and STS
// sessions, and the authorizer that evaluates their policies.
type Service struct {
	account string
	st      *state.Engine
	clock   clock.Clock
	log     *slog.Logger
	// signing is the STS session key, loaded (or created) at Open.
	signing []byte

	// cacheMu guards the caches, which readers fill.
	cacheMu sync.Mutex
	// sets caches the compiled identity policies of users and roles
	// ("user/<name>", "role/<name>", lower case), each with the record it
	// was compiled from: records are immutable and every change writes a
	// new one, so a cached set is current exactly while its record is
	// (the managed policies it attaches cannot change or go while they
	// are attached).
	sets map[string]cachedSet
	// parsed caches parsed documents by kind and text.
	parsed map[string]*policy.Policy
}

type cachedSet struct {
	from any // the *User or *Role the set was compiled from
	set  *policy.Set
}

// Open prepares the service on cfg.State, creating the STS signing key on
// first start.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.State == nil || cfg.AccountID == "" {
		return nil, fmt.Errorf("iam: a state engine and an account id are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = cfg.State.Clock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{account: cfg.AccountID, st: cfg.State, clock: cfg.Clock, log: cfg.Logger,
		sets: map[string]cachedSet{}, parsed: map[string]*policy.Policy{}}
	var key *signingKey
	cfg.State.View(func(v *state.View) { key = signingKeys.Get(v, signingKeyName) })
	if key == nil {
		fresh := &signingKey{Key: make([]byte, 32)}
		_, _ = rand.Read(fresh.Key)
		err := cfg.State.Update(ctx, func(tx *state.Tx) error {
			if key = signingKeys.Get(tx, signingKeyName); key == nil {
				key = fresh
				signingKeys.Put(tx, key)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("iam: save the STS signing key: %w", err)
		}
	}
	s.signing = key.Key
	return s, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Second) }

// view runs fn with a read view of the IAM records.
func (s *Service) view(fn func(r state.Reader)) {
	s.st.View(func(v *state.View) { fn(v) })
}

// update runs one operation's check-and-write on the state engine: fn
// validates against tx and writes; an error from fn writes nothing. It
// returns once the writes are durable. fn runs on the engine's apply
// loop: it must not block, nor call view.
func (s *Service) update(ctx context.Context, fn func(tx *state.Tx) error) error {
	return s.st.Update(ctx, fn)
}

// ARNs of the account's entities.
func (s *Service) userARN(path, name string) string {
	return "arn:aws:iam::" + s.account + ":user" + path + name
}

func (s *Service) roleARN(path, name string) string {
	return "arn:aws:iam::" + s.account + ":role" + path + name
}

func (s *Service) policyARN(path, name string) string {
	return "arn:aws:iam::" + s.account + ":policy" + path + name
}

// parse parses (and caches) a policy document of the given kind; kind
// is part of the cache key because the same text may be valid as one kind
// and not the other.
func (s *Service) parse(doc string, kind policy.Kind) (*policy.Policy, error) {
	key := string(rune('0'+kind)) + doc
	s.cacheMu.Lock()
	p, ok := s.parsed[key]
	s.cacheMu.Unlock()
	if ok {
		return p, nil
	}
	var err error
	if kind == policy.Trust {
		p, err = policy.ParseTrust(doc)
	} else {
		p, err = policy.Parse(doc)
	}
	if err != nil {
		return nil, malformedPolicy(err.Error())
	}
	s.cacheMu.Lock()
	if len(s.parsed) > 10000 {
		clear(s.parsed)
	}
	s.parsed[key] = p
	s.cacheMu.Unlock()
	return p, nil
}

// Register installs the IAM and STS operations on the front door.
func (s *Service) Register(a *api.Server) {
	for name, o := range s.iamOperations() {
		a.Handle(IAMService, name, o)
	}
	for name, o := range s.stsOperations() {
		a.Handle(STSService, name, o)
	}
}

// genID returns a prefix followed by n characters of IAM's unique-id
// alphabet (upper-case letters and digits), e.g. AIDA... for users.
func genID(prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

// genSecret returns a 40-character secret access key.
func genSecret() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, 40)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
