// Package event is what the core tells the world: one Event type for
// everything that reaches clients or plugins (room log events with their seq,
// membership, presence, typing, receipts, plugin events, security events),
// and the Broker that routes events to subscribers.
//
// An event knows nothing about transports. Its Payload is the protocol v1
// JSON object, encoded once per fan-out and shared by every subscriber: a
// WebSocket session frames it when it writes (core/gateway), a plugin, a
// cluster bus or an MQTT bridge reads the same bytes. The in-process
// sharded hub (core/hub) is the default Broker.
package event

// Event is one thing that happened. Nothing may change an Event, or its
// Payload, after it was published: every subscriber holds the same one.
type Event struct {
	// Kind is the protocol frame type: "message", "edited", "deleted",
	// "reaction", "joined", "left", "presence", "typing", "receipt", or a
	// plugin's namespaced type.
	Kind string
	// Room is the room the event belongs to ("" for user- or session-wide
	// events such as presence).
	Room string
	// User is the user the event is about: the sender of a message, the
	// member who joined or left, the user whose presence, typing or receipt
	// it is.
	User string
	// Session is the session the event is for (PublishSession) or comes
	// from (typing); 0 when none.
	Session uint64
	// Seq is the event's place in the room's log (0 for events that are not
	// logged: membership, presence, typing, receipts).
	Seq int64
	// Payload is the event as protocol v1 JSON (`{"type":…}`).
	Payload []byte
}

// Subscriber receives events: a WebSocket session, or any other consumer
// (a plugin's feed, a bridge, a test). Deliver must not block: a subscriber
// that cannot take more applies its own slow-consumer policy and returns
// false.
type Subscriber interface {
	SessionID() uint64
	UserID() string
	Deliver(ev *Event) bool
}

// Broker routes events to subscribers: to the sessions subscribed to a room,
// to every session of a user, or to one session. Publish methods return how
// many subscribers took the event (on this node) and never block.
type Broker interface {
	// PublishRoom hands ev to every subscriber of ev.Room except the session
	// except (0 skips none).
	PublishRoom(ev *Event, except uint64) int
	// PublishUser hands ev to every session of user.
	PublishUser(user string, ev *Event) int
	// PublishSession hands ev to one session.
	PublishSession(session uint64, ev *Event) int

	// Subscribe adds s to room's subscribers (idempotent); Unsubscribe
	// removes it.
	Subscribe(room string, s Subscriber)
	Unsubscribe(room string, s Subscriber)
	// SubscribeUser and UnsubscribeUser do the same for every session of
	// user (a membership change while the user is connected).
	SubscribeUser(room, user string)
	UnsubscribeUser(room, user string)
	// Connect registers s as a session of its user (for PublishUser and
	// PublishSession) and returns how many sessions the user now has.
	Connect(s Subscriber) int
	// Disconnect removes s everywhere and returns the rooms it was in and
	// how many sessions its user still has.
	Disconnect(s Subscriber) (rooms []string, remaining int)
}
