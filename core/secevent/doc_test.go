package secevent_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/secevent"
)

// DocRow is the row docs/plugins.md has for t.
func docRow(t secevent.TypeInfo) string {
	details := "—"
	if t.Details != "" {
		ks := strings.Split(t.Details, ", ")
		for i, k := range ks {
			ks[i] = "`" + k + "`"
		}
		details = strings.Join(ks, ", ")
	}
	return fmt.Sprintf("| `%s` | %s | %s | %s |", t.Type, t.Target, details, t.Doc)
}

// TestPluginsDocListsEveryType keeps the event table in docs/plugins.md
// equal to Types: the same rows, in the same order, nothing else.
func TestPluginsDocListsEveryType(t *testing.T) {
	b, err := os.ReadFile("../../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "| `") && regexp.MustCompile("^\\| `[a-z_]+\\.[a-z_]+` \\||^\\| `logout` \\|").MatchString(l) {
			rows = append(rows, l)
		}
	}
	var want []string
	for _, ti := range secevent.Types {
		want = append(want, docRow(ti))
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("docs/plugins.md's security event table differs from secevent.Types; it should read:\n%s\n\nit reads:\n%s",
			strings.Join(want, "\n"), strings.Join(rows, "\n"))
	}
}

// TestEveryTypeIsListed fails when a Type constant is declared but not in
// Types (Emit would drop it).
func TestEveryTypeIsListed(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Type" {
				continue
			}
			for _, v := range vs.Values {
				lit := v.(*ast.BasicLit)
				n++
				if typ := secevent.Type(strings.Trim(lit.Value, `"`)); !secevent.Known(typ) {
					t.Errorf("type %s is declared but not in secevent.Types", typ)
				}
			}
		}
	}
	if n != len(secevent.Types) {
		t.Fatalf("%d Type constants, %d entries in Types", n, len(secevent.Types))
	}
}
