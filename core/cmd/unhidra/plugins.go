package main

import (
	"fmt"
	"io"

	"github.com/unhidra/unhidra/sdk/plugin"

	// First-party plugins compiled into this binary register themselves
	// (plugin.RegisterBuiltin); the server runs each as a separate process,
	// `unhidra plugin <name>`, so a crashing plugin never takes the core down.
	_ "github.com/unhidra/unhidra/plugins/welcome"
)

func runPlugin(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: unhidra plugin <name>  (one of %v)\n", plugin.Builtins())
		return 2
	}
	if err := plugin.ServeBuiltin(args[0]); err != nil {
		fmt.Fprintf(stderr, "unhidra: %v\n", err)
		return 2
	}
	return 0
}
