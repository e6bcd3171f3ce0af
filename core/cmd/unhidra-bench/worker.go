package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A worker is a client process that holds WebSocket sessions. The
// coordinator runs several so that no process needs more than its file
// limit, and drives them with one JSON command per line on stdin; each
// command gets one JSON reply line on stdout.
type command struct {
	Op      string   `json:"op"`
	Addr    string   `json:"addr,omitempty"`
	Path    string   `json:"path,omitempty"` // handshake path, e.g. /v1/ws or /ws?room=r
	Tokens  []string `json:"tokens,omitempty"`
	N       int      `json:"n,omitempty"`
	Rate    float64  `json:"rate,omitempty"` // per second; 0 = as fast as Conc allows
	Conc    int      `json:"conc,omitempty"`
	Role    string   `json:"role,omitempty"` // sub or pub
	Room    string   `json:"room,omitempty"`
	Rooms   []string `json:"rooms,omitempty"` // per publisher (sends)
	Seconds float64  `json:"seconds,omitempty"`
	Window  int      `json:"window,omitempty"`
	Size    int      `json:"size,omitempty"`
}

// token is the access token of session i ("" when the command has none).
func (c command) token(i int) string {
	if len(c.Tokens) == 0 {
		return ""
	}
	return c.Tokens[i%len(c.Tokens)]
}

type reply struct {
	OK         int64      `json:"ok"`
	Failed     int64      `json:"failed"`
	Seconds    float64    `json:"seconds"`
	FirstError string     `json:"first_error,omitempty"`
	Open       int64      `json:"open"`
	Dropped    int64      `json:"dropped"`
	Deliveries int64      `json:"deliveries"`
	Acks       int64      `json:"acks"`
	Errors     int64      `json:"errors"`
	ErrorText  string     `json:"error_text,omitempty"`
	Sent       int64      `json:"sent"`
	Hist       []int64    `json:"hist,omitempty"` // sparse: index, count pairs
	AckHist    []int64    `json:"ack_hist,omitempty"`
	Soak       *soakStats `json:"soak,omitempty"`
}

type benchConn struct {
	ws       *wsConn
	role     string
	room     string        // the room this publisher sends to (sends scenario)
	inflight chan struct{} // sends awaiting ack (sends scenario)
	closing  atomic.Bool
	lastSeq  atomic.Int64 // the last message seq seen (chat role, soak scenario)
}

type worker struct {
	src net.IP

	mu    sync.Mutex
	conns []*benchConn

	open, dropped, deliveries, acks, errs atomic.Int64
	errText                               atomic.Value
	hmu                                   sync.Mutex
	h                                     hist // publish → delivery, µs
	ah                                    hist // send → ack (commit latency), µs

	// Soak scenario: background loops (idle, pingflood) run until "stop".
	soak      soakCounters
	bgCtx     context.Context
	bgStop    context.CancelFunc
	bg        sync.WaitGroup
	roomMu    sync.Mutex
	roomAcked map[string]int64 // room → highest acked seq (chat role)
}

// marker precedes the publish timestamp (Unix ns) in every bench payload.
var marker = []byte("bench@")

func runWorker(src string) error {
	w := &worker{src: net.ParseIP(src), roomAcked: map[string]int64{}}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			return fmt.Errorf("worker: bad command %q: %w", in.Text(), err)
		}
		r := w.do(c)
		if err := out.Encode(r); err != nil {
			return err
		}
		if c.Op == "exit" {
			return nil
		}
	}
	return in.Err()
}

func (w *worker) do(c command) reply {
	switch c.Op {
	case "dial":
		return w.dial(c)
	case "reset":
		w.deliveries.Store(0)
		w.acks.Store(0)
		w.errs.Store(0)
		w.hmu.Lock()
		w.h = hist{}
		w.ah = hist{}
		w.hmu.Unlock()
		return reply{}
	case "stats":
		return w.stats()
	case "publish":
		return w.publish(c)
	case "sends":
		return w.sends(c)
	case "churn":
		return w.churn(c)
	case "idle":
		return w.idle(c)
	case "pingflood":
		return w.pingFlood(c)
	case "chat":
		return w.chat(c)
	case "stop":
		w.stopBackground()
		return reply{}
	case "closeall", "exit":
		w.stopBackground()
		w.closeAll()
		return reply{}
	}
	return reply{FirstError: "unknown op " + c.Op}
}

func (w *worker) stats() reply {
	r := reply{Open: w.open.Load(), Dropped: w.dropped.Load(), Deliveries: w.deliveries.Load(),
		Acks: w.acks.Load(), Errors: w.errs.Load(), Soak: w.soak.stats()}
	if s, ok := w.errText.Load().(string); ok {
		r.ErrorText = s
	}
	w.hmu.Lock()
	for i, n := range w.h {
		if n > 0 {
			r.Hist = append(r.Hist, int64(i), n)
		}
	}
	for i, n := range w.ah {
		if n > 0 {
			r.AckHist = append(r.AckHist, int64(i), n)
		}
	}
	w.hmu.Unlock()
	return r
}

// pacer spaces n events at rate per second (0: no spacing).
func pacer(rate float64) func(i int) {
	start := time.Now()
	return func(i int) {
		if rate <= 0 {
			return
		}
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
	}
}

func (w *worker) dial(c command) reply {
	if c.Conc <= 0 {
		c.Conc = 64
	}
	var ok, failed atomic.Int64
	var first atomic.Value
	start := time.Now()
	pace := pacer(c.Rate)
	sem := make(chan struct{}, c.Conc)
	var wg sync.WaitGroup
	for i := 0; i < c.N; i++ {
		pace(i)
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			ws, err := dialWS(context.Background(), c.Addr, c.Path, c.token(i), w.src)
			if err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err.Error())
				return
			}
			ok.Add(1)
			bc := &benchConn{ws: ws, role: c.Role}
			if len(c.Rooms) > 0 {
				bc.room = c.Rooms[i%len(c.Rooms)]
			}
			if c.Window > 0 {
				bc.inflight = make(chan struct{}, c.Window)
			}
			w.mu.Lock()
			w.conns = append(w.conns, bc)
			w.mu.Unlock()
			w.open.Add(1)
			go w.readLoop(bc)
		}(i)
	}
	wg.Wait()
	r := reply{OK: ok.Load(), Failed: failed.Load(), Seconds: time.Since(start).Seconds()}
	if s, ok := first.Load().(string); ok {
		r.FirstError = s
	}
	return r
}

func (w *worker) readLoop(bc *benchConn) {
	defer w.open.Add(-1)
	for {
		op, p, err := bc.ws.readFrame()
		if err != nil {
			if !bc.closing.Load() {
				w.dropped.Add(1)
				w.errText.CompareAndSwap(nil, "read: "+err.Error())
			}
			return
		}
		switch op {
		case opPing:
			_ = bc.ws.writeFrame(opPong, p)
		case opClose:
			if !bc.closing.Load() {
				w.dropped.Add(1)
				w.errText.CompareAndSwap(nil, "server closed the session")
			}
			_ = bc.ws.nc.Close()
			return
		case opText:
			w.onText(bc, p)
		}
	}
}

func (w *worker) onText(bc *benchConn, p []byte) {
	const pre = `{"type":"`
	if len(p) < len(pre)+3 || !bytes.HasPrefix(p, []byte(pre)) {
		return
	}
	t := p[len(pre):]
	switch {
	case bytes.HasPrefix(t, []byte(`message"`)), bytes.HasPrefix(t, []byte(`send"`)):
		w.deliveries.Add(1)
		if bc.role == "chat" {
			w.onChat(bc, p, false)
		}
		if i := bytes.Index(p, marker); i >= 0 {
			j := i + len(marker)
			k := j
			for k < len(p) && p[k] >= '0' && p[k] <= '9' {
				k++
			}
			if ns, err := strconv.ParseInt(string(p[j:k]), 10, 64); err == nil {
				lat := (time.Now().UnixNano() - ns) / 1000
				if lat < 0 {
					lat = 0
				}
				w.hmu.Lock()
				w.h[histIndex(uint64(lat))]++
				w.hmu.Unlock()
			}
		}
	case bytes.HasPrefix(t, []byte(`ack"`)):
		w.acks.Add(1)
		if bc.role == "chat" {
			w.onChat(bc, p, true)
		}
		// Bench refs are "b<send time in Unix ns>-<n>".
		if i := bytes.Index(p, []byte(`"ref":"b`)); i >= 0 {
			j := i + len(`"ref":"b`)
			k := j
			for k < len(p) && p[k] >= '0' && p[k] <= '9' {
				k++
			}
			if ns, err := strconv.ParseInt(string(p[j:k]), 10, 64); err == nil {
				lat := max((time.Now().UnixNano()-ns)/1000, 0)
				w.hmu.Lock()
				w.ah[histIndex(uint64(lat))]++
				w.hmu.Unlock()
			}
		}
		if bc.inflight != nil {
			select {
			case <-bc.inflight:
			default:
			}
		}
	case bytes.HasPrefix(t, []byte(`error"`)):
		w.errs.Add(1)
		w.errText.CompareAndSwap(nil, string(p))
	}
}

func (w *worker) pubs() []*benchConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*benchConn
	for _, c := range w.conns {
		if c.role == "pub" {
			out = append(out, c)
		}
	}
	return out
}

// payload builds a send frame carrying the current time after the marker
// (for delivery latency) and in its ref (for ack latency), padded to size
// bytes of text. n keeps refs unique.
func payload(dst []byte, room string, n int64, size int) []byte {
	now := time.Now().UnixNano()
	dst = append(dst[:0], `{"type":"send","room":"`...)
	dst = append(dst, room...)
	dst = append(dst, `","ref":"b`...)
	dst = strconv.AppendInt(dst, now, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, `","text":"`...)
	start := len(dst)
	dst = append(dst, marker...)
	dst = strconv.AppendInt(dst, now, 10)
	dst = append(dst, ' ')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// publish sends at Rate messages/s for Seconds, round-robin over this
// worker's publishers.
func (w *worker) publish(c command) reply {
	pubs := w.pubs()
	if len(pubs) == 0 {
		return reply{FirstError: "no publishers"}
	}
	n := int(c.Rate * c.Seconds)
	pace := pacer(c.Rate)
	start := time.Now()
	var buf []byte
	var sent, failed int64
	for i := 0; i < n; i++ {
		pace(i)
		buf = payload(buf, c.Room, int64(i), c.Size)
		if err := pubs[i%len(pubs)].ws.writeFrame(opText, buf); err != nil {
			failed++
			continue
		}
		sent++
	}
	return reply{Sent: sent, Failed: failed, Seconds: time.Since(start).Seconds()}
}

// sends keeps Window unacknowledged sends in flight per publisher for
// Seconds: the durable-send throughput scenario.
func (w *worker) sends(c command) reply {
	pubs := w.pubs()
	if len(pubs) == 0 {
		return reply{FirstError: "no publishers"}
	}
	deadline := time.Now().Add(time.Duration(c.Seconds * float64(time.Second)))
	var wg sync.WaitGroup
	var sent atomic.Int64
	for _, bc := range pubs {
		room := bc.room
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := int64(0); time.Now().Before(deadline); i++ {
				select {
				case bc.inflight <- struct{}{}:
				case <-time.After(100 * time.Millisecond):
					continue
				}
				buf = payload(buf, room, i, c.Size)
				if err := bc.ws.writeFrame(opText, buf); err != nil {
					return
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	return reply{Sent: sent.Load(), Seconds: c.Seconds}
}

// churn opens and closes sessions with Conc loops for Seconds.
func (w *worker) churn(c command) reply {
	if c.Conc <= 0 {
		c.Conc = 16
	}
	deadline := time.Now().Add(time.Duration(c.Seconds * float64(time.Second)))
	var ok, failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < c.Conc; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i += c.Conc {
				ws, err := dialWS(context.Background(), c.Addr, c.Path, c.token(i), w.src)
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				ws.close()
				ok.Add(1)
			}
		}(g)
	}
	wg.Wait()
	r := reply{OK: ok.Load(), Failed: failed.Load(), Seconds: time.Since(start).Seconds()}
	if s, ok := first.Load().(string); ok {
		r.FirstError = s
	}
	return r
}

func (w *worker) closeAll() {
	w.mu.Lock()
	conns := w.conns
	w.conns = nil
	w.mu.Unlock()
	for _, c := range conns {
		c.closing.Store(true)
		c.ws.close()
	}
	// Let read loops see the closed sockets.
	for i := 0; i < 50 && w.open.Load() > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}
