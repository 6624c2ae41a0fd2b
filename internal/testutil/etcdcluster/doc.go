// Package etcdcluster runs etcd for tests and benchmarks.
//
//   - StartEmbedded: one member inside the test process, for unit tests of
//     code that talks to etcd (RunWithEmbedded wraps a TestMain around one).
//   - Start: a cluster of member processes (the etcdmember wrapper around
//     etcd's embed package, built once per test binary by MemberBinary; an
//     etcd binary with the same flags can stand in through Config.Binary).
//     On loopback by default; with Config.Network (a netns.Network) each
//     member runs in a network namespace of its own, at <node IP>:2379
//     (client) and :2380 (peer).
//
// A Cluster's members can be killed (Member.Kill9, every member at once for
// a power cut), stopped cleanly (Stop), restarted on their data dirs
// (Start), cut off entirely (Disconnect/Reconnect: the link goes down) or
// partitioned from chosen peers while clients still reach them
// (Member.Node.Block/Unblock). Cluster.WaitHealthy waits until the running
// members agree on a leader and serve linearizable reads; Cluster.Leader
// names it. Member.Status, Member.Client and Cluster.Client talk to one or
// all members. Every member process dies with the test (cleanup, and
// SIGKILL if the test binary itself dies).
//
// It is for tests and benchmarks only: import it from _test.go files and
// test-support programs, never from the holdfast binary.
package etcdcluster
