//go:build !wasip1

package unhidra

// Outside a wasip1 build (vet, unit tests of plugin logic on the host) there
// is no host: every host call reports that.

var errNotWASM = &HostError{Msg: "not running inside the Unhidra WASM host (build with GOOS=wasip1 GOARCH=wasm)"}

func logMsg(uint32, string)                                 {}
func callConfig() ([]byte, bool, error)                     { return nil, false, errNotWASM }
func callKVGet(string) ([]byte, bool, error)                { return nil, false, errNotWASM }
func callKVSet(string, []byte, int64) error                 { return errNotWASM }
func callKVCAS(string, []byte, []byte, int64) (bool, error) { return false, errNotWASM }
func callKVDelete(string) error                             { return errNotWASM }
func callKVList(string) ([]byte, error)                     { return nil, errNotWASM }
func callPost(string, string) ([]byte, error)               { return nil, errNotWASM }
func callHTTP([]byte) ([]byte, error)                       { return nil, errNotWASM }

// Call runs a hook of the registered plugin as the host would (for tests of
// plugin logic without a WASM build).
func Call(hook string, in []byte) []byte { return call(hook, in) }

// Describe returns what the registered plugin would tell the host.
func Describe() Description { return describe() }
