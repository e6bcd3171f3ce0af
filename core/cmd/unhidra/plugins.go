package main

import (
	"fmt"
	"io"
	"slices"

	"github.com/unhidra/unhidra/plugins/welcome"
	"github.com/unhidra/unhidra/sdk/plugin"
)

// builtins are the first-party plugins compiled into this binary. The
// server runs each as a separate process, `unhidra plugin <name>`, so a
// crashing plugin never takes the core down.
var builtins = map[string]func() any{
	"welcome": func() any { return welcome.New() },
}

func builtinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func runPlugin(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: unhidra plugin <name>  (one of %v)\n", builtinNames())
		return 2
	}
	mk, ok := builtins[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "unhidra: no first-party plugin %q (have %v)\n", args[0], builtinNames())
		return 2
	}
	plugin.Serve(mk())
	return 0
}
