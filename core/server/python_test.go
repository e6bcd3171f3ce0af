package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
)

// debianPython is the interpreter whose dist-packages hold Debian's
// python3-websockets (a pyenv or venv python3 on PATH may not have it).
const debianPython = "/usr/bin/python3"

// TestIndependentClient is "Done when" 4's second half: a client no one here
// wrote (Debian's python3-websockets) passes the same send/sync scenario as
// the Go client, on SQLite and on Postgres.
func TestIndependentClient(t *testing.T) {
	py := debianPython
	if _, err := os.Stat(py); err != nil {
		lp, lerr := exec.LookPath("python3")
		if lerr != nil {
			servertest.SkipOrFail(t, "python3 is not installed (apt-get install python3 python3-websockets)")
		}
		py = lp
	}
	if out, err := exec.Command(py, "-c", "import websockets").CombinedOutput(); err != nil {
		servertest.SkipOrFail(t, "python module websockets is missing (apt-get install python3-websockets): "+string(out))
	}
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "testdata/scenario.py", env.URL).CombinedOutput()
		if err != nil {
			t.Fatalf("python client failed: %v\n%s", err, out)
		}
		var res struct {
			OK     bool   `json:"ok"`
			Synced int    `json:"synced"`
			Pages  int    `json:"pages"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal(out, &res); err != nil || !res.OK || res.Synced != 100 || res.Pages < 4 {
			t.Fatalf("python client result %+v (%v):\n%s", res, err, out)
		}
		t.Logf("python client: %s", out)
	})
}
