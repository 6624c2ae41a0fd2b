package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"time"

	"github.com/aws/smithy-go"
)

func TestHumanDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{42 * time.Second, "42s"},
		{time.Minute, "1m"},
		{5*time.Minute + 59*time.Second, "5m"},
		{2*time.Hour - time.Second, "1h59m"},
		{2 * time.Hour, "2h0m"},
		{48 * time.Hour, "48h0m"},
	} {
		if got := HumanDuration(c.d); got != c.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolveDefaults(t *testing.T) {
	o := Options{Getenv: env(nil)}.Resolve()
	if o.Cluster != "default" || o.Endpoint != DefaultEndpoint || o.Region != "us-east-1" || o.DataDir != "./.holdfast" || o.Output != "table" {
		t.Fatalf("defaults: %+v", o)
	}
	o = Options{Getenv: env(map[string]string{
		"AWS_ENDPOINT_URL":     "http://generic:1",
		"AWS_ENDPOINT_URL_ECS": "http://ecs:2/",
		"AWS_DEFAULT_REGION":   "eu-west-1",
	})}.Resolve()
	if o.Endpoint != "http://ecs:2" || o.Region != "eu-west-1" {
		t.Fatalf("from env: %+v", o)
	}
	o = Options{Endpoint: "127.0.0.1:9", Region: "r", Getenv: env(map[string]string{"AWS_REGION": "x"})}.Resolve()
	if o.Endpoint != "http://127.0.0.1:9" || o.Region != "r" {
		t.Fatalf("flags win: %+v", o)
	}
}

// The credentials search order: flags, HOLDFAST_* environment, the data
// dir, then the AWS SDK's chain, only for an endpoint the user named.
func TestCredentials(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := func(p aws.CredentialsProvider) string {
		c, err := p.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c.AccessKeyID + "/" + c.SecretAccessKey
	}
	// Nothing: an error naming every way, and the SDK's chain is not tried
	// for the default endpoint even when AWS_ACCESS_KEY_ID is set.
	t.Setenv("AWS_ACCESS_KEY_ID", "PROFILEID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "PROFILESECRET")
	_, _, err := Credentials(ctx, Options{DataDir: dir, Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "--access-key-id") || !strings.Contains(err.Error(), "HOLDFAST_ACCESS_KEY_ID") ||
		!strings.Contains(err.Error(), "name the endpoint") {
		t.Fatalf("no credentials for the default endpoint: %v", err)
	}
	// With a named endpoint, the SDK's chain (here its environment).
	p, src, err := Credentials(ctx, Options{DataDir: dir, Endpoint: "http://127.0.0.1:9", Getenv: env(nil)})
	if err != nil || key(p) != "PROFILEID/PROFILESECRET" || !strings.Contains(src, "SDK") {
		t.Fatalf("the SDK's chain: %v %s", err, src)
	}
	// The data dir wins over the SDK's chain.
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), []byte(`{"accessKeyId":"FILEID","secretAccessKey":"FILESECRET"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, err = Credentials(ctx, Options{DataDir: dir, Endpoint: "http://127.0.0.1:9", Getenv: env(nil)})
	if err != nil || key(p) != "FILEID/FILESECRET" {
		t.Fatalf("from the data dir: %v", err)
	}
	// HOLDFAST_* wins over the data dir; half of it is ignored.
	p, _, err = Credentials(ctx, Options{DataDir: dir, Getenv: env(map[string]string{"HOLDFAST_ACCESS_KEY_ID": "only-id"})})
	if err != nil || key(p) != "FILEID/FILESECRET" {
		t.Fatalf("half of HOLDFAST_*: %v", err)
	}
	p, _, err = Credentials(ctx, Options{DataDir: dir, Getenv: env(map[string]string{"HOLDFAST_ACCESS_KEY_ID": "ENVID", "HOLDFAST_SECRET_ACCESS_KEY": "ENVSECRET"})})
	if err != nil || key(p) != "ENVID/ENVSECRET" {
		t.Fatalf("from HOLDFAST_*: %v", err)
	}
	// Flags win over everything.
	p, _, err = Credentials(ctx, Options{DataDir: dir, AccessKeyID: "FLAGID", SecretAccessKey: "FLAGSECRET",
		Getenv: env(map[string]string{"HOLDFAST_ACCESS_KEY_ID": "ENVID", "HOLDFAST_SECRET_ACCESS_KEY": "ENVSECRET"})})
	if err != nil || key(p) != "FLAGID/FLAGSECRET" {
		t.Fatalf("from flags: %v", err)
	}
	if _, err := New(Options{DataDir: dir, Output: "yaml", Getenv: env(nil)}); err == nil {
		t.Fatal("--output yaml accepted")
	}
}

func TestFormatError(t *testing.T) {
	err := formatError(&smithy.GenericAPIError{Code: "ServiceNotFoundException", Message: "Service not found."}, "")
	if err.Error() != "ServiceNotFoundException: Service not found." {
		t.Fatalf("got %q", err)
	}
	other := errors.New("x")
	if formatError(other, "") != other {
		t.Fatal("other errors must pass unchanged")
	}
	pe := &ProtectError{Failures: []FailureJSON{
		{ARN: "arn:aws:ecs:us-east-1:0:task/default/abc", Reason: "DEPLOYMENT_BLOCKED", Detail: "too many"},
		{ARN: "def", Reason: "MISSING"},
	}}
	if got := pe.Error(); got != "task abc: DEPLOYMENT_BLOCKED (too many); task def: MISSING" {
		t.Fatalf("ProtectError = %q", got)
	}
}

func TestShortID(t *testing.T) {
	if got := shortID("arn:aws:ecs:us-east-1:000000000000:task/default/abc"); got != "abc" {
		t.Fatal(got)
	}
	if got := shortID("abc"); got != "abc" {
		t.Fatal(got)
	}
}
