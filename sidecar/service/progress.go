package service

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/cdc"
)

// frameNotice is a notice the backend shows while it waits for the answer
// (PROTOCOL.md): the progress of create_table's and resync_table's copies.
const frameNotice = 'N'

// How often a copy reports itself as NOTICEs: not before noticeQuiet (a
// small copy prints nothing; one of an estimated bigCopy rows or more
// starts after noticeQuietBig), then whenever another tenth of the
// estimated rows is copied or the phase changes, at most once per
// noticeMinGap, and at least once per noticeMaxGap.
const (
	bigCopy        = 100000
	noticeQuiet    = 5 * time.Second
	noticeQuietBig = 500 * time.Millisecond
	noticeMinGap   = 500 * time.Millisecond
	noticeMaxGap   = 5 * time.Second
	noticeTick     = 100 * time.Millisecond
)

// progress lists the copies under way in every database
// (mooncake.copy_progress filters them by the reader's privileges).
func (s *server) progress() (any, error) {
	return map[string]any{"copies": cdc.Progresses()}, nil
}

// noticeProgress reports the copy find returns (nil: none yet) to the
// client as N frames while the request runs, when the request asked for
// notices. The returned stop must be called before the answer is written.
func noticeProgress(ctx context.Context, req *Request, w io.Writer, find func() *cdc.Progress) (stop func()) {
	if !req.Notices || w == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := notices{start: time.Now()}
		t := time.NewTicker(noticeTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p := find()
			if p == nil {
				continue
			}
			msg := n.next(p.Info(), time.Now())
			if msg == "" {
				continue
			}
			pay := errorPayload(&pgconn.PgError{Code: "00000", Message: msg})
			if writeFrame(w, frameNotice, pay) != nil {
				return
			}
			if f, ok := w.(interface{ Flush() error }); ok && f.Flush() != nil {
				return
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// notices decides when a copy's progress is worth a notice.
type notices struct {
	start time.Time
	last  time.Time // the last notice, zero before the first
	tenth int64     // tenths of the estimate reported
	phase string    // the phase last reported
}

func (n *notices) next(i cdc.ProgressInfo, now time.Time) string {
	gap := now.Sub(n.last)
	quiet := noticeQuiet
	if i.RowsEstimated != nil && *i.RowsEstimated >= bigCopy {
		quiet = noticeQuietBig
	}
	if now.Sub(n.start) < quiet || gap < noticeMinGap {
		return ""
	}
	tenth := n.tenth
	if i.RowsEstimated != nil && *i.RowsEstimated > 0 {
		tenth = i.RowsCopied * 10 / *i.RowsEstimated
	}
	due := gap >= noticeMaxGap || // the first one too
		i.Phase != n.phase ||
		(i.Phase == cdc.PhaseCopying && tenth > n.tenth)
	if !due {
		return ""
	}
	n.last, n.phase, n.tenth = now, i.Phase, max(n.tenth, tenth)
	return progressMessage(i, now)
}

// progressMessage says where a copy is, e.g. "create_table public.src
// into public.m: copied 300000 of about 1000000 rows (30%), 41 MB, 3.2 s".
func progressMessage(i cdc.ProgressInfo, now time.Time) string {
	what := fmt.Sprintf("%s %s into %s.%s", i.Command, i.Source, i.Namespace, i.Table)
	elapsed := fmt.Sprintf("%.1f s", now.Sub(i.StartedAt).Seconds())
	switch i.Phase {
	case cdc.PhaseStarting:
		return fmt.Sprintf("%s: waiting for a snapshot of the source, %s", what, elapsed)
	case cdc.PhaseCopying:
		of := ""
		if i.RowsEstimated != nil && *i.RowsEstimated > 0 {
			of = fmt.Sprintf(" of about %d rows (%d%%)", *i.RowsEstimated, i.RowsCopied*100 / *i.RowsEstimated)
		} else {
			of = " rows"
		}
		return fmt.Sprintf("%s: copied %d%s, %d MB, %s", what, i.RowsCopied, of, i.Bytes>>20, elapsed)
	case cdc.PhaseWriting:
		return fmt.Sprintf("%s: copied %d rows, writing them into the mirror's data files, %s", what, i.RowsCopied, elapsed)
	case cdc.PhaseSwapping:
		return fmt.Sprintf("%s: copied %d rows, swapping the copy in, %s", what, i.RowsCopied, elapsed)
	default:
		return fmt.Sprintf("%s: copied %d rows, %s, %s", what, i.RowsCopied, i.Phase, elapsed)
	}
}

// slots names the replication slots the sidecar uses for a database (its
// slot while it has mirrors or a stream, and the copies' temporary slots),
// for mooncake.list_orphan_slots. It opens the database's mirrors first.
func (s *server) slots(ctx context.Context, req *Request) (any, error) {
	if req.Database == "" {
		return nil, userError("08P01", "slots needs database")
	}
	d, err := s.dbs.getExt(ctx, req.Database, req.Extension)
	if err != nil {
		return nil, err
	}
	inUse := append([]string{}, cdc.SyncSlots()...)
	d.mu.Lock()
	streaming := d.stream != nil
	d.mu.Unlock()
	if streaming || len(d.mirrors.All()) > 0 {
		inUse = append(inUse, cdc.SlotName(d.oid))
	}
	return map[string]any{"in_use": inUse}, nil
}
