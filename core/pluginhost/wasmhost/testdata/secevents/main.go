// A module that reads the security event stream and keeps, in its KV, the
// last id it recorded ("last"), how many distinct events it saw ("n"), the
// first ordering error ("err") and the first id after a gap ("gap"). It
// deduplicates by id, so a batch delivered again is not counted twice.
package main

import (
	"fmt"
	"strconv"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type reader struct{}

func get(key string) uint64 {
	v, ok, err := unhidra.KVGet(key)
	if err != nil || !ok {
		return 0
	}
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n
}

func (reader) OnSecurityEvents(b *unhidra.SecurityEventBatch) error {
	last, n := get("last"), get("n")
	for i, ev := range b.Events {
		if ev.Id <= last {
			continue
		}
		if i == 0 && b.Gap {
			if err := unhidra.KVSet("gap", []byte(strconv.FormatUint(ev.Id, 10)), 0); err != nil {
				return err
			}
		} else if ev.Id != last+1 {
			_ = unhidra.KVSet("err", []byte(fmt.Sprintf("%d after %d", ev.Id, last)), 0)
		}
		last, n = ev.Id, n+1
	}
	if err := unhidra.KVSet("n", []byte(strconv.FormatUint(n, 10)), 0); err != nil {
		return err
	}
	return unhidra.KVSet("last", []byte(strconv.FormatUint(last, 10)), 0)
}

func init() { unhidra.Register(reader{}) }
func main() {}
