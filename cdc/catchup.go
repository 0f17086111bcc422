package cdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgmooncake/mooncake/catalog"
)

// A mirror whose source must be copied again (a rewrite, an incompatible
// type change, resync_table) is copied online: a job copies the source in
// a new exported snapshot and writes the copy to a data file while the
// apply loop goes on with the other mirrors. Meanwhile the loop keeps the
// mirror's changes, as received, in a spool; once the copy is ready, it
// swaps the copy in and applies the spooled changes committed after the
// copy's snapshot, in order. Readers see the mirror's old rows until then;
// one that committed after the change that started the copy waits for it.
// The slot is not confirmed while a copy runs, so that a crash replays the
// change that started it.

// copyJob is the copy of one mirror's source, and the mirror's changes
// received since it began.
type copyJob struct {
	m      *catalog.Mirror
	from   uint64                       // commit LSN of the change that made the copy necessary
	rel    *pglogrepl.RelationMessageV2 // the source's relation message as of the job's start
	spool  *spool                       // the mirror's changes since the job began
	cancel context.CancelFunc           // stops the copy
	done   chan struct{}                // closed when copy or err is set
	copy   *catalog.Copy
	err    error
	tries  int
	wait   []chan error // Resync requests waiting for the job
	// initial is set for a mirror taking its initial copy (create_table
	// makes the copy): the job only keeps the mirror's changes until the
	// mirror is ready, then applies those after the copy.
	initial bool
	// progress is the copy's entry in mooncake.copy_progress (nil for an
	// initial job: create_table reports its own copy).
	progress *Progress
}

// maxCopyTries bounds how often a failing copy is tried again before the
// mirror is marked broken.
const maxCopyTries = 3

// startCopy starts copying m's source again, or starts over a running
// copy (its snapshot may predate a schema change), keeping its spool.
// pid is the backend waiting for the copy (resync_table), 0 if none.
func (ss *session) startCopy(ctx context.Context, m *catalog.Mirror, from uint64, pid int) error {
	old := ss.jobs[m]
	if old != nil && old.initial {
		return fmt.Errorf("mirror %s.%s is still taking its initial copy", m.Namespace, m.Name)
	}
	j := &copyJob{m: m, from: from, done: make(chan struct{})}
	if old == nil {
		sp, err := newSpool(ss.s.SpoolDir, m.SourceOID)
		if err != nil {
			return err
		}
		j.rel, j.spool = ss.rels[m.SourceOID], sp
		j.progress = StartProgress(&Progress{Database: ss.s.Config.Database, Namespace: m.Namespace,
			Table: m.Name, Source: m.Source, ForeignOID: m.ForeignOID, Command: CommandResync}, pid)
		if ss.jobs == nil {
			ss.jobs = map[*catalog.Mirror]*copyJob{}
		}
		m.BeginCatchUp(from)
	} else {
		// A new job object: a stale answer of the old copy, already sent,
		// is not taken for the new one's.
		old.cancel()
		<-old.done
		old.copy.Discard()
		j.from, j.rel, j.spool, j.tries, j.wait = old.from, old.rel, old.spool, old.tries, old.wait
		j.progress = old.progress
		j.progress.restart()
		j.progress.SetPID(pid)
	}
	ss.jobs[m] = j
	jctx, cancel := context.WithCancel(ctx)
	j.cancel = cancel
	go func() {
		defer close(j.done)
		j.copy, j.err = ss.s.copySource(WithProgress(jctx, j.progress), m)
		select {
		case ss.copied <- j:
		case <-jctx.Done():
		}
	}()
	return nil
}

// copySource copies a mirror's source and writes it to a data file.
func (s *Stream) copySource(ctx context.Context, m *catalog.Mirror) (*catalog.Copy, error) {
	if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
		return nil, err
	}
	var c *catalog.Copy
	var err error
	for range 5 {
		err = CopySource(ctx, s.Config, m.SourceOID, func(src *Source, fill Fill, lsn uint64) (err error) {
			c, err = s.Mirrors.PrepareCopy(ctx, m, m.MatchColumns(src.Columns), src.Key, src.Full, src.Qualified, lsn, fill)
			return err
		})
		if !errors.Is(err, ErrSchemaMoved) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	progressOf(ctx).SetPhase(PhaseSwapping)
	return c, nil
}

// spoolChange keeps a change of a mirror being copied (the message as
// received; inStream tells its form) with the commit LSN of its
// transaction (0 for relation messages).
func (j *copyJob) spoolChange(raw []byte, inStream bool, lsn uint64) error {
	rec := make([]byte, 9+len(raw))
	if inStream {
		rec[0] = 1
	}
	binary.BigEndian.PutUint64(rec[1:9], lsn)
	copy(rec[9:], raw)
	return j.spool.add(rec)
}

// spoolFor keeps the message being handled for every mirror being copied
// whose source it concerns: the change of a transaction with commit LSN
// lsn, or a relation message (lsn 0). A change for a mirror still taking
// its initial copy starts keeping that mirror's changes (an initial job),
// so that the stream does not wait for the copy.
func (ss *session) spoolFor(relID uint32, lsn uint64) error {
	if lsn != 0 && ss.only == nil {
		for _, m := range ss.s.Mirrors.BySource(relID) {
			if ss.jobs[m] != nil {
				continue
			}
			select {
			case <-m.Ready():
				continue
			default:
			}
			sp, err := newSpool(ss.s.SpoolDir, relID)
			if err != nil {
				return err
			}
			if ss.jobs == nil {
				ss.jobs = map[*catalog.Mirror]*copyJob{}
			}
			ss.jobs[m] = &copyJob{m: m, initial: true, rel: ss.rels[relID], spool: sp}
			// Readers wait for the changes after the copy, once it is in.
			m.BeginCatchUp(1)
		}
	}
	for m, j := range ss.jobs {
		if m.SourceOID == relID {
			if err := j.spoolChange(ss.raw, ss.rawInStream, lsn); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishCopy swaps a finished copy in and applies the mirror's changes
// committed after it; between transactions.
func (ss *session) finishCopy(ctx context.Context, j *copyJob) error {
	m := j.m
	if j.err != nil {
		var pe *pgconn.PgError
		j.tries++
		if errors.As(j.err, &pe) || j.tries >= maxCopyTries {
			reason := catalog.Redact(j.err.Error())
			if pe != nil {
				reason = pe.Message
				if pe.Code == "42P01" {
					reason = "its source table no longer exists"
				}
			}
			slog.Error("mirror cannot follow its source; it is marked broken", "mirror", m.Namespace+"."+m.Name, "reason", reason)
			ss.endCopy(j, ss.s.Mirrors.Break(ctx, m, reason))
			return nil
		}
		slog.Warn("copying the source failed; trying again", "mirror", m.Namespace+"."+m.Name, "err", j.err)
		return ss.startCopy(ctx, m, j.from, 0)
	}
	if err := ss.sync(ctx); err != nil {
		return err
	}
	ss.w.Forget(m)
	if err := ss.s.Mirrors.CommitCopy(ctx, ss.w.Conn(), m, j.copy); err != nil {
		if errors.Is(err, catalog.ErrInconsistent) {
			return err
		}
		slog.Warn("swapping the copy in failed; copying again", "mirror", m.Namespace+"."+m.Name, "err", err)
		j.err = err
		return ss.finishCopy(ctx, j)
	}
	j.progress.SetPhase(PhaseApplying)
	n, nan, err := ss.replaySpool(ctx, j, j.copy.LSN)
	if err != nil {
		return err
	}
	slog.Info("mirror copied its source again", "mirror", m.Namespace+"."+m.Name, "rows", j.copy.Rows,
		"lsn", pglogrepl.LSN(j.copy.LSN), "changes_after", n)
	if nan != 0 {
		return ss.copyAgain(ctx, j, nan)
	}
	ss.endCopy(j, nil)
	return nil
}

// copyAgain starts a new copy of a job's mirror whose spool replay met
// NaN in a DECIMAL column at the commit LSN nan: the new copy stores the
// column as text. Requests waiting for the job wait for the new one.
func (ss *session) copyAgain(ctx context.Context, j *copyJob, nan uint64) error {
	wait := j.wait
	j.wait = nil
	ss.endCopy(j, nil)
	if err := ss.startCopy(ctx, j.m, nan, 0); err != nil {
		for _, w := range wait {
			w <- err
		}
		return err
	}
	nj := ss.jobs[j.m]
	nj.wait = append(nj.wait, wait...)
	return nil
}

// finishInitial applies the changes kept for a mirror during its initial
// copy, once create_table has made it ready; between transactions.
func (ss *session) finishInitial(ctx context.Context, j *copyJob) error {
	if j.m.Err() != nil {
		ss.endCopy(j, nil) // the copy failed, or the mirror was dropped
		return nil
	}
	if err := ss.sync(ctx); err != nil {
		return err
	}
	n, nan, err := ss.replaySpool(ctx, j, j.m.AppliedLSN())
	if err != nil {
		return err
	}
	slog.Info("mirror applied the changes made during its initial copy", "mirror", j.m.Namespace+"."+j.m.Name, "changes", n)
	if nan != 0 {
		return ss.copyAgain(ctx, j, nan)
	}
	ss.endCopy(j, nil)
	return nil
}

// finishInitials finishes the initial jobs whose mirror became ready.
func (ss *session) finishInitials(ctx context.Context) error {
	for m, j := range ss.jobs {
		if !j.initial {
			continue
		}
		select {
		case <-m.Ready():
			if err := ss.finishInitial(ctx, j); err != nil {
				return err
			}
		default:
		}
	}
	return nil
}

// dropInitial abandons the changes kept during a mirror's initial copy
// (a new copy of the source, taken later, holds them).
func (ss *session) dropInitial(j *copyJob) {
	j.spool.remove()
	delete(ss.jobs, j.m)
}

// replaySpool applies the spooled changes of j's mirror committed after
// LSN after (the copy's), transaction by transaction, to that mirror alone.
// A change bringing NaN into a DECIMAL column ends it: nan is its commit
// LSN (0 if none), and the caller copies the source again.
func (ss *session) replaySpool(ctx context.Context, j *copyJob, after uint64) (n int, nan uint64, err error) {
	m := j.m
	live := ss.rels[m.SourceOID]
	if j.rel != nil {
		ss.rels[m.SourceOID] = j.rel
	}
	savedLSN, savedInTx := ss.txLSN, ss.inTx
	ss.only, ss.onlyNaN = m, 0
	defer func() {
		nan = ss.onlyNaN
		ss.only, ss.onlyNaN = nil, 0
		ss.txLSN, ss.inTx = savedLSN, savedInTx
		if live != nil {
			ss.rels[m.SourceOID] = live
		}
	}()
	var cur uint64
	err = j.spool.replay(func(rec []byte) error {
		if len(rec) < 9 {
			return errors.New("short spool record")
		}
		inStream, lsn := rec[0] == 1, binary.BigEndian.Uint64(rec[1:9])
		msg, err := pglogrepl.ParseV2(rec[9:], inStream)
		if err != nil {
			return fmt.Errorf("parse spooled change: %w", err)
		}
		if rel, ok := msg.(*pglogrepl.RelationMessageV2); ok {
			ss.rels[rel.RelationID] = rel
			return nil
		}
		if lsn <= after {
			return nil // in the copy
		}
		if lsn != cur {
			if cur != 0 {
				ss.w.EndTransaction(cur)
			}
			cur = lsn
			ss.txLSN, ss.inTx = lsn, true
		}
		n++
		return ss.apply(ctx, msg)
	})
	if err != nil {
		return n, 0, err
	}
	if cur != 0 {
		ss.w.EndTransaction(cur)
	}
	return n, 0, ss.w.Sync(ctx)
}

// endCopy ends a job: the mirror follows the stream again (or is broken),
// and Resync requests get err.
func (ss *session) endCopy(j *copyJob, err error) {
	j.progress.Done()
	j.spool.remove()
	delete(ss.jobs, j.m)
	j.m.EndCatchUp()
	if err == nil {
		err = j.m.Err()
	}
	for _, w := range j.wait {
		w <- err
	}
}

// stopCopies abandons the running copies when the session ends; the next
// session replays the changes that started them (the slot was not
// confirmed past them).
func (ss *session) stopCopies() {
	for _, j := range ss.jobs {
		if !j.initial {
			j.cancel()
			<-j.done
			j.copy.Discard()
		}
		ss.endCopy(j, errors.New("the replication stream stopped; try again"))
	}
}
