//go:build linux

package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
)

// runTask registers a one-container task definition running the shell
// script and runs one task of it; it returns the task's id.
func (c *cluster) runTask(t *testing.T, family, script string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := c.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Essential: aws.Bool(true),
			EntryPoint: []string{"/bin/sh", "-c"}, Command: []string{script},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("default"), TaskDefinition: aws.String(family)})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	return arn[strings.LastIndex(arn, "/")+1:]
}

// logPosition is how many bytes a task's container has written in all: the
// end of its newest log file (logfile's layout names older parts by the
// position of their first byte).
func logPosition(t *testing.T, logPath string) int64 {
	t.Helper()
	paths, err := logfile.Paths(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue // rotated away meanwhile
		}
		start := int64(0)
		if rest, ok := strings.CutPrefix(p, logPath+"."); ok {
			start, _ = strconv.ParseInt(rest, 10, 64)
		} else if len(paths) > 1 {
			continue // the current file's start is the last part's end
		}
		end = max(end, start+fi.Size())
	}
	return end
}

// A task that writes to stdout without pause cannot fill the data dir: its
// log is capped at --log-max-size x --log-max-files however much it
// writes, and `holdfast logs` shows its newest output.
func TestLogFloodIsCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs holdfast up")
	}
	const maxSize, maxFiles = 64 << 10, 2
	c := startUp(t, "--log-max-size", "64KiB", "--log-max-files", "2")
	id := c.runTask(t, "flood", "exec yes holdfast-flooding-the-log")
	logPath := filepath.Join(c.dataDir, "agent", "logs", id, "app.log")
	// Wait until it has written 50 times what is kept, checking the bound
	// all along.
	eventually(t, "the task to write 50 times its log cap", func() (bool, string) {
		var total int64
		paths, _ := logfile.Paths(logPath)
		for _, p := range paths {
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
		}
		if total > maxSize*maxFiles || len(paths) > maxFiles {
			t.Fatalf("%d log files with %d bytes on disk, over the cap of %d x %d", len(paths), total, maxSize, maxFiles)
		}
		written := logPosition(t, logPath)
		return written > 50*maxSize*maxFiles, fmt.Sprintf("%d bytes written, %d on disk", written, total)
	})
	// A snapshot of the newest output: no more than the cap, whole lines
	// but for the first and last (the log rotates in the middle of lines).
	out := c.ok(t, "logs", id)
	lines := strings.Split(out, "\n")
	if n := len(out); n > maxSize*maxFiles || len(lines) < 100 {
		t.Fatalf("logs of the flooding task: %d bytes, %d lines", n, len(lines))
	}
	for _, l := range lines[1 : len(lines)-1] {
		if l != "holdfast-flooding-the-log" {
			t.Fatalf("logs of the flooding task: line %q", l)
		}
	}
}

// `holdfast logs -f` follows a log across its rotations, from the first
// line the task printed to the last, in order.
func TestLogsFollowAcrossRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs holdfast up")
	}
	c := startUp(t, "--log-max-size", "16KiB", "--log-max-files", "2")
	// 20,000 numbered lines (about 200 KB: a dozen rotations), in bursts.
	id := c.runTask(t, "rotating", `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo "line $i"; if [ $((i % 500)) = 0 ]; then sleep 0.1; fi; done`)
	// RunTask returns while the task is PENDING; a log exists once its
	// container has started (before, `logs` answers "no logs for task").
	logPath := filepath.Join(c.dataDir, "agent", "logs", id, "app.log")
	eventually(t, "the task's log", func() (bool, string) {
		_, err := os.Stat(logPath)
		return err == nil, fmt.Sprint(err)
	})
	out := c.ok(t, "logs", "-f", id)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] != "line 1" || lines[len(lines)-1] != "line 20000" {
		t.Fatalf("logs -f: %d lines, from %q to %q", len(lines), lines[0], lines[len(lines)-1])
	}
	last := 0
	for _, l := range lines {
		n, err := strconv.Atoi(strings.TrimPrefix(l, "line "))
		if err != nil || n <= last {
			t.Fatalf("logs -f: %q after line %d", l, last)
		}
		last = n
	}
	if got := logPosition(t, filepath.Join(c.dataDir, "agent", "logs", id, "app.log")); got <= 2*16<<10 {
		t.Fatalf("the task wrote %d bytes, not enough to rotate its log", got)
	}
}
