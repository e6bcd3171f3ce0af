package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"10/min": {10, time.Minute}, "5/h": {5, time.Hour}, "50/s": {50, time.Second},
		"60/m": {60, time.Minute}, "3/30s": {3, 30 * time.Second}, "off": {}, "0": {}, "100/day": {100, 24 * time.Hour},
	}
	for in, want := range good {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "x/min", "-1/min", "10/fortnight", "10/-5s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	if s := (Rate{10, time.Minute}).String(); s != "10/min" {
		t.Errorf("String = %q", s)
	}
}

func TestLimiterBurstThenRetryHint(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewWithClock(Rate{10, time.Minute}, func() time.Time { return now })
	for i := 0; i < 10; i++ {
		if ok, _ := l.Allow("1.2.3.4"); !ok {
			t.Fatalf("event %d refused within the burst", i)
		}
	}
	ok, wait := l.Allow("1.2.3.4")
	if ok || wait != 6*time.Second {
		t.Fatalf("11th event: ok=%v wait=%v, want refused with 6s", ok, wait)
	}
	if ok, _ := l.Allow("5.6.7.8"); !ok {
		t.Fatal("another key was limited")
	}
	now = now.Add(wait)
	if ok, _ := l.Allow("1.2.3.4"); !ok {
		t.Fatal("refused after waiting the hint")
	}
	if ok, _ := l.Allow("1.2.3.4"); ok {
		t.Fatal("a second event fit after one interval")
	}
}

func TestLimiterNilAllows(t *testing.T) {
	var l *Limiter = New(Rate{})
	if l != nil {
		t.Fatal("unlimited rate gave a limiter")
	}
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestLimiterSweepsIdleKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewWithClock(Rate{1, time.Second}, func() time.Time { return now })
	for i := 0; i < 100000; i++ {
		l.Allow(strconv.Itoa(i))
	}
	now = now.Add(2 * time.Second)
	for i := 0; i < 100000; i++ {
		l.Allow("b" + strconv.Itoa(i))
	}
	if n := l.Len(); n > 150000 {
		t.Fatalf("%d keys tracked; idle keys were not swept", n)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := New(Rate{1 << 30, time.Second})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow("127.0.0.1")
		}
	})
}

func BenchmarkBucketTake(b *testing.B) {
	var bk Bucket
	r := Rate{1 << 30, time.Second}
	now := time.Now()
	for i := 0; i < b.N; i++ {
		bk.Take(r, now)
	}
}

func TestKeyedByMapsKeys(t *testing.T) {
	l := New(Rate{N: 2, Per: time.Hour}).KeyedBy(func(k string) string { return k[:1] })
	for i, k := range []string{"a1", "a2"} {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("event %d (%s) refused", i, k)
		}
	}
	if ok, _ := l.Allow("a3"); ok {
		t.Fatal("a3 shares a1's bucket and should be refused")
	}
	if ok, _ := l.Allow("b1"); !ok {
		t.Fatal("b1 has a bucket of its own")
	}
	var unlimited *Limiter
	if unlimited.KeyedBy(func(k string) string { return k }) != nil {
		t.Fatal("KeyedBy on nil must stay nil")
	}
}
