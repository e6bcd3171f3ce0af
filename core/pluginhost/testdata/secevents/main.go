// A process plugin that records the security event stream in a file, one
// line per event ("<id> <type>"), for the delivery tests. Delivery is at
// least once, so it deduplicates by id (it remembers the last id it wrote,
// also across restarts, by reading the file at activation): each id is
// written exactly once. An id that is not the next one, in a batch without
// gap, is written as an "ERR" line; a batch with gap writes "GAP <first id>".
//
// With config hold_at N, the first batch that takes the record to id N or
// beyond is written and then not acknowledged: the hook blocks (until its
// deadline) after creating <out>.held, so that a test can kill the process
// while a delivered batch is unacknowledged. Once <out>.held exists it never
// holds again.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/unhidra/unhidra/sdk/plugin"
)

type recorder struct {
	mu     sync.Mutex
	f      *os.File
	out    string
	holdAt uint64
	last   uint64
	dups   int
}

func (r *recorder) OnActivate(ctx context.Context, h *plugin.Host) error {
	var cfg struct {
		Out    string `json:"out"`
		HoldAt uint64 `json:"hold_at"`
	}
	if err := h.Config(&cfg); err != nil {
		return err
	}
	if cfg.Out == "" {
		return errors.New("config.out: the file to record events in is required")
	}
	if data, err := os.ReadFile(cfg.Out); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			id, err := strconv.ParseUint(strings.Fields(sc.Text() + " x")[0], 10, 64)
			if err == nil && id > r.last {
				r.last = id
			}
		}
	}
	f, err := os.OpenFile(cfg.Out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.f, r.out, r.holdAt = f, cfg.Out, cfg.HoldAt
	r.mu.Unlock()
	return nil
}

func (r *recorder) OnSecurityEvents(ctx context.Context, b *plugin.SecurityEventBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return errors.New("not activated")
	}
	var buf strings.Builder
	for i, ev := range b.Events {
		switch {
		case ev.Id <= r.last:
			r.dups++ // a batch delivered again after a crash: already recorded
			continue
		case i == 0 && b.Gap:
			fmt.Fprintf(&buf, "GAP %d\n", ev.Id)
		case ev.Id != r.last+1:
			fmt.Fprintf(&buf, "ERR %d after %d\n", ev.Id, r.last)
		}
		fmt.Fprintf(&buf, "%d %s\n", ev.Id, ev.Type)
		r.last = ev.Id
	}
	if r.dups > 0 && buf.Len() > 0 {
		fmt.Fprintf(&buf, "DUPS %d\n", r.dups)
		r.dups = 0
	}
	// One write per batch: a SIGKILL lands before or after it, and a
	// batch that was not acknowledged comes again.
	if _, err := r.f.WriteString(buf.String()); err != nil {
		return err
	}
	if r.holdAt > 0 && r.last >= r.holdAt {
		if f, err := os.OpenFile(r.out+".held", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			f.Close()
			<-ctx.Done() // written, never acknowledged
			return ctx.Err()
		}
	}
	return nil
}

func main() { plugin.Serve(&recorder{}) }
