package pluginhost_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/pluginhost"
)

// BenchmarkMessageWillBePosted measures the send path's plugin round trip:
// the host calls hello's MessageWillBePosted in its own process over gRPC
// and applies the verdict. It reports p50 and p99 per call.
//
//	go test ./core/pluginhost -run NONE -bench MessageWillBePosted -benchtime 20000x
func BenchmarkMessageWillBePosted(b *testing.B) {
	hello, _ := bins(b)
	dir := b.TempDir()
	path := filepath.Join(dir, "plugins.yaml")
	if err := os.WriteFile(path, []byte(helloYAML(hello, "")), 0o600); err != nil {
		b.Fatal(err)
	}
	h := pluginhost.New(pluginhost.Options{Path: path})
	if err := h.Start(context.Background(), pluginhost.Services{}); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if st := h.Status().Plugins[0]; st.State != "running" {
		b.Fatalf("plugin not running: %+v", st)
	}
	ctx := context.Background()
	run := func(b *testing.B, parallel bool) {
		var mu sync.Mutex
		lat := make([]time.Duration, 0, b.N)
		one := func(local *[]time.Duration) {
			d := chat.Draft{Room: "r", Sender: "u", Text: "a perfectly fine message"}
			t0 := time.Now()
			if err := h.MessageWillBePosted(ctx, &d); err != nil {
				b.Fatal(err)
			}
			*local = append(*local, time.Since(t0))
		}
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				var local []time.Duration
				for pb.Next() {
					one(&local)
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
		} else {
			for i := 0; i < b.N; i++ {
				one(&lat)
			}
		}
		b.StopTimer()
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
		b.ReportMetric(q(0.50), "p50-µs")
		b.ReportMetric(q(0.99), "p99-µs")
		if testing.Verbose() {
			fmt.Printf("%s: n=%d p50=%.1fµs p90=%.1fµs p99=%.1fµs max=%.1fµs\n", b.Name(), len(lat), q(0.5), q(0.9), q(0.99), q(1))
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}
