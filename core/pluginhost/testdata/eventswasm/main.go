// Command eventswasm is the WASM twin of eventsplugin (membership_test.go):
// a module that speaks ABI v1 directly (docs/wasm-abi.md), with the standard
// library only, so it can declare any hook of plugin.proto by its rpc name.
// It declares every membership, reaction, user and room lifecycle hook and
// prints each input it receives as one line
//
//	OBSERVED <HookName> <the input JSON, as the host sent it>
//
// to stdout, which the host logs (tagged with the plugin id) and the test
// reads.
package main

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

var hooks = []string{
	"UserHasJoinedRoom", "UserHasLeftRoom",
	"ReactionHasBeenAdded", "ReactionHasBeenRemoved",
	"UserHasBeenCreated", "UserHasBeenUpdated", "UserHasBeenDeactivated",
	"RoomHasBeenCreated", "RoomHasBeenUpdated",
}

// pinned keeps buffers handed to the host alive until it frees them.
var pinned = map[uint32][]byte{}

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

func pack(b []byte) uint64 { return uint64(addr(b))<<32 | uint64(len(b)) }

//go:wasmexport unhidra_abi_v1
func abi() uint32 { return 1 }

//go:wasmexport unhidra_malloc
func malloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	pinned[addr(b)] = b
	return addr(b)
}

//go:wasmexport unhidra_free
func free(ptr uint32) { delete(pinned, ptr) }

//go:wasmexport unhidra_describe
func describe() uint64 {
	b, _ := json.Marshal(map[string]any{"abi": 1, "hooks": hooks})
	pinned[addr(b)] = b
	return pack(b)
}

// out is the answer of the latest call; the host copies it before the next.
var out []byte

//go:wasmexport unhidra_call
func call(hookPtr, hookLen, inPtr, inLen uint32) uint64 {
	hook := string(view(hookPtr, hookLen))
	in := view(inPtr, inLen)
	fmt.Printf("OBSERVED %s %s\n", hook, in)
	out = []byte(`{}`) // the envelope of "done, nothing to answer"
	return pack(out)
}

func view(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(ptr))), n)
}

func main() {}
