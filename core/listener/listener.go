// Package listener is the server's TCP listener. It keeps accepting through
// temporary failures (a process out of file descriptors) with backoff
// instead of returning them, which would stop the HTTP server; it sheds
// connections over a global cap and a per-address cap (IPv6 counted by /64)
// so that one flood cannot take every descriptor; and, for TLS, it answers
// plain HTTP with a 400 that says to use https.
package listener

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/unhidra/unhidra/core/clientip"
	"github.com/unhidra/unhidra/core/metrics"
)

// Options configure a Listener. The zero value caps nothing.
type Options struct {
	// MaxConns caps the connections open at once (0: no cap). A connection
	// accepted at the cap is closed at once ("shed").
	MaxConns int
	// MaxConnsPerAddr caps the connections open at once from one client
	// address — an IPv4 address or an IPv6 /64 (0: no cap).
	MaxConnsPerAddr int
	// Exempt reports peers the per-address cap does not apply to: trusted
	// reverse proxies, which carry many clients on their connections.
	Exempt func(netip.Addr) bool
	// TLS, when set, makes every connection a TLS server connection.
	TLS     *tls.Config
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Reasons a connection is shed, as counted in unhidra_tcp_shed_total.
const (
	ShedMaxConns        = "max_conns"
	ShedMaxConnsPerAddr = "max_conns_per_ip"
)

// Backoff bounds for retried accept errors (the values net/http uses).
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// logEvery is the shortest interval between two log lines about shed
// connections or retried accepts; each line counts what happened since the
// previous one, so a flood costs a few lines, not one per connection.
const logEvery = 10 * time.Second

// Listener wraps a net.Listener; see the package comment.
type Listener struct {
	inner  net.Listener
	o      Options
	open   atomic.Int64
	closed chan struct{}
	once   sync.Once

	mu      sync.Mutex
	perAddr map[netip.Prefix]int

	shedLog, retryLog throttle
}

// New wraps inner.
func New(inner net.Listener, o Options) *Listener {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if m := o.Metrics; m != nil { // both series exist from the start, at 0
		m.TCPShed.WithLabelValues(ShedMaxConns)
		m.TCPShed.WithLabelValues(ShedMaxConnsPerAddr)
	}
	return &Listener{inner: inner, o: o, closed: make(chan struct{}), perAddr: map[netip.Prefix]int{}}
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the inner listener; a pending Accept returns its error.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.inner.Close()
}

// Open returns the number of connections open now.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Accept returns the next connection within the caps. Temporary accept
// errors are retried after a backoff that doubles from 5 ms to 1 s; only a
// closed or broken listener returns an error.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if !temporary(err) {
				return nil, err
			}
			delay = min(max(2*delay, minBackoff), maxBackoff)
			if m := l.o.Metrics; m != nil {
				m.AcceptRetries.Inc()
			}
			if n, ok := l.retryLog.note(); ok {
				l.o.Logger.Warn("accept failed; retrying", "err", err, "retry_in", delay, "retries", n)
			}
			select {
			case <-time.After(delay):
			case <-l.closed:
			}
			continue
		}
		delay = 0
		if tc := l.admit(c); tc != nil {
			if l.o.TLS != nil {
				return &tlsConn{Conn: tls.Server(tc, l.o.TLS)}, nil
			}
			return tc, nil
		}
	}
}

// temporary reports accept errors that pass: out of descriptors or kernel
// memory, or a timeout. (The runtime already retries EAGAIN, EINTR and
// ECONNABORTED itself.)
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// admit counts c in, or closes it and returns nil when a cap is reached.
func (l *Listener) admit(c net.Conn) *conn {
	var group netip.Prefix
	var peer netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		peer = ta.AddrPort().Addr().Unmap()
		group = clientip.Group(peer)
	}
	perAddr := l.o.MaxConnsPerAddr > 0 && group.IsValid() && (l.o.Exempt == nil || !l.o.Exempt(peer))
	reason := ""
	l.mu.Lock()
	switch {
	case l.o.MaxConns > 0 && l.open.Load() >= int64(l.o.MaxConns):
		reason = ShedMaxConns
	case perAddr && l.perAddr[group] >= l.o.MaxConnsPerAddr:
		reason = ShedMaxConnsPerAddr
	default:
		l.open.Add(1)
		if perAddr {
			l.perAddr[group]++
		}
	}
	l.mu.Unlock()
	if reason != "" {
		_ = c.Close()
		l.shed(reason, peer)
		return nil
	}
	if m := l.o.Metrics; m != nil {
		m.TCPConnections.Inc()
	}
	tc := &conn{Conn: c, l: l}
	if perAddr {
		tc.group = group
	}
	return tc
}

func (l *Listener) shed(reason string, peer netip.Addr) {
	if m := l.o.Metrics; m != nil {
		m.TCPShed.WithLabelValues(reason).Inc()
	}
	if n, ok := l.shedLog.note(); ok {
		limit := l.o.MaxConns
		if reason == ShedMaxConnsPerAddr {
			limit = l.o.MaxConnsPerAddr
		}
		l.o.Logger.Warn("connections shed", "reason", reason, "limit", limit, "ip", peer, "shed", n)
	}
}

// release undoes admit when a connection closes.
func (l *Listener) release(group netip.Prefix) {
	l.mu.Lock()
	l.open.Add(-1)
	if group.IsValid() {
		if n := l.perAddr[group] - 1; n > 0 {
			l.perAddr[group] = n
		} else {
			delete(l.perAddr, group)
		}
	}
	l.mu.Unlock()
	if m := l.o.Metrics; m != nil {
		m.TCPConnections.Dec()
	}
}

// conn is an admitted connection; closing it frees its place.
type conn struct {
	net.Conn
	l      *Listener
	group  netip.Prefix // counted against this address group (zero: not)
	closed atomic.Bool
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.group)
	}
	return err
}

// CloseWrite half-closes a TCP connection (after the plain-HTTP answer).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// throttle lets one log line through per logEvery and counts the events in
// between.
type throttle struct {
	mu   sync.Mutex
	last time.Time
	n    int64
}

// note counts an event; ok says to log now, n how many events the line
// stands for.
func (t *throttle) note() (n int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	if now := time.Now(); now.Sub(t.last) >= logEvery {
		n, t.n, t.last = t.n, 0, now
		return n, true
	}
	return 0, false
}

// Reserve is how many descriptors DefaultMaxConns keeps for everything that
// is not a client connection: database, plugins, keys, logs.
const Reserve = 1000

// DefaultMaxConns is a connection cap that fits the process's open-file
// limit: the limit minus Reserve, or three quarters of a limit too small
// for that (19,000 at a limit of 20,000; 300 at 400). It is 0, no cap, when
// the limit is unknown or unlimited.
func DefaultMaxConns() int {
	n := fileLimit()
	if n <= 0 {
		return 0
	}
	return max(n-Reserve, n*3/4)
}
