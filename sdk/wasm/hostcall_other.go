//go:build !wasip1

package unhidra

func callHost(string, []byte) ([]byte, error) { return nil, errNotWASM }
