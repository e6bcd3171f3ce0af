package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/unhidra/unhidra/core/store"
	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

// Grants are the capabilities plugins.yaml gives a module. The zero value
// grants nothing but log and config.
type Grants struct {
	// KV allows the module's own KV namespace.
	KV bool
	// Post lists room ids the module's bot may post to; "*" means any room
	// the bot belongs to.
	Post []string
	// HTTP lists host names the module may call ("api.example.com" or
	// "*.example.com"). Private, loopback, link-local and other special
	// addresses are refused after DNS unless covered by HTTPAllowNets.
	HTTP []string
	// HTTPAllowNets lets an operator open specific internal networks
	// (e.g. 10.1.2.0/24 for an internal webhook target).
	HTTPAllowNets []netip.Prefix
	// HTTPMaxBody caps a response body in bytes (default 1 MiB).
	HTTPMaxBody int64
}

// KVEntry is one key/value.
type KVEntry = unhidra.KVEntry

// Host is what the core provides to modules. Implementations enforce
// nothing about grants: the module checks them before calling.
type Host interface {
	KVGet(ctx context.Context, plugin, key string) ([]byte, bool, error)
	KVSet(ctx context.Context, plugin, key string, val []byte, ttl time.Duration) error
	// KVCompareAndSet writes new if the current value equals old; oldPresent
	// false means "only if the key is absent".
	KVCompareAndSet(ctx context.Context, plugin, key string, old []byte, oldPresent bool, new []byte, ttl time.Duration) (bool, error)
	KVDelete(ctx context.Context, plugin, key string) error
	KVList(ctx context.Context, plugin, prefix string) ([]KVEntry, error)
	// Post posts text to room as the plugin's bot, without running the
	// plugin's own hooks on it, and returns the message id.
	Post(ctx context.Context, plugin, room, text string) (string, error)
	// Call runs a host API method (an rpc of the Host service, by name)
	// with a protojson request and returns the protojson answer. Unlike the
	// calls above, the implementation checks the grant: a refusal wraps
	// ErrDenied. Other errors carry their gRPC code name ("NOT_FOUND: …").
	Call(ctx context.Context, plugin, method string, req []byte) ([]byte, error)
}

// ErrDenied is wrapped by a Host.Call refused for a missing grant.
var ErrDenied = errors.New("PERMISSION_DENIED")

// KV keys and values have the store's limits, as for process plugins; the
// guest-memory reads below stop at them.
const (
	maxKey   = store.MaxKVKey
	maxValue = store.MaxKVValue
	maxLog   = 4096
)

func (m *Module) instantiateHost(ctx context.Context) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	b := m.rt.NewHostModuleBuilder("unhidra")
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).Export(name)
	}
	fn("log", m.hostLog, []api.ValueType{i32, i32, i32}, nil)
	fn("take", m.hostTake, []api.ValueType{i32}, nil)
	fn("config", m.hostConfig, nil, []api.ValueType{i64})
	fn("kv_get", m.hostKVGet, []api.ValueType{i32, i32}, []api.ValueType{i64})
	fn("kv_set", m.hostKVSet, []api.ValueType{i32, i32, i32, i32, i64}, []api.ValueType{i64})
	fn("kv_cas", m.hostKVCAS, []api.ValueType{i32, i32, i32, i32, i32, i32, i64}, []api.ValueType{i64})
	fn("kv_delete", m.hostKVDelete, []api.ValueType{i32, i32}, []api.ValueType{i64})
	fn("kv_list", m.hostKVList, []api.ValueType{i32, i32}, []api.ValueType{i64})
	fn("post", m.hostPost, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64})
	fn("http", m.hostHTTP, []api.ValueType{i32, i32}, []api.ValueType{i64})
	fn("host_call", m.hostCall, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64})
	_, err := b.Instantiate(ctx)
	return err
}

func state(ctx context.Context) *callState {
	cs, _ := ctx.Value(stateKey{}).(*callState)
	return cs
}

// Status results (see docs/wasm-abi.md): r ≥ 0 → r bytes pending;
// -1 → not found; r < -1 → error message of -r-2 bytes pending.
func ok(cs *callState, b []byte) uint64 {
	cs.pending = b
	return uint64(int64(len(b)))
}

const notFound = ^uint64(0) // int64(-1)

func fail(cs *callState, msg string) uint64 {
	cs.pending = []byte(msg)
	return uint64(-int64(len(msg)) - 2)
}

// deny refuses a host call for want of grant (a plugins.yaml grant name);
// why, when set, replaces "no <grant> grant" in the module's message.
func (m *Module) deny(cs *callState, grant, why string) uint64 {
	m.stats.Denied.Add(1)
	if m.opts.OnDenied != nil {
		m.opts.OnDenied(grant)
	}
	if why == "" {
		why = "has no " + grant + " grant"
	}
	m.log.Warn("wasm host call denied", "grant", grant, "why", why, "hook", cs.hook)
	return fail(cs, fmt.Sprintf("permission denied: plugin %s %s", m.id, why))
}

func read(mod api.Module, ptr, n uint32, limit int) ([]byte, bool) {
	if int(n) > limit {
		return nil, false
	}
	b, okr := mod.Memory().Read(ptr, n)
	if !okr {
		return nil, false
	}
	return bytes.Clone(b), true
}

func (m *Module) hostLog(ctx context.Context, mod api.Module, st []uint64) {
	level, ptr, n := uint32(st[0]), uint32(st[1]), uint32(st[2])
	if n > maxLog {
		n = maxLog
	}
	b, okr := mod.Memory().Read(ptr, n)
	if !okr {
		return
	}
	lv := slog.LevelInfo
	switch level {
	case unhidra.LevelDebug:
		lv = slog.LevelDebug
	case unhidra.LevelWarn:
		lv = slog.LevelWarn
	case unhidra.LevelError:
		lv = slog.LevelError
	}
	hook := ""
	if cs := state(ctx); cs != nil {
		hook = cs.hook
	}
	m.log.Log(ctx, lv, string(b), "hook", hook)
}

func (m *Module) hostTake(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	if cs == nil || len(cs.pending) == 0 {
		return
	}
	mod.Memory().Write(uint32(st[0]), cs.pending)
	cs.pending = nil
}

func (m *Module) hostConfig(ctx context.Context, _ api.Module, st []uint64) {
	cs := state(ctx)
	if cs == nil {
		st[0] = notFound
		return
	}
	st[0] = ok(cs, m.opts.Config)
}

// kvGranted reports whether the module holds the kv grant; if not it sets a
// permission-denied status in st[0].
func (m *Module) kvGranted(cs *callState, st []uint64) bool {
	if !m.opts.Grants.KV {
		st[0] = m.deny(cs, "kv", "")
		return false
	}
	return true
}

// keyArg reads a KV key of 1–maxKey bytes.
func keyArg(mod api.Module, ptr, n uint32) (string, bool) {
	if n == 0 || n > maxKey {
		return "", false
	}
	b, okr := read(mod, ptr, n, maxKey)
	return string(b), okr
}

// kvKey checks the grant and reads the key at st[0], st[1]; on failure it has
// set the status in st[0] and returns false.
func (m *Module) kvKey(cs *callState, mod api.Module, st []uint64) (string, bool) {
	if !m.kvGranted(cs, st) {
		return "", false
	}
	key, okk := keyArg(mod, uint32(st[0]), uint32(st[1]))
	if !okk {
		st[0] = fail(cs, fmt.Sprintf("kv key must be 1–%d bytes", maxKey))
	}
	return key, okk
}

func (m *Module) hostKVGet(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	key, okk := m.kvKey(cs, mod, st)
	if !okk {
		return
	}
	v, found, err := m.opts.Host.KVGet(ctx, m.id, key)
	switch {
	case err != nil:
		st[0] = fail(cs, "kv get: "+err.Error())
	case !found:
		st[0] = notFound
	default:
		st[0] = ok(cs, v)
	}
}

func ttlArg(v uint64) time.Duration {
	ms := int64(v)
	if ms <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

func (m *Module) hostKVSet(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	if !m.kvGranted(cs, st) {
		return
	}
	key, okk := keyArg(mod, uint32(st[0]), uint32(st[1]))
	val, okv := read(mod, uint32(st[2]), uint32(st[3]), maxValue)
	if !okk || !okv {
		st[0] = fail(cs, fmt.Sprintf("kv key must be 1–%d bytes and value at most %d bytes", maxKey, maxValue))
		return
	}
	if err := m.opts.Host.KVSet(ctx, m.id, key, val, ttlArg(st[4])); err != nil {
		st[0] = fail(cs, "kv set: "+err.Error())
		return
	}
	st[0] = ok(cs, nil)
}

// absent as a length means "compare against a missing key".
const absent = ^uint32(0)

func (m *Module) hostKVCAS(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	if !m.kvGranted(cs, st) {
		return
	}
	key, okk := keyArg(mod, uint32(st[0]), uint32(st[1]))
	var (
		old        []byte
		oldPresent = uint32(st[3]) != absent
		oko        = true
	)
	if oldPresent {
		old, oko = read(mod, uint32(st[2]), uint32(st[3]), maxValue)
	}
	nv, okn := read(mod, uint32(st[4]), uint32(st[5]), maxValue)
	if !okk || !oko || !okn {
		st[0] = fail(cs, fmt.Sprintf("kv key must be 1–%d bytes and values at most %d bytes", maxKey, maxValue))
		return
	}
	swapped, err := m.opts.Host.KVCompareAndSet(ctx, m.id, key, old, oldPresent, nv, ttlArg(st[6]))
	switch {
	case err != nil:
		st[0] = fail(cs, "kv cas: "+err.Error())
	case !swapped:
		st[0] = notFound
	default:
		st[0] = ok(cs, nil)
	}
}

func (m *Module) hostKVDelete(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	key, okk := m.kvKey(cs, mod, st)
	if !okk {
		return
	}
	if err := m.opts.Host.KVDelete(ctx, m.id, key); err != nil {
		st[0] = fail(cs, "kv delete: "+err.Error())
		return
	}
	st[0] = ok(cs, nil)
}

func (m *Module) hostKVList(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	if !m.kvGranted(cs, st) {
		return
	}
	prefix, okp := read(mod, uint32(st[0]), uint32(st[1]), maxKey)
	if !okp {
		st[0] = fail(cs, fmt.Sprintf("kv prefix must be at most %d bytes", maxKey))
		return
	}
	es, err := m.opts.Host.KVList(ctx, m.id, string(prefix))
	if err != nil {
		st[0] = fail(cs, "kv list: "+err.Error())
		return
	}
	b, _ := json.Marshal(es)
	st[0] = ok(cs, b)
}

func (m *Module) mayPost(room string) bool {
	for _, r := range m.opts.Grants.Post {
		if r == "*" || r == room {
			return true
		}
	}
	return false
}

func (m *Module) hostPost(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	room, okr := read(mod, uint32(st[0]), uint32(st[1]), 64)
	text, okt := read(mod, uint32(st[2]), uint32(st[3]), 16<<10)
	if !okr || !okt {
		st[0] = fail(cs, "post: room must be at most 64 bytes and text at most 16 KiB")
		return
	}
	switch {
	case len(m.opts.Grants.Post) == 0:
		st[0] = m.deny(cs, "messages.post", "")
		return
	case !m.mayPost(string(room)):
		st[0] = m.deny(cs, "messages.post", "may not post to room "+string(room)+" (post_rooms)")
		return
	}
	if wait := m.posts.take(); wait > 0 {
		st[0] = fail(cs, fmt.Sprintf("rate_limited: post again in %d ms", wait.Milliseconds()))
		return
	}
	id, err := m.opts.Host.Post(ctx, m.id, string(room), string(text))
	if err != nil {
		st[0] = fail(cs, "post: "+err.Error())
		return
	}
	st[0] = ok(cs, []byte(id))
}

// maxHostCall bounds a host_call request.
const maxHostCall = 1 << 20

// hostCall is the generic import: (method, request) → answer, every Host
// rpc through one ABI function, with the same grant check as for process
// plugins (made by the Host implementation).
func (m *Module) hostCall(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	method, okm := read(mod, uint32(st[0]), uint32(st[1]), 64)
	req, okr := read(mod, uint32(st[2]), uint32(st[3]), maxHostCall)
	if !okm || !okr || len(method) == 0 {
		st[0] = fail(cs, fmt.Sprintf("INVALID_ARGUMENT: host_call: method must be 1–64 bytes and the request at most %d bytes", maxHostCall))
		return
	}
	out, err := m.opts.Host.Call(ctx, m.id, string(method), req)
	if err != nil {
		if errors.Is(err, ErrDenied) {
			m.stats.Denied.Add(1)
			m.log.Warn("wasm host call denied", "call", string(method), "hook", cs.hook)
		}
		st[0] = fail(cs, err.Error())
		return
	}
	st[0] = ok(cs, out)
}

func (m *Module) hostHTTP(ctx context.Context, mod api.Module, st []uint64) {
	cs := state(ctx)
	if len(m.opts.Grants.HTTP) == 0 {
		st[0] = m.deny(cs, "http", "")
		return
	}
	raw, okr := read(mod, uint32(st[0]), uint32(st[1]), 1<<20)
	if !okr {
		st[0] = fail(cs, "http: request larger than 1 MiB")
		return
	}
	var req unhidra.HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		st[0] = fail(cs, "http: malformed request: "+err.Error())
		return
	}
	resp, err := m.http.do(ctx, req)
	if err != nil {
		if _, isDenied := err.(*deniedError); isDenied {
			m.stats.Denied.Add(1)
			if m.opts.OnDenied != nil {
				m.opts.OnDenied("http")
			}
			m.log.Warn("wasm http refused", "url", req.URL, "err", err)
		}
		st[0] = fail(cs, "http: "+err.Error())
		return
	}
	b, _ := json.Marshal(resp)
	st[0] = ok(cs, b)
}

// deniedError is a request refused by policy (host not allowed, address
// not public).
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return "permission denied: " + e.msg }

type httpCap struct {
	g      Grants
	client *http.Client
}

func newHTTPCap(g Grants) *httpCap {
	if g.HTTPMaxBody <= 0 {
		g.HTTPMaxBody = 1 << 20
	}
	c := &httpCap{g: g}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: c.control}
	c.client = &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil, MaxIdleConns: 16,
			IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second},
		// Redirects are re-checked against the allow-list.
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return &deniedError{"too many redirects"}
			}
			if !c.hostAllowed(r.URL.Hostname()) {
				return &deniedError{"redirect to host " + r.URL.Hostname() + " is not on the allow-list"}
			}
			return nil
		},
	}
	return c
}

func (c *httpCap) hostAllowed(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for _, a := range c.g.HTTP {
		a = strings.ToLower(a)
		if a == h || (strings.HasPrefix(a, "*.") && strings.HasSuffix(h, a[1:])) {
			return true
		}
	}
	return false
}

// control runs after DNS, on the address actually dialled, so a name that
// resolves (or re-resolves) to an internal address is still refused.
func (c *httpCap) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &deniedError{"unparseable address " + address}
	}
	ip := ap.Addr().Unmap()
	for _, p := range c.g.HTTPAllowNets {
		if p.Contains(ip) {
			return nil
		}
	}
	if !publicAddr(ip) {
		return &deniedError{fmt.Sprintf("address %s is not public (private, loopback, link-local or reserved)", ip)}
	}
	return nil
}

func publicAddr(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("64:ff9b::/96"),
}

func (c *httpCap) do(ctx context.Context, req unhidra.HTTPRequest) (*unhidra.HTTPResponse, error) {
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q must be absolute http(s)", req.URL)
	}
	if !c.hostAllowed(u.Hostname()) {
		return nil, &deniedError{"host " + u.Hostname() + " is not on the allow-list"}
	}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range req.Headers {
		hr.Header.Set(k, v)
	}
	resp, err := c.client.Do(hr)
	if err != nil {
		var de *deniedError
		if ue, okU := err.(*url.Error); okU {
			if d, okD := unwrapDenied(ue.Err); okD {
				de = d
			}
		}
		if de != nil {
			return nil, de
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.g.HTTPMaxBody+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > c.g.HTTPMaxBody {
		return nil, fmt.Errorf("response body exceeds %d bytes", c.g.HTTPMaxBody)
	}
	out := &unhidra.HTTPResponse{Status: resp.StatusCode, Body: body, Headers: map[string]string{}}
	for k := range resp.Header {
		out.Headers[k] = resp.Header.Get(k)
	}
	return out, nil
}

func unwrapDenied(err error) (*deniedError, bool) {
	for err != nil {
		if d, okD := err.(*deniedError); okD {
			return d, true
		}
		u, okU := err.(interface{ Unwrap() error })
		if !okU {
			return nil, false
		}
		err = u.Unwrap()
	}
	return nil, false
}

// tokenBucket rate-limits a module's posts.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate, burst float64) *tokenBucket {
	return &tokenBucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// take consumes a token, or returns how long until one is available.
func (b *tokenBucket) take() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
