package protection

import (
	"context"
	"sync"
)

var (
	defMu    sync.Mutex
	defP     *Protector
	defLease *Lease
)

// Default returns the package's Protector, built on first use with New()
// (ECS_AGENT_URI from the environment, defaults otherwise).
func Default() *Protector {
	defMu.Lock()
	defer defMu.Unlock()
	return defaultLocked()
}

func defaultLocked() *Protector {
	if defP == nil {
		p, err := New()
		if err != nil { // only invalid options fail; New() has none
			panic(err)
		}
		defP = p
	}
	return defP
}

// Acquire protects the task for minutes (1-2880) and keeps it protected,
// renewing before expiry, until Release. It holds one lease of Default();
// calling it again while held is a no-op unless minutes changes, in which
// case the expiry is replaced without a gap in protection.
func Acquire(ctx context.Context, minutes int) error {
	defMu.Lock()
	defer defMu.Unlock()
	p := defaultLocked()
	if defLease != nil && defLease.minutes == minutes {
		return nil
	}
	l, err := p.AcquireFor(ctx, "default", minutes)
	if err != nil {
		return err
	}
	old := defLease
	defLease = l
	if old != nil {
		return old.Release(ctx)
	}
	return nil
}

// Release drops the protection taken with Acquire (if other leases of
// Default() are held, the task stays protected until they are released).
func Release(ctx context.Context) error {
	defMu.Lock()
	defer defMu.Unlock()
	if defLease == nil {
		return nil
	}
	l := defLease
	defLease = nil
	return l.Release(ctx)
}
