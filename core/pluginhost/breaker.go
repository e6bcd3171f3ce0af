package pluginhost

import (
	"sync"
	"sync/atomic"
	"time"
)

// Breaker states, as exported in the unhidra_plugin_breaker_state gauge.
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

var breakerNames = [...]string{"closed", "half-open", "open"}

// breaker is a consecutive-failure circuit breaker. Closed, it lets every
// call through; after `failures` consecutive failures it opens and bypasses
// the plugin for `cooldown`; then one trial call runs (half-open): success
// closes it, failure opens it again. The closed, healthy path is two atomic
// loads and no lock.
type breaker struct {
	state    atomic.Int32
	failures atomic.Int32
	onChange func(state int32)

	mu       sync.Mutex
	openedAt time.Time
	trial    bool
}

// allow reports whether a call may go to the plugin now.
func (b *breaker) allow(cooldown time.Duration) bool {
	if b.state.Load() == breakerClosed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed:
		return true
	case breakerOpen:
		if time.Since(b.openedAt) < cooldown {
			return false
		}
		b.set(breakerHalfOpen)
		b.trial = true
		return true
	default: // half-open: one trial at a time
		if b.trial {
			return false
		}
		b.trial = true
		return true
	}
}

// record reports a call's outcome.
func (b *breaker) record(ok bool, threshold int) {
	if ok && b.state.Load() == breakerClosed {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trial = false
	if ok {
		b.failures.Store(0)
		b.set(breakerClosed)
		return
	}
	n := b.failures.Add(1)
	if b.state.Load() == breakerHalfOpen || int(n) >= threshold {
		b.openedAt = time.Now()
		b.set(breakerOpen)
	}
}

// reset closes the breaker and forgets its failures: a new process starts
// with a clean record (the failures were its predecessor's).
func (b *breaker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trial = false
	b.failures.Store(0)
	b.set(breakerClosed)
}

func (b *breaker) set(s int32) {
	if b.state.Swap(s) != s && b.onChange != nil {
		b.onChange(s)
	}
}

func (b *breaker) name() string { return breakerNames[b.state.Load()] }
