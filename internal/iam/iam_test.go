package iam

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/clock"
	"github.com/holdfast/holdfast/internal/iam/iamtest"
)

// The conformance suite against the IAM and STS service on a bare front
// door over a real store (internal/server runs it against the whole
// control plane).
func TestConformance(t *testing.T) {
	iamtest.Run(t, func(t *testing.T) *iamtest.Target {
		dir, clk := t.TempDir(), clock.NewFake(time.Now())
		e := newEnvAt(t, dir, clk, false)
		return &iamtest.Target{URL: e.URL, Region: testRegion, RootAccessKeyID: rootKey, RootSecretAccessKey: rootSecret, Clock: clk,
			Restart: func(t *testing.T) string {
				e.close()
				e = newEnvAt(t, dir, clk, false)
				return e.URL
			}}
	})
}
