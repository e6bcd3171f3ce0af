// A module that speaks the ABI's exports by hand (no SDK) and answers hooks
// with bytes that are not a JSON envelope.
package main

import "unsafe"

var keep = map[uint32][]byte{}

//go:wasmexport unhidra_abi
func abi() uint32 { return 2 }

//go:wasmexport unhidra_malloc
func malloc(n uint32) uint32 {
	b := make([]byte, n+1)
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	keep[p] = b
	return p
}

//go:wasmexport unhidra_free
func free(p uint32) { delete(keep, p) }

func out(s string) uint64 {
	b := []byte(s)
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	keep[p] = b
	return uint64(p)<<32 | uint64(len(b))
}

//go:wasmexport unhidra_describe
func describe() uint64 { return out(`{"abi":2,"hooks":["MessageWillBePosted","ExecuteCommand"]}`) }

//go:wasmexport unhidra_call
func call(hp, hn, ip, in uint32) uint64 {
	if hn == uint32(len("ExecuteCommand")) {
		return uint64(0xFFFF0000)<<32 | 0xFFFF // points outside memory
	}
	return out("\x00garbage{{")
}

func main() {}
