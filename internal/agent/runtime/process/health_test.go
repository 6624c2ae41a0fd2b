//go:build linux

package process

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/internal/agent/ctr"
)

func TestHealthProbe(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "WANT=yes"}
	ok := ctr.HealthConfig{Argv: []string{"/bin/sh", "-c", `test "$WANT" = yes && test -f marker`}, Timeout: 10 * time.Second}
	if !probe(context.Background(), ok, env, dir) {
		t.Fatal("a probe with the container's env and dir should pass")
	}
	if probe(context.Background(), ok, env, t.TempDir()) {
		t.Fatal("the probe did not run in the container's dir")
	}
	if probe(context.Background(), ctr.HealthConfig{Argv: []string{"false"}, Timeout: 10 * time.Second}, env, dir) {
		t.Fatal("exit 1 should fail")
	}
	if probe(context.Background(), ctr.HealthConfig{Argv: []string{"/no/such/program"}, Timeout: 10 * time.Second}, env, dir) {
		t.Fatal("a probe that cannot start should fail")
	}
	// A probe past its timeout fails, and its whole process group is killed.
	slow := ctr.HealthConfig{Argv: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, Timeout: 100 * time.Millisecond}
	if probe(context.Background(), slow, env, dir) {
		t.Fatal("a probe past its timeout should fail")
	}
}
