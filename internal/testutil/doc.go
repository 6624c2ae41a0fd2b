// Package testutil holds what holdfast's test suites share: building the
// holdfast binary once per test binary, free loopback addresses, holdfast
// daemons (`up`, `server`, `agent`) on temporary data dirs, an aws-sdk-go-v2
// ECS client for them, polling helpers, task cleanup and signed raw
// requests.
//
// It is for tests only: import it from _test.go files, never from the
// binaries or the libraries.
package testutil
