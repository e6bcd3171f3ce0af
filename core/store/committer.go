package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Op is one room mutation: a new message, an edit, a delete or a reaction.
// Done is called exactly once, after the transaction holding the op has
// committed (or failed), in the order the ops were committed. Done runs on the
// committer's publish goroutine and must not block for long.
type Op struct {
	Kind   string // EventMessage, EventEdited, EventDeleted, EventReaction
	RoomID string
	Actor  string
	// Privileged lets the actor edit or delete other people's messages.
	Privileged bool

	// For EventMessage.
	MessageID string
	Ref       string
	Text      string
	ThreadID  string
	Meta      string

	// For edits, deletes and reactions: the target message.
	Target string
	Emoji  string
	On     bool

	Done func(Result)
}

// Result of an Op. Exactly one of Err, Event or (Dup with Event) holds.
type Result struct {
	// Event is the committed event (for a duplicate send, the first one).
	Event Event
	// Dup is true when a send repeated a ref already stored; nothing new was written.
	Dup bool
	// NoChange is true for a reaction that was already in the asked state.
	NoChange bool
	Err      error
}

// OpError is a per-op failure that left the rest of the batch committed.
type OpError struct {
	Code string // a protocol error code
	Msg  string
}

func (e *OpError) Error() string { return e.Msg }

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("store committer is closed")

// CommitterOptions tunes group commit.
type CommitterOptions struct {
	// MaxBatch caps the ops in one transaction. Default 512.
	MaxBatch int
	// Queue is the submit queue length; Submit blocks when it is full. Default 4096.
	Queue  int
	Logger *slog.Logger
	// OnBatch observes each committed batch's size (for metrics). Optional.
	OnBatch func(n int)
}

// Committer turns many concurrent mutations into few transactions (group
// commit). One goroutine writes; a second publishes results in commit order,
// so the next transaction overlaps with fan-out of the previous one.
type Committer struct {
	s      *Store
	opts   CommitterOptions
	in     chan *Op
	out    chan []doneOp
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

type doneOp struct {
	op  *Op
	res Result
}

// NewCommitter starts the writer and publisher goroutines.
func (s *Store) NewCommitter(o CommitterOptions) *Committer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Committer{s: s, opts: o, in: make(chan *Op, o.Queue), out: make(chan []doneOp, 64)}
	c.wg.Add(2)
	go c.writeLoop()
	go c.publishLoop()
	return c
}

// Submit queues op. It blocks while the queue is full (back-pressure) or
// until ctx ends.
func (c *Committer) Submit(ctx context.Context, op *Op) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	select {
	case c.in <- op:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting ops, commits what is queued, runs every Done and
// returns.
func (c *Committer) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.in)
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *Committer) writeLoop() {
	defer c.wg.Done()
	defer close(c.out)
	batch := make([]*Op, 0, c.opts.MaxBatch)
	for op := range c.in {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < c.opts.MaxBatch {
			select {
			case op, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		c.out <- c.commit(batch)
		if c.opts.OnBatch != nil {
			c.opts.OnBatch(len(batch))
		}
	}
}

func (c *Committer) publishLoop() {
	defer c.wg.Done()
	for results := range c.out {
		for _, d := range results {
			if d.op.Done != nil {
				d.op.Done(d.res)
			}
		}
	}
}

// commit writes one batch in one transaction. Ops that fail validation get an
// OpError and write nothing. When the transaction fails, the ops are retried
// one transaction each, so that an op the database refuses (a string it
// cannot store, a broken constraint) fails alone and the others of its batch
// still commit; ops are retried in order, so each still sees the effect of
// the ones before it.
func (c *Committer) commit(batch []*Op) []doneOp {
	results, err := c.commitTx(batch)
	if err == nil {
		return results
	}
	if len(batch) == 1 {
		op := batch[0]
		c.opts.Logger.Error("group commit failed", "ops", 1, "kind", op.Kind, "room", op.RoomID, "actor", op.Actor, "err", err)
		results[0].res = Result{Err: fmt.Errorf("commit: %w", err)}
		return results
	}
	c.opts.Logger.Warn("group commit failed; retrying its ops one by one", "ops", len(batch), "err", err)
	for i, op := range batch {
		one, err := c.commitTx(batch[i : i+1])
		if err != nil {
			c.opts.Logger.Error("group commit failed", "ops", 1, "kind", op.Kind, "room", op.RoomID, "actor", op.Actor, "err", err)
			one[0].res = Result{Err: fmt.Errorf("commit: %w", err)}
		}
		results[i] = one[0]
	}
	return results
}

// commitTx writes ops in one transaction; on error nothing was written.
func (c *Committer) commitTx(batch []*Op) ([]doneOp, error) {
	results := make([]doneOp, len(batch))
	for i, op := range batch {
		results[i].op = op
	}
	err := c.s.DB.Transaction(func(tx *gorm.DB) error {
		w := batchWriter{tx: tx, s: c.s, seqs: map[string]*roomSeq{}, refs: map[refKey]int{}}
		if err := w.prefetchRefs(batch); err != nil {
			return err
		}
		for i, op := range batch {
			if op.Kind != EventMessage || op.ThreadID != "" {
				// Edits, deletes, reactions and thread replies read
				// messages: write the pending ones first so that every
				// op sees the database as if ops were applied one by one.
				if err := w.flush(); err != nil {
					return err
				}
			}
			res, err := w.apply(op, i, results)
			if err != nil {
				return err
			}
			results[i].res = res
		}
		if err := w.flush(); err != nil {
			return err
		}
		for room, rs := range w.seqs {
			if rs.next == rs.start {
				continue
			}
			if err := tx.Model(&Room{}).Where("id = ?", room).Update("last_seq", rs.next).Error; err != nil {
				return fmt.Errorf("advance seq of room %s: %w", room, err)
			}
		}
		return nil
	})
	return results, err
}

type roomSeq struct{ start, next int64 }

type refKey struct{ room, sender, ref string }

type batchWriter struct {
	tx   *gorm.DB
	s    *Store
	seqs map[string]*roomSeq
	refs map[refKey]int // index of the op in this batch that first used the ref
	// stored holds messages of earlier batches whose client refs this
	// batch repeats (looked up once per batch, not once per send).
	stored map[refKey]Message
	// New messages and their events are inserted with one multi-row
	// statement each per batch: per-statement costs (SQL parsing in the
	// SQLite driver, the FTS5 flush) dominate a one-row insert.
	msgs []Message
	evs  []Event
}

// insertChunk bounds rows per INSERT. The SQLite driver binds arguments in
// O(n²) (it searches the argument list for each placeholder), so very
// large statements get slower again; 32 rows was the measured optimum
// (BenchmarkCommitterAppend).
const insertChunk = 32

// prefetchRefs loads the stored messages that any send of the batch might
// repeat (same room, sender and client ref): one indexed query per
// (room, sender) pair in the batch instead of one per send. (A single query
// with an IN list per column would make SQLite probe every combination.)
func (w *batchWriter) prefetchRefs(batch []*Op) error {
	type pair struct{ room, sender string }
	refs := map[pair][]string{}
	for _, op := range batch {
		if op.Kind == EventMessage && op.Ref != "" {
			k := pair{op.RoomID, op.Actor}
			refs[k] = append(refs[k], op.Ref)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	w.stored = map[refKey]Message{}
	for k, rs := range refs {
		var found []Message
		err := w.tx.Where("room_id = ? AND sender_id = ? AND client_ref IN ?", k.room, k.sender, rs).Find(&found).Error
		if err != nil {
			return fmt.Errorf("look up client refs of %s in room %s: %w", k.sender, k.room, err)
		}
		for _, m := range found {
			if m.ClientRef != nil {
				w.stored[refKey{m.RoomID, m.SenderID, *m.ClientRef}] = m
			}
		}
	}
	return nil
}

// flush inserts the pending messages, then their events.
func (w *batchWriter) flush() error {
	if len(w.msgs) > 0 {
		if err := w.tx.CreateInBatches(&w.msgs, insertChunk).Error; err != nil {
			return fmt.Errorf("insert %d messages: %w", len(w.msgs), err)
		}
		w.msgs = w.msgs[:0]
	}
	if len(w.evs) > 0 {
		if err := w.tx.CreateInBatches(&w.evs, insertChunk).Error; err != nil {
			return fmt.Errorf("insert %d events: %w", len(w.evs), err)
		}
		w.evs = w.evs[:0]
	}
	return nil
}

func (w *batchWriter) nextSeq(room string) (int64, error) {
	rs, ok := w.seqs[room]
	if !ok {
		var r Room
		q := w.tx.Select("id", "last_seq")
		if w.s.Dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Where("id = ?", room).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return 0, &OpError{Code: "not_found", Msg: "room not found"}
			}
			return 0, fmt.Errorf("read seq of room %s: %w", room, err)
		}
		rs = &roomSeq{start: r.LastSeq, next: r.LastSeq}
		w.seqs[room] = rs
	}
	rs.next++
	return rs.next, nil
}

// apply performs one op. A returned error aborts the batch; per-op failures
// are reported in the Result.
func (w *batchWriter) apply(op *Op, idx int, results []doneOp) (Result, error) {
	res, err := w.applyOp(op, idx, results)
	var oe *OpError
	if errors.As(err, &oe) {
		return Result{Err: oe}, nil
	}
	return res, err
}

func (w *batchWriter) applyOp(op *Op, idx int, results []doneOp) (Result, error) {
	now := Now()
	switch op.Kind {
	case EventMessage:
		if op.Ref != "" {
			k := refKey{op.RoomID, op.Actor, op.Ref}
			if first, ok := w.refs[k]; ok {
				r := results[first].res
				if r.Err == nil {
					r.Dup = true
				}
				return r, nil
			}
			if m, ok := w.stored[k]; ok {
				return Result{Dup: true, Event: Event{RoomID: m.RoomID, Seq: m.Seq, Kind: EventMessage, MessageID: m.ID,
					ActorID: m.SenderID, Text: m.Text, ThreadID: m.ThreadID, Meta: m.Meta, At: m.CreatedAt}}, nil
			}
			w.refs[k] = idx
		}
		if op.ThreadID != "" {
			var parent Message
			err := w.tx.Select("id", "room_id", "thread_id").Where("id = ?", op.ThreadID).Take(&parent).Error
			if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && parent.RoomID != op.RoomID) {
				return Result{}, &OpError{Code: "not_found", Msg: "thread parent not found in this room"}
			}
			if err != nil {
				return Result{}, err
			}
			if parent.ThreadID != "" { // replies to a reply join the root's thread
				op.ThreadID = parent.ThreadID
			}
		}
		seq, err := w.nextSeq(op.RoomID)
		if err != nil {
			return Result{}, err
		}
		var ref *string
		if op.Ref != "" {
			r := op.Ref
			ref = &r
		}
		w.msgs = append(w.msgs, Message{ID: op.MessageID, RoomID: op.RoomID, Seq: seq, SenderID: op.Actor, ClientRef: ref,
			ThreadID: op.ThreadID, Text: op.Text, Meta: op.Meta, CreatedAt: now})
		ev := Event{RoomID: op.RoomID, Seq: seq, Kind: EventMessage, MessageID: op.MessageID, ActorID: op.Actor,
			Text: op.Text, ThreadID: op.ThreadID, Meta: op.Meta, At: now}
		w.evs = append(w.evs, ev)
		return Result{Event: ev}, nil

	case EventEdited, EventDeleted:
		m, err := w.target(op)
		if err != nil {
			return Result{}, err
		}
		seq, err := w.nextSeq(op.RoomID)
		if err != nil {
			return Result{}, err
		}
		ev := Event{RoomID: op.RoomID, Seq: seq, Kind: op.Kind, MessageID: m.ID, ActorID: op.Actor, ThreadID: m.ThreadID, At: now}
		if op.Kind == EventEdited {
			if err := w.tx.Create(&MessageEdit{MessageID: m.ID, Seq: seq, EditorID: op.Actor, OldText: m.Text, At: now}).Error; err != nil {
				return Result{}, err
			}
			if err := w.tx.Model(&Message{}).Where("pk = ?", m.PK).Updates(map[string]any{"text": op.Text, "edited_at": now}).Error; err != nil {
				return Result{}, err
			}
			ev.Text = op.Text
		} else {
			// A tombstone: the row stays (threads and seq stay intact) but
			// its text, history and log copies are scrubbed.
			if err := w.tx.Model(&Message{}).Where("pk = ?", m.PK).Updates(map[string]any{"text": "", "meta": "", "deleted_at": now}).Error; err != nil {
				return Result{}, err
			}
			if err := w.tx.Model(&MessageEdit{}).Where("message_id = ?", m.ID).Update("old_text", "").Error; err != nil {
				return Result{}, err
			}
			if err := w.tx.Model(&Event{}).Where("message_id = ?", m.ID).Updates(map[string]any{"text": "", "meta": ""}).Error; err != nil {
				return Result{}, err
			}
		}
		return Result{Event: ev}, w.tx.Create(&ev).Error

	case EventReaction:
		m, err := w.target(op)
		if err != nil {
			return Result{}, err
		}
		var changed int64
		if op.On {
			r := w.tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Reaction{MessageID: m.ID, UserID: op.Actor, Emoji: op.Emoji, At: now})
			if r.Error != nil {
				return Result{}, r.Error
			}
			changed = r.RowsAffected
		} else {
			r := w.tx.Where("message_id = ? AND user_id = ? AND emoji = ?", m.ID, op.Actor, op.Emoji).Delete(&Reaction{})
			if r.Error != nil {
				return Result{}, r.Error
			}
			changed = r.RowsAffected
		}
		if changed == 0 {
			return Result{NoChange: true, Event: Event{RoomID: op.RoomID, Kind: EventReaction, MessageID: m.ID,
				ActorID: op.Actor, Emoji: op.Emoji, On: op.On, At: now}}, nil
		}
		seq, err := w.nextSeq(op.RoomID)
		if err != nil {
			return Result{}, err
		}
		ev := Event{RoomID: op.RoomID, Seq: seq, Kind: EventReaction, MessageID: m.ID, ActorID: op.Actor,
			ThreadID: m.ThreadID, Emoji: op.Emoji, On: op.On, At: now}
		return Result{Event: ev}, w.tx.Create(&ev).Error
	}
	return Result{}, &OpError{Code: "bad_request", Msg: "unknown op kind " + op.Kind}
}

// target loads the message an edit, delete or reaction refers to and checks
// the actor may touch it.
func (w *batchWriter) target(op *Op) (Message, error) {
	var m Message
	err := w.tx.Where("id = ? AND room_id = ?", op.Target, op.RoomID).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, &OpError{Code: "not_found", Msg: "message not found in this room"}
	}
	if err != nil {
		return m, err
	}
	if m.DeletedAt != 0 {
		return m, &OpError{Code: "not_found", Msg: "message was deleted"}
	}
	if (op.Kind == EventEdited || op.Kind == EventDeleted) && m.SenderID != op.Actor && !op.Privileged {
		return m, &OpError{Code: "forbidden", Msg: "only the author may change this message"}
	}
	return m, nil
}
