package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MarkerProcs lists the live processes other than this one whose argv or
// environment mention marker (a test's temp dir: daemons carry it in their
// flags, shims in their state dir, task programs in their environment).
// Linux only (it reads /proc).
func MarkerProcs(marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && bytes.Contains(b, []byte(marker)) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// DescribeProcs returns "pid:argv" for each pid, for messages.
func DescribeProcs(pids []int) []string {
	var out []string
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("%d:%q", pid, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")))
	}
	return out
}

// KillGroup SIGKILLs pid's process group (never the test's own), and pid.
func KillGroup(pid int) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid != syscall.Getpgrp() && pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
