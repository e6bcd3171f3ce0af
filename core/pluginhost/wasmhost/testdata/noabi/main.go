// A wasip1 module that is not an Unhidra plugin.
package main

//go:wasmexport add
func add(a, b uint32) uint32 { return a + b }

func main() {}
