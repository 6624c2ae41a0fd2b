//go:build linux

package process_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/internal/agent/ctr"
	"github.com/holdfast/holdfast/internal/agent/ctr/ctrtest"
	"github.com/holdfast/holdfast/internal/agent/ctr/workload"
	"github.com/holdfast/holdfast/internal/domain"
)

// TestConformance runs the runtime conformance suite against the process
// runtime. Its containers run this test binary as the workload (TestMain).
func TestConformance(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	stateDirs := map[ctr.Runtime]string{}
	open := func(t *testing.T, state string) ctr.Runtime {
		rt := newRuntime(t, state)
		mu.Lock()
		stateDirs[rt] = state
		mu.Unlock()
		return rt
	}
	ctrtest.Run(t, ctrtest.Factory{
		New: func(t *testing.T) ctr.Runtime { return open(t, filepath.Join(t.TempDir(), "state")) },
		Reopen: func(t *testing.T, rt ctr.Runtime) ctr.Runtime {
			mu.Lock()
			state := stateDirs[rt]
			mu.Unlock()
			if err := rt.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, state)
		},
		Workload: func(name string, script ...string) domain.ContainerDefinition {
			return domain.ContainerDefinition{
				Name: name, Image: "holdfast-ctrtest", EntryPoint: []string{exe}, Command: script,
				Environment: []domain.KeyValuePair{{Name: workload.Env, Value: "1"}},
			}
		},
	})
}
