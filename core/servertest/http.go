package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Request is one HTTP request sent exactly as given: the body bytes are not
// re-encoded (so a test can send invalid UTF-8, escapes or trailing data)
// and Path is used as written (percent-escapes included).
type Request struct {
	Method, Path string
	Token        string // bearer access token, if any
	Body         []byte // sent with Content-Type: application/json when non-nil
	Header       map[string]string
}

// Response is the answer to a Request. Err is the decoded error body of a
// non-2xx answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Err    protocol.ErrorBody
}

// Do sends r to the server and returns its answer; transport errors fail
// the test.
func (e *Env) Do(t testing.TB, r Request) Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, strings.TrimRight(e.URL, "/")+r.Path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	hc := e.API().HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.Path, err)
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode >= 300 {
		_ = json.Unmarshal(b, &out.Err)
	}
	return out
}

// Code returns the protocol error code of err: an error frame
// (*client.Error), a REST error (*client.APIError) or a refused handshake;
// "" for nil and "not a protocol error: …" for anything else, so that a
// comparison with a code fails with a readable message.
func Code(err error) string {
	var (
		fe *client.Error
		ae *client.APIError
		he *client.HandshakeError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &fe):
		return fe.Code
	case errors.As(err, &ae):
		return ae.Code
	case errors.As(err, &he):
		return he.Body.Code
	}
	return "not a protocol error: " + err.Error()
}

// WantCode fails the test (without stopping it) unless err carries the
// protocol error code want ("" for success).
func WantCode(t testing.TB, what string, err error, want string) {
	t.Helper()
	if got := Code(err); got != want {
		t.Errorf("%s: code %q (%v), want %q", what, got, err, want)
	}
}
