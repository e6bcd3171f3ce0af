package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPluginSubcommandErrors(t *testing.T) {
	for _, args := range [][]string{{"plugin"}, {"plugin", "nope"}, {"plugin", "a", "b"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "welcome") {
			t.Errorf("unhidra %v: exit %d, stderr %q; want 2 and the list of builtins", args, code, errOut.String())
		}
	}
}
