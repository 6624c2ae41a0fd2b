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
	*iamtest.Clients
	t     testing.TB
	svc   *Service
	dir   string
	clock *clock.Fake
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
	return &env{Clients: &iamtest.Clients{T: t, URL: hs.URL, Region: testRegion, Root: root}, t: t, svc: svc, dir: dir, clock: clk, api: a, backend: backend, close: closeFn}
}

var root = iamtest.Creds{ID: rootKey, Secret: rootSecret}

type creds = iamtest.Creds

const (
	trustAccount = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
	trustTasks   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	allowAll     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
)
