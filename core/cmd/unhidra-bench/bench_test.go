package main

import (
	"io"
	"math"
	"strings"
	"testing"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	for v := uint64(1); v <= 100000; v++ {
		h[histIndex(v)]++
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50000}, {0.99, 99000}, {0.999, 99900}} {
		got := h.quantile(c.q)
		if math.Abs(got-c.want)/c.want > 0.04 { // buckets are ≈3% wide
			t.Errorf("quantile(%g) = %g, want ≈ %g", c.q, got, c.want)
		}
	}
	for i := 0; i < histBuckets-1; i++ {
		if histValue(i) >= histValue(i+1) {
			t.Fatalf("bucket %d (%d) is not below bucket %d (%d)", i, histValue(i), i+1, histValue(i+1))
		}
		if histIndex(histValue(i)) != i {
			t.Fatalf("histIndex(histValue(%d)) = %d", i, histIndex(histValue(i)))
		}
	}
}

func TestParseOptionsRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-target", "centrifugo"},
		{"-scenarios", "connect,warp"},
		{"-fanout", "1000"},
		{"-fanout", "0@100"},
		{"-runs", "0"},
		{"-sessions", "100", "-measure-at", "200"},
		{"-send-window", "0"},
		{"-scenarios", "soak", "-soak-chat", "0"},
		{"-scenarios", "soak", "-soak-rate", "0"},
		{"-soak-idle", "-1"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("parseOptions(%q) accepted bad input", strings.Join(args, " "))
		}
	}
	o, err := parseOptions([]string{"-target", "both", "-fanout", "10@5,20@2.5", "--", "--sqlite-sync", "normal"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Targets) != 2 || len(o.Fanout) != 2 || o.Fanout[1] != (fanoutSpec{20, 2.5}) || strings.Join(o.ServerArgs, " ") != "--sqlite-sync normal" {
		t.Errorf("parsed %+v", o)
	}
}

func TestPayloadCarriesTimestamp(t *testing.T) {
	p := string(payload(nil, "room-1", 7, 64))
	if !strings.HasPrefix(p, `{"type":"send","room":"room-1","ref":"b`) || !strings.Contains(p, `-7","text":"bench@`) || !strings.HasSuffix(p, `"}`) {
		t.Fatalf("payload %s", p)
	}
}

func TestPingFramesAreMaskedPings(t *testing.T) {
	b := pingFrames(3)
	if len(b) != 3*(6+125) {
		t.Fatalf("3 ping frames are %d bytes", len(b))
	}
	for i := 0; i < 3; i++ {
		f := b[i*131:]
		if f[0] != 0x80|opPing || f[1] != 0x80|125 {
			t.Fatalf("frame %d starts % x, want a final masked ping of 125 bytes", i, f[:2])
		}
	}
}
