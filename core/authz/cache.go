package authz

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// decisionCache remembers decisions per subject. Any policy change bumps gen
// and drops what it affects: one subject's entries for an assignment or
// membership change, everything for a rule or hierarchy change. A decision
// computed under an older gen is never stored (put checks gen under the
// shard lock that invalidation also takes), so a stale answer cannot slip in
// between a change and its flush.
type decisionCache struct {
	seed   maphash.Seed
	gen    atomic.Uint64
	shards [cacheShards]cacheShard
	// perShard bounds a shard; a full shard is emptied (decisions are cheap
	// to recompute, and this keeps memory bounded under scans).
	perShard int
}

const cacheShards = 64

type cacheShard struct {
	mu   sync.RWMutex
	subs map[string]map[cacheKey]bool
	n    int
}

// cacheKey is a request without its subject (the shard map is keyed by it).
type cacheKey struct {
	room, space, org, act, kind string
	cls                         int
}

func newDecisionCache(perShard int) *decisionCache {
	c := &decisionCache{seed: maphash.MakeSeed(), perShard: perShard}
	for i := range c.shards {
		c.shards[i].subs = map[string]map[cacheKey]bool{}
	}
	return c
}

func (c *decisionCache) shard(sub string) *cacheShard {
	return &c.shards[maphash.String(c.seed, sub)%cacheShards]
}

func (c *decisionCache) get(sub string, k cacheKey) (allowed, ok bool) {
	sh := c.shard(sub)
	sh.mu.RLock()
	allowed, ok = sh.subs[sub][k]
	sh.mu.RUnlock()
	return
}

func (c *decisionCache) put(sub string, k cacheKey, allowed bool, gen uint64) {
	sh := c.shard(sub)
	sh.mu.Lock()
	if c.gen.Load() == gen {
		if sh.n >= c.perShard {
			sh.subs, sh.n = map[string]map[cacheKey]bool{}, 0
		}
		m := sh.subs[sub]
		if m == nil {
			m = map[cacheKey]bool{}
			sh.subs[sub] = m
		}
		if _, had := m[k]; !had {
			sh.n++
		}
		m[k] = allowed
	}
	sh.mu.Unlock()
}

// dropSubject forgets one subject's decisions.
func (c *decisionCache) dropSubject(sub string) {
	c.gen.Add(1)
	sh := c.shard(sub)
	sh.mu.Lock()
	sh.n -= len(sh.subs[sub])
	delete(sh.subs, sub)
	sh.mu.Unlock()
}

// dropAll forgets every decision.
func (c *decisionCache) dropAll() {
	c.gen.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.subs, sh.n = map[string]map[cacheKey]bool{}, 0
		sh.mu.Unlock()
	}
}
