package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The soak scenario (issue 12) runs one server under two floods at once
// while well-behaved sessions chat:
//
//   - idle: -soak-idle TCP connections that never send a byte, spread over
//     worker processes (at most idleProcs each) dialing from 127.0.0.20,
//     .21, …; when the server closes one (--header-timeout, or shed at a
//     cap) it is dialed again;
//   - ping flood: -soak-flood signed-in WebSocket sessions (127.0.0.30) that
//     write 125-byte pings as fast as they can and never read; when the
//     server closes one (slow consumer) it reconnects;
//   - chat: -soak-chat sessions (127.0.0.40) in rooms of 10, each sending
//     -soak-rate messages/s for -soak-duration. Each checks that its room's
//     seqs arrive without gaps, and at the end every send must be acked and
//     every session must have seen its room's last acked seq.
//
// The coordinator samples the server's RSS every few seconds and checks
// that it is still running.

// idleProcs is how many idle connections one worker process holds (each is a
// file descriptor; the limit is ~20k per process).
const idleProcs = 4750

// soakStats are a worker's soak counters.
type soakStats struct {
	IdleOpen     int64 `json:"idle_open"`     // idle connections open now
	IdleDials    int64 `json:"idle_dials"`    // idle connections opened
	IdleTimedOut int64 `json:"idle_timedout"` // … closed by the server with a response (408)
	IdleShed     int64 `json:"idle_shed"`     // … closed by the server without one (shed at a cap)
	DialErrors   int64 `json:"dial_errors"`
	FloodOpen    int64 `json:"flood_open"`     // flooding sessions open now
	FloodDials   int64 `json:"flood_sessions"` // flooding sessions opened
	FloodClosed  int64 `json:"flood_closed"`   // … closed by the server
	FloodRefused int64 `json:"flood_refused"`  // handshakes that failed
	Gaps         int64 `json:"gaps"`           // chat: a message whose seq was not the last one + 1
	Lost         int64 `json:"lost"`           // chat: sessions that missed their room's last acked seq
	Sent         int64 `json:"sent"`           // chat sends
}

// soakCounters are the live counters behind soakStats.
type soakCounters struct {
	idleOpen, idleDials, idleTimedOut, idleShed, dialErrors        atomic.Int64
	floodOpen, floodDials, floodClosed, floodRefused, gaps, sentCh atomic.Int64
}

func (c *soakCounters) stats() *soakStats {
	return &soakStats{IdleOpen: c.idleOpen.Load(), IdleDials: c.idleDials.Load(), IdleTimedOut: c.idleTimedOut.Load(),
		IdleShed: c.idleShed.Load(), DialErrors: c.dialErrors.Load(), FloodOpen: c.floodOpen.Load(),
		FloodDials: c.floodDials.Load(), FloodClosed: c.floodClosed.Load(), FloodRefused: c.floodRefused.Load(),
		Gaps: c.gaps.Load(), Sent: c.sentCh.Load()}
}

// background returns the context that "stop" cancels, starting one if needed.
func (w *worker) background() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bgCtx == nil {
		w.bgCtx, w.bgStop = context.WithCancel(context.Background())
	}
	return w.bgCtx
}

// stopBackground ends the idle and flood loops and waits for them.
func (w *worker) stopBackground() {
	w.mu.Lock()
	stop := w.bgStop
	w.bgCtx, w.bgStop = nil, nil
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	w.bg.Wait()
}

// pause waits between 200 ms and 1 s (or until ctx ends): a connection the
// server refused is not dialed again in a busy loop.
func pause(ctx context.Context) {
	select {
	case <-time.After(200*time.Millisecond + rand.N(800*time.Millisecond)):
	case <-ctx.Done():
	}
}

// idle starts N idle connections that are dialed again whenever the server
// closes them.
func (w *worker) idle(c command) reply {
	ctx := w.background()
	for i := 0; i < c.N; i++ {
		w.bg.Add(1)
		go func() {
			defer w.bg.Done()
			for ctx.Err() == nil {
				w.idleOnce(ctx, c.Addr)
			}
		}()
	}
	return reply{}
}

func (w *worker) idleOnce(ctx context.Context, addr string) {
	nc, err := dialTCP(ctx, addr, w.src)
	if err != nil {
		if ctx.Err() == nil {
			w.soak.dialErrors.Add(1)
			w.errText.CompareAndSwap(nil, "idle: "+err.Error())
			pause(ctx)
		}
		return
	}
	w.soak.idleDials.Add(1)
	w.soak.idleOpen.Add(1)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	// Send nothing; read until the server hangs up.
	n, _ := io.Copy(io.Discard, nc)
	w.soak.idleOpen.Add(-1)
	stop()
	nc.Close()
	if ctx.Err() != nil {
		return
	}
	if n > 0 {
		w.soak.idleTimedOut.Add(1)
	} else {
		w.soak.idleShed.Add(1)
		pause(ctx)
	}
}

// pingFrames is n masked ping frames with 125-byte payloads.
func pingFrames(n int) []byte {
	var b bytes.Buffer
	p := bytes.Repeat([]byte("p"), 125)
	for i := 0; i < n; i++ {
		b.Write([]byte{0x80 | opPing, 0x80 | 125, 0, 0, 0, 0})
		b.Write(p)
	}
	return b.Bytes()
}

// pingFlood starts N sessions that write pings without reading, each
// reconnecting after the server closes it.
func (w *worker) pingFlood(c command) reply {
	ctx := w.background()
	frames := pingFrames(64)
	for i := 0; i < c.N; i++ {
		w.bg.Add(1)
		go func() {
			defer w.bg.Done()
			for ctx.Err() == nil {
				w.floodOnce(ctx, c.Addr, c.Path, c.token(i), frames)
			}
		}()
	}
	return reply{}
}

func (w *worker) floodOnce(ctx context.Context, addr, path, token string, frames []byte) {
	ws, err := dialWS(ctx, addr, path, token, w.src)
	if err != nil {
		if ctx.Err() == nil {
			w.soak.floodRefused.Add(1)
			w.errText.CompareAndSwap(nil, "flood: "+err.Error())
			pause(ctx)
		}
		return
	}
	w.soak.floodDials.Add(1)
	w.soak.floodOpen.Add(1)
	stop := context.AfterFunc(ctx, func() { ws.nc.Close() })
	for {
		if _, err := ws.nc.Write(frames); err != nil {
			break
		}
	}
	w.soak.floodOpen.Add(-1)
	stop()
	ws.nc.Close()
	if ctx.Err() == nil {
		w.soak.floodClosed.Add(1)
		pause(ctx)
	}
}

// chat makes every chat session send Rate messages/s to its room for
// Seconds, then waits (up to a minute) until every send is acked and every
// session has seen its room's last acked seq; what is still missing then is
// reported as Lost.
func (w *worker) chat(c command) reply {
	var chatters []*benchConn
	w.mu.Lock()
	for _, bc := range w.conns {
		if bc.role == "chat" {
			chatters = append(chatters, bc)
		}
	}
	w.mu.Unlock()
	if len(chatters) == 0 {
		return reply{FirstError: "no chat sessions"}
	}
	deadline := time.Now().Add(time.Duration(c.Seconds * float64(time.Second)))
	var wg sync.WaitGroup
	for _, bc := range chatters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the sessions' first sends over one interval.
			time.Sleep(rand.N(time.Duration(float64(time.Second) / c.Rate)))
			pace := pacer(c.Rate)
			var buf []byte
			for i := 0; time.Now().Before(deadline); i++ {
				pace(i)
				buf = payload(buf, bc.room, int64(i), c.Size)
				if err := bc.ws.writeFrame(opText, buf); err != nil {
					w.errText.CompareAndSwap(nil, "chat send: "+err.Error())
					return
				}
				w.soak.sentCh.Add(1)
			}
		}()
	}
	wg.Wait()
	lost := func() int64 {
		var n int64
		w.roomMu.Lock()
		defer w.roomMu.Unlock()
		for _, bc := range chatters {
			if bc.lastSeq.Load() != w.roomAcked[bc.room] {
				n++
			}
		}
		return n
	}
	settle := time.Now().Add(time.Minute)
	for (w.acks.Load() < w.soak.sentCh.Load() || lost() > 0) && time.Now().Before(settle) {
		time.Sleep(100 * time.Millisecond)
	}
	r := w.stats()
	r.Soak.Lost = lost()
	return r
}

// onChat checks a chat session's message (gap-free seq) or ack (the room's
// last acked seq).
func (w *worker) onChat(bc *benchConn, p []byte, ack bool) {
	i := bytes.Index(p, []byte(`"seq":`))
	if i < 0 {
		return
	}
	j := i + len(`"seq":`)
	k := j
	for k < len(p) && p[k] >= '0' && p[k] <= '9' {
		k++
	}
	seq, err := strconv.ParseInt(string(p[j:k]), 10, 64)
	if err != nil {
		return
	}
	if ack {
		w.roomMu.Lock()
		w.roomAcked[bc.room] = max(w.roomAcked[bc.room], seq)
		w.roomMu.Unlock()
		return
	}
	if last := bc.lastSeq.Swap(seq); seq != last+1 {
		w.soak.gaps.Add(1)
		w.errText.CompareAndSwap(nil, fmt.Sprintf("chat: seq %d after %d in room %s", seq, last, bc.room))
	}
}

// soak is the coordinator's side; see the comment at the top of this file.
func (t *target) soak(ctx context.Context, o options, m metrics) error {
	if t.name != "unhidra" {
		return nil // the reference has no sign-in, rooms or seqs
	}
	if o.SoakChat > len(t.users) {
		return fmt.Errorf("soak: -soak-chat %d needs as many accounts (-users %d)", o.SoakChat, len(t.users))
	}
	// Rooms of 10 chat sessions, one account each.
	const roomSize = 10
	var tokens, rooms []string
	for i := 0; i < o.SoakChat; i += roomSize {
		n := min(roomSize, o.SoakChat-i)
		var ids []string
		for _, u := range t.users[i+1 : i+n] {
			ids = append(ids, u.ID)
		}
		owner := t.apiAs(i)
		r, err := owner.CreateRoom(ctx, fmt.Sprintf("soak %d", i/roomSize), "private", ids...)
		if err != nil {
			return fmt.Errorf("soak: create room: %w", err)
		}
		for k := 0; k < n; k++ {
			tokens, rooms = append(tokens, t.tokens[i+k]), append(rooms, r.ID)
		}
	}
	chat, err := t.spawnWorker("127.0.0.40")
	if err != nil {
		return err
	}
	flood, err := t.spawnWorker("127.0.0.30")
	if err != nil {
		return err
	}
	var idle []*workerProc
	for i := 0; i*idleProcs < o.SoakIdle; i++ {
		w, err := t.spawnWorker(fmt.Sprintf("127.0.0.%d", 20+i))
		if err != nil {
			return err
		}
		idle = append(idle, w)
	}
	soakWorkers := append([]*workerProc{chat, flood}, idle...)
	defer t.stopWorkers(soakWorkers)

	// The chat sessions connect first, on a quiet server.
	if r, err := chat.call(command{Op: "dial", Addr: t.addr, Path: "/v1/ws", Tokens: tokens, Rooms: rooms, Role: "chat", N: o.SoakChat, Conc: 16}); err != nil || r.OK != int64(o.SoakChat) {
		return fmt.Errorf("soak: chat sessions: %v %s (%d of %d)", err, r.FirstError, r.OK, o.SoakChat)
	}
	base := t.settled()
	logf("%s soak: %d chat sessions in %d rooms; server RSS %.0f MB; starting %d idle connections (%d processes) and %d ping-flooding sessions for %s",
		t.name, o.SoakChat, len(tokens)/roomSize, float64(base.RSS)/(1<<20), o.SoakIdle, len(idle), o.SoakFlood, o.SoakDuration)
	floodTokens := t.tokens
	if _, err := flood.call(command{Op: "pingflood", Addr: t.addr, Path: "/v1/ws", Tokens: floodTokens, N: o.SoakFlood}); err != nil {
		return err
	}
	for i, w := range idle {
		if _, err := w.call(command{Op: "idle", Addr: t.addr, N: split(o.SoakIdle, len(idle), i)}); err != nil {
			return err
		}
	}
	type chatResult struct {
		r   reply
		err error
	}
	chatDone := make(chan chatResult, 1)
	s0, t0 := t.server(), time.Now()
	go func() {
		r, err := chat.call(command{Op: "chat", Rate: o.SoakRate, Seconds: o.SoakDuration.Seconds(), Size: o.Size})
		chatDone <- chatResult{r, err}
	}()
	var peak procStat
	var idleMin, idleMax int64 = -1, 0
	var chatRes chatResult
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case chatRes = <-chatDone:
			running = false
		case <-tick.C:
		}
		srv, alive := t.alive()
		if !alive {
			return fmt.Errorf("soak: the server exited after %s", time.Since(t0).Round(time.Second))
		}
		peak.RSS = max(peak.RSS, srv.RSS)
		ir, fr := t.statsOf(idle), t.statsOf([]*workerProc{flood})
		is, fs := sumSoak(ir), sumSoak(fr)
		if time.Since(t0) > 30*time.Second && running { // after the ramp-up
			if idleMin < 0 || is.IdleOpen < idleMin {
				idleMin = is.IdleOpen
			}
		}
		idleMax = max(idleMax, is.IdleOpen)
		logf("%s soak %s: RSS %.0f MB (peak %.0f), CPU %.0f%%; idle open %d (dialed %d, 408 %d, shed %d, dial errors %d); flood open %d (sessions %d, closed by server %d, refused %d) %s",
			t.name, time.Since(t0).Round(time.Second), float64(srv.RSS)/(1<<20), float64(peak.RSS)/(1<<20),
			100*float64(srv.CPUMicros-s0.CPUMicros)/1e6/time.Since(t0).Seconds(),
			is.IdleOpen, is.IdleDials, is.IdleTimedOut, is.IdleShed, is.DialErrors, fs.FloodOpen, fs.FloodDials, fs.FloodClosed, fs.FloodRefused,
			firstErr(append(ir, fr...)))
	}
	if chatRes.err != nil {
		return fmt.Errorf("soak: chat worker: %w", chatRes.err)
	}
	is := sumSoak(t.statsOf(idle))
	fs := sumSoak(t.statsOf([]*workerProc{flood}))
	// Stop the floods, then ask the server what it counted.
	t.stopWorkers(append(idle, flood))
	scrape := t.scrape(ctx)
	cs := chatRes.r.Soak
	if cs == nil {
		cs = &soakStats{}
	}
	_, alive := t.alive()
	m["soak_server_up"] = map[bool]float64{true: 1, false: 0}[alive && scrape != nil]
	m["soak_server_rss_peak_mb"] = float64(peak.RSS) / (1 << 20)
	m["soak_server_rss_before_mb"] = float64(base.RSS) / (1 << 20)
	m["soak_idle_open_min"], m["soak_idle_open_max"] = float64(max(idleMin, 0)), float64(idleMax)
	m["soak_idle_dials"] = float64(is.IdleDials)
	m["soak_idle_timed_out"] = float64(is.IdleTimedOut)
	m["soak_idle_shed"] = float64(is.IdleShed)
	m["soak_flood_sessions"] = float64(fs.FloodDials)
	m["soak_flood_closed_by_server"] = float64(fs.FloodClosed)
	m["soak_chat_sent"] = float64(cs.Sent)
	m["soak_chat_acked"] = float64(chatRes.r.Acks)
	m["soak_chat_missing_acks"] = float64(cs.Sent - chatRes.r.Acks)
	m["soak_chat_seq_gaps"] = float64(cs.Gaps)
	m["soak_chat_sessions_behind"] = float64(cs.Lost)
	m["soak_chat_sessions_dropped"] = float64(chatRes.r.Dropped)
	m["soak_chat_errors"] = float64(chatRes.r.Errors)
	m["soak_chat_deliveries"] = float64(chatRes.r.Deliveries)
	_, ah := mergeHists([]reply{chatRes.r})
	m["soak_chat_ack_p50_ms"] = ah.quantile(0.50) / 1000
	m["soak_chat_ack_p99_ms"] = ah.quantile(0.99) / 1000
	for k, v := range scrape {
		m["soak_server_"+k] = v
	}
	logf("%s soak done: server up %v, RSS peak %.0f MB; chat: %d sent, %d acked, %d seq gaps, %d sessions behind, %d dropped, %d errors %s; ack p50 %.1f ms p99 %.1f ms",
		t.name, m["soak_server_up"] == 1, m["soak_server_rss_peak_mb"], cs.Sent, chatRes.r.Acks, cs.Gaps, cs.Lost,
		chatRes.r.Dropped, chatRes.r.Errors, firstErr([]reply{chatRes.r}), m["soak_chat_ack_p50_ms"], m["soak_chat_ack_p99_ms"])
	if o.SoakRSSMB > 0 && m["soak_server_rss_peak_mb"] > float64(o.SoakRSSMB) {
		logf("%s soak: RSS peak %.0f MB is over the bound of %d MB", t.name, m["soak_server_rss_peak_mb"], o.SoakRSSMB)
	}
	return nil
}

func sumSoak(rs []reply) soakStats {
	var s soakStats
	for _, r := range rs {
		if x := r.Soak; x != nil {
			s.IdleOpen += x.IdleOpen
			s.IdleDials += x.IdleDials
			s.IdleTimedOut += x.IdleTimedOut
			s.IdleShed += x.IdleShed
			s.DialErrors += x.DialErrors
			s.FloodOpen += x.FloodOpen
			s.FloodDials += x.FloodDials
			s.FloodClosed += x.FloodClosed
			s.FloodRefused += x.FloodRefused
		}
	}
	return s
}

// soakMetrics are the server's own counters the soak reports, by the name
// they get in the results (soak_server_…).
var soakMetrics = map[string]string{
	`unhidra_tcp_shed_total{reason="max_conns"}`:        "shed_max_conns",
	`unhidra_tcp_shed_total{reason="max_conns_per_ip"}`: "shed_max_conns_per_ip",
	`unhidra_tcp_accept_retries_total`:                  "accept_retries",
	`unhidra_ws_slow_consumers_total`:                   "slow_consumers",
	`unhidra_errors_total{code="internal"}`:             "internal_errors",
	`unhidra_errors_total{code="bad_request"}`:          "bad_request_errors",
}

// scrape reads the server's /metrics (retrying for up to 30 s while its
// caps are still full); nil when it never answers.
func (t *target) scrape(ctx context.Context) map[string]float64 {
	deadline := time.Now().Add(30 * time.Second)
	cl := &http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr+"/metrics", nil)
		resp, err := cl.Do(req)
		if err != nil {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		out := map[string]float64{}
		for _, l := range strings.Split(string(b), "\n") {
			i := strings.LastIndexByte(l, ' ')
			if i < 0 {
				continue
			}
			if name, ok := soakMetrics[l[:i]]; ok {
				v, _ := strconv.ParseFloat(l[i+1:], 64)
				out[name] = v
			}
		}
		return out
	}
	return nil
}
