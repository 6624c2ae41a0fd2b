// Command etcdmember runs one etcd member through etcd's embed package, for
// multi-member tests and benchmarks (package etcdcluster builds and starts
// it). Its flags are named as etcd's own, so that an etcd binary can stand
// in for it. It is test support: the holdfast binary never links etcd's
// server.
//
// It exits 0 after SIGTERM or SIGINT (a clean stop) and 1 if the server
// fails.
//
// With --local-cluster N it instead starts N members of itself on
// 127.0.0.1 (data dirs under --data-dir), prints ENDPOINTS=<client URLs>
// once they run, and stops them on SIGINT or SIGTERM: a local cluster for
// `holdfast bench protect --store etcd` (docs/benchmarks.md).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	cfg := embed.NewConfig()
	var listenClient, advertiseClient, listenPeer, advertisePeer string
	flag.StringVar(&cfg.Name, "name", "default", "member name")
	flag.StringVar(&cfg.Dir, "data-dir", "", "data directory")
	flag.StringVar(&listenClient, "listen-client-urls", "http://127.0.0.1:2379", "client URLs to listen on")
	flag.StringVar(&advertiseClient, "advertise-client-urls", "", "client URLs to advertise (default: the listen URLs)")
	flag.StringVar(&listenPeer, "listen-peer-urls", "http://127.0.0.1:2380", "peer URLs to listen on")
	flag.StringVar(&advertisePeer, "initial-advertise-peer-urls", "", "peer URLs to advertise (default: the listen URLs)")
	flag.StringVar(&cfg.InitialCluster, "initial-cluster", "", "name=peerURL,... of the initial members")
	flag.StringVar(&cfg.ClusterState, "initial-cluster-state", "new", "new or existing")
	flag.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "cluster token")
	flag.UintVar(&cfg.MaxTxnOps, "max-txn-ops", cfg.MaxTxnOps, "max operations per Txn")
	flag.UintVar(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "max bytes of a request")
	flag.UintVar(&cfg.TickMs, "heartbeat-interval", cfg.TickMs, "heartbeat interval (ms)")
	flag.UintVar(&cfg.ElectionMs, "election-timeout", cfg.ElectionMs, "election timeout (ms)")
	flag.Uint64Var(&cfg.SnapshotCount, "snapshot-count", cfg.SnapshotCount, "committed entries between snapshots")
	flag.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", cfg.QuotaBackendBytes, "backend size quota")
	flag.StringVar(&cfg.AutoCompactionMode, "auto-compaction-mode", "periodic", "periodic or revision")
	flag.StringVar(&cfg.AutoCompactionRetention, "auto-compaction-retention", "0", "history to keep (0: no auto compaction)")
	flag.BoolVar(&cfg.UnsafeNoFsync, "unsafe-no-fsync", false, "disable fsync (unsafe: loses acknowledged writes on power loss)")
	flag.StringVar(&cfg.LogLevel, "log-level", "warn", "debug, info, warn, error")
	localCluster := flag.Int("local-cluster", 0, "start this many members of this program on 127.0.0.1 and print their endpoints")
	flag.Parse()
	if *localCluster > 0 {
		os.Exit(runLocalCluster(*localCluster, cfg))
	}

	var err error
	parse := func(list string) []url.URL {
		var out []url.URL
		for _, s := range strings.Split(list, ",") {
			u, perr := url.Parse(strings.TrimSpace(s))
			if perr != nil && err == nil {
				err = perr
			}
			if u != nil {
				out = append(out, *u)
			}
		}
		return out
	}
	cfg.ListenClientUrls = parse(listenClient)
	cfg.ListenPeerUrls = parse(listenPeer)
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	if advertiseClient != "" {
		cfg.AdvertiseClientUrls = parse(advertiseClient)
	}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	if advertisePeer != "" {
		cfg.AdvertisePeerUrls = parse(advertisePeer)
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{"stderr"}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		os.Exit(2)
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcdmember: ready")
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		os.Exit(1)
	case <-sig:
		e.Close()
		return
	}
	select {
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		e.Close()
		os.Exit(1)
	case <-sig:
		e.Close()
	}
}

// runLocalCluster starts n member processes and waits for a signal.
func runLocalCluster(n int, cfg *embed.Config) int {
	if cfg.Dir == "" {
		fmt.Fprintln(os.Stderr, "etcdmember: --local-cluster needs --data-dir")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdmember:", err)
		return 1
	}
	freePort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcdmember:", err)
			os.Exit(1)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}
	type member struct{ name, client, peer string }
	var members []member
	var initial, clients []string
	for i := range n {
		m := member{name: fmt.Sprintf("m%d", i+1), client: freePort(), peer: freePort()}
		members = append(members, m)
		initial = append(initial, m.name+"="+m.peer)
		clients = append(clients, m.client)
	}
	var procs []*exec.Cmd
	for _, m := range members {
		args := []string{
			"--name", m.name, "--data-dir", filepath.Join(cfg.Dir, m.name),
			"--listen-client-urls", m.client, "--listen-peer-urls", m.peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--max-txn-ops", fmt.Sprint(cfg.MaxTxnOps), "--max-request-bytes", fmt.Sprint(cfg.MaxRequestBytes),
			"--log-level", cfg.LogLevel,
			"--auto-compaction-mode", cfg.AutoCompactionMode, "--auto-compaction-retention", cfg.AutoCompactionRetention,
		}
		if cfg.UnsafeNoFsync {
			args = append(args, "--unsafe-no-fsync")
		}
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "etcdmember:", err)
			return 1
		}
		procs = append(procs, cmd)
	}
	fmt.Printf("ENDPOINTS=%s\n", strings.Join(clients, ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	exited := make(chan error, len(procs))
	for _, p := range procs {
		go func() { exited <- p.Wait() }()
	}
	code := 0
	select {
	case <-sig:
	case err := <-exited:
		fmt.Fprintln(os.Stderr, "etcdmember: a member exited:", err)
		code = 1
	}
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for range procs[:len(procs)-code] {
		<-exited
	}
	return code
}
