package internal_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// imports returns the imports of the non-test Go files in dir.
func imports(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[p] = filepath.Base(f)
		}
	}
	if len(out) == 0 && len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return out
}

func isStd(path string) bool { return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") }

// TestLayering enforces the package layering in docs/architecture.md: the
// domain and the scheduler import only the standard library, the
// scheduler does no I/O of its own, and the agent does not import the
// control plane.
func TestLayering(t *testing.T) {
	forbiddenInScheduler := []string{"net", "net/http", "os", "os/exec", "syscall", "database/sql"}
	// The pure packages: the domain, the reconciler, the IAM policy engine
	// and the Query protocol codec.
	for _, dir := range []string{"domain", "scheduler", "iam/policy", "api/awsquery"} {
		for p, file := range imports(t, dir) {
			if !isStd(p) {
				t.Errorf("internal/%s/%s imports %s; it may import only the standard library", dir, file, p)
			}
		}
	}
	for p, file := range imports(t, "iam/policy") {
		if p == "net/http" || p == "os" {
			t.Errorf("internal/iam/policy/%s imports %s; the policy engine is a pure function", file, p)
		}
	}
	for p, file := range imports(t, "scheduler") {
		for _, bad := range forbiddenInScheduler {
			if p == bad {
				t.Errorf("internal/scheduler/%s imports %s; the reconciler must stay pure", file, p)
			}
		}
	}
	for p, file := range imports(t, "control") {
		if strings.Contains(p, "/store/bolt") || p == "net/http" || strings.Contains(p, "/internal/api") {
			t.Errorf("internal/control/%s imports %s; control sees only the store interface and no transport", file, p)
		}
	}
	// The agent and the control plane meet only in the protocol's types.
	err := filepath.WalkDir("agent", func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() == "testdata" {
			return err
		}
		if gos, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(gos) == 0 {
			return nil
		}
		for p, file := range imports(t, dir) {
			if strings.Contains(p, "/internal/control") || strings.Contains(p, "/internal/server") {
				t.Errorf("internal/%s/%s imports %s; the agent sees the control plane only through internal/agentapi", dir, file, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The shim starts once per container: it links the standard library and
	// x/sys only (see cmd/holdfast-shim).
	for p, file := range imports(t, "agent/runtime/process/shim") {
		if !isStd(p) && p != "golang.org/x/sys/unix" {
			t.Errorf("internal/agent/runtime/process/shim/%s imports %s; the shim may import only the standard library and x/sys", file, p)
		}
	}
}
