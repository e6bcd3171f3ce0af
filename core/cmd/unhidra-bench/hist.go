package main

import "math/bits"

// histBuckets covers 0 µs … 2^58 µs with 32 sub-buckets per power of two
// (≈3% resolution), enough for p99.9 of latencies from µs to minutes.
const histBuckets = 64 + 58*32

// hist is a log-linear latency histogram in microseconds. Histograms from
// several worker processes merge by adding counts.
type hist [histBuckets]int64

func histIndex(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	i := e*32 + int(v>>uint(e))
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

func histValue(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	e := i/32 - 1
	m := uint64(i%32 + 32)
	return m << uint(e)
}

func (h *hist) add(o *hist) {
	for i := range h {
		h[i] += o[i]
	}
}

func (h *hist) count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// quantile returns the value (µs) at or below which a fraction q of samples fall.
func (h *hist) quantile(q float64) float64 {
	n := h.count()
	if n == 0 {
		return 0
	}
	want := int64(q * float64(n))
	if want >= n {
		want = n - 1
	}
	var seen int64
	for i, c := range h {
		seen += c
		if seen > want {
			return float64(histValue(i))
		}
	}
	return float64(histValue(histBuckets - 1))
}
