//go:build wasip1

package unhidra

import (
	"runtime"
	"unsafe"
)

// Exports (ABI v2). Buffers cross the boundary as (ptr, len) in guest
// memory; a uint64 result packs ptr<<32 | len. Buffers the guest hands to the
// host stay alive in `pinned` until the host frees them.

var pinned = map[uint32][]byte{}

func pin(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	pinned[p] = b
	return uint64(p)<<32 | uint64(len(b))
}

// unhidra_abi names the ABI version (ABI v1 modules exported unhidra_abi_v1
// instead, which is how the host tells them apart).
//
//go:wasmexport unhidra_abi
func exportABI() uint32 { return ABIVersion }

//go:wasmexport unhidra_malloc
func exportMalloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	pinned[p] = b
	return p
}

// unhidra_free releases a buffer. It also yields: the Go runtime on wasm can
// only collect garbage when the guest yields, and between host calls it never
// does on its own.
//
//go:wasmexport unhidra_free
func exportFree(ptr uint32) {
	delete(pinned, ptr)
	runtime.Gosched()
}

//go:wasmexport unhidra_describe
func exportDescribe() uint64 {
	return pin(mustJSON(describe()))
}

// lastOut keeps the answer of the latest call alive until the next call; the
// host copies it out and does not free it.
var (
	lastOut []byte
	ncalls  uint32
)

//go:wasmexport unhidra_call
func exportCall(hookPtr, hookLen, inPtr, inLen uint32) uint64 {
	hook := string(view(hookPtr, hookLen))
	in := view(inPtr, inLen)
	lastOut = call(hook, in)
	// Yield regularly so the garbage collector's workers run: a Go guest
	// never yields on its own between host calls.
	if ncalls++; ncalls%8 == 0 {
		runtime.Gosched()
	}
	if len(lastOut) == 0 {
		return 0
	}
	return uint64(uint32(uintptr(unsafe.Pointer(&lastOut[0]))))<<32 | uint64(len(lastOut))
}

func view(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(ptr))), n)
}

// Imports from the host module "unhidra". Each returns an int64 status:
// r ≥ 0 means success with r result bytes pending (fetch them with take);
// r == -1 means not found; r < -1 means an error whose message of -r-2
// bytes is pending.

//go:wasmimport unhidra log
func hostLog(level, ptr, n uint32)

//go:wasmimport unhidra take
func hostTake(ptr uint32)

//go:wasmimport unhidra config
func hostConfig() int64

//go:wasmimport unhidra kv_get
func hostKVGet(kp, kn uint32) int64

//go:wasmimport unhidra kv_set
func hostKVSet(kp, kn, vp, vn uint32, ttlMs int64) int64

//go:wasmimport unhidra kv_cas
func hostKVCAS(kp, kn, op, on, np, nn uint32, ttlMs int64) int64

//go:wasmimport unhidra kv_delete
func hostKVDelete(kp, kn uint32) int64

//go:wasmimport unhidra kv_list
func hostKVList(pp, pn uint32) int64

//go:wasmimport unhidra post
func hostPost(rp, rn, tp, tn uint32) int64

//go:wasmimport unhidra http
func hostHTTP(rp, rn uint32) int64

// absent as a length means "no value" (KV compare-and-set against a missing key).
const absent = ^uint32(0)

func ptrLen(b []byte) (uint32, uint32) {
	if len(b) == 0 {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
}

// finish turns a status into (result, found, error), taking pending bytes.
func finish(r int64) ([]byte, bool, error) {
	switch {
	case r == -1:
		return nil, false, nil
	case r >= 0:
		if r == 0 {
			return []byte{}, true, nil
		}
		b := make([]byte, r)
		hostTake(uint32(uintptr(unsafe.Pointer(&b[0]))))
		return b, true, nil
	default:
		n := -r - 2
		msg := make([]byte, n)
		if n > 0 {
			hostTake(uint32(uintptr(unsafe.Pointer(&msg[0]))))
		}
		return nil, false, &HostError{Msg: string(msg)}
	}
}

func logMsg(level uint32, msg string) {
	b := []byte(msg)
	p, n := ptrLen(b)
	hostLog(level, p, n)
	runtime.KeepAlive(b)
}

func callConfig() ([]byte, bool, error) { return finish(hostConfig()) }

func callKVGet(key string) ([]byte, bool, error) {
	k := []byte(key)
	kp, kn := ptrLen(k)
	r := hostKVGet(kp, kn)
	runtime.KeepAlive(k)
	return finish(r)
}

func callKVSet(key string, val []byte, ttlMs int64) error {
	k := []byte(key)
	kp, kn := ptrLen(k)
	vp, vn := ptrLen(val)
	r := hostKVSet(kp, kn, vp, vn, ttlMs)
	runtime.KeepAlive(k)
	runtime.KeepAlive(val)
	_, _, err := finish(r)
	return err
}

func callKVCAS(key string, old, new []byte, ttlMs int64) (bool, error) {
	k := []byte(key)
	kp, kn := ptrLen(k)
	op, on := ptrLen(old)
	if old == nil {
		on = absent // compare against "no such key"
	}
	np, nn := ptrLen(new)
	r := hostKVCAS(kp, kn, op, on, np, nn, ttlMs)
	runtime.KeepAlive(k)
	runtime.KeepAlive(old)
	runtime.KeepAlive(new)
	_, found, err := finish(r)
	return found, err
}

func callKVDelete(key string) error {
	k := []byte(key)
	kp, kn := ptrLen(k)
	r := hostKVDelete(kp, kn)
	runtime.KeepAlive(k)
	_, _, err := finish(r)
	return err
}

func callKVList(prefix string) ([]byte, error) {
	k := []byte(prefix)
	kp, kn := ptrLen(k)
	r := hostKVList(kp, kn)
	runtime.KeepAlive(k)
	b, _, err := finish(r)
	return b, err
}

func callPost(room, text string) ([]byte, error) {
	rb, tb := []byte(room), []byte(text)
	rp, rn := ptrLen(rb)
	tp, tn := ptrLen(tb)
	r := hostPost(rp, rn, tp, tn)
	runtime.KeepAlive(rb)
	runtime.KeepAlive(tb)
	b, _, err := finish(r)
	return b, err
}

func callHTTP(req []byte) ([]byte, error) {
	p, n := ptrLen(req)
	r := hostHTTP(p, n)
	runtime.KeepAlive(req)
	b, _, err := finish(r)
	return b, err
}
