package fake_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/ctrtest"
	"github.com/holdfast/holdfast/internal/agent/runtime/fake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRuntime(t *testing.T, h *fake.Host) ctr.Runtime {
	t.Helper()
	rt, err := fake.New(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestConformance(t *testing.T) {
	ctrtest.Run(t, ctrtest.Factory{
		New: func(t *testing.T) ctr.Runtime { return newRuntime(t, fake.NewHost()) },
		Reopen: func(t *testing.T, rt ctr.Runtime) ctr.Runtime {
			f := rt.(*fake.Runtime)
			h := f.Host()
			if err := rt.Close(); err != nil {
				t.Fatal(err)
			}
			return newRuntime(t, h)
		},
		Workload: fake.Workload,
	})
}
