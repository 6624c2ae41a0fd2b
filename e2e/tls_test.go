package e2e_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/holdfast/holdfast/internal/testutil"
)

// `holdfast up --tls-self-signed` serves the API and the agent protocol
// over TLS only: its agent, the SDKs, the AWS CLI and the operator commands
// work through AWS_CA_BUNDLE, plain HTTP does not, and a task still
// protects itself through its endpoint (which calls the control plane over
// TLS as the task's role).
func TestSelfSignedTLS(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	s := newSystem(t)
	s.main = s.daemon("holdfast up", "up.log", "up", "--data-dir", s.dataDir, "--listen", s.apiAddr, "--agent-listen", s.agentAddr,
		"--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey, "--tls-self-signed")
	s.main.Start(t)
	caFile := filepath.Join(s.dataDir, "tls", "tls-cert.pem")
	var pool *x509.CertPool
	eventually(t, deadline, "the self-signed certificate", func() (bool, string) {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return false, err.Error()
		}
		pool = x509.NewCertPool()
		return pool.AppendCertsFromPEM(pem), "no PEM yet"
	})
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + s.apiAddr
	eventually(t, deadline, "/healthz over TLS", func() (bool, string) {
		resp, err := trusting.Get(url + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	if resp, err := http.Get("http://" + s.apiAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered")
		}
	}
	if _, err := http.Get(url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusting client: %v", err)
	}

	// The SDK with the bundle, as AWS_CA_BUNDLE gives it.
	withCA := func(o *ecs.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		})
	}
	s.ecs = testutil.ECSClient(url, creds, withCA)
	ctx := context.Background()
	id, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds.Provider(),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		})}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || !strings.HasSuffix(aws.ToString(id.Arn), ":root") {
		t.Fatalf("STS over TLS: %v %v", id, err)
	}
	// The local agent registered over TLS, and a task protects itself.
	ci, err := s.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{})
	if err != nil || len(ci.ContainerInstanceArns) != 1 {
		t.Fatalf("the local agent: %v %v", ci, err)
	}
	dir := filepath.Join(s.root, "tls-task")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.tlsPool = pool
	roleArn := s.createTaskRole(t, "tls-task", taskRolePolicy)
	s.runService(t, "protected", roleArn, map[string]string{"OUT": filepath.Join(dir, "p")}, "/bin/sh", "-c", protectOnce)
	arn := s.serviceTask(t, "protected")
	if status := waitFile(t, filepath.Join(dir, "p.status")); status != "200" {
		body, _ := os.ReadFile(filepath.Join(dir, "p.body"))
		t.Fatalf("the task's protection over TLS: %s %s", status, body)
	}
	if p := s.getProtection(t, arn)[arn]; !p.ProtectionEnabled {
		t.Fatalf("not protected: %+v", p)
	}

	// holdfast env gives the bundle; the operator commands and the AWS CLI
	// use it.
	out, err := exec.Command(testutil.BuildHoldfast(t), "env", "--data-dir", s.dataDir).Output()
	if err != nil || !strings.Contains(string(out), "export AWS_ENDPOINT_URL="+url+"\n") || !strings.Contains(string(out), "export AWS_CA_BUNDLE=") {
		t.Fatalf("holdfast env: %s %v", out, err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=" + creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		env = append(env, strings.Fields(strings.TrimPrefix(line, "export "))...)
	}
	ps := exec.Command(testutil.BuildHoldfast(t), "ps")
	ps.Env = env
	if b, err := ps.CombinedOutput(); err != nil || !strings.Contains(string(b), "protected") {
		t.Fatalf("holdfast ps with AWS_CA_BUNDLE: %s %v", b, err)
	}
	noCA := exec.Command(testutil.BuildHoldfast(t), "ps")
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			noCA.Env = append(noCA.Env, kv)
		}
	}
	if b, err := noCA.CombinedOutput(); err == nil || !strings.Contains(string(b), "certificate") {
		t.Fatalf("holdfast ps without the bundle: %s %v", b, err)
	}
	if cli, err := exec.LookPath("aws"); err == nil {
		c := exec.Command(cli, "--endpoint-url", url, "ecs", "list-clusters", "--output", "text")
		c.Env = append(env, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
		if b, err := c.CombinedOutput(); err != nil || !strings.Contains(string(b), "cluster/default") {
			t.Fatalf("aws ecs list-clusters with AWS_CA_BUNDLE: %s %v", b, err)
		}
	}
}
