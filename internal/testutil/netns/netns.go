// Package netns gives tests a private network of Linux network namespaces,
// so that a process (an etcd member, a holdfast replica) can be cut off by
// taking its link down, or partitioned from chosen peers, while the test
// keeps watching.
//
// Layout of one Network (ID is random, 6 hex digits):
//
//	namespace hf<ID>-sw    bridge br0; veth ends n1, n2, ... and "host"
//	namespace hf<ID>-<n>   one per node: lo and eth0 = 10.A.B.(k+1)/24
//	root namespace         veth hf<ID>h = 10.A.B.1/24, the test's way in
//
// The bridge lives in a namespace of its own, never in the root namespace:
// Docker sets the root namespace's iptables FORWARD policy to DROP and loads
// br_netfilter, which would drop frames bridged there. In the switch
// namespace the iptables tables are empty (policy ACCEPT), and traffic
// between the test and a node is local to the root namespace (OUTPUT and
// INPUT), never forwarded by it. Nothing is added to the host's firewall.
//
// Names are unique per Network, so concurrent test runs on one machine do
// not collide: only the root namespace's veth and its /24 are shared
// resources, and a subnet is chosen under a machine-wide lock among those
// no interface uses. Each Network holds a lock file (in /run/holdfast-netns)
// for its lifetime; New removes the namespaces, processes and lock files of
// Networks whose owner died without cleaning up (a test binary killed by
// its timeout).
//
// Creating namespaces needs root; New skips the test, with the reason, when
// not root. CI runs as root, where nothing skips.
package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// LockDir holds one lock file per live Network.
const LockDir = "/run/holdfast-netns"

// Network is a private network: see the package doc.
type Network struct {
	ID     string
	Subnet netip.Prefix
	HostIP netip.Addr // the root namespace's address on the network

	lock   *os.File
	mu     sync.Mutex
	nodes  []*Node
	closed bool
}

// Node is one network namespace on a Network.
type Node struct {
	Name string     // the node's name given to AddNode
	NS   string     // the namespace's name (ip netns)
	IP   netip.Addr // eth0's address
	net  *Network
	link string // its veth end in the switch namespace
}

// Available reports why namespaces cannot be made here, or "" if they can.
func Available() string {
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "the ip command (iproute2) is not installed"
	}
	return ""
}

// New creates a Network and removes it when t ends. It skips t when not
// root; any other failure fails t.
func New(t testing.TB) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: network namespaces need root (CI runs as root)")
	}
	n, err := Create()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("netns cleanup: %v", err)
		}
	})
	return n
}

// Create is New without a testing.TB; call Close.
func Create() (*Network, error) {
	if why := Available(); why != "" {
		return nil, errors.New("netns: " + why)
	}
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, err
	}
	CleanStale()

	var idb [3]byte
	_, _ = rand.Read(idb[:])
	n := &Network{ID: hex.EncodeToString(idb[:])}
	// The lock file appears under its final name only once locked, so
	// that CleanStale never takes it for a dead owner's.
	final := filepath.Join(LockDir, n.ID+".lock")
	lock, err := os.OpenFile(final+".new", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		os.Remove(lock.Name())
		return nil, fmt.Errorf("netns: lock %s: %w", lock.Name(), err)
	}
	fmt.Fprintf(lock, "pid %d\n", os.Getpid())
	if err := os.Rename(lock.Name(), final); err != nil {
		lock.Close()
		os.Remove(lock.Name())
		return nil, err
	}
	n.lock = lock
	if err := n.setup(); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Network) switchNS() string { return "hf" + n.ID + "-sw" }
func (n *Network) hostLink() string { return "hf" + n.ID + "h" }

func (n *Network) setup() error {
	sw := n.switchNS()
	if err := run("ip", "netns", "add", sw); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", sw, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	// Belt and braces: the switch namespace's tables are empty anyway, and
	// these sysctls are per namespace on current kernels.
	_ = run("ip", "netns", "exec", sw, "sh", "-c", "for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -w \"$f\" ] && echo 0 > \"$f\"; done; true")

	// The subnet is chosen and claimed (assigned to the host veth) under a
	// machine-wide lock, so that two Networks never pick the same one.
	alloc, err := os.OpenFile(filepath.Join(LockDir, "alloc.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer alloc.Close()
	if err := syscall.Flock(int(alloc.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	subnet, err := freeSubnet()
	if err != nil {
		return err
	}
	n.Subnet = subnet
	n.HostIP = subnet.Addr().Next()
	host := n.hostLink()
	for _, args := range [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", "host", "netns", sw},
		{"-n", sw, "link", "set", "host", "master", "br0", "up"},
		{"addr", "add", netip.PrefixFrom(n.HostIP, 24).String(), "dev", host},
		{"link", "set", host, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// freeSubnet picks a 10.A.B.0/24 (A in 200-239) that no interface of the
// root namespace has an address in, starting at a random place.
func freeSubnet() (netip.Prefix, error) {
	out, err := output("ip", "-4", "-o", "addr", "show")
	if err != nil {
		return netip.Prefix{}, err
	}
	used := map[[2]byte]bool{}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
			a := p.Addr().As4()
			if a[0] == 10 {
				used[[2]byte{a[1], a[2]}] = true
			}
		}
	}
	var r [2]byte
	_, _ = rand.Read(r[:])
	start := int(r[0])<<8 | int(r[1])
	const count = 40 * 256
	for i := range count {
		k := (start + i) % count
		ab := [2]byte{byte(200 + k/256), byte(k % 256)}
		if !used[ab] {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, ab[0], ab[1], 0}), 24), nil
		}
	}
	return netip.Prefix{}, errors.New("netns: no free 10.200-239.x.0/24 subnet")
}

// AddNode creates a namespace named after name (letters and digits, at
// most 8) attached to the network.
func (n *Network) AddNode(name string) (*Node, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.New("netns: network closed")
	}
	if name == "" || len(name) > 8 || strings.ContainsAny(name, "/ -.") {
		return nil, fmt.Errorf("netns: node name %q: want 1-8 letters and digits", name)
	}
	k := len(n.nodes) + 1
	if k > 250 {
		return nil, errors.New("netns: too many nodes")
	}
	ip := n.Subnet.Addr()
	for range k + 1 {
		ip = ip.Next()
	}
	nd := &Node{Name: name, NS: "hf" + n.ID + "-" + name, IP: ip, net: n, link: "n" + strconv.Itoa(k)}
	sw := n.switchNS()
	if err := run("ip", "netns", "add", nd.NS); err != nil {
		return nil, err
	}
	n.nodes = append(n.nodes, nd)
	for _, args := range [][]string{
		{"-n", nd.NS, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", nd.link, "type", "veth", "peer", "name", "eth0", "netns", nd.NS},
		{"-n", sw, "link", "set", nd.link, "master", "br0", "up"},
		{"-n", nd.NS, "addr", "add", netip.PrefixFrom(ip, 24).String(), "dev", "eth0"},
		{"-n", nd.NS, "link", "set", "eth0", "up"},
	} {
		if err := run("ip", args...); err != nil {
			return nil, err
		}
	}
	return nd, nil
}

// MustAddNode is AddNode that fails t.
func (n *Network) MustAddNode(t testing.TB, name string) *Node {
	t.Helper()
	nd, err := n.AddNode(name)
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

// Nodes lists the nodes in the order they were added.
func (n *Network) Nodes() []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Node(nil), n.nodes...)
}

// Command returns a command that runs prog inside the node's namespace
// (through `ip netns exec`, which execs prog: the process's pid is prog's).
// The process gets SIGKILL if the test process dies.
func (nd *Node) Command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", nd.NS, prog}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Disconnect takes the node's link down at the switch, as if its cable
// were pulled: it reaches no one (peers, the test) and no one reaches it,
// while its own interface and routes stay as they were.
func (nd *Node) Disconnect() error {
	return run("ip", "-n", nd.net.switchNS(), "link", "set", nd.link, "down")
}

// Reconnect undoes Disconnect.
func (nd *Node) Reconnect() error {
	return run("ip", "-n", nd.net.switchNS(), "link", "set", nd.link, "up")
}

// Block cuts traffic between nd and each peer, both ways, with blackhole
// routes (packets vanish silently, as in a partition); the links stay up,
// so both keep talking to everyone else.
func (nd *Node) Block(peers ...*Node) error {
	for _, p := range peers {
		if err := run("ip", "-n", nd.NS, "route", "add", "blackhole", p.IP.String()+"/32"); err != nil {
			return err
		}
		if err := run("ip", "-n", p.NS, "route", "add", "blackhole", nd.IP.String()+"/32"); err != nil {
			return err
		}
	}
	return nil
}

// Unblock undoes Block.
func (nd *Node) Unblock(peers ...*Node) error {
	var errs []error
	for _, p := range peers {
		errs = append(errs, run("ip", "-n", nd.NS, "route", "del", "blackhole", p.IP.String()+"/32"))
		errs = append(errs, run("ip", "-n", p.NS, "route", "del", "blackhole", nd.IP.String()+"/32"))
	}
	return errors.Join(errs...)
}

// Pids lists the processes running in the node's namespace.
func (nd *Node) Pids() []int { return nsPids(nd.NS) }

// Close kills every process left in the network's namespaces and deletes
// them (the veths go with them) and the lock file. It may be called more
// than once.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	err := removeNetwork(n.ID)
	if n.lock != nil {
		_ = os.Remove(filepath.Join(LockDir, n.ID+".lock"))
		n.lock.Close()
	}
	return err
}

// removeNetwork deletes every namespace of network id, killing what runs
// in them, and its root-namespace veth.
func removeNetwork(id string) error {
	out, err := output("ip", "netns", "list")
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "hf"+id+"-") {
			continue
		}
		ns := f[0]
		for _, pid := range nsPids(ns) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	// The host veth's peer was in the switch namespace: deleting that
	// removed both ends. Make sure, in case the switch never got it.
	if _, err := output("ip", "link", "show", "hf"+id+"h"); err == nil {
		errs = append(errs, run("ip", "link", "del", "hf"+id+"h"))
	}
	return errors.Join(errs...)
}

func nsPids(ns string) []int {
	out, err := output("ip", "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// CleanStale removes the Networks whose owner died: their lock file is no
// longer locked. It returns the ids it removed.
func CleanStale() []string {
	entries, err := os.ReadDir(LockDir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || id == "alloc" {
			continue
		}
		f, err := os.OpenFile(filepath.Join(LockDir, e.Name()), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			// Nobody holds it: its owner is gone.
			_ = removeNetwork(id)
			_ = os.Remove(f.Name())
			removed = append(removed, id)
		}
		f.Close()
	}
	return removed
}

func run(prog string, args ...string) error {
	_, err := output(prog, args...)
	return err
}

func output(prog string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
