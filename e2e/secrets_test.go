package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/holdfast/holdfast/internal/testutil"
)

// cmdline is a process's command line as every local user reads it.
func cmdline(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// TestSecretAccessKeyStaysOffTheCommandLine: holdfast server and holdfast
// agent read the secret from --secret-access-key-file, and holdfast up from
// $HOLDFAST_SECRET_ACCESS_KEY; each works with it (signed calls, the
// agent's registration) and no process's command line carries it. The
// flag still works, with a warning; the file and the flag together are
// refused; --help says all this.
func TestSecretAccessKeyStaysOffTheCommandLine(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	bin := testutil.BuildHoldfast(t)
	s := newSystem(t)
	secret := "file-secret-" + filepath.Base(s.root)
	secretFile := filepath.Join(s.root, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileCreds := testutil.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: secret}

	// holdfast server and holdfast agent, the secret from the file.
	s.main = s.daemon("holdfast server", "server.log", "server", "--data-dir", s.dataDir, "--listen", s.apiAddr,
		"--access-key-id", creds.AccessKeyID, "--secret-access-key-file", secretFile)
	s.agent = s.daemon("holdfast agent", "agent.log", "agent", "--cluster", clusterName, "--server", "http://"+s.apiAddr,
		"--listen", s.agentAddr, "--data-dir", s.agentDir, "--access-key-id", creds.AccessKeyID, "--secret-access-key-file", secretFile)
	s.startServer(t)
	s.startAgent(t) // healthy only once registered with the control plane: it signed with the file's secret
	client := testutil.ECSClient("http://"+s.apiAddr, fileCreds)
	out, err := client.ListContainerInstances(context.Background(), &ecs.ListContainerInstancesInput{})
	if err != nil || len(out.ContainerInstanceArns) != 1 {
		t.Fatalf("signed with the file's secret: %v %v", out, err)
	}
	if _, err := testutil.ECSClient("http://"+s.apiAddr, creds).ListClusters(context.Background(), &ecs.ListClustersInput{}); err == nil {
		t.Fatal("the server accepted a secret other than the file's")
	}
	for _, d := range s.daemons() {
		if line := cmdline(t, d.Pid()); strings.Contains(line, secret) {
			t.Errorf("%s's command line carries the secret: %s", d.Name, line)
		}
	}
	if log := s.main.LogTail(200); strings.Contains(log, "--secret-access-key:") || strings.Contains(log, "every local user can read it") {
		t.Errorf("warned although the secret came from a file:\n%s", log)
	}

	// holdfast up, the secret from the environment.
	up := newSystem(t)
	upSecret := "env-secret-" + filepath.Base(up.root)
	up.main = up.daemon("holdfast up", "up.log", "up", "--data-dir", up.dataDir, "--listen", up.apiAddr,
		"--agent-listen", up.agentAddr, "--access-key-id", creds.AccessKeyID)
	up.main.Env = append(up.main.Env, "HOLDFAST_SECRET_ACCESS_KEY="+upSecret)
	up.startServer(t)
	upClient := testutil.ECSClient("http://"+up.apiAddr, testutil.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: upSecret})
	if _, err := upClient.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("signed with the environment's secret: %v", err)
	}
	if line := cmdline(t, up.main.Pid()); strings.Contains(line, upSecret) {
		t.Errorf("holdfast up's command line carries the secret: %s", line)
	}

	// The flag and the file together are refused; the flag alone warns.
	both := exec.Command(bin, "server", "--data-dir", t.TempDir(), "--listen", testutil.FreeAddr(t),
		"--access-key-id", "K", "--secret-access-key", "S", "--secret-access-key-file", secretFile)
	if b, err := both.CombinedOutput(); err == nil || !strings.Contains(string(b), "not both") {
		t.Errorf("--secret-access-key with --secret-access-key-file: %v %s", err, b)
	}
	flagged := newSystem(t)
	flagged.main = flagged.daemon("holdfast server", "server.log", "server", "--data-dir", flagged.dataDir, "--listen", flagged.apiAddr,
		"--access-key-id", creds.AccessKeyID, "--secret-access-key", creds.SecretAccessKey)
	flagged.startServer(t)
	if log := flagged.main.LogTail(200); !strings.Contains(log, "/proc/PID/cmdline") {
		t.Errorf("no warning for a secret given as a flag:\n%s", log)
	}

	// --help of each daemon names the file flag and why.
	for _, sub := range []string{"up", "server", "agent"} {
		b, err := exec.Command(bin, sub, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --help: %v", sub, err)
		}
		for _, want := range []string{"--secret-access-key-file", "$HOLDFAST_SECRET_ACCESS_KEY", "/proc/PID/cmdline"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("holdfast %s --help does not mention %s:\n%s", sub, want, b)
			}
		}
	}
}
