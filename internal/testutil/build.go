package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// BuildHoldfast builds cmd/holdfast once per test binary and returns the
// binary's path; a failed build fails t (and every later caller). Packages
// that call it run their tests through Main, which removes the binary.
func BuildHoldfast(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "holdfast-test-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "holdfast")
		buildErr = goBuild(buildBin, "github.com/holdfast/holdfast/cmd/holdfast")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// GoBuild runs `go build -o out pkg` and returns out.
func GoBuild(t testing.TB, out, pkg string) string {
	t.Helper()
	if err := goBuild(out, pkg); err != nil {
		t.Fatal(err)
	}
	return out
}

func goBuild(out, pkg string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go tool not found: %w", err)
	}
	if b, err := exec.Command(goTool, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Main runs the tests, removes the binary BuildHoldfast built, and exits:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
func Main(m *testing.M) { os.Exit(RunMain(m)) }

// RunMain is Main for a TestMain that has more to tear down: it runs the
// tests, removes the binary and returns the exit code.
func RunMain(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}
