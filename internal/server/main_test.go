package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a control plane starts has an owner that joins it: once
// the tests' servers have shut down, none is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
