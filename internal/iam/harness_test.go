package iam

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/holdfast/holdfast/internal/api"
	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/iam/iamtest"
	"github.com/holdfast/holdfast/internal/state"
	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/bolt"
)

const (
	testAccount = iamtest.Account
	testRegion  = "eu-west-3" // not IAM's us-east-1: both must be accepted
	rootKey     = "HFROOTKEY0000001"
	rootSecret  = "root-secret"
)

// env is a front door with IAM and STS registered, the way holdfast runs
// them, over loopback, on a state engine over a real bbolt store in a
// directory, with a fake clock for session expiry.
type env struct {
	t     testing.TB
	svc   *Service
	dir   string
	clock *clock.Fake
	url   string
	api   *api.Server
	// backend is the store under the engine; failing makes its commits
	// fail while set (a disk that stopped writing).
	backend *failingBackend
	close   func()
}

// failingBackend is a store.Backend whose Txns fail while fail is set.
type failingBackend struct {
	store.Backend
	fail atomic.Bool
}

func (f *failingBackend) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if f.fail.Load() {
		return 0, errors.New("injected: the disk stopped writing")
	}
	return f.Backend.Txn(ctx, ops)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvAt(t, t.TempDir(), clock.NewFake(time.Now()), false)
}

// newEnvAt runs the service on the store in dir (created if absent);
// noFsync skips fsync, for fuzzing. Close it (env.close) before opening
// the same dir again; a cleanup closes it otherwise.
func newEnvAt(t testing.TB, dir string, clk *clock.Fake, noFsync bool) *env {
	t.Helper()
	bb, err := bolt.Open(filepath.Join(dir, "holdfast.db"), bolt.Options{NoFsync: noFsync})
	if err != nil {
		t.Fatal(err)
	}
	backend := &failingBackend{Backend: bb}
	st, err := state.Open(context.Background(), backend, state.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Open(context.Background(), Config{AccountID: testAccount, State: st})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Config{
		Region:      testRegion,
		AccountID:   testAccount,
		Credentials: map[string]string{rootKey: rootSecret},
		Identities:  svc,
		Authorizer:  Authorizer{Now: clk.Now},
		Clock:       clk.Now,
	})
	svc.Register(a)
	hs := httptest.NewServer(a)
	var once sync.Once
	closeFn := func() {
		once.Do(func() {
			hs.Close()
			st.Close()
			if err := bb.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
	}
	t.Cleanup(closeFn)
	return &env{t: t, svc: svc, dir: dir, clock: clk, url: hs.URL, api: a, backend: backend, close: closeFn}
}

type creds struct{ id, secret, token string }

var root = creds{rootKey, rootSecret, ""}

// iam is a real aws-sdk-go-v2 IAM client signing with c. It signs for the
// region it is configured with; the AWS CLI and the SDKs with a custom
// endpoint do the same.
func (e *env) iam(c creds) *awsiam.Client {
	return awsiam.New(awsiam.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(e.url),
		Credentials:  credentials.NewStaticCredentialsProvider(c.id, c.secret, c.token),
		Retryer:      aws.NopRetryer{},
	})
}

func (e *env) sts(c creds) *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.url),
		Credentials:  credentials.NewStaticCredentialsProvider(c.id, c.secret, c.token),
		Retryer:      aws.NopRetryer{},
	})
}

// user creates an IAM user with an access key and the given inline
// policy (if any), as the root, and returns its credentials.
func (e *env) user(name, policyDoc string) creds {
	e.t.Helper()
	ctx := context.Background()
	c := e.iam(root)
	if _, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		e.t.Fatal(err)
	}
	if policyDoc != "" {
		if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(name),
			PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)}); err != nil {
			e.t.Fatal(err)
		}
	}
	out, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	return creds{aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey), ""}
}

// role creates a role with a trust policy and an inline policy (if any).
func (e *env) role(name, trust, policyDoc string) string {
	e.t.Helper()
	ctx := context.Background()
	c := e.iam(root)
	out, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		e.t.Fatal(err)
	}
	if policyDoc != "" {
		if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String(name),
			PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc)}); err != nil {
			e.t.Fatal(err)
		}
	}
	return aws.ToString(out.Role.Arn)
}

// assume assumes a role as c and returns the session's credentials.
func (e *env) assume(c creds, roleArn, session string) creds {
	e.t.Helper()
	out, err := e.sts(c).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleArn), RoleSessionName: aws.String(session)})
	if err != nil {
		e.t.Fatal(err)
	}
	return creds{aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}
}

// wantErr asserts an API error's code, message ("" = not checked) and
// HTTP status.
func wantErr(t *testing.T, err error, code, message string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %T %v", code, err, err)
	}
	if ae.ErrorCode() != code {
		t.Errorf("code %q, want %q (%v)", ae.ErrorCode(), code, err)
	}
	if message != "" && ae.ErrorMessage() != message {
		t.Errorf("message\n  %q\nwant\n  %q", ae.ErrorMessage(), message)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Errorf("status %v, want %d", err, status)
	}
}

const (
	trustAccount = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	trustTasks   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	allowAll     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
)
