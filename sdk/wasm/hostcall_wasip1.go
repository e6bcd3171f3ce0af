//go:build wasip1

package unhidra

import "runtime"

//go:wasmimport unhidra host_call
func hostCall(mp, mn, rp, rn uint32) int64

func callHost(method string, req []byte) ([]byte, error) {
	m := []byte(method)
	mp, mn := ptrLen(m)
	rp, rn := ptrLen(req)
	r := hostCall(mp, mn, rp, rn)
	runtime.KeepAlive(m)
	runtime.KeepAlive(req)
	b, _, err := finish(r)
	return b, err
}
