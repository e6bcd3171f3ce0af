package authz

import (
	"sync"

	"github.com/casbin/casbin/v2/persist"
)

// Bus carries small messages between the nodes of a cluster. LocalBus is the
// in-process implementation; the cluster bus (NATS) will implement the same
// interface, and the Watcher needs nothing else.
type Bus interface {
	Publish(topic string, msg []byte)
	// Subscribe calls fn for every message on topic until cancel is called.
	Subscribe(topic string, fn func(msg []byte)) (cancel func())
}

// LocalBus delivers messages to the subscribers of the same process,
// synchronously and in order.
type LocalBus struct {
	mu   sync.RWMutex
	next int
	subs map[string]map[int]func([]byte)
}

// NewLocalBus returns an empty bus.
func NewLocalBus() *LocalBus { return &LocalBus{subs: map[string]map[int]func([]byte){}} }

// Publish implements Bus.
func (b *LocalBus) Publish(topic string, msg []byte) {
	b.mu.RLock()
	fns := make([]func([]byte), 0, len(b.subs[topic]))
	for _, fn := range b.subs[topic] {
		fns = append(fns, fn)
	}
	b.mu.RUnlock()
	for _, fn := range fns {
		fn(msg)
	}
}

// Subscribe implements Bus.
func (b *LocalBus) Subscribe(topic string, fn func([]byte)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	if b.subs[topic] == nil {
		b.subs[topic] = map[int]func([]byte){}
	}
	b.subs[topic][id] = fn
	return func() {
		b.mu.Lock()
		delete(b.subs[topic], id)
		b.mu.Unlock()
	}
}

// PolicyTopic is the bus topic of policy-change notices.
const PolicyTopic = "authz.policy"

// Watcher is a persist.Watcher over a Bus: after a node changes the policy
// (and its adapter has written the database), Update tells the other nodes,
// whose callback reloads the policy and flushes their decision caches. A
// node ignores its own notices.
type Watcher struct {
	bus    Bus
	node   string
	mu     sync.Mutex
	cb     func(string)
	cancel func()
}

var _ persist.Watcher = (*Watcher)(nil)

// NewWatcher subscribes node to bus.
func NewWatcher(bus Bus, node string) *Watcher {
	w := &Watcher{bus: bus, node: node}
	w.cancel = bus.Subscribe(PolicyTopic, func(msg []byte) {
		from := string(msg)
		if from == w.node {
			return
		}
		w.mu.Lock()
		cb := w.cb
		w.mu.Unlock()
		if cb != nil {
			cb(from)
		}
	})
	return w
}

// SetUpdateCallback implements persist.Watcher.
func (w *Watcher) SetUpdateCallback(cb func(string)) error {
	w.mu.Lock()
	w.cb = cb
	w.mu.Unlock()
	return nil
}

// Update implements persist.Watcher: it announces a change made by this node.
func (w *Watcher) Update() error {
	w.bus.Publish(PolicyTopic, []byte(w.node))
	return nil
}

// Close implements persist.Watcher.
func (w *Watcher) Close() { w.cancel() }
