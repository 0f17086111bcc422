package service

import (
	"strings"
	"testing"
	"time"

	"github.com/pgmooncake/mooncake/cdc"
)

// simulate runs a copy of rows at rate rows/s with the given estimate
// (-1: unknown) through notices, ticking as noticeProgress does, and
// returns the notices.
func simulate(rows, rate, estimate int64, writing time.Duration) []string {
	start := time.Unix(1000, 0)
	n := notices{start: start}
	var out []string
	copyTime := time.Duration(float64(rows) / float64(rate) * float64(time.Second))
	for at := time.Duration(0); at <= copyTime+writing; at += noticeTick {
		i := cdc.ProgressInfo{Command: "create_table", Source: "public.src", Namespace: "public", Table: "m",
			Phase: cdc.PhaseCopying, StartedAt: start}
		if estimate >= 0 {
			e := estimate
			i.RowsEstimated = &e
		}
		i.RowsCopied = min(rows, int64(at.Seconds()*float64(rate)))
		if at > copyTime {
			i.Phase = cdc.PhaseWriting
		}
		if msg := n.next(i, start.Add(at)); msg != "" {
			out = append(out, msg)
		}
	}
	return out
}

func TestNoticeRate(t *testing.T) {
	// A small copy prints nothing.
	if got := simulate(1000, 100000, 1000, 200*time.Millisecond); len(got) != 0 {
		t.Errorf("small copy: %q", got)
	}
	// A long one: about one per tenth, a few more for the phase and the
	// 5 s floor, never more often than noticeMinGap.
	got := simulate(10000000, 100000, 10000000, 10*time.Second)
	if len(got) < 10 || len(got) > 40 {
		t.Errorf("100 s copy: %d notices: %q", len(got), got)
	}
	if !strings.Contains(got[0], "copied") || !strings.Contains(got[0], "of about 10000000 rows") {
		t.Errorf("first notice %q", got[0])
	}
	if last := got[len(got)-1]; !strings.Contains(last, "writing") {
		t.Errorf("last notice %q; want the writing phase", last)
	}
	// A fast big copy: tenths, at most one per noticeMinGap.
	got = simulate(2000000, 1000000, 2000000, time.Second)
	if len(got) < 2 || len(got) > 6 {
		t.Errorf("2 s copy: %d notices: %q", len(got), got)
	}
	// Unknown estimate: every noticeMaxGap.
	got = simulate(3000000, 100000, -1, 0)
	if len(got) < 4 || len(got) > 7 {
		t.Errorf("30 s copy without an estimate: %d notices: %q", len(got), got)
	}
}
