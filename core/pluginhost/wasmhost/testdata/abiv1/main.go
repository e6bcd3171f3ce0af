// A module built for ABI v1 (exports by hand, as sdk/wasm before contract
// v2 made them): the host must refuse it at load with a clear error.
package main

import "unsafe"

var keep = map[uint32][]byte{}

//go:wasmexport unhidra_abi_v1
func abi() uint32 { return 1 }

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
func describe() uint64 { return out(`{"abi":1,"hooks":["MessageWillBePosted"]}`) }

//go:wasmexport unhidra_call
func call(hp, hn, ip, in uint32) uint64 { return out(`{"result":{}}`) }

func main() {}
