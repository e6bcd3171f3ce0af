package auth

import (
	"sync"
	"time"
)

// LockoutOptions configure account lockout and per-IP login throttling
// (SEC-01). Both count failed password checks within Window. An account
// with Threshold failures is locked for Base, doubling with every further
// lockout up to Max; an address with IPThreshold failures (over any
// accounts) is throttled the same way, which bounds how many accounts one
// address can lock out. A quiet period of Max (no failures) forgives the
// earlier lockouts; a successful login forgives the account's.
type LockoutOptions struct {
	Threshold   int           // failures per account (default 5)
	IPThreshold int           // failures per client address (default 20)
	Window      time.Duration // counting window (default 15m)
	Base        time.Duration // first lockout (default 1m)
	Max         time.Duration // longest lockout (default 1h)
}

// DefaultLockout is the configuration `unhidra serve` starts with.
var DefaultLockout = LockoutOptions{Threshold: 5, IPThreshold: 20, Window: 15 * time.Minute, Base: time.Minute, Max: time.Hour}

func (o *LockoutOptions) defaults() {
	d := DefaultLockout
	if o.Threshold <= 0 {
		o.Threshold = d.Threshold
	}
	if o.IPThreshold <= 0 {
		o.IPThreshold = d.IPThreshold
	}
	if o.Window <= 0 {
		o.Window = d.Window
	}
	if o.Base <= 0 {
		o.Base = d.Base
	}
	if o.Max < o.Base {
		o.Max = max(d.Max, o.Base)
	}
}

type strikeState struct {
	fails       int
	windowStart time.Time
	lastFail    time.Time
	lockedUntil time.Time
	strikes     int // lockouts so far; the next lasts Base << strikes
}

// lockout tracks failures in memory. It is per node: in a cluster each node
// counts on its own, which multiplies the allowance by the node count but
// keeps a database write off every failed login.
type lockout struct {
	o         LockoutOptions
	mu        sync.Mutex
	m         map[string]*strikeState
	nextSweep int
}

func newLockout(o LockoutOptions) *lockout {
	o.defaults()
	return &lockout{o: o, m: map[string]*strikeState{}, nextSweep: 10000}
}

// check reports how long key stays locked (0: not locked).
func (l *lockout) check(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.m[key]; st != nil && now.Before(st.lockedUntil) {
		return st.lockedUntil.Sub(now)
	}
	return 0
}

// fail records a failure for key; threshold is the key's limit. It returns
// the lockout that this failure started (0: none).
func (l *lockout) fail(key string, threshold int, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.m[key]
	if st == nil {
		if len(l.m) >= l.nextSweep {
			l.sweep(now)
		}
		st = &strikeState{}
		l.m[key] = st
	}
	if !st.lastFail.IsZero() && now.Sub(st.lastFail) > l.o.Max && now.After(st.lockedUntil) {
		st.strikes = 0 // forgiven after a quiet period
	}
	st.lastFail = now
	if now.Sub(st.windowStart) > l.o.Window {
		st.fails, st.windowStart = 0, now
	}
	st.fails++
	if st.fails < threshold {
		return 0
	}
	d := l.o.Base << min(st.strikes, 30)
	if d > l.o.Max || d <= 0 {
		d = l.o.Max
	}
	st.strikes++
	st.fails, st.windowStart = 0, now
	st.lockedUntil = now.Add(d)
	return d
}

// succeed forgets key's failures.
func (l *lockout) succeed(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

// sweep forgets keys that are neither locked nor recently failing.
func (l *lockout) sweep(now time.Time) {
	for k, st := range l.m {
		if now.After(st.lockedUntil) && now.Sub(st.lastFail) > l.o.Max+l.o.Window {
			delete(l.m, k)
		}
	}
	// Sweep again only after the map doubles, so a flood of fresh keys
	// costs amortized O(1) per failure.
	l.nextSweep = max(10000, 2*len(l.m))
}
