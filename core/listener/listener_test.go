package listener

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/unhidra/unhidra/core/metrics"
)

// fakeConn is a connection from a chosen peer address.
type fakeConn struct {
	net.Conn
	peer   *net.TCPAddr
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.peer }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

// fakeListener hands out queued connections and errors in order.
type fakeListener struct {
	queue []any // *fakeConn or error
}

func (f *fakeListener) Accept() (net.Conn, error) {
	if len(f.queue) == 0 {
		return nil, net.ErrClosed
	}
	x := f.queue[0]
	f.queue = f.queue[1:]
	if err, ok := x.(error); ok {
		return nil, err
	}
	return x.(*fakeConn), nil
}
func (f *fakeListener) Close() error   { return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

func from(addr string) *fakeConn {
	ap := netip.MustParseAddrPort(addr)
	return &fakeConn{peer: net.TCPAddrFromAddrPort(ap)}
}

// sample reads one series from m's registry: name, with its only label's
// value when label is set.
func sample(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if label == "" || (len(s.GetLabel()) == 1 && s.GetLabel()[0].GetValue() == label) {
				return s.GetCounter().GetValue() + s.GetGauge().GetValue()
			}
		}
	}
	return 0
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestPerAddressCapGroupsIPv6By64 accepts a sequence of connections and
// checks which are shed: IPv6 peers in one /64 share a budget, other /64s
// and IPv4 peers have their own, exempt peers (trusted proxies) have none,
// and closing a connection frees its place.
func TestPerAddressCapGroupsIPv6By64(t *testing.T) {
	m := metrics.New()
	proxy := netip.MustParseAddr("10.0.0.1")
	conns := []*fakeConn{
		from("[2001:db8:1:2::1]:1000"),                             // 0 admitted
		from("[2001:db8:1:2::2]:1000"),                             // 1 admitted: 2 in 2001:db8:1:2::/64
		from("[2001:db8:1:2:ffff::9]:1000"),                        // 2 shed: same /64
		from("[2001:db8:1:3::1]:1000"),                             // 3 admitted: another /64
		from("[::ffff:192.0.2.1]:1000"),                            // 4 admitted (IPv4-mapped counts as IPv4)
		from("192.0.2.1:1001"),                                     // 5 admitted
		from("192.0.2.1:1002"),                                     // 6 shed
		from("192.0.2.2:1000"),                                     // 7 admitted
		from("10.0.0.1:1"), from("10.0.0.1:2"), from("10.0.0.1:3"), // 8–10 admitted: exempt
	}
	fl := &fakeListener{}
	for _, c := range conns {
		fl.queue = append(fl.queue, c)
	}
	l := New(fl, Options{MaxConnsPerAddr: 2, Exempt: func(a netip.Addr) bool { return a == proxy }, Metrics: m, Logger: quiet})
	var got []net.Conn
	for {
		c, err := l.Accept()
		if err != nil {
			break
		}
		got = append(got, c)
	}
	shed := map[int]bool{2: true, 6: true}
	for i, c := range conns {
		if c.closed != shed[i] {
			t.Errorf("connection %d (%s): shed = %v, want %v", i, c.peer, c.closed, shed[i])
		}
	}
	if n := sample(t, m, "unhidra_tcp_shed_total", ShedMaxConnsPerAddr); n != 2 {
		t.Errorf("shed per address = %v, want 2", n)
	}
	if l.Open() != len(got) || sample(t, m, "unhidra_tcp_connections", "") != float64(len(got)) {
		t.Errorf("open = %d, gauge %v, want %d", l.Open(), sample(t, m, "unhidra_tcp_connections", ""), len(got))
	}

	// Closing one of the /64's connections (twice: the second is a no-op)
	// lets the next one in.
	_ = got[0].Close()
	_ = got[0].Close()
	fl.queue = append(fl.queue, from("[2001:db8:1:2::3]:1000"))
	if _, err := l.Accept(); err != nil {
		t.Fatalf("after a close the /64 has room again: %v", err)
	}
	if l.Open() != len(got) {
		t.Errorf("open = %d after one close and one accept, want %d", l.Open(), len(got))
	}
}

func TestGlobalCap(t *testing.T) {
	m := metrics.New()
	fl := &fakeListener{}
	var conns []*fakeConn
	for i := 0; i < 5; i++ {
		c := from(fmt.Sprintf("192.0.2.%d:1000", i+1))
		conns = append(conns, c)
		fl.queue = append(fl.queue, c)
	}
	l := New(fl, Options{MaxConns: 3, MaxConnsPerAddr: 10, Metrics: m, Logger: quiet})
	for {
		if _, err := l.Accept(); err != nil {
			break
		}
	}
	for i, c := range conns {
		if c.closed != (i >= 3) {
			t.Errorf("connection %d: shed = %v, want %v", i, c.closed, i >= 3)
		}
	}
	if n := sample(t, m, "unhidra_tcp_shed_total", ShedMaxConns); n != 2 {
		t.Errorf("shed over the global cap = %v, want 2", n)
	}
}

// TestAcceptRetriesTemporaryErrors: running out of descriptors is retried
// (and counted); a closed listener ends Accept.
func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	m := metrics.New()
	c := from("192.0.2.1:1000")
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: fmt.Errorf("accept4: %w", syscall.EMFILE)}
	fl := &fakeListener{queue: []any{emfile, &net.OpError{Op: "accept", Err: syscall.ENFILE}, c}}
	l := New(fl, Options{Metrics: m, Logger: quiet})
	got, err := l.Accept()
	if err != nil || got.RemoteAddr() != c.peer {
		t.Fatalf("Accept = %v, %v; want the connection after two retries", got, err)
	}
	if n := sample(t, m, "unhidra_tcp_accept_retries_total", ""); n != 2 {
		t.Errorf("accept retries = %v, want 2", n)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener = %v, want net.ErrClosed", err)
	}
}

func TestDefaultMaxConnsLeavesHeadroom(t *testing.T) {
	lim := fileLimit()
	if lim == 0 {
		t.Skip("no file limit on this system")
	}
	n := DefaultMaxConns()
	if n <= 0 || n >= lim || (lim > 4*Reserve && lim-n != Reserve) {
		t.Fatalf("DefaultMaxConns() = %d with a file limit of %d", n, lim)
	}
}
