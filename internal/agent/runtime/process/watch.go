//go:build linux

package process

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// pidWatch is a pidfd registered with the Go netpoller. It becomes readable
// when the process exits (before it is reaped), so waiting on it costs no
// thread and no polling.
type pidWatch struct{ f *os.File }

// errNoPidfd means the kernel (or a seccomp filter) does not offer pidfds.
var errNoPidfd = errors.New("pidfd_open unavailable")

// openPidWatch opens a pidfd for pid. It returns errNoPidfd when pidfds are
// not available and an error satisfying errors.Is(err, unix.ESRCH) when the
// process does not exist.
func openPidWatch(pid int) (*pidWatch, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
			return nil, errNoPidfd
		}
		return nil, err
	}
	// A non-blocking fd handed to os.NewFile is registered with the netpoller.
	return &pidWatch{f: os.NewFile(uintptr(fd), "pidfd")}, nil
}

// wait blocks until the process has exited. It returns an error when the
// watch is closed first.
func (w *pidWatch) wait() error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(pfd, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				perr = err
				return true
			}
			return n > 0
		}
	})
	if err != nil {
		return err
	}
	return perr
}

// close releases the pidfd and makes a pending wait return an error.
func (w *pidWatch) close() { _ = w.f.Close() }
