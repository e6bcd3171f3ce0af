package server_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/server"
)

// TestOperationsDocListsEveryFlag fails when `unhidra serve` has a flag that
// docs/operations.md does not list with its environment twin.
func TestOperationsDocListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatalf("docs/operations.md must exist: %v", err)
	}
	doc := string(b)
	var usage bytes.Buffer
	_, err = server.ParseFlags("unhidra serve", []string{"-h"}, func(string) string { return "" }, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseFlags(-h) = %v, want flag.ErrHelp", err)
	}
	names := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(usage.String(), -1)
	if len(names) < 10 {
		t.Fatalf("found only %d flags in the usage text:\n%s", len(names), usage.String())
	}
	for _, m := range names {
		env := "UNHIDRA_" + strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))
		if m[1] == "db" {
			env = "UNHIDRA_DATABASE_URL"
		}
		row := "| `--" + m[1] + "` | `" + env + "` |"
		if !strings.Contains(doc, row) {
			t.Errorf("flag --%s: docs/operations.md has no row starting %q", m[1], row)
		}
	}
}
