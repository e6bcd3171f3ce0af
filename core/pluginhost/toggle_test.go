package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestEnableDisable: the admin API turns a plugin off and on by editing
// plugins.yaml (comments kept) and reloading; the plugin's hooks stop and
// start applying, sessions stay up, and bad requests change nothing.
func TestEnableDisable(t *testing.T) {
	hello, _ := bins(t)
	e := start(t, "# the word filter\n"+helloYAML(hello, ""))
	ctx := context.Background()
	toggle := func(api *client.API, id, what string) error {
		var res pluginhost.ReloadResult
		return api.Do(ctx, "POST", "/v1/admin/plugins/"+id+"/"+what, nil, &res)
	}
	if _, err := send(e.bc, e.room, "darn"); code(err) != protocol.CodeForbidden {
		t.Fatalf("hello should filter: %v", err)
	}

	// Bad requests: unknown plugin, a member asking. Nothing changes.
	before, _ := os.ReadFile(e.path)
	if err := toggle(e.admin.API, "nope", "disable"); apiCode(err) != protocol.CodeNotFound {
		t.Fatalf("unknown plugin: %v", err)
	}
	if err := toggle(e.bob.API, "hello", "disable"); apiCode(err) != protocol.CodeForbidden {
		t.Fatalf("member: %v", err)
	}
	if after, _ := os.ReadFile(e.path); string(after) != string(before) {
		t.Fatalf("a refused toggle changed the file:\n%s", after)
	}

	if err := toggle(e.admin.API, "hello", "disable"); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "hello"); st.State != "disabled" || st.Enabled {
		t.Fatalf("after disable: %+v", st)
	}
	b, _ := os.ReadFile(e.path)
	if !strings.Contains(string(b), "enabled: false") || !strings.Contains(string(b), "# the word filter") {
		t.Fatalf("plugins.yaml after disable:\n%s", b)
	}
	if _, err := pluginhost.LoadFile(e.path); err != nil {
		t.Fatalf("the edited file does not load: %v", err)
	}
	if ack, err := send(e.bc, e.room, "darn, allowed now"); err != nil || ack.Seq == 0 {
		t.Fatalf("disabled plugin still filters: %+v %v", ack, err)
	}

	if err := toggle(e.admin.API, "hello", "enable"); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "hello"); st.State != "running" {
		t.Fatalf("after enable: %+v", st)
	}
	if _, err := send(e.bc, e.room, "darn again"); code(err) != protocol.CodeForbidden {
		t.Fatalf("re-enabled plugin does not filter: %v", err)
	}
	// Both sessions lived through it all.
	for _, c := range []*client.Conn{e.ac, e.bc} {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("a session dropped: %v", err)
		}
	}
}

// apiCode is the protocol error code of a REST error.
func apiCode(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return fmt.Sprint(err)
}
