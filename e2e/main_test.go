// Package e2e_test runs holdfast end to end: the real binary, real task
// processes and the aws-sdk-go-v2 ECS client. See README.md.
package e2e_test

import (
	"testing"

	"github.com/holdfast/holdfast/internal/testutil"
)

// TestMain removes the holdfast binary that the tests build once
// (testutil.BuildHoldfast, on the first system started).
func TestMain(m *testing.M) { testutil.Main(m) }
