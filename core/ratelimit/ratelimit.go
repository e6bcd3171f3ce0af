// Package ratelimit holds the limiters the front door uses: a rate ("10/min")
// and keyed GCRA buckets (per IP, per user) plus a single Bucket for state
// that already has an owner (per connection). GCRA keeps one int64 per key
// and answers "when may I retry?" exactly, which is what 429 Retry-After and
// retry_after_ms need.
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is N events per Per, with a burst of N.
type Rate struct {
	N   int
	Per time.Duration
}

// Unlimited reports whether r allows everything (N <= 0).
func (r Rate) Unlimited() bool { return r.N <= 0 || r.Per <= 0 }

func (r Rate) String() string {
	if r.Unlimited() {
		return "off"
	}
	switch r.Per {
	case time.Second:
		return strconv.Itoa(r.N) + "/s"
	case time.Minute:
		return strconv.Itoa(r.N) + "/min"
	case time.Hour:
		return strconv.Itoa(r.N) + "/h"
	case 24 * time.Hour:
		return strconv.Itoa(r.N) + "/d"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

// ParseRate reads "N/unit" where unit is s, sec, m, min, h, hour, d, day or
// a Go duration ("10/30s"); "off" or "0" means unlimited.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Rate{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/unit, e.g. 10/min", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a non-negative count", s, n)
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	case "d", "day":
		per = 24 * time.Hour
	default:
		per, err = time.ParseDuration(unit)
		if err != nil || per <= 0 {
			return Rate{}, fmt.Errorf("rate %q: unit %q is not s, min, h, d or a duration", s, unit)
		}
	}
	return Rate{N: count, Per: per}, nil
}

// Set implements flag.Value.
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Bucket is the GCRA state of one key: the theoretical arrival time of the
// next event. The zero value is a full bucket. It is not safe for concurrent
// use; a Limiter guards its buckets, a connection owns its own.
type Bucket struct{ tat int64 } // unix nanoseconds

// Take spends one event at now. When the bucket is empty it returns false
// and how long until one event fits.
func (b *Bucket) Take(r Rate, now time.Time) (bool, time.Duration) {
	if r.Unlimited() {
		return true, 0
	}
	t := now.UnixNano()
	interval := int64(r.Per) / int64(r.N)
	tolerance := int64(r.Per) - interval // a burst of N
	tat := b.tat
	if tat < t {
		tat = t
	}
	if wait := tat - t - tolerance; wait > 0 {
		return false, time.Duration(wait)
	}
	b.tat = tat + interval
	return true, 0
}

const shards = 32

type shard struct {
	mu        sync.Mutex
	m         map[string]*Bucket
	nextSweep int
}

// Limiter is a set of buckets keyed by string (an IP, a user id). A nil
// *Limiter allows everything, so "limits off" is just a nil.
type Limiter struct {
	rate   Rate
	seed   maphash.Seed
	now    func() time.Time
	key    func(string) string // maps keys before use (KeyedBy); nil: as given
	shards [shards]shard
}

// New returns a limiter for r, or nil when r is unlimited.
func New(r Rate) *Limiter { return NewWithClock(r, time.Now) }

// NewWithClock is New with a clock (tests).
func NewWithClock(r Rate, now func() time.Time) *Limiter {
	if r.Unlimited() {
		return nil
	}
	l := &Limiter{rate: r, seed: maphash.MakeSeed(), now: now}
	for i := range l.shards {
		l.shards[i].m = map[string]*Bucket{}
		l.shards[i].nextSweep = 1024
	}
	return l
}

// KeyedBy makes l map every key through f before use — clientip.Key for
// limits per client address, so that an IPv6 /64 shares one bucket. It
// returns l (nil stays nil: unlimited).
func (l *Limiter) KeyedBy(f func(string) string) *Limiter {
	if l != nil {
		l.key = f
	}
	return l
}

// Rate returns the limiter's rate (unlimited for nil).
func (l *Limiter) Rate() Rate {
	if l == nil {
		return Rate{}
	}
	return l.rate
}

// Allow spends one event for key, or reports how long to wait.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	if l.key != nil {
		key = l.key(key)
	}
	now := l.now()
	sh := &l.shards[maphash.String(l.seed, key)%shards]
	sh.mu.Lock()
	b := sh.m[key]
	if b == nil {
		if len(sh.m) >= sh.nextSweep {
			sh.sweep(now.UnixNano())
		}
		b = &Bucket{}
		sh.m[key] = b
	}
	ok, wait := b.Take(l.rate, now)
	sh.mu.Unlock()
	return ok, wait
}

// sweep drops buckets that are full again (equivalent to absent), so memory
// follows the number of keys active within one period, not all keys ever.
func (sh *shard) sweep(now int64) {
	for k, b := range sh.m {
		if b.tat <= now {
			delete(sh.m, k)
		}
	}
	sh.nextSweep = max(1024, 2*len(sh.m))
}

// Len returns the number of tracked keys (tests, metrics).
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].m)
		l.shards[i].mu.Unlock()
	}
	return n
}
