// Package secevent is the core's security event stream. Every login
// attempt, token, session and device change, role and policy change, admin
// action, plugin lifecycle change and rate-limit refusal becomes an Event
// that the code where it happened hands to Emit.
//
// Emit never fails and never blocks a request for long: it queues the event,
// and one appender goroutine writes queued events to a bounded outbox in the
// database (store.SecurityEvent), many per transaction, with ids that are
// gap-free and follow commit order. The outbox keeps the newest Max events;
// older ones are pruned in the background. Plugins granted security.read
// read the stream through the OnSecurityEvents hook with a durable cursor
// (core/pluginhost), admins through GET /v1/admin/security-events.
package secevent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/store"
)

// Event is one security-relevant thing that happened. Empty ClientAddr,
// UserAgent and Actor are filled from the context given to Emit (see
// WithRequest and WithActor); a zero At is the time of Emit.
type Event struct {
	Type       Type
	Actor      string
	Target     string
	TargetKind string
	ClientAddr string
	UserAgent  string
	Outcome    string // Success, Failure or Denied
	// Details are free-form facts about the event; never secrets, never
	// message text.
	Details map[string]string
	At      time.Time
}

// Record is a stored event as the admin API and plugins see it.
type Record struct {
	ID         int64             `json:"id"`
	At         int64             `json:"at"`
	Type       string            `json:"type"`
	Actor      string            `json:"actor"`
	Target     string            `json:"target"`
	TargetKind string            `json:"target_kind"`
	ClientAddr string            `json:"client_addr"`
	UserAgent  string            `json:"user_agent"`
	Outcome    string            `json:"outcome"`
	Details    map[string]string `json:"details"`
}

// DefaultMax is how many events the outbox keeps unless configured.
const DefaultMax = 1_000_000

// Options configures an Outbox.
type Options struct {
	Store *store.Store
	// Max is how many events the outbox keeps (default DefaultMax); older
	// ones are pruned in the background.
	Max int64
	// Queue is how many emitted events may wait for the appender (default
	// 16384).
	Queue int
	// Wait is how long Emit waits for room in a full queue before it drops
	// the event (default 50ms).
	Wait    time.Duration
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Outbox queues, stores and reads security events. A nil *Outbox drops
// every event, so components work without one.
type Outbox struct {
	o  Options
	in chan item

	mu     sync.RWMutex // guards closed against Emit
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}

	cmu     sync.Mutex
	changed chan struct{} // closed and replaced after every commit

	oldest atomic.Int64 // oldest retained id as last seen (may lag other nodes' pruning)
	prune  chan struct{}

	sample *ratelimit.Limiter // one rate-limit event per limit and key per second
}

type item struct {
	ev      store.SecurityEvent
	flushed chan struct{} // a Flush marker instead of an event
}

// New reads the outbox bounds and starts the appender and pruner.
func New(ctx context.Context, o Options) (*Outbox, error) {
	if o.Store == nil {
		return nil, errors.New("secevent: Store is required")
	}
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if o.Queue <= 0 {
		o.Queue = 16384
	}
	if o.Wait <= 0 {
		o.Wait = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	oldest, last, err := o.Store.SecurityEventBounds(ctx)
	if err != nil {
		return nil, err
	}
	if oldest == 0 {
		oldest = last + 1
	}
	x := &Outbox{o: o, in: make(chan item, o.Queue), stop: make(chan struct{}), changed: make(chan struct{}),
		prune: make(chan struct{}, 1), sample: ratelimit.New(ratelimit.Rate{N: 1, Per: time.Second})}
	x.oldest.Store(oldest)
	x.wg.Add(2)
	go x.appendLoop()
	go x.pruneLoop()
	x.maybePrune(last)
	return x, nil
}

// Close stops accepting events, writes the queued ones and stops.
func (x *Outbox) Close() {
	if x == nil {
		return
	}
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return
	}
	x.closed = true
	close(x.in)
	x.mu.Unlock()
	close(x.stop)
	x.wg.Wait()
}

// Max is the number of events the outbox keeps.
func (x *Outbox) Max() int64 { return x.o.Max }

// Emit queues ev. It never fails the caller: an event that cannot be queued
// within Options.Wait (or of an unknown type) is dropped, logged and counted
// (unhidra_security_events_dropped_total).
func (x *Outbox) Emit(ctx context.Context, ev Event) {
	if x == nil {
		return
	}
	if !Known(ev.Type) {
		x.drop("unknown_type", 1)
		x.o.Logger.Error("security event of an unknown type dropped (add it to secevent.Types)", "type", ev.Type)
		return
	}
	r := row(ctx, ev)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		x.drop("closed", 1)
		return
	}
	select {
	case x.in <- item{ev: r}:
		return
	default:
	}
	t := time.NewTimer(x.o.Wait)
	defer t.Stop()
	select {
	case x.in <- item{ev: r}:
	case <-t.C:
		x.drop("queue_full", 1)
		x.o.Logger.Warn("security event queue full; event dropped", "type", ev.Type, "queue", x.o.Queue)
	}
}

// RateLimited emits ratelimit.refused for a refusal by limit (e.g. "login")
// of key (a client address, a user id) — at most once per limit and key per
// second; further refusals in that second are only counted
// (unhidra_security_events_suppressed_total).
func (x *Outbox) RateLimited(ctx context.Context, limit, kind, key string, rate ratelimit.Rate, retry time.Duration) {
	if x == nil {
		return
	}
	if ok, _ := x.sample.Allow(limit + "\x00" + key); !ok {
		if m := x.o.Metrics; m != nil {
			m.SecurityEventsSuppressed.Inc()
		}
		return
	}
	x.Emit(ctx, Event{Type: RateLimitRefused, Target: key, TargetKind: kind, Outcome: Denied,
		Details: map[string]string{"limit": limit, "rate": rate.String(), "retry_after_ms": strconv.FormatInt(retry.Milliseconds(), 10)}})
}

// Flush waits until every event emitted before it is committed (or
// dropped), or ctx ends.
func (x *Outbox) Flush(ctx context.Context) error {
	if x == nil {
		return nil
	}
	done := make(chan struct{})
	x.mu.RLock()
	if x.closed {
		x.mu.RUnlock()
		return errors.New("secevent: outbox is closed")
	}
	select {
	case x.in <- item{flushed: done}:
	case <-ctx.Done():
		x.mu.RUnlock()
		return ctx.Err()
	}
	x.mu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Changed returns a channel that is closed after the next commit of new
// events. Take it before reading, then wait on it: no commit is missed.
func (x *Outbox) Changed() <-chan struct{} {
	x.cmu.Lock()
	defer x.cmu.Unlock()
	return x.changed
}

func (x *Outbox) broadcast() {
	x.cmu.Lock()
	close(x.changed)
	x.changed = make(chan struct{})
	x.cmu.Unlock()
}

func (x *Outbox) drop(reason string, n int) {
	if m := x.o.Metrics; m != nil {
		m.SecurityEventsDropped.WithLabelValues(reason).Add(float64(n))
	}
}

// appendLoop writes queued events, up to 512 per transaction, in queue
// order. A batch that fails is retried three times, then dropped (logged
// and counted): the stream must not stall behind a broken row.
func (x *Outbox) appendLoop() {
	defer x.wg.Done()
	const maxBatch = 512
	batch := make([]store.SecurityEvent, 0, maxBatch)
	var flushes []chan struct{}
	for it := range x.in {
		batch, flushes = batch[:0], flushes[:0]
		add := func(it item) {
			if it.flushed != nil {
				flushes = append(flushes, it.flushed)
			} else {
				batch = append(batch, it.ev)
			}
		}
		add(it)
	fill:
		for len(batch) < maxBatch {
			select {
			case it, ok := <-x.in:
				if !ok {
					break fill
				}
				add(it)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			x.write(batch)
		}
		for _, f := range flushes {
			close(f)
		}
	}
}

func (x *Outbox) write(batch []store.SecurityEvent) {
	var err error
	for attempt, wait := 0, 100*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*4 {
		if attempt > 0 {
			time.Sleep(wait)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var last int64
		last, err = x.o.Store.AppendSecurityEvents(ctx, batch)
		cancel()
		if err == nil {
			if m := x.o.Metrics; m != nil {
				m.SecurityEvents.Add(float64(len(batch)))
			}
			x.broadcast()
			x.maybePrune(last)
			return
		}
		x.o.Logger.Warn("write security events", "events", len(batch), "attempt", attempt+1, "err", err)
	}
	x.drop("write_failed", len(batch))
	x.o.Logger.Error("security events dropped: the database refused them", "events", len(batch), "err", err)
}

// maybePrune wakes the pruner once the outbox holds more than Max events
// (plus 1% slack, so that a full outbox is pruned in chunks, not per batch).
func (x *Outbox) maybePrune(last int64) {
	if last-x.oldest.Load()+1 > x.o.Max+x.o.Max/100 {
		select {
		case x.prune <- struct{}{}:
		default:
		}
	}
}

func (x *Outbox) pruneLoop() {
	defer x.wg.Done()
	t := time.NewTicker(time.Minute) // catches pruning owed after a restart with a lower Max
	defer t.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-x.prune:
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		oldest, last, err := x.o.Store.SecurityEventBounds(ctx)
		if err == nil && oldest > 0 && last-oldest+1 > x.o.Max {
			cut := last - x.o.Max
			var n int64
			n, err = x.o.Store.PruneSecurityEvents(ctx, cut, 10_000)
			if m := x.o.Metrics; m != nil {
				m.SecurityEventsPruned.Add(float64(n))
			}
			oldest = cut + 1
		}
		cancel()
		if err != nil {
			x.o.Logger.Warn("prune security events", "err", err)
			continue
		}
		if oldest == 0 {
			oldest = last + 1
		}
		x.oldest.Store(oldest)
	}
}

// List returns the events q selects.
func (x *Outbox) List(ctx context.Context, q store.SecurityQuery) ([]Record, error) {
	rows, err := x.o.Store.SecurityEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Record, len(rows))
	for i, r := range rows {
		out[i] = Record{ID: r.ID, At: r.At, Type: r.Type, Actor: r.Actor, Target: r.Target, TargetKind: r.TargetKind,
			ClientAddr: r.ClientAddr, UserAgent: r.UserAgent, Outcome: r.Outcome, Details: map[string]string{}}
		_ = json.Unmarshal([]byte(r.Details), &out[i].Details)
	}
	return out, nil
}

// Bounds returns the oldest retained id (0: empty) and the last id assigned.
func (x *Outbox) Bounds(ctx context.Context) (oldest, last int64, err error) {
	return x.o.Store.SecurityEventBounds(ctx)
}

// Cursor returns plugin's cursor (the id of the last event it
// acknowledged). A plugin without one starts before the oldest retained
// event: it reads everything the outbox still holds.
func (x *Outbox) Cursor(ctx context.Context, plugin string) (int64, error) {
	return x.o.Store.SecurityCursorOf(ctx, plugin)
}

// Advance moves plugin's cursor forward to id.
func (x *Outbox) Advance(ctx context.Context, plugin string, id int64) error {
	return x.o.Store.AdvanceSecurityCursor(ctx, plugin, id)
}

// Write stores one event at once, without an Outbox (for commands that
// act on the database while no server runs, e.g. `unhidra invite`).
func Write(ctx context.Context, st *store.Store, ev Event) error {
	if !Known(ev.Type) {
		return fmt.Errorf("security event type %q is not in secevent.Types", ev.Type)
	}
	_, err := st.AppendSecurityEvents(ctx, []store.SecurityEvent{row(ctx, ev)})
	return err
}

// Column limits of store.SecurityEvent.
const (
	maxActor, maxTarget, maxAddr, maxUA, maxOutcome = 128, 256, 64, 256, 16
	maxDetail                                       = 1024 // per key and per value
	maxDetails                                      = 32   // keys
)

// row turns ev into a database row: context fills what ev lacks, and every
// string is cut to its column and made valid UTF-8 without NULs (Postgres
// refuses those, and one bad row would fail its whole batch).
func row(ctx context.Context, ev Event) store.SecurityEvent {
	src, _ := ctx.Value(sourceKey).(source)
	if ev.Actor == "" {
		ev.Actor = src.actor
	}
	if ev.ClientAddr == "" {
		ev.ClientAddr = src.addr
	}
	if ev.UserAgent == "" {
		ev.UserAgent = src.ua
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	details := "{}"
	if len(ev.Details) > 0 {
		d := make(map[string]string, len(ev.Details))
		for k, v := range ev.Details {
			if len(d) == maxDetails {
				break
			}
			if v != "" {
				d[clean(k, maxDetail)] = clean(v, maxDetail)
			}
		}
		if b, err := json.Marshal(d); err == nil {
			details = string(b)
		}
	}
	return store.SecurityEvent{At: ev.At.UnixMilli(), Type: string(ev.Type), Actor: clean(ev.Actor, maxActor),
		Target: clean(ev.Target, maxTarget), TargetKind: clean(ev.TargetKind, 32), ClientAddr: clean(ev.ClientAddr, maxAddr),
		UserAgent: clean(ev.UserAgent, maxUA), Outcome: clean(ev.Outcome, maxOutcome), Details: details}
}

// clean makes s valid UTF-8 without NULs, at most n bytes (cut on a rune
// boundary).
func clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

type ctxKey struct{}

var sourceKey ctxKey

// source is where a request came from, carried in its context.
type source struct{ addr, ua, actor string }

// WithRequest returns ctx carrying a request's trusted-proxy resolved
// client address and User-Agent, which Emit puts on events that lack them.
func WithRequest(ctx context.Context, addr, userAgent string) context.Context {
	src, _ := ctx.Value(sourceKey).(source)
	src.addr, src.ua = addr, userAgent
	return context.WithValue(ctx, sourceKey, src)
}

// WithActor returns ctx naming who acts (a user id, "plugin:<id>"); Emit
// uses it for events without an Actor.
func WithActor(ctx context.Context, actor string) context.Context {
	src, _ := ctx.Value(sourceKey).(source)
	src.actor = actor
	return context.WithValue(ctx, sourceKey, src)
}

// ActorOf returns the actor ctx names ("" when none).
func ActorOf(ctx context.Context) string {
	src, _ := ctx.Value(sourceKey).(source)
	return src.actor
}
