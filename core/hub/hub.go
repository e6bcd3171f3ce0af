// Package hub is the in-process event.Broker: it routes events to
// subscribers by room, by user and by session. It is sharded so that
// publishes to different rooms never contend on one lock, and it never
// encodes: an event's payload was encoded once per fan-out and every
// subscriber gets the same *event.Event.
package hub

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/unhidra/unhidra/core/event"
)

// Subscriber is event.Subscriber: a WebSocket session or any other consumer.
type Subscriber = event.Subscriber

// The hub is the default broker.
var _ event.Broker = (*Hub)(nil)

const shardCount = 64

type roomShard struct {
	mu    sync.RWMutex
	rooms map[string]map[uint64]Subscriber
}

type userShard struct {
	mu    sync.RWMutex
	users map[string]map[uint64]Subscriber
}

// sessShard indexes the other direction: session → rooms it is subscribed
// to, so that a closing session leaves every room it was ever added to (also
// rooms it joined through REST or was added to while connected), and
// session id → connected subscriber (PublishSession).
type sessShard struct {
	mu    sync.Mutex
	rooms map[uint64]map[string]struct{}
	subs  map[uint64]Subscriber // connected sessions (Connect … Disconnect)
}

// closer is implemented by subscribers that can tell they have ended.
type closer interface{ Closed() bool }

// Hub is the routing table. The zero value is not usable; call New.
type Hub struct {
	seed  maphash.Seed
	rooms [shardCount]roomShard
	users [shardCount]userShard
	sess  [shardCount]sessShard
	ids   atomic.Uint64
}

// New returns an empty hub.
func New() *Hub {
	h := &Hub{seed: maphash.MakeSeed()}
	for i := range h.rooms {
		h.rooms[i].rooms = map[string]map[uint64]Subscriber{}
		h.users[i].users = map[string]map[uint64]Subscriber{}
		h.sess[i].rooms = map[uint64]map[string]struct{}{}
		h.sess[i].subs = map[uint64]Subscriber{}
	}
	return h
}

// NewSessionID returns a session id no other subscriber of this hub has:
// WebSocket sessions and every other kind of subscriber draw from it.
func (h *Hub) NewSessionID() uint64 { return h.ids.Add(1) }

func (h *Hub) track(id uint64, room string, on bool) {
	sh := &h.sess[id%shardCount]
	sh.mu.Lock()
	m := sh.rooms[id]
	if on {
		if m == nil {
			m = map[string]struct{}{}
			sh.rooms[id] = m
		}
		m[room] = struct{}{}
	} else if m != nil {
		delete(m, room)
	}
	sh.mu.Unlock()
}

func (h *Hub) shard(key string) int {
	return int(maphash.String(h.seed, key) % shardCount)
}

// Subscribe adds s to room. It is idempotent.
func (h *Hub) Subscribe(room string, s Subscriber) {
	sh := &h.rooms[h.shard(room)]
	sh.mu.Lock()
	m := sh.rooms[room]
	if m == nil {
		m = map[uint64]Subscriber{}
		sh.rooms[room] = m
	}
	m[s.SessionID()] = s
	sh.mu.Unlock()
	h.track(s.SessionID(), room, true)
	// A session that ended while this subscribe raced with its Disconnect
	// removes itself again (Disconnect runs after the session is closed).
	if c, ok := s.(closer); ok && c.Closed() {
		h.Unsubscribe(room, s)
	}
}

// Unsubscribe removes s from room.
func (h *Hub) Unsubscribe(room string, s Subscriber) {
	sh := &h.rooms[h.shard(room)]
	sh.mu.Lock()
	if m := sh.rooms[room]; m != nil {
		delete(m, s.SessionID())
		if len(m) == 0 {
			delete(sh.rooms, room)
		}
	}
	sh.mu.Unlock()
	h.track(s.SessionID(), room, false)
}

// UnsubscribeUser removes every session of user from room (the user left or
// was removed).
func (h *Hub) UnsubscribeUser(room, user string) {
	sh := &h.rooms[h.shard(room)]
	sh.mu.Lock()
	var gone []uint64
	if m := sh.rooms[room]; m != nil {
		for id, s := range m {
			if s.UserID() == user {
				delete(m, id)
				gone = append(gone, id)
			}
		}
		if len(m) == 0 {
			delete(sh.rooms, room)
		}
	}
	sh.mu.Unlock()
	for _, id := range gone {
		h.track(id, room, false)
	}
}

// SubscribeUser subscribes every live session of user to room (the user was
// added to a room while connected).
func (h *Hub) SubscribeUser(room, user string) {
	for _, s := range h.Sessions(user) {
		h.Subscribe(room, s)
	}
}

// PublishRoom hands ev to every subscriber of ev.Room except the session
// with id except (0 skips none). It returns the number of subscribers that
// took it.
func (h *Hub) PublishRoom(ev *event.Event, except uint64) int {
	sh := &h.rooms[h.shard(ev.Room)]
	sh.mu.RLock()
	n := 0
	for id, s := range sh.rooms[ev.Room] {
		if id == except {
			continue
		}
		if s.Deliver(ev) {
			n++
		}
	}
	sh.mu.RUnlock()
	return n
}

// PublishSession hands ev to the connected session with id session.
func (h *Hub) PublishSession(session uint64, ev *event.Event) int {
	sh := &h.sess[session%shardCount]
	sh.mu.Lock()
	s := sh.subs[session]
	sh.mu.Unlock()
	if s != nil && s.Deliver(ev) {
		return 1
	}
	return 0
}

// Subscribers returns the number of sessions subscribed to room.
func (h *Hub) Subscribers(room string) int {
	sh := &h.rooms[h.shard(room)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return len(sh.rooms[room])
}

// RoomSessions returns a snapshot of the sessions subscribed to room.
func (h *Hub) RoomSessions(room string) []Subscriber {
	sh := &h.rooms[h.shard(room)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	out := make([]Subscriber, 0, len(sh.rooms[room]))
	for _, s := range sh.rooms[room] {
		out = append(out, s)
	}
	return out
}

// Connect registers a live session of its user. It returns how many sessions
// the user now has (1 means the user just came online).
func (h *Hub) Connect(s Subscriber) int {
	ss := &h.sess[s.SessionID()%shardCount]
	ss.mu.Lock()
	ss.subs[s.SessionID()] = s
	ss.mu.Unlock()
	sh := &h.users[h.shard(s.UserID())]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m := sh.users[s.UserID()]
	if m == nil {
		m = map[uint64]Subscriber{}
		sh.users[s.UserID()] = m
	}
	m[s.SessionID()] = s
	return len(m)
}

// Disconnect removes s from the user index and from every room it is
// subscribed to. It returns those rooms and how many sessions the user still
// has (0 means the user went offline).
func (h *Hub) Disconnect(s Subscriber) (rooms []string, remaining int) {
	id := s.SessionID()
	ss := &h.sess[id%shardCount]
	ss.mu.Lock()
	for r := range ss.rooms[id] {
		rooms = append(rooms, r)
	}
	delete(ss.rooms, id)
	delete(ss.subs, id)
	ss.mu.Unlock()
	for _, r := range rooms {
		h.Unsubscribe(r, s)
	}
	sh := &h.users[h.shard(s.UserID())]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m := sh.users[s.UserID()]
	delete(m, id)
	if len(m) == 0 {
		delete(sh.users, s.UserID())
		return rooms, 0
	}
	return rooms, len(m)
}

// Sessions returns a snapshot of user's live sessions.
func (h *Hub) Sessions(user string) []Subscriber {
	sh := &h.users[h.shard(user)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	out := make([]Subscriber, 0, len(sh.users[user]))
	for _, s := range sh.users[user] {
		out = append(out, s)
	}
	return out
}

// Online reports whether user has at least one live session.
func (h *Hub) Online(user string) bool {
	sh := &h.users[h.shard(user)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return len(sh.users[user]) > 0
}

// PublishUser hands ev to every live session of user.
func (h *Hub) PublishUser(user string, ev *event.Event) int {
	sh := &h.users[h.shard(user)]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	n := 0
	for _, s := range sh.users[user] {
		if s.Deliver(ev) {
			n++
		}
	}
	return n
}

// All returns a snapshot of every live session (for drain).
func (h *Hub) All() []Subscriber {
	var out []Subscriber
	for i := range h.users {
		sh := &h.users[i]
		sh.mu.RLock()
		for _, m := range sh.users {
			for _, s := range m {
				out = append(out, s)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// Rooms returns the ids of every room with at least one subscriber.
func (h *Hub) Rooms() []string {
	var out []string
	for i := range h.rooms {
		sh := &h.rooms[i]
		sh.mu.RLock()
		for r := range sh.rooms {
			out = append(out, r)
		}
		sh.mu.RUnlock()
	}
	return out
}

// UserRooms returns the rooms where a session of user is subscribed (from
// the session → rooms index, not a scan of every room).
func (h *Hub) UserRooms(user string) []string {
	seen := map[string]struct{}{}
	var out []string
	for _, sub := range h.Sessions(user) {
		id := sub.SessionID()
		sh := &h.sess[id%shardCount]
		sh.mu.Lock()
		for r := range sh.rooms[id] {
			if _, dup := seen[r]; !dup {
				seen[r] = struct{}{}
				out = append(out, r)
			}
		}
		sh.mu.Unlock()
	}
	return out
}
