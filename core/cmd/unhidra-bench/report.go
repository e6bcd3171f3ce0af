package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
)

// goal is one row of the goal table and how to read it off the metrics.
type goal struct {
	metric, target string
	keys           []string // metric keys shown in the row
}

func goals(o options) []goal {
	held := "not run"
	if o.Scenarios["connect"] {
		held = fmt.Sprintf("%d for %s", o.Sessions, o.Hold)
	}
	g := []goal{
		{"Sessions held by one server process", fmt.Sprintf("19,500 for 10 min, 0 errors (this run: %s)", held),
			[]string{"sessions_held", "connect_errors"}},
		{"Server RSS per idle session", "≤ 10 KB", []string{"rss_kb_per_session"}},
	}
	var dk, ck []string
	for _, f := range o.Fanout {
		k := "fanout_" + f.String() + "_"
		dk = append(dk, k+"deliveries_per_s")
		ck = append(ck, k+"server_cpu_us_per_delivery")
	}
	g = append(g,
		goal{"Fan-out deliveries/s (room of 1,000–10,000)", "≥ 150k, ≥ 0.7× reference", dk},
		goal{"Server CPU per delivery", "≤ 4 µs", ck},
		goal{"Latency publish → delivery at 100k deliveries/s (1000@100)", "p50 ≤ 5 ms, p99 ≤ 25 ms",
			[]string{"fanout_1000@100_p50_ms", "fanout_1000@100_p99_ms", "fanout_1000@100_p999_ms"}},
		goal{"Handshakes/s while holding 15k sessions", "≥ 5k", []string{"handshakes_per_s"}},
		goal{"Durable sends/s on SQLite (ack after commit)", "≥ 20k", []string{"sends_per_s"}},
	)
	if o.Scenarios["soak"] {
		g = append(g, goal{fmt.Sprintf("Soak: %d idle TCP + %d ping floods + %d chatting sessions for %s (issue 12)", o.SoakIdle, o.SoakFlood, o.SoakChat, o.SoakDuration),
			fmt.Sprintf("server up, RSS ≤ %d MB, chat loses nothing", o.SoakRSSMB),
			[]string{"soak_server_up", "soak_server_rss_peak_mb", "soak_chat_missing_acks", "soak_chat_seq_gaps", "soak_chat_sessions_behind", "soak_chat_sessions_dropped"}})
	}
	return g
}

func fmtVal(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func report(o options, env runEnv, res map[string][]metrics) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Results %s\n\n", env.Start.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- machine: %s, %d CPUs (GOMAXPROCS %d), %s\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(&b, "- commit: %s; runs: %d per target (median shown); %d client worker processes; %d accounts\n",
		env.Commit, o.Runs, o.Workers, o.Users)
	fmt.Fprintf(&b, "- load average (1/5/15 min) at start: %s, at end: %s; wall time %s\n\n",
		env.LoadStart, env.LoadEnd, env.End.Sub(env.Start).Round(1e9))

	fmt.Fprintf(&b, "| Goal | Target | Unhidra (median) | Reference (median) | Unhidra ÷ reference |\n|---|---|---|---|---|\n")
	for _, g := range goals(o) {
		var u, r, q []string
		for _, k := range g.keys {
			uv, uok := median(res["unhidra"], k)
			rv, rok := median(res["reference"], k)
			label := shortKey(k)
			if uok {
				u = append(u, label+" "+fmtVal(uv))
			}
			if rok {
				r = append(r, label+" "+fmtVal(rv))
			}
			if uok && rok && rv != 0 {
				q = append(q, fmt.Sprintf("%s %.2f×", label, uv/rv))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", g.metric, g.target, orDash(u), orDash(r), orDash(q))
	}

	keys := map[string]bool{}
	for _, ms := range res {
		for _, m := range ms {
			for k := range m {
				keys[k] = true
			}
		}
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	fmt.Fprintf(&b, "\n| Metric | Unhidra median | Reference median | ratio | Unhidra runs | Reference runs |\n|---|---|---|---|---|---|\n")
	for _, k := range ks {
		uv, uok := median(res["unhidra"], k)
		rv, rok := median(res["reference"], k)
		ratio := "–"
		if uok && rok && rv != 0 {
			ratio = fmt.Sprintf("%.2f×", uv/rv)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", k, medStr(uv, uok), medStr(rv, rok), ratio, runs(res["unhidra"], k), runs(res["reference"], k))
	}
	b.WriteString("\n")
	return b.String()
}

func shortKey(k string) string {
	k = strings.TrimPrefix(k, "fanout_")
	return strings.NewReplacer("_deliveries_per_s", "", "_server_cpu_us_per_delivery", "", "_ms", " ms", "_", " ").Replace(k)
}

func medStr(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return fmtVal(v)
}

func orDash(s []string) string {
	if len(s) == 0 {
		return "–"
	}
	return strings.Join(s, "; ")
}

func runs(ms []metrics, k string) string {
	var v []string
	for _, m := range ms {
		if x, ok := m[k]; ok {
			v = append(v, fmtVal(x))
		}
	}
	if len(v) == 0 {
		return "–"
	}
	return strings.Join(v, ", ")
}
