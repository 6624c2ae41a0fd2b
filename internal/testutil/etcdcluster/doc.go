// Package etcdcluster runs etcd for tests: StartEmbedded, one member inside
// the test process for unit tests, and Start, a cluster of member processes
// (each in its own network namespace when asked) that tests can kill -9,
// restart and cut off.
//
// It is for tests and benchmarks only: import it from _test.go files and
// test-support programs, never from the holdfast binary.
package etcdcluster
