package control

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the control plane starts has an owner that joins it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
