package main

// End-to-end test of the WebSocket example through real binaries: the real
// `holdfast up`, the server binary as a task process, and a real client,
// driven by demo.sh. Skipped under -short.

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/examples/internal/demotest"
	"github.com/holdfast/holdfast/internal/testutil"
)

// TestMain removes the holdfast binary the test builds.
func TestMain(m *testing.M) { testutil.Main(m) }

// TestDemo runs demo.sh against the real `holdfast up` with a client that
// stays 3 s, and checks the story: the post's log lines in order, the
// service event, the client not being dropped, and the task stopping within
// 1 s of the release.
func TestDemo(t *testing.T) {
	testutil.SkipUnlessE2E(t)
	demo := demotest.Run(t, "websocket", "DEMO_CLIENT_SECONDS=3")

	// The post's lines, in order (pings in between).
	want := []string{"New client connection opened. There are 1 connections", "Task protection acquired",
		"received: ping", "Client connection closed. There are 0 connections", "Task protection released"}
	lines := demotest.ReadLog(t, filepath.Join(demo.Work, "server.log"))
	i := 0
	var released time.Time
	for _, l := range lines {
		if i < len(want) && l.Msg == want[i] {
			i++
			if i == len(want) {
				released = l.At
			}
		}
	}
	if i != len(want) {
		t.Fatalf("server log lacks %q (in order %q); log: %v", want[i], want, lines)
	}
	for _, l := range lines {
		if strings.Contains(l.Msg, "rejected") {
			t.Fatalf("unexpected %q", l.Msg)
		}
	}
	demo.CheckStoppedAfterRelease(t, released)
}
