package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/holdfast/holdfast/internal/agentapi"
)

// The agent's identity. The agent starts with the credentials it is given
// (Config.AccessKeyID/SecretAccessKey: the agents' bootstrap identity,
// allowed only to register new container instances, or the root's). When
// a registration creates the instance's own identity, the control plane
// returns its access key once; the agent keeps it in
// <data-dir>/identity.json (mode 0600) and speaks the agent protocol with
// it from then on, restarts included: only that identity may act for the
// instance and get its tasks' credentials. If the control plane no longer
// knows that key (the instance was deregistered, which deletes its
// identity), the agent registers anew with the credentials it was given.

const identityFile = "identity.json"

// switchableCredentials is an aws.CredentialsProvider whose credentials
// the agent replaces when it gets its instance's identity.
type switchableCredentials struct {
	v atomic.Pointer[aws.Credentials]
}

func (s *switchableCredentials) set(id, secret string) {
	s.v.Store(&aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "holdfast-agent"})
}

// Retrieve implements aws.CredentialsProvider.
func (s *switchableCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return *s.v.Load(), nil
}

// loadIdentity switches to the instance's identity saved by an earlier
// run, if there is one.
func (a *Agent) loadIdentity() {
	b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, identityFile))
	if err != nil {
		return
	}
	var c agentapi.AgentCredentials
	if json.Unmarshal(b, &c) != nil || c.AccessKeyID == "" {
		a.log.Warn("ignoring an unreadable " + identityFile)
		return
	}
	a.creds.set(c.AccessKeyID, c.SecretAccessKey)
	a.ownIdentity = true
}

// adoptIdentity keeps the instance's identity returned by a registration
// and switches to it.
func (a *Agent) adoptIdentity(c *agentapi.AgentCredentials) error {
	b, _ := json.Marshal(c)
	if err := writeFileSyncMode(filepath.Join(a.cfg.DataDir, identityFile), b, 0o600); err != nil {
		return err
	}
	a.creds.set(c.AccessKeyID, c.SecretAccessKey)
	a.ownIdentity = true
	a.log.Info("the container instance has its own identity now", "accessKeyId", c.AccessKeyID)
	return nil
}

// dropIdentity goes back to the given credentials after the control plane
// refused the instance's identity, forgetting the instance.
func (a *Agent) dropIdentity() {
	if err := os.Remove(filepath.Join(a.cfg.DataDir, identityFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("remove "+identityFile, "err", err)
	}
	a.creds.set(a.cfg.AccessKeyID, a.cfg.SecretAccessKey)
	a.ownIdentity = false
	a.mu.Lock()
	a.instanceARN = ""
	a.mu.Unlock()
}

// unrecognized reports whether err is the control plane not knowing the
// credentials.
func unrecognized(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Type == "UnrecognizedClientException"
}
