package protocol_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/sdk/protocol"
)

// docPath is the prose version of protocol.go.
const docPath = "../../docs/protocol.md"

// constsWithPrefix returns name → value of the string constants in
// protocol.go whose names start with prefix. Reading the source (rather than
// a hand-kept list) means a constant added later is checked without anyone
// remembering to add it here.
func constsWithPrefix(t *testing.T, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "protocol.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = v
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no constants %s* in protocol.go", prefix)
	}
	return out
}

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("docs/protocol.md must exist: %v", err)
	}
	return string(b)
}

func jsonNames(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// TestDocCoversProtocol fails when docs/protocol.md is missing a frame type,
// an error code, a goodbye reason or a frame field that protocol.go defines.
func TestDocCoversProtocol(t *testing.T) {
	doc := readDoc(t)
	for name, v := range constsWithPrefix(t, "Type") {
		if !strings.Contains(doc, "### `"+v+"`") {
			t.Errorf("%s = %q: docs/protocol.md has no section \"### `%s`\"", name, v, v)
		}
	}
	for name, v := range constsWithPrefix(t, "Code") {
		if !strings.Contains(doc, "| `"+v+"` |") {
			t.Errorf("%s = %q: docs/protocol.md has no row \"| `%s` |\" in the error code table", name, v, v)
		}
	}
	for name, v := range constsWithPrefix(t, "Reason") {
		if !strings.Contains(doc, "| `"+v+"` |") {
			t.Errorf("%s = %q: docs/protocol.md has no row \"| `%s` |\" in the goodbye reasons", name, v, v)
		}
	}
	for _, v := range []string{protocol.Subprotocol, protocol.BearerPrefix} {
		if !strings.Contains(doc, v) {
			t.Errorf("docs/protocol.md never mentions %q", v)
		}
	}
	for _, s := range []any{protocol.ClientFrame{}, protocol.Frame{}} {
		for _, f := range jsonNames(s) {
			if !strings.Contains(doc, "| `"+f+"` |") {
				t.Errorf("%T field %q: docs/protocol.md has no table row \"| `%s` |\"", s, f, f)
			}
		}
	}
	for _, s := range []any{protocol.Message{}, protocol.ErrorBody{}} {
		for _, f := range jsonNames(s) {
			if !strings.Contains(doc, f) {
				t.Errorf("%T field %q is not in docs/protocol.md", s, f)
			}
		}
	}
}

// TestCodesListsEveryCode keeps protocol.Codes (the documented closed list)
// and the Code* constants the same set.
func TestCodesListsEveryCode(t *testing.T) {
	var consts []string
	for _, v := range constsWithPrefix(t, "Code") {
		consts = append(consts, v)
	}
	listed := append([]string(nil), protocol.Codes...)
	sort.Strings(consts)
	sort.Strings(listed)
	if !reflect.DeepEqual(consts, listed) {
		t.Fatalf("protocol.Codes = %v, Code* constants = %v", listed, consts)
	}
}
