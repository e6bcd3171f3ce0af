// Command external is a plugin that lives in its own Go module, as a third
// party's would: its go.mod requires github.com/unhidra/unhidra and, until
// the SDK is published, replaces it with a local checkout (docs/plugins.md,
// "A plugin in its own module"). It serves one page under /plugins/{id}/.
package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/unhidra/unhidra/sdk/plugin"
)

type external struct{ id string }

func (e *external) OnActivate(_ context.Context, host *plugin.Host) error {
	e.id = host.ID()
	return nil
}

// ServeHTTP answers every request below /plugins/{id}/ with who asked.
func (e *external) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello from plugin %s, module example.com/unhidra-external, path %s\n", e.id, r.URL.Path)
}

func main() { plugin.Serve(&external{}) }
