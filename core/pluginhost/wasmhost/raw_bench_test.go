package wasmhost

import (
	"context"
	"testing"
)

func BenchmarkRawExportCall(b *testing.B) {
	m := load(b, "testdata/trivial", ModuleOptions{MaxInstances: 1})
	inst := <-m.idle
	f := inst.mod.ExportedFunction("unhidra_abi_v1")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Call(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	m.idle <- inst
}
