package plugin

import (
	"fmt"
	"slices"
	"sync"
)

// Builtin plugins are compiled into a host binary (the `unhidra` binary runs
// them as `unhidra plugin <name>`, each still a separate process). A builtin's
// package registers it from an init function; the binary links the packages
// it wants with blank imports and never names them otherwise.
var builtins = struct {
	sync.Mutex
	m map[string]func() any
}{m: map[string]func() any{}}

// RegisterBuiltin registers a first-party plugin under name; newPlugin
// returns the value Serve runs. Registering a name twice panics (two packages
// claiming one name is a build mistake).
func RegisterBuiltin(name string, newPlugin func() any) {
	builtins.Lock()
	defer builtins.Unlock()
	if _, dup := builtins.m[name]; dup {
		panic(fmt.Sprintf("plugin: builtin %q registered twice", name))
	}
	builtins.m[name] = newPlugin
}

// Builtins lists the registered builtin plugins, sorted.
func Builtins() []string {
	builtins.Lock()
	defer builtins.Unlock()
	out := make([]string, 0, len(builtins.m))
	for n := range builtins.m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ServeBuiltin serves the builtin plugin name (see Serve); it returns an
// error only when no builtin has that name.
func ServeBuiltin(name string) error {
	builtins.Lock()
	mk, ok := builtins.m[name]
	builtins.Unlock()
	if !ok {
		return fmt.Errorf("no first-party plugin %q (have %v)", name, Builtins())
	}
	Serve(mk())
	return nil
}
