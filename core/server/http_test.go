package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one sample (name with labels, exactly as exposed) from /metrics.
func metric(t *testing.T, env *servertest.Env, sample string) float64 {
	t.Helper()
	_, body := get(t, env.URL+"/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, sample+" "), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0 // a labelled counter that never moved is absent
}

// waitMetric polls sample until ok accepts it: counters move right after
// the fan-out that a client may already have observed.
func waitMetric(t *testing.T, env *servertest.Env, sample string, what string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v := metric(t, env, sample)
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %s", sample, v, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// postJSON posts body with extra headers and decodes the answer.
func postJSON(t *testing.T, ctx context.Context, url, token string, body any, hdr map[string]string, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

// TestHealthReadyMetrics: /healthz and /readyz answer, /metrics exposes the
// core's collectors and they move with traffic.
func TestHealthReadyMetrics(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	if st, body := get(t, env.URL+"/healthz"); st != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %s", st, body)
	}
	if st, body := get(t, env.URL+"/readyz"); st != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %s", st, body)
	}
	_, body := get(t, env.URL+"/metrics")
	for _, name := range []string{"unhidra_ws_connections", "unhidra_messages_total", "unhidra_ws_frames_out_total",
		"unhidra_fanout_seconds_bucket", "unhidra_ws_queue_drops_total", "unhidra_commit_batch_ops_bucket", "go_goroutines"} {
		if !strings.Contains(body, name) {
			t.Fatalf("/metrics lacks %s", name)
		}
	}
	msgs0 := metric(t, env, "unhidra_messages_total")
	sends0 := metric(t, env, `unhidra_ws_frames_in_total{type="send"}`)
	a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	room, _ := a.API.CreateRoom(ctx, "m", "private", "bob")
	ca, cb := env.Dial(t, a), env.Dial(t, b)
	if got := metric(t, env, "unhidra_ws_connections"); got != 2 {
		t.Fatalf("connections gauge = %v, want 2", got)
	}
	for i := 0; i < 5; i++ {
		if _, err := ca.Send(ctx, room.ID, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
		servertest.Next(t, cb, wait, "message")
	}
	_ = ca.WriteRaw([]byte("nope"))
	servertest.Next(t, ca, wait, "error")
	waitMetric(t, env, "unhidra_messages_total", "+5", func(v float64) bool { return v == msgs0+5 })
	waitMetric(t, env, `unhidra_ws_frames_in_total{type="send"}`, "+5", func(v float64) bool { return v == sends0+5 })
	waitMetric(t, env, "unhidra_deliveries_total", "≥ 10 (2 sessions × 5)", func(v float64) bool { return v >= 10 })
	waitMetric(t, env, `unhidra_errors_total{code="bad_request"}`, "≥ 1", func(v float64) bool { return v >= 1 })
	waitMetric(t, env, "unhidra_fanout_seconds_count", "≥ 5", func(v float64) bool { return v >= 5 })
	// Never more than asked: a second look after the others settled.
	if got := metric(t, env, "unhidra_messages_total"); got != msgs0+5 {
		t.Fatalf("messages_total = %v, want %v", got, msgs0+5)
	}
}

// TestRESTPost: POST /v1/rooms/{id}/messages acks after commit (the message
// is in history and delivered when the answer arrives), an Idempotency-Key
// dedupes, and bad posts change nothing.
func TestRESTPost(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b, c := env.NewUser(t, "alice"), env.NewUser(t, "bob"), env.NewUser(t, "carol")
		room, _ := a.API.CreateRoom(ctx, "rest", "private", "bob")
		cb := env.Dial(t, b)
		url := env.URL + "/v1/rooms/" + room.ID + "/messages"
		var ack protocol.Frame
		if st := postJSON(t, ctx, url, a.Token, map[string]string{"text": "via rest"}, nil, &ack); st != 201 {
			t.Fatalf("POST = %d %+v", st, ack)
		}
		if ack.Type != "ack" || ack.Seq != 1 || ack.ID == "" || ack.TS == 0 {
			t.Fatalf("ack = %+v", ack)
		}
		// Committed before the answer: history has it right away.
		hist, err := b.API.History(ctx, room.ID, 0, 0, 10)
		if err != nil || len(hist) != 1 || hist[0].ID != ack.ID || hist[0].Text != "via rest" {
			t.Fatalf("history right after POST = %+v, %v", hist, err)
		}
		if m := servertest.Next(t, cb, wait, "message"); m.ID != ack.ID || m.From != a.ID {
			t.Fatalf("WS member got %+v", m)
		}
		// Idempotency-Key: same key, same ack, 200, nothing new.
		var k1, k2 protocol.Frame
		hdr := map[string]string{"Idempotency-Key": "order-42"}
		if st := postJSON(t, ctx, url, a.Token, map[string]string{"text": "once"}, hdr, &k1); st != 201 {
			t.Fatalf("first keyed POST = %d", st)
		}
		if st := postJSON(t, ctx, url, a.Token, map[string]string{"text": "once"}, hdr, &k2); st != 200 {
			t.Fatalf("repeated keyed POST = %d", st)
		}
		if k2.ID != k1.ID || k2.Seq != k1.Seq || !k2.Duplicate {
			t.Fatalf("repeat = %+v, first = %+v", k2, k1)
		}
		// The key is per sender: bob may use the same key.
		var kb protocol.Frame
		if st := postJSON(t, ctx, url, b.Token, map[string]string{"text": "bob's"}, hdr, &kb); st != 201 || kb.ID == k1.ID {
			t.Fatalf("bob with alice's key = %d %+v", st, kb)
		}
		// Bad posts: each a clear error, nothing stored.
		bad := []struct {
			name  string
			token string
			body  any
			code  string
			st    int
		}{
			{"empty text", a.Token, map[string]string{"text": ""}, "bad_request", 400},
			{"unknown field", a.Token, map[string]any{"text": "x", "colour": "red"}, "bad_request", 400},
			{"not a member", c.Token, map[string]string{"text": "x"}, "not_found", 404},
			{"bad token", "garbage", map[string]string{"text": "x"}, "unauthorized", 401},
			{"too long", a.Token, map[string]string{"text": strings.Repeat("x", 17<<10)}, "too_large", 413},
			{"meta not object", a.Token, map[string]any{"text": "x", "meta": 5}, "bad_request", 400},
		}
		for _, tc := range bad {
			var eb protocol.ErrorBody
			if st := postJSON(t, ctx, url, tc.token, tc.body, nil, &eb); st != tc.st || eb.Code != tc.code {
				t.Errorf("%s: %d %+v, want %d %s", tc.name, st, eb, tc.st, tc.code)
			}
		}
		hist, _ = a.API.History(ctx, room.ID, 0, 0, 50)
		if len(hist) != 3 {
			t.Fatalf("history has %d messages, want 3", len(hist))
		}
	})
}

// TestHistoryPaging: after, before and limit select seq windows; bad values
// are refused.
func TestHistoryPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a := env.NewUser(t, "alice")
		room, _ := a.API.CreateRoom(ctx, "pages", "public")
		c := env.Dial(t, a)
		for i := 1; i <= 25; i++ {
			if _, err := c.Send(ctx, room.ID, fmt.Sprintf("n%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		seqs := func(q string) string {
			t.Helper()
			var out struct {
				Messages []protocol.Message `json:"messages"`
			}
			if err := a.API.Do(ctx, "GET", "/v1/rooms/"+room.ID+"/messages?"+q, nil, &out); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			var s []string
			for _, m := range out.Messages {
				if m.Text != fmt.Sprintf("n%d", m.Seq) {
					t.Fatalf("%s: seq %d has text %q", q, m.Seq, m.Text)
				}
				s = append(s, strconv.FormatInt(m.Seq, 10))
			}
			return strings.Join(s, ",")
		}
		cases := map[string]string{
			"after=5&limit=3":           "6,7,8",
			"after=0&limit=2":           "1,2",
			"after=23":                  "24,25",
			"after=25":                  "",
			"before=4":                  "1,2,3",
			"before=20&limit=3":         "17,18,19",
			"after=5&before=9":          "6,7,8",
			"after=5&before=20&limit=2": "6,7",
			"limit=2":                   "24,25", // no bounds: the newest page
			"after=10&before=5":         "",
			"limit=100000&after=24":     "25", // clamped, not refused
		}
		for q, want := range cases {
			if got := seqs(q); got != want {
				t.Errorf("%s: seqs %s, want %s", q, got, want)
			}
		}
		for _, q := range []string{"after=-1", "before=x", "after=1e3"} {
			err := a.API.Do(ctx, "GET", "/v1/rooms/"+room.ID+"/messages?"+q, nil, nil)
			if ae, ok := err.(*client.APIError); !ok || ae.Status != 400 {
				t.Errorf("%s: %v, want 400", q, err)
			}
		}
		// Non-members of a public room cannot read its history without joining.
		b := env.NewUser(t, "bob")
		if _, err := b.API.History(ctx, room.ID, 0, 0, 10); err == nil {
			t.Fatal("non-member read history")
		}
	})
}

// TestHandshake: refusals happen before the upgrade with a status and a JSON
// error; browsers authenticate with the bearer subprotocol; Origin is checked.
func TestHandshake(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.AllowedOrigins = []string{"https://app.example.com"}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := env.NewUser(t, "alice")
	refused := func(name string, o client.Options, status int, code string) {
		t.Helper()
		c, err := client.Dial(ctx, env.WSURL, o)
		if err == nil {
			c.Close()
			t.Fatalf("%s: handshake accepted", name)
		}
		he, ok := err.(*client.HandshakeError)
		if !ok || he.Status != status || he.Body.Code != code || he.Body.Message == "" {
			t.Fatalf("%s: %v, want HTTP %d %s", name, err, status, code)
		}
	}
	refused("no token", client.Options{}, 401, "unauthorized")
	refused("bad token", client.Options{Token: "not-a-jwt"}, 401, "unauthorized")
	refused("tampered token", client.Options{Token: a.Token[:len(a.Token)-4] + "AAAA"}, 401, "unauthorized")
	refused("browser bad token", client.Options{Token: "x", BrowserStyle: true}, 401, "unauthorized")
	refused("foreign origin", client.Options{Token: a.Token, Origin: "https://evil.example"}, 403, "forbidden")
	refused("lookalike origin", client.Options{Token: a.Token, Origin: "https://app.example.com.evil.example"}, 403, "forbidden")
	refused("origin over the wrong scheme", client.Options{Token: a.Token, Origin: "http://app.example.com"}, 403, "forbidden")

	accepted := func(name string, o client.Options) {
		t.Helper()
		c, err := client.Dial(ctx, env.WSURL, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("%s: ping: %v", name, err)
		}
		c.Close()
	}
	accepted("header bearer", client.Options{Token: a.Token})
	accepted("allowed origin", client.Options{Token: a.Token, Origin: "https://app.example.com"})
	accepted("own origin", client.Options{Token: a.Token, Origin: env.URL})
	// Browser style: Sec-WebSocket-Protocol: unhidra.v1, bearer.<token>;
	// client.Dial fails unless the server selects unhidra.v1.
	accepted("browser subprotocol", client.Options{Token: a.Token, BrowserStyle: true, Origin: env.URL})

	// A plain GET is not a WebSocket.
	if st, body := get(t, env.URL+"/v1/ws"); st != 426 || !strings.Contains(body, "bad_request") {
		t.Fatalf("plain GET /v1/ws = %d %s", st, body)
	}
	if got := metric(t, env, `unhidra_ws_handshakes_total{result="forbidden_origin"}`); got != 3 {
		t.Fatalf("forbidden_origin handshakes = %v, want 3", got)
	}
}

// TestRESTPostConcurrentRooms: messages posted over REST on reused
// keep-alive connections are published to the room they were posted to,
// with their own text (request buffers are reused once a handler returns,
// but fan-out happens after the answer).
func TestRESTPostConcurrentRooms(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	var rooms []client.Room
	for _, name := range []string{"r-one", "r-two", "r-three"} {
		r, err := a.API.CreateRoom(ctx, name, "private", "bob")
		if err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, r)
	}
	cb := env.Dial(t, b)
	const perWorker, workers = 60, 3
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
			for i := 0; i < perWorker; i++ {
				r := rooms[(w+i)%len(rooms)]
				body := fmt.Sprintf(`{"text":"%s/%d/%d"}`, r.ID, w, i)
				req, _ := http.NewRequestWithContext(ctx, "POST", env.URL+"/v1/rooms/"+r.ID+"/messages", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+a.Token)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("k-%d-%d", w, i))
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					errs <- fmt.Errorf("POST %d", resp.StatusCode)
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for n := 0; n < perWorker*workers; n++ {
		m := servertest.Next(t, cb, wait, "message")
		if m.Text == nil || !strings.HasPrefix(*m.Text, m.Room+"/") {
			t.Fatalf("message published to room %s has text %v", m.Room, *m.Text)
		}
	}
}
