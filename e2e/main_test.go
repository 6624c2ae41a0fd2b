// Package e2e_test runs holdfast end to end: the real binary, real task
// processes and the aws-sdk-go-v2 ECS client. See README.md.
package e2e_test

import (
	"os"
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/testutil/etcdcluster"
)

// etcdServer is an embedded etcd for the tests that run the control plane
// on etcd (each under a prefix of its own).
var etcdServer *etcdcluster.Embedded

// TestMain removes the holdfast binary that the tests build once
// (testutil.BuildHoldfast, on the first system started), and stops the
// embedded etcd.
func TestMain(m *testing.M) {
	os.Exit(etcdcluster.RunWithEmbedded(func() int { return testutil.RunMain(m) }, etcdcluster.EmbeddedConfig{}, &etcdServer, false))
}
