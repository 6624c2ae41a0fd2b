//go:build linux

// Package shim is the per-container supervisor of the process runtime
// (see package process for the model), and the records it shares with the
// runtime in a container's state directory. It imports neither the agent's
// runtime contract nor the domain, so that the holdfast-shim binary, which
// starts once per container, links and initialises as little as possible.
package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
)

// Names of the files in a container's state directory.
const (
	SpecFile  = "spec.json"
	StateFile = "state.json"
	ExitFile  = "exit.json"
	LockFile  = "lock"
	LogFile   = "shim.log"
)

// Spec is spec.json: what the shim runs.
type Spec struct {
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir,omitempty"`
	LogPath string   `json:"logPath"`
	// LogLimits cap the log (absent in specs of older agents: no cap).
	LogLimits   logfile.Limits `json:"logLimits,omitzero"`
	StopTimeout int64          `json:"stopTimeoutNs"`
	// HealthCheck is the container's healthCheck (ECS JSON), run by the
	// agent while the container runs, and kept here so that an adopting
	// agent resumes it. The shim ignores it.
	HealthCheck json.RawMessage `json:"healthCheck,omitempty"`
}

// State is state.json: the processes of a running container. Start
// times are in clock ticks since boot (field 22 of /proc/<pid>/stat).
type State struct {
	ShimPID   int    `json:"shimPid"`
	ShimStart uint64 `json:"shimStart"`
	PID       int    `json:"pid"`
	PIDStart  uint64 `json:"pidStart"`
	// StartedAt is when the program started (absent in records of older
	// shims).
	StartedAt time.Time `json:"startedAt,omitzero"`
}

// Exit is exit.json.
type Exit struct {
	ExitCode *int      `json:"exitCode,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// ReadJSON decodes dir/name into v. A missing file yields an error for which
// errors.Is(err, fs.ErrNotExist) holds.
func ReadJSON(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// WriteJSONAtomic replaces dir/name with the JSON encoding of v so that a
// reader sees either the old or the new content. With durable set the data
// and the directory entry are fsynced too, so the record survives a power
// loss; without it the record survives a crash of the writing process only,
// which is all that pid records need (processes do not survive a reboot).
func WriteJSONAtomic(dir, name string, v any, durable bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func FileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// ProcStartTime returns field 22 (starttime) of /proc/<pid>/stat. It works
// for zombies too, so a parent can read it any time before reaping.
func ProcStartTime(pid int) (uint64, error) {
	st, err := ReadStat(pid)
	return st.Start, err
}

// SameProcess reports whether pid is (still) the process that had start
// time start.
func SameProcess(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := ProcStartTime(pid)
	return err == nil && st == start
}

// OpenLock opens (creating it if needed) a lock file.
func OpenLock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// TryLock takes an exclusive flock on f without blocking. It returns false,
// nil when someone else holds it.
func TryLock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			return false, err
		}
	}
}

// lookPath resolves argv[0] the way a shell would, but against the PATH of
// the container's environment rather than the shim's. Names containing a
// slash are used as given (relative ones are relative to the working
// directory, as with execve after chdir).
func lookPath(name string, env []string, workDir string) (string, error) {
	if name == "" {
		return "", errors.New("exec: empty command")
	}
	if bytes.ContainsRune([]byte(name), '/') {
		p := name
		if !filepath.IsAbs(p) && workDir != "" {
			p = filepath.Join(workDir, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if len(kv) >= 5 && kv[:5] == "PATH=" {
			path = kv[5:] // the last PATH wins, as in exec.Cmd's dedup
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never resolve through the working directory
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// ProcStat is what the runtime reads of /proc/<pid>/stat.
type ProcStat struct {
	Pgrp         int
	Utime, Stime uint64 // clock ticks
	RSS          uint64 // pages
	Start        uint64 // clock ticks since boot
}

// ReadStat parses /proc/<pid>/stat. It works for zombies too, so a parent
// can read a child's start time any time before reaping it.
func ReadStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	// Fields after the parenthesised comm start at field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	field := func(n int) string { return string(fields[n-3]) }
	if len(fields) < 24-2 {
		return ProcStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	var s ProcStat
	var errs [5]error
	s.Pgrp, errs[0] = strconv.Atoi(field(5))
	s.Utime, errs[1] = strconv.ParseUint(field(14), 10, 64)
	s.Stime, errs[2] = strconv.ParseUint(field(15), 10, 64)
	s.Start, errs[3] = strconv.ParseUint(field(22), 10, 64)
	s.RSS, errs[4] = strconv.ParseUint(field(24), 10, 64)
	for _, err := range errs {
		if err != nil {
			return ProcStat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
		}
	}
	return s, nil
}
