package netns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/holdfast/holdfast/internal/testutil"
)

// The test binary doubles as the programs run inside namespaces, chosen by
// NETNS_TEST_HELPER.
func TestMain(m *testing.M) {
	switch os.Getenv("NETNS_TEST_HELPER") {
	case "":
		goleak.VerifyTestMain(m)
	case "listen":
		// Accept and answer "ok" until killed.
		ln, err := net.Listen("tcp", ":7000")
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Write([]byte("ok\n"))
			c.Close()
		}
	case "dial":
		c, err := net.DialTimeout("tcp", os.Getenv("NETNS_TEST_ADDR"), time.Second)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	case "create":
		// A test run that dies without cleaning up.
		n, err := Create()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		if _, err := n.AddNode("a"); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(n.ID)
		select {}
	}
}

func helper(nd *Node, mode string, env ...string) *exec.Cmd {
	cmd := nd.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"NETNS_TEST_HELPER=" + mode}, env...)...)
	return cmd
}

// listen starts the echo helper in nd and waits until it listens.
func listen(t *testing.T, nd *Node) {
	t.Helper()
	cmd := helper(nd, "listen")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "listening\n" {
		t.Fatalf("helper in %s: %q %v", nd.NS, line, err)
	}
	go io.Copy(io.Discard, out)
}

// hostReaches dials addr:7000 from the test's own namespace.
func hostReaches(ip netip.Addr) bool {
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(ip, 7000).String(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	b, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && b == "ok\n"
}

// reaches dials to:7000 from inside from.
func reaches(from, to *Node) bool {
	return helper(from, "dial", "NETNS_TEST_ADDR="+netip.AddrPortFrom(to.IP, 7000).String()).Run() == nil
}

func TestNetwork(t *testing.T) {
	n := New(t)
	a, b, c := n.MustAddNode(t, "a"), n.MustAddNode(t, "b"), n.MustAddNode(t, "c")
	if !n.Subnet.Contains(a.IP) || !n.Subnet.Contains(n.HostIP) || a.IP == b.IP {
		t.Fatalf("addresses: subnet %s host %s a %s b %s", n.Subnet, n.HostIP, a.IP, b.IP)
	}
	for _, nd := range []*Node{a, b, c} {
		listen(t, nd)
	}
	// A path that should work may take a moment after a change (neighbour
	// entries that failed while the link was down are retried): it is
	// polled. A path that should not work gets one attempt (1 s).
	expect := func(what string, want bool, reach func() bool) {
		t.Helper()
		if !want {
			if reach() {
				t.Fatalf("%s: reachable, want cut off", what)
			}
			return
		}
		testutil.EventuallyTrue(t, 20*time.Second, 50*time.Millisecond, what+" to be reachable", reach)
	}
	check := func(what string, host map[*Node]bool, pairs map[[2]*Node]bool) {
		t.Helper()
		for nd, want := range host {
			expect(fmt.Sprintf("%s: test -> %s", what, nd.Name), want, func() bool { return hostReaches(nd.IP) })
		}
		for p, want := range pairs {
			expect(fmt.Sprintf("%s: %s -> %s", what, p[0].Name, p[1].Name), want, func() bool { return reaches(p[0], p[1]) })
		}
	}
	all := map[*Node]bool{a: true, b: true, c: true}
	check("connected", all, map[[2]*Node]bool{{a, b}: true, {b, a}: true, {c, a}: true})

	// A cable pulled: a is unreachable and reaches no one.
	if err := a.Disconnect(); err != nil {
		t.Fatal(err)
	}
	check("a disconnected", map[*Node]bool{a: false, b: true}, map[[2]*Node]bool{{a, b}: false, {b, a}: false, {b, c}: true})
	if err := a.Reconnect(); err != nil {
		t.Fatal(err)
	}
	check("a reconnected", all, map[[2]*Node]bool{{a, b}: true, {b, a}: true})

	// A partition between a and b only.
	if err := a.Block(b); err != nil {
		t.Fatal(err)
	}
	check("a|b", all, map[[2]*Node]bool{{a, b}: false, {b, a}: false, {a, c}: true, {c, b}: true})
	if err := a.Unblock(b); err != nil {
		t.Fatal(err)
	}
	check("healed", all, map[[2]*Node]bool{{a, b}: true, {b, a}: true})

	if pids := a.Pids(); len(pids) != 1 {
		t.Fatalf("pids in a = %v, want the helper", pids)
	}
	// Close kills what runs inside and removes the namespaces.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if out, _ := output("ip", "netns", "list"); strings.Contains(out, "hf"+n.ID) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
	if _, err := output("ip", "link", "show", n.hostLink()); err == nil {
		t.Fatalf("host link %s left after Close", n.hostLink())
	}
}

// Two networks at once (two test runs) get different subnets and names.
func TestConcurrentNetworks(t *testing.T) {
	n1, n2 := New(t), New(t)
	if n1.ID == n2.ID || n1.Subnet.Overlaps(n2.Subnet) {
		t.Fatalf("networks collide: %s %s / %s %s", n1.ID, n1.Subnet, n2.ID, n2.Subnet)
	}
}

// A test run killed with kill -9 leaves its namespaces; the next Create
// removes them, and the processes inside.
func TestStaleNetworksRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: network namespaces need root (CI runs as root)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETNS_TEST_HELPER=create")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	id := strings.TrimSpace(line)
	if err != nil || strings.HasPrefix(id, "error") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	// A process inside the dead run's node, as an etcd member would be.
	sleeper := exec.Command("ip", "netns", "exec", "hf"+id+"-a", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if list, _ := output("ip", "netns", "list"); !strings.Contains(list, "hf"+id+"-sw") {
		t.Fatalf("the killed run's namespaces are already gone:\n%s", list)
	}
	n := New(t) // runs CleanStale
	if n.ID == id {
		t.Fatal("same id")
	}
	if list, _ := output("ip", "netns", "list"); strings.Contains(list, "hf"+id) {
		t.Fatalf("stale namespaces of %s left:\n%s", id, list)
	}
	if _, err := os.Stat(LockDir + "/" + id + ".lock"); !os.IsNotExist(err) {
		t.Fatalf("stale lock file: %v", err)
	}
	if err := sleeper.Wait(); err == nil {
		t.Fatal("the process in the stale namespace exited normally; want killed")
	}
}
