package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/holdfast/holdfast/internal/testutil"
	"github.com/holdfast/holdfast/internal/testutil/netns"
)

// MemberPackage is the wrapper program Start runs for each member.
const MemberPackage = "github.com/holdfast/holdfast/internal/testutil/etcdcluster/etcdmember"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// MemberBinary builds the member program (MemberPackage) once per test
// binary and returns its path.
func MemberBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "holdfast-etcdmember-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "etcdmember")
		cmd := exec.Command("go", "build", "-o", buildPath, MemberPackage)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", MemberPackage, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// RemoveMemberBinary deletes what MemberBinary built; call it from
// TestMain after the tests.
func RemoveMemberBinary() {
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
}

// Config configures Start. The zero value is three members on loopback,
// fsync on, etcd's default timing and the limits holdfast recommends.
type Config struct {
	Members int // default 3
	// Network, when set, puts each member in a namespace of its own on it
	// (nodes named e1, e2, ...), so that a member can be cut off; nil runs
	// them on 127.0.0.1 with free ports (no root needed).
	Network *netns.Network
	// Binary is the member program: MemberBinary's by default, or an etcd
	// binary (same flags).
	Binary string
	// Dir holds the members' data dirs and logs; default t.TempDir().
	Dir string
	// HeartbeatMs and ElectionMs are etcd's --heartbeat-interval and
	// --election-timeout; 0 keeps etcd's (100 and 1000).
	HeartbeatMs, ElectionMs int
	// UnsafeNoFsync turns fsync off (benchmarks of everything but the disk).
	UnsafeNoFsync bool
	// ExtraArgs are added to every member's command line.
	ExtraArgs []string
	// StartTimeout bounds the wait for a healthy cluster; default 60 s.
	StartTimeout time.Duration
}

// Cluster is a running set of member processes.
type Cluster struct {
	Members []*Member
	cfg     Config
	t       testing.TB
}

// Member is one etcd member process. Kill9, Stop and Start may be called
// in any order; Start after a stop restarts it on its data dir.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	LogPath   string
	Node      *netns.Node // nil on loopback
	args      []string
	cluster   *Cluster

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a cluster and waits until every member is healthy and they
// agree on a leader. A cleanup stops every member (SIGKILL: the data dirs
// are thrown away) and logs their tails if the test failed.
func Start(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Members <= 0 {
		cfg.Members = 3
	}
	if cfg.Binary == "" {
		cfg.Binary = MemberBinary(t)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	c := &Cluster{cfg: cfg, t: t}
	var initial []string
	for i := range cfg.Members {
		m := &Member{Name: "e" + strconv.Itoa(i+1), cluster: c}
		m.DataDir = filepath.Join(cfg.Dir, m.Name)
		m.LogPath = filepath.Join(cfg.Dir, m.Name+".log")
		if cfg.Network != nil {
			m.Node = cfg.Network.MustAddNode(t, m.Name)
			m.ClientURL = "http://" + net.JoinHostPort(m.Node.IP.String(), "2379")
			m.PeerURL = "http://" + net.JoinHostPort(m.Node.IP.String(), "2380")
		} else {
			m.ClientURL = "http://" + testutil.FreeAddr(t)
			m.PeerURL = "http://" + testutil.FreeAddr(t)
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "holdfast-test-" + filepath.Base(cfg.Dir),
			"--max-txn-ops", strconv.Itoa(MaxTxnOps), "--max-request-bytes", strconv.Itoa(MaxRequestBytes),
		}
		if cfg.HeartbeatMs > 0 {
			m.args = append(m.args, "--heartbeat-interval", strconv.Itoa(cfg.HeartbeatMs))
		}
		if cfg.ElectionMs > 0 {
			m.args = append(m.args, "--election-timeout", strconv.Itoa(cfg.ElectionMs))
		}
		if cfg.UnsafeNoFsync {
			m.args = append(m.args, "--unsafe-no-fsync")
		}
		m.args = append(m.args, cfg.ExtraArgs...)
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.kill()
		}
		if t.Failed() {
			for _, m := range c.Members {
				t.Logf("etcd member %s log (tail):\n%s", m.Name, m.LogTail(15))
			}
		}
	})
	for _, m := range c.Members {
		m.Start(t)
	}
	c.WaitHealthy(t, cfg.StartTimeout)
	return c
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// Client returns a client of every member, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return newClient(t, c.Endpoints())
}

func newClient(t testing.TB, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Status asks one member for its view: its id, the leader's id, its raft
// index. It fails when the member is down or cut off.
func (m *Member) Status(ctx context.Context) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cli.Status(ctx, m.ClientURL)
}

// health reports whether every running member answers, with a leader all
// of them agree on, and returns the leader.
func (c *Cluster) health(ctx context.Context, members []*Member) (*Member, string) {
	var leader uint64
	var byID = map[uint64]*Member{}
	for _, m := range members {
		st, err := m.Status(ctx)
		if err != nil {
			return nil, m.Name + ": " + err.Error()
		}
		byID[st.Header.MemberId] = m
		if st.Leader == 0 {
			return nil, m.Name + " has no leader"
		}
		if leader != 0 && st.Leader != leader {
			return nil, fmt.Sprintf("%s follows %x, others %x", m.Name, st.Leader, leader)
		}
		leader = st.Leader
	}
	// The members must also serve a linearizable read (the leader has a
	// quorum and has applied its first entries).
	for _, m := range members {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, err.Error()
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = cli.Get(rctx, "health")
		cancel()
		cli.Close()
		if err != nil {
			return nil, m.Name + ": read: " + err.Error()
		}
	}
	l := byID[leader]
	if l == nil {
		return nil, fmt.Sprintf("leader %x is not among the members checked", leader)
	}
	return l, ""
}

// WaitHealthy waits until every running member is healthy and they agree
// on a leader.
func (c *Cluster) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	c.WaitHealthyOf(t, timeout, c.Running()...)
}

// WaitHealthyOf is WaitHealthy for the given members (those on one side
// of a partition).
func (c *Cluster) WaitHealthyOf(t testing.TB, timeout time.Duration, members ...*Member) {
	t.Helper()
	testutil.Eventually(t, timeout, 100*time.Millisecond, "etcd members healthy", func() (bool, string) {
		for _, m := range members {
			if !m.Running() {
				t.Fatalf("etcd member %s exited:\n%s", m.Name, m.LogTail(20))
			}
		}
		l, why := c.health(context.Background(), members)
		return l != nil, why
	})
}

// Leader returns the member that the given members (default: the running
// ones) agree is the leader.
func (c *Cluster) Leader(t testing.TB, members ...*Member) *Member {
	t.Helper()
	if len(members) == 0 {
		members = c.Running()
	}
	var leader *Member
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, "an etcd leader", func() (bool, string) {
		var why string
		leader, why = c.health(context.Background(), members)
		return leader != nil, why
	})
	return leader
}

// Running lists the members whose process runs.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m.Running() {
			out = append(out, m)
		}
	}
	return out
}

// Others lists the members other than m.
func (c *Cluster) Others(m *Member) []*Member {
	var out []*Member
	for _, o := range c.Members {
		if o != m {
			out = append(out, o)
		}
	}
	return out
}

// Start starts (or restarts) the member's process on its data dir.
func (m *Member) Start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		select {
		case <-m.done:
		default:
			t.Fatalf("etcd member %s is already running", m.Name)
		}
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== test: starting %s %s\n", m.cluster.cfg.Binary, strings.Join(m.args, " "))
	var cmd *exec.Cmd
	if m.Node != nil {
		cmd = m.Node.Command(m.cluster.cfg.Binary, m.args...)
	} else {
		cmd = exec.Command(m.cluster.cfg.Binary, m.args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start etcd member %s: %v", m.Name, err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
}

// Running reports whether the process runs.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Pid is the member's process id (0 before Start).
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill9 SIGKILLs the member and waits for it to be gone.
func (m *Member) Kill9(t testing.TB) {
	t.Helper()
	if !m.Running() {
		t.Fatalf("etcd member %s is not running", m.Name)
	}
	m.kill()
}

func (m *Member) kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop stops the member with SIGTERM (a clean shutdown) and waits up to
// 30 s, then SIGKILLs it.
func (m *Member) Stop(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("etcd member %s did not stop on SIGTERM", m.Name)
		m.kill()
	}
}

// Disconnect cuts the member off the network (its namespace's link goes
// down): peers, clients and the test no longer reach it.
func (m *Member) Disconnect(t testing.TB) {
	t.Helper()
	if m.Node == nil {
		t.Fatal("Disconnect needs a cluster on a netns.Network")
	}
	if err := m.Node.Disconnect(); err != nil {
		t.Fatal(err)
	}
}

// Reconnect undoes Disconnect.
func (m *Member) Reconnect(t testing.TB) {
	t.Helper()
	if m.Node == nil {
		t.Fatal("Reconnect needs a cluster on a netns.Network")
	}
	if err := m.Node.Reconnect(); err != nil {
		t.Fatal(err)
	}
}

// Client returns a client of this member only.
func (m *Member) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return newClient(t, []string{m.ClientURL})
}

// LogTail returns the last n lines of the member's log.
func (m *Member) LogTail(n int) string {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log)"
		}
		return err.Error()
	}
	return testutil.Tail(string(b), n)
}
