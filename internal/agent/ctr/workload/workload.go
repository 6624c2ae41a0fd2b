// Package workload is the tiny scripted program that the runtime
// conformance suite (ctr/ctrtest) runs in its containers, so that one suite
// can drive every runtime: the process runtime runs it as a host process
// (a test binary that calls Run from its TestMain), the Docker runtime in a
// locally built image, and the fake runtime simulates it from the same
// script, step by step.
//
// A script is the container's command, read left to right:
//
//	out TEXT       print TEXT and a newline on stdout
//	err TEXT       print TEXT and a newline on stderr
//	env NAME       print NAME=value, or "NAME unset"
//	sleep-ms N     sleep N milliseconds
//	sleep          sleep until stopped
//	trap-term N    from now on, SIGTERM makes it exit with status N
//	ignore-term    from now on, SIGTERM is ignored (only SIGKILL stops it)
//	exit N         exit with status N
//	lines N        print N numbered lines on stdout, as fast as it can: the
//	               script's lines are numbered from 1 on, across every
//	               lines step, and each is Line(n) (LineLen bytes)
//
// A script that ends without exit exits 0. Until trap-term or ignore-term,
// SIGTERM kills it as it would kill a program without a handler: exit
// status 143 (signal 15), also as PID 1 of a container, where the kernel
// would otherwise ignore it.
package workload

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Env, set to "1" in a test binary's environment, tells its TestMain to
// call Run with its arguments instead of running tests.
const Env = "HOLDFAST_CTR_WORKLOAD"

// Step is one instruction of a script.
type Step struct {
	Op  string
	Arg string // TEXT or NAME
	N   int    // status or milliseconds
}

// Parse reads a script.
func Parse(args []string) ([]Step, error) {
	var steps []Step
	for i := 0; i < len(args); i++ {
		s := Step{Op: args[i]}
		switch s.Op {
		case "sleep", "ignore-term":
		case "out", "err", "env":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("workload: %s needs an argument", s.Op)
			}
			i++
			s.Arg = args[i]
		case "sleep-ms", "trap-term", "exit", "lines":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("workload: %s needs a number", s.Op)
			}
			i++
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("workload: %s %q: not a number", s.Op, args[i])
			}
			s.N = n
		default:
			return nil, fmt.Errorf("workload: unknown step %q", s.Op)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// LineLen is the length of every line a lines step prints.
const LineLen = len("line-000001\n")

// Line is the n-th line that lines steps print (n from 1), newline
// included: "line-000042\n".
func Line(n int) string { return fmt.Sprintf("line-%06d\n", n) }

// Run executes a script as a real program and returns its exit status.
func Run(args []string) int {
	steps, err := Parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var trapped atomic.Int32 // -1: die as by the signal
	trapped.Store(-1)
	go func() {
		<-term
		if n := trapped.Load(); n >= 0 {
			os.Exit(int(n))
		}
		signal.Reset(syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		// Still here: PID 1 of a container, where the kernel ignores a
		// signal without a handler.
		time.Sleep(100 * time.Millisecond)
		os.Exit(128 + int(syscall.SIGTERM))
	}()
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	lines := 0
	for _, s := range steps {
		switch s.Op {
		case "lines":
			for range s.N {
				lines++
				_, _ = out.WriteString(Line(lines))
			}
			_ = out.Flush()
		case "out":
			fmt.Fprintln(os.Stdout, s.Arg)
		case "err":
			fmt.Fprintln(os.Stderr, s.Arg)
		case "env":
			if v, ok := os.LookupEnv(s.Arg); ok {
				fmt.Fprintf(os.Stdout, "%s=%s\n", s.Arg, v)
			} else {
				fmt.Fprintf(os.Stdout, "%s unset\n", s.Arg)
			}
		case "sleep-ms":
			time.Sleep(time.Duration(s.N) * time.Millisecond)
		case "sleep":
			for {
				time.Sleep(time.Hour)
			}
		case "trap-term":
			trapped.Store(int32(s.N))
		case "ignore-term":
			signal.Stop(term)
			signal.Ignore(syscall.SIGTERM)
		case "exit":
			return s.N
		}
	}
	return 0
}
