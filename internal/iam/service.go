package iam

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/iam/policy"
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
	AccountID  string
	Repository Repository
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Service is the account's IAM: users, access keys, roles and policies,
// their API, the credential source that resolves their keys and STS
// sessions, and the authorizer that evaluates their policies.
type Service struct {
	account string
	repo    Repository
	clock   clock.Clock
	log     *slog.Logger

	// mu guards the model: writers hold it for the whole operation
	// (validate, commit, install), readers share it.
	mu sync.RWMutex
	m  *model

	// cacheMu guards the caches, which readers fill too.
	cacheMu sync.Mutex
	// sets caches the compiled identity policies of users and roles
	// ("user/<name>", "role/<name>", lower case); any write that changes
	// who has which policy clears it (under mu, so that no reader can
	// store a set compiled from the older model afterwards).
	sets map[string]*policy.Set
	// parsed caches parsed documents by kind and text.
	parsed map[string]*policy.Policy
}

// Open loads the model from cfg.Repository, creating the STS signing key
// on first start.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Repository == nil || cfg.AccountID == "" {
		return nil, fmt.Errorf("iam: a repository and an account id are required")
	}
	records, err := cfg.Repository.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("iam: load: %w", err)
	}
	m, err := loadModel(records)
	if err != nil {
		return nil, err
	}
	s := &Service{account: cfg.AccountID, repo: cfg.Repository, clock: cfg.Clock, log: cfg.Logger, m: m,
		sets: map[string]*policy.Set{}, parsed: map[string]*policy.Policy{}}
	if len(m.signing) == 0 {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if err := s.repo.Commit(ctx, []Record{{Kind: KindSigningKey, ID: "sts", Value: key}}); err != nil {
			return nil, fmt.Errorf("iam: save the STS signing key: %w", err)
		}
		m.signing = key
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Second) }

// commit writes the changes of one operation; the caller holds s.mu and
// applies the same changes to the model only when commit succeeds.
func (s *Service) commit(ctx context.Context, c changes) error {
	if len(c) == 0 {
		return nil
	}
	if err := s.repo.Commit(ctx, c); err != nil {
		return fmt.Errorf("iam: commit: %w", err)
	}
	return nil
}

// invalidate drops the compiled policy sets (after any change to who has
// which policy); the caller holds mu for writing.
func (s *Service) invalidate() {
	s.cacheMu.Lock()
	clear(s.sets)
	s.cacheMu.Unlock()
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

func lowerName(n string) string { return strings.ToLower(n) }

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
