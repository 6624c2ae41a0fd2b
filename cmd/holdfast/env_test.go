package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// holdfast env prints AWS_ENDPOINT_URL (every service, for current SDKs and
// CLIs) besides the per-service ECS variable.
func TestEnvPrintsEndpointForEveryService(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"),
		[]byte(`{"accessKeyId":"HFKEY","secretAccessKey":"hfsecret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := envCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--data-dir", dir, "--listen", "127.0.0.1:7999", "--region", "eu-west-3"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"export AWS_ACCESS_KEY_ID=HFKEY",
		"export AWS_SECRET_ACCESS_KEY=hfsecret",
		"export AWS_REGION=eu-west-3 AWS_DEFAULT_REGION=eu-west-3",
		"export AWS_ENDPOINT_URL=http://127.0.0.1:7999",
		"export AWS_ENDPOINT_URL_ECS=http://127.0.0.1:7999",
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}
}
