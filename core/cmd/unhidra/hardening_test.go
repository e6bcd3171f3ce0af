package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// pingFrames is n masked WebSocket ping frames with 125-byte payloads (the
// largest a control frame may carry), ready to write in one go.
func pingFrames(n int) []byte {
	var b bytes.Buffer
	payload := bytes.Repeat([]byte("p"), 125)
	for i := 0; i < n; i++ {
		b.Write([]byte{0x89, 0x80 | 125, 0, 0, 0, 0}) // FIN+ping, masked, zero key
		b.Write(payload)
	}
	return b.Bytes()
}

// TestPingFloodIsBounded is issue 12: one signed-in session that never reads
// and writes pings as fast as it can used to grow the server by gigabytes
// (pongs were queued outside --queue-frames/--queue-bytes). Its pongs now
// count against those bounds: the session is closed as a slow consumer, the
// server's memory stays bounded, and other sessions carry on.
func TestPingFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	// A short write timeout only makes the end of the flooding session come
	// sooner; nothing below depends on it.
	p := startProc(t, bin, "--data", t.TempDir(), "--write-timeout", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice, flooder := p.account(t, ctx, "alice"), p.account(t, ctx, "flooder")
	room, err := alice.CreateRoom(ctx, "calm", "private")
	if err != nil {
		t.Fatal(err)
	}
	calm, err := client.Dial(ctx, alice.WSURL(), client.Options{Token: alice.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer calm.Close()
	if _, err := calm.Send(ctx, room.ID, "before"); err != nil {
		t.Fatal(err)
	}

	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.DialContext(ctx, flooder.WSURL(), http.Header{"Authorization": {"Bearer " + flooder.Token}})
	if err != nil {
		t.Fatalf("flooder handshake: %v", err)
	}
	nc := ws.UnderlyingConn()
	defer nc.Close()
	// The baseline is taken with both sessions open, after the argon2id
	// hashes of registration and login.
	base := p.rss(t)
	const bound = 192 << 20 // the fixed server stays within a few MB of base
	flood := pingFrames(512)
	hungUp := make(chan error, 1)
	go func() {
		for {
			if _, err := nc.Write(flood); err != nil {
				hungUp <- err // the server closed the session
				return
			}
		}
	}()
	// Other sessions keep working while the flood is read.
	during := make(chan error, 1)
	go func() {
		_, err := calm.Send(ctx, room.ID, "during")
		during <- err
	}()
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for closed := false; !closed; {
		select {
		case <-hungUp:
			closed = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the server never closed the flooding session (RSS %d MB, base %d MB)", p.rss(t)>>20, base>>20)
		}
		r := p.rss(t)
		peak = max(peak, r)
		if r-base > bound {
			t.Fatalf("server RSS grew by %d MB during the ping flood (from %d MB); want < %d MB", (r-base)>>20, base>>20, bound>>20)
		}
	}
	if err := <-during; err != nil {
		t.Fatalf("send during the flood: %v", err)
	}
	p.alive(t)
	if n := p.metric(t, "unhidra_ws_slow_consumers_total"); n < 1 {
		t.Fatalf("unhidra_ws_slow_consumers_total = %v after the flooding session was closed, want ≥ 1", n)
	}
	if _, err := calm.Send(ctx, room.ID, "after"); err != nil {
		t.Fatalf("send after the flood: %v", err)
	}
	t.Logf("server RSS %d MB before the flood, peak %d MB", base>>20, peak>>20)
}

// flood opens n idle TCP connections to the server from the local address
// src (127.0.0.x), sending nothing. Connections the kernel accepted before
// the server did count too: that is what a flood looks like.
func flood(t *testing.T, ctx context.Context, base, src string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	addr := strings.TrimPrefix(base, "http://")
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("flood connection %d from %s: %v", i, src, err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() { closeAll(conns) })
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// waitLog waits until the server logs a line containing s; it fails the
// test when the server exits first or ctx ends.
func (p *proc) waitLog(t *testing.T, ctx context.Context, s string) string {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, l := range p.logs() {
			if strings.Contains(l, s) {
				return l
			}
		}
		select {
		case <-tick.C:
		case <-p.done:
			t.Fatalf("the server exited (%v) before logging %q; its log:\n%s", p.cmd.ProcessState, s, strings.Join(p.logs(), "\n"))
		case <-ctx.Done():
			t.Fatalf("the server did not log %q; its log:\n%s", s, strings.Join(p.logs(), "\n"))
		}
	}
}

// waitHealthy polls /healthz until it answers 200 (the accept loop may be
// in a backoff of up to a second).
func (p *proc) waitHealthy(t *testing.T, ctx context.Context) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	for {
		p.alive(t)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/healthz", nil)
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/healthz never answered 200 after the flood: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestTCPFloodFileLimit is issue 12: idle TCP connections, no login needed,
// used to exhaust the server's file limit; fasthttp's accept loop returned
// on "accept4: too many open files" and the process exited. The server runs
// here with a file limit of 256 and no connection caps, so that 400
// connections exhaust it: accept errors must back off and retry, a session
// it already holds must keep working, and once the flood ends it serves new
// clients again.
func TestTCPFloodFileLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	// No caps and a long header timeout: the descriptors stay exhausted
	// until the test closes the flood.
	p := startProcWith(t, bin, procOptions{NoFile: 256}, "--data", t.TempDir(),
		"--max-conns", "0", "--max-conns-per-ip", "0", "--header-timeout", "10m")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := p.account(t, ctx, "alice")
	calm, err := client.Dial(ctx, alice.WSURL(), client.Options{Token: alice.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer calm.Close()

	conns := append(flood(t, ctx, p.base, "127.0.0.2", 200), flood(t, ctx, p.base, "127.0.0.3", 200)...)
	p.waitLog(t, ctx, "accept failed; retrying")
	if err := calm.Ping(ctx); err != nil {
		t.Fatalf("the session held before the flood failed during it: %v", err)
	}
	p.alive(t)

	closeAll(conns)
	p.waitHealthy(t, ctx)
	if n := p.metric(t, "unhidra_tcp_accept_retries_total"); n < 1 {
		t.Fatalf("unhidra_tcp_accept_retries_total = %v, want ≥ 1", n)
	}
	bob := p.account(t, ctx, "bob")
	room, err := bob.CreateRoom(ctx, "after", "private")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, bob.WSURL(), client.Options{Token: bob.Token})
	if err != nil {
		t.Fatalf("new session after the flood: %v", err)
	}
	defer c.Close()
	if _, err := c.Send(ctx, room.ID, "still here"); err != nil {
		t.Fatalf("send after the flood: %v", err)
	}
	if _, err := calm.Send(ctx, mustRoom(t, ctx, alice), "and me"); err != nil {
		t.Fatalf("the session held through the flood: %v", err)
	}
}

func mustRoom(t *testing.T, ctx context.Context, api *client.API) string {
	t.Helper()
	r, err := api.CreateRoom(ctx, "r", "private")
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// floodResult is how a flood connection ended: with a response (a 408 for
// an admitted connection that sent nothing) or with none (shed at accept).
type floodResult struct {
	status string // the response's status line, "" when none came
	err    error
}

// awaitClose reads every connection until the server closes it.
func awaitClose(ctx context.Context, conns []net.Conn) []floodResult {
	out := make([]floodResult, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline, _ := ctx.Deadline()
			_ = c.SetReadDeadline(deadline)
			b, err := io.ReadAll(c)
			if errors.Is(err, syscall.ECONNRESET) {
				err = nil // shed connections may be reset rather than closed
			}
			status, _, _ := strings.Cut(string(b), "\r\n")
			out[i] = floodResult{status: status, err: err}
		}()
	}
	wg.Wait()
	return out
}

// TestTCPFloodCaps: connections over --max-conns-per-ip and --max-conns are
// shed at accept and counted, admitted ones that send no request are
// closed after --header-timeout with a 408 (logged below error, not counted
// as internal), the session held before the flood keeps working, and new
// clients are served once the flood ends.
func TestTCPFloodCaps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startProc(t, bin, "--data", t.TempDir(), "--max-conns", "200", "--max-conns-per-ip", "100", "--header-timeout", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := p.account(t, ctx, "alice")
	room := mustRoom(t, ctx, alice)
	calm, err := client.Dial(ctx, alice.WSURL(), client.Options{Token: alice.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer calm.Close()

	// 150 from .2: 100 admitted, 50 over the per-address cap; 150 from .3:
	// admitted until the global cap, the rest over it.
	conns := append(flood(t, ctx, p.base, "127.0.0.2", 150), flood(t, ctx, p.base, "127.0.0.3", 150)...)
	if _, err := calm.Send(ctx, room, "during the flood"); err != nil {
		t.Fatalf("the session held before the flood failed during it: %v", err)
	}
	timedOut, shed := 0, 0
	for i, r := range awaitClose(ctx, conns) {
		switch {
		case r.err != nil:
			t.Fatalf("flood connection %d: %v", i, r.err)
		case r.status == "":
			shed++
		case strings.HasPrefix(r.status, "HTTP/1.1 408"):
			timedOut++
		default:
			t.Fatalf("flood connection %d got %q", i, r.status)
		}
	}
	t.Logf("%d flood connections timed out with 408, %d shed", timedOut, shed)
	p.waitHealthy(t, ctx)
	perIP := p.metric(t, `unhidra_tcp_shed_total{reason="max_conns_per_ip"}`)
	global := p.metric(t, `unhidra_tcp_shed_total{reason="max_conns"}`)
	if perIP < 50 || global < 1 || timedOut < 100 {
		t.Fatalf("shed per address %v (want ≥ 50), over the global cap %v (want ≥ 1), timed out %d (want ≥ 100)", perIP, global, timedOut)
	}
	if n := p.metric(t, `unhidra_errors_total{code="internal"}`); n != 0 {
		t.Fatalf(`unhidra_errors_total{code="internal"} = %v after header timeouts, want 0`, n)
	}
	if n := p.metric(t, `unhidra_errors_total{code="bad_request"}`); n < float64(timedOut) {
		t.Fatalf(`unhidra_errors_total{code="bad_request"} = %v, want ≥ %d (one per timed-out request)`, n, timedOut)
	}
	for _, l := range p.logs() {
		if strings.Contains(l, "level=ERROR") {
			t.Fatalf("the server logged an error for a client's timeout: %s", l)
		}
	}
	p.waitLog(t, ctx, `msg="connections shed"`)
	if _, err := calm.Send(ctx, room, "after the flood"); err != nil {
		t.Fatalf("the session held through the flood: %v", err)
	}
	c, err := client.Dial(ctx, alice.WSURL(), client.Options{Token: alice.Token})
	if err != nil {
		t.Fatalf("new session after the flood: %v", err)
	}
	c.Close()
}

// TestPlainHTTPOnTLSPort: plain HTTP sent to the TLS port used to get the
// connection closed without a word; it gets a 400 that says to use https.
func TestPlainHTTPOnTLSPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cert, key, ctls := servertest.SelfSigned(t)
	p := startProc(t, bin, "--data", t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := strings.TrimPrefix(p.base, "https://")
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("plain HTTP to the TLS port got no HTTP answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e protocol.ErrorBody
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Code != protocol.CodeBadRequest || !strings.Contains(e.Message, "https://") {
		t.Fatalf("plain HTTP to the TLS port: %s %s, want 400 bad_request saying to use https://", resp.Status, body)
	}
	// HTTPS on the same port still works.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ctls}}
	r2, err := hc.Get(p.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK {
		t.Fatalf("https /healthz: %s", r2.Status)
	}
}

// loginFrom posts a login as if from client address ip (the test is the
// server's trusted proxy) and returns the HTTP status.
func loginFrom(t *testing.T, ctx context.Context, base, ip, user, password string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/auth/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("login from %s: %v", ip, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestIPv6ClientsLimitedBy64 is issue 12 (9): per-address limits used to
// count every IPv6 address apart, so one host with a /64 had 2^64 budgets.
// Rate limits and the failed-login throttle now count an IPv6 client by
// its /64. (Clients are named by X-Forwarded-For from a trusted proxy,
// since the test cannot own many IPv6 source addresses.)
func TestIPv6ClientsLimitedBy64(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startProc(t, bin, "--data", t.TempDir(), "--rate-limits", "on", "--trusted-proxies", "127.0.0.1",
		"--rate-login", "2/h", "--lockout-ip-threshold", "2", "--lockout-threshold", "100")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := (&client.API{Base: p.base}).Register(ctx, "v6", "password-v6", ""); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		ip   string
		want int
	}{
		{"2001:db8:1:2::1", http.StatusOK},
		{"2001:db8:1:2::2", http.StatusOK},
		{"2001:db8:1:2:ffff::3", http.StatusTooManyRequests}, // third login from the same /64
		{"2001:db8:1:3::1", http.StatusOK},                   // another /64
	} {
		if got := loginFrom(t, ctx, p.base, c.ip, "v6", "password-v6"); got != c.want {
			t.Fatalf("login %d from %s: %d, want %d", i, c.ip, got, c.want)
		}
	}
	// Failed logins from one /64 throttle the whole /64 (the second one
	// reaches --lockout-ip-threshold 2), and only it.
	for i, c := range []struct {
		ip   string
		want int
	}{
		{"2001:db8:9:9::1", http.StatusUnauthorized},
		{"2001:db8:9:9::2", http.StatusTooManyRequests},
		{"2001:db8:9:a::1", http.StatusUnauthorized},
	} {
		if got := loginFrom(t, ctx, p.base, c.ip, "v6", "wrong password"); got != c.want {
			t.Fatalf("failed login %d from %s: %d, want %d", i, c.ip, got, c.want)
		}
	}
}

// TestRequestTimeoutIsNotAnError is issue 12 (9): a client that does not
// finish its request in time used to be logged at ERROR and counted as
// internal in unhidra_errors_total, a false alarm. It is the client's
// doing: 408 bad_request, no error log, not internal.
func TestRequestTimeoutIsNotAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startProc(t, bin, "--data", t.TempDir(), "--header-timeout", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := flood(t, ctx, p.base, "127.0.0.1", 1)[0]
	// Half a request, then silence.
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	r := awaitClose(ctx, []net.Conn{c})[0]
	if r.err != nil || !strings.HasPrefix(r.status, "HTTP/1.1 408") {
		t.Fatalf("an unfinished request got %q (%v), want 408", r.status, r.err)
	}
	if n := p.metric(t, `unhidra_errors_total{code="internal"}`); n != 0 {
		t.Fatalf(`unhidra_errors_total{code="internal"} = %v after a request timeout, want 0`, n)
	}
	if n := p.metric(t, `unhidra_errors_total{code="bad_request"}`); n != 1 {
		t.Fatalf(`unhidra_errors_total{code="bad_request"} = %v after a request timeout, want 1`, n)
	}
	for _, l := range p.logs() {
		if strings.Contains(l, "level=ERROR") {
			t.Fatalf("the server logged an error for a client's timeout: %s", l)
		}
	}
}
