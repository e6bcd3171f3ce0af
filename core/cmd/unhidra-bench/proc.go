package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is one /proc sample of a process: CPU time used so far (user +
// system, in microseconds) and resident set size in bytes.
type procStat struct {
	CPUMicros int64
	RSS       int64
	State     string // R, S, … Z for a process that has exited (not yet reaped)
}

// clockTicks is USER_HZ, which is 100 on every Linux we run on.
const clockTicks = 100

func readProc(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// Fields after the parenthesised command name, which may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state); utime is field 14, stime 15, rss (pages) 24.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{CPUMicros: (ut + st) * 1e6 / clockTicks, RSS: rss * int64(os.Getpagesize()), State: f[0]}, nil
}

func readProcs(pids []int) procStat {
	var sum procStat
	for _, p := range pids {
		s, err := readProc(p)
		if err == nil {
			sum.CPUMicros += s.CPUMicros
			sum.RSS += s.RSS
		}
	}
	return sum
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}
