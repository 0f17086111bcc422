package cdc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgmooncake/mooncake/catalog"
	"github.com/pgmooncake/mooncake/sidecar/metrics"
)

// Publication is the publication holding every mirrored source table of a
// database.
const Publication = "mooncake_pub"

// SlotName is the replication slot of the database with the given OID.
func SlotName(dbOID uint32) string { return fmt.Sprintf("mooncake_%d", dbOID) }

// Stream applies a database's replication stream to its mirrors.
type Stream struct {
	Config        *pgx.ConnConfig // regular connection to the database
	Slot          string          // replication slot name
	Mirrors       *catalog.Set    // the database's mirrors
	FlushInterval time.Duration   // how often unflushed changes are committed to Iceberg
	FlushRows     int64           // flush early when a tail holds this many rows
	Fatal         func(error)     // called when the mirrors' state must be reloaded from Iceberg
	SpoolDir      string          // where streamed in-progress transactions are spooled

	receivedLSN  atomic.Uint64 // end of the last WAL data received
	confirmedLSN atomic.Uint64 // the slot's confirmed flush position, as we sent it
	lastCommit   atomic.Int64  // unix nanos of the commit time of the last applied transaction
	visibleLSN   atomic.Uint64 // every transaction ending at or before it is visible to readers

	visMu    sync.Mutex    // guards visCh
	visCh    chan struct{} // closed when visibleLSN advances
	pingOnce sync.Once
	ping     chan struct{} // a reader waits: ask the server for its position

	resyncOnce sync.Once
	resyncCh   chan resyncRequest // Resync requests for the apply loop

	// SlotLost is set when the slot had to be made anew while mirrors
	// existed: the changes between their last applied position and the
	// new slot's start are not in the stream, so each mirror is copied
	// again (resyncLost) once replication runs.
	SlotLost atomic.Bool
}

func (s *Stream) pings() chan struct{} {
	s.pingOnce.Do(func() { s.ping = make(chan struct{}, 1) })
	return s.ping
}

// VisibleLSN is the WAL position up to which every committed transaction is
// visible in the mirrors.
func (s *Stream) VisibleLSN() uint64 { return s.visibleLSN.Load() }

func (s *Stream) setVisible(lsn uint64) {
	if lsn <= s.visibleLSN.Load() {
		return
	}
	s.visibleLSN.Store(lsn)
	s.visMu.Lock()
	if s.visCh != nil {
		close(s.visCh)
		s.visCh = nil
	}
	s.visMu.Unlock()
}

// WaitVisible waits until every transaction that ended at or before lsn is
// visible in the mirrors, or ctx ends.
func (s *Stream) WaitVisible(ctx context.Context, lsn uint64) error {
	for {
		if s.visibleLSN.Load() >= lsn {
			return nil
		}
		s.visMu.Lock()
		if s.visCh == nil {
			s.visCh = make(chan struct{})
		}
		ch := s.visCh
		s.visMu.Unlock()
		if s.visibleLSN.Load() >= lsn {
			return nil
		}
		// The WAL up to lsn may hold nothing for the mirrors, and an idle
		// server reports its position only now and then: ask for it.
		select {
		case s.pings() <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// EnsureSlot creates the publication and the replication slot if they do
// not exist yet, and tells whether it made the slot.
func EnsureSlot(ctx context.Context, cfg *pgx.ConnConfig, slot string) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if err := ensurePublication(ctx, conn); err != nil {
		return false, err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", slot).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	repl, err := pgconn.ConnectConfig(ctx, ReplicationConfig(cfg))
	if err != nil {
		return false, err
	}
	defer repl.Close(context.Background())
	_, err = pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			return false, nil
		}
		return false, fmt.Errorf("create replication slot: %w", err)
	}
	return true, nil
}

// ensurePublication creates the publication, with publish_via_partition_root:
// the changes of a partition then reach the stream as changes of its
// topmost published partitioned table, under that table's relation OID,
// which is the OID its mirrors follow. A publication made by an older
// version, without it, is altered. pgoutput reads the option from the
// catalog as of each change it decodes (a publication change invalidates
// its cache), so changes committed after the ALTER arrive under the
// partitioned table's OID; before it, no partitioned table was published.
func ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	// PostgreSQL 18 also publishes the values of stored generated columns
	// when asked (publish_generated_columns); earlier ones never do.
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return err
	}
	gencols := version >= 180000
	var viaRoot, genStored *bool
	q := "SELECT pubviaroot, NULL::bool FROM pg_publication WHERE pubname = $1"
	if gencols {
		q = "SELECT pubviaroot, pubgencols = 's' FROM pg_publication WHERE pubname = $1"
	}
	err := conn.QueryRow(ctx, q, Publication).Scan(&viaRoot, &genStored)
	if err != nil && err != pgx.ErrNoRows {
		return err
	}
	opts := "publish_via_partition_root = true"
	if gencols {
		opts += ", publish_generated_columns = stored"
	}
	switch {
	case err == pgx.ErrNoRows:
		_, err = conn.Exec(ctx, "CREATE PUBLICATION "+Publication+" WITH ("+opts+")")
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			return ensurePublication(ctx, conn) // created meanwhile
		}
		if err != nil {
			return fmt.Errorf("create publication: %w", err)
		}
	case !*viaRoot || (gencols && !*genStored):
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+Publication+" SET ("+opts+")"); err != nil {
			return fmt.Errorf("alter publication: %w", err)
		}
	}
	return nil
}

// Publish adds a source table (quoted qualified name) to the publication.
func Publish(ctx context.Context, cfg *pgx.ConnConfig, source string, sourceOID uint32) error {
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Made by EnsureSlot already; again in case it was recreated since.
	if err := ensurePublication(ctx, conn); err != nil {
		return err
	}
	var published bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
		WHERE p.pubname = $1 AND pr.prrelid = $2)`, Publication, sourceOID).Scan(&published); err != nil {
		return err
	}
	if published {
		return nil
	}
	_, err = conn.Exec(ctx, "ALTER PUBLICATION "+Publication+" ADD TABLE ONLY "+source)
	return err
}

// DropSlotAndPublication removes the database's replication slot (waiting
// for its stream to let go of it) and publication, if they exist.
func DropSlotAndPublication(ctx context.Context, cfg *pgx.ConnConfig, slot string) error {
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object in use
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+Publication)
	return err
}

// Unpublish removes a source table (by OID) from the publication, waiting
// at most lockWait (0: as long as it takes) for the table's lock.
func Unpublish(ctx context.Context, cfg *pgx.ConnConfig, sourceOID uint32, lockWait time.Duration) error {
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if lockWait > 0 {
		if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", lockWait.Milliseconds())); err != nil {
			return err
		}
	}
	var name string
	err = conn.QueryRow(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_publication_rel pr
		JOIN pg_publication p ON p.oid = pr.prpubid JOIN pg_class c ON c.oid = pr.prrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1 AND pr.prrelid = $2`, Publication, sourceOID).Scan(&name)
	if err == pgx.ErrNoRows {
		return nil
	} else if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "ALTER PUBLICATION "+Publication+" DROP TABLE "+name)
	return err
}

// ReceivedLSN is the end of the WAL received so far.
func (s *Stream) ReceivedLSN() uint64 { return s.receivedLSN.Load() }

// ConfirmedLSN is the flush position last confirmed to the slot.
func (s *Stream) ConfirmedLSN() uint64 { return s.confirmedLSN.Load() }

// LastCommitTime is the commit time of the last transaction applied.
func (s *Stream) LastCommitTime() time.Time {
	n := s.lastCommit.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Run applies the stream until ctx ends, reconnecting after errors.
func (s *Stream) Run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, catalog.ErrInconsistent) && s.Fatal != nil {
			s.Fatal(err)
			return
		}
		var pgErr *pgconn.PgError
		if errors.Is(err, errPublicationGone) ||
			(errors.As(err, &pgErr) && pgErr.Code == "42704" && strings.Contains(pgErr.Message, `"`+Publication+`"`)) {
			rerr := s.repairPublication(ctx)
			if rerr == nil {
				continue
			}
			slog.Error("cannot make the publication again", "database", s.Config.Database, "err", rerr)
		}
		var me *catalog.MirrorError
		if errors.As(err, &me) {
			// One mirror cannot take a change: mark it broken rather than
			// stop every mirror of the database and hold back the slot.
			reason := catalog.Redact(me.Err.Error())
			slog.Error("mirror cannot apply a change; it is marked broken", "mirror", me.Mirror.Namespace+"."+me.Mirror.Name, "err", reason)
			if err := s.Mirrors.Break(ctx, me.Mirror, reason); err != nil {
				slog.Error("cannot record that the mirror is broken", "err", err)
			}
			continue
		}
		metrics.Default.Error(metrics.ErrReplication)
		slog.Error("replication stream stopped; reconnecting", "database", s.Config.Database, "err", catalog.Redact(err.Error()), "after", backoff)
		if time.Since(start) > time.Minute {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// session is the state of one replication connection.
type session struct {
	s         *Stream
	conn      *pgconn.PgConn
	w         *catalog.Writer
	rels      map[uint32]*pglogrepl.RelationMessageV2
	inTx      bool
	txLSN     uint64    // commit LSN of the transaction being received
	doneLSN   uint64    // end LSN of the last transaction applied and synced to DuckDB
	endLSN    uint64    // end LSN of the last transaction received
	batchAt   time.Time // when the oldest transaction not yet synced ended
	idleLSN   uint64    // WAL end reported by the last keepalive
	serverEnd uint64    // the server's WAL end, as last reported
	lastSend  time.Time

	inStream  bool              // between a stream start and stop message
	streamXid uint32            // the transaction of the current stream chunk
	spools    map[uint32]*spool // streamed transactions not yet committed or aborted

	txChanged bool                     // the transaction being applied changed some mirror
	ddlSeq    int                      // the schema change messages of the transaction so far
	resync    map[*catalog.Mirror]bool // mirrors to copy again when the transaction commits
	rewrites  map[uint32]bool          // sources the transaction rewrote, values kept unless shown otherwise

	jobs        map[*catalog.Mirror]*copyJob // mirrors whose source is being copied again (catchup.go)
	copied      chan *copyJob                // jobs whose copy is ready or failed
	copiedLater []*copyJob                   // such jobs received inside a transaction
	only        *catalog.Mirror              // while a job's spool is replayed: the one mirror changes apply to
	// onlyNaN is, while a job's spool is replayed, the commit LSN of the
	// first change that brought NaN into one of the mirror's DECIMAL
	// columns (0 if none): the source is copied again after the replay.
	onlyNaN     uint64
	raw         []byte    // the message being handled, as received
	rawInStream bool      // raw is in the in-stream form
	cat         *pgx.Conn // catalog lookups (schema changes), opened on first use
}

func (s *Stream) runOnce(ctx context.Context) error {
	conn, err := pgconn.ConnectConfig(ctx, ReplicationConfig(s.Config))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	duckConn, err := s.Mirrors.Duck.Conn(ctx)
	if err != nil {
		return err
	}
	ss := &session{s: s, conn: conn, w: catalog.NewWriter(s.Mirrors.Duck, duckConn), rels: map[uint32]*pglogrepl.RelationMessageV2{},
		spools: map[uint32]*spool{}, copied: make(chan *copyJob, 16)}
	defer ss.w.Close()
	defer ss.stopCopies()
	defer func() {
		if ss.cat != nil {
			ss.cat.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
		return err
	}
	removeSpools(s.SpoolDir)
	defer func() {
		for _, sp := range ss.spools {
			sp.remove()
		}
	}()

	// The slot's confirmed position is where the server resumes; everything
	// before it is in Iceberg already.
	confirmed, err := slotConfirmedLSN(ctx, s.Config, s.Slot)
	if errors.Is(err, pgx.ErrNoRows) {
		// The slot is gone (dropped by hand, or by a failover or an
		// upgrade that kept no slots): make it again, and copy every
		// mirror again, since what it held back is lost.
		slog.Error("the replication slot is gone: making it again and copying every mirror again", "database", s.Config.Database, "slot", s.Slot)
		if _, err := EnsureSlot(ctx, s.Config, s.Slot); err != nil {
			return err
		}
		if len(s.Mirrors.All()) > 0 {
			s.SlotLost.Store(true)
		}
		confirmed, err = slotConfirmedLSN(ctx, s.Config, s.Slot)
	}
	if err != nil {
		return err
	}
	s.confirmedLSN.Store(confirmed)
	s.setVisible(confirmed)
	ss.doneLSN = confirmed

	err = pglogrepl.StartReplication(ctx, conn, s.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '2'", "publication_names '" + Publication + "'", "messages 'true'", "streaming 'true'"},
	})
	if err != nil {
		return fmt.Errorf("start replication: %w", err)
	}
	slog.Info("replication started", "database", s.Config.Database, "slot", s.Slot, "from", pglogrepl.LSN(confirmed))
	if s.SlotLost.Swap(false) {
		go s.resyncLost(ctx)
	}

	msgs := make(chan received, receiveQueue)
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	go receive(conn, msgs, stopReader, readerDone)
	defer func() {
		// Closing the socket ends the reader's blocked read; the deferred
		// conn.Close then finds the connection already broken.
		close(stopReader)
		conn.Conn().Close()
		<-readerDone
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	lastFlush := time.Now()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !ss.inTx && ss.w.Pending() && time.Since(ss.batchAt) >= ss.batchDelay() {
			if err := ss.sync(ctx); err != nil {
				return err
			}
		}
		if !ss.inTx {
			select {
			case req := <-s.resyncs():
				if err := ss.serveResync(ctx, req); err != nil {
					return err
				}
			case j := <-ss.copied:
				ss.copiedLater = append(ss.copiedLater, j)
			default:
			}
			if err := ss.finishInitials(ctx); err != nil {
				return err
			}
			for len(ss.copiedLater) > 0 {
				j := ss.copiedLater[0]
				ss.copiedLater = ss.copiedLater[1:]
				if ss.jobs[j.m] == j {
					if err := ss.finishCopy(ctx, j); err != nil {
						return err
					}
				}
			}
			if due := time.Since(lastFlush) >= s.FlushInterval || s.tailFull(); due {
				if err := ss.sync(ctx); err != nil {
					return err
				}
				if err := ss.flush(ctx); err != nil {
					return err
				}
				lastFlush = time.Now()
			}
		}
		if time.Since(ss.lastSend) >= 5*time.Second {
			if err := ss.sendStatus(ctx); err != nil {
				return err
			}
		}
		var r received
		select {
		case r = <-msgs:
		default:
			// Nothing is queued: wait, but not beyond the moment the
			// pending batch is due.
			wait := 100 * time.Millisecond
			if !ss.inTx && ss.w.Pending() {
				wait = idleSyncDelay
			}
			timer.Reset(wait)
			select {
			case r = <-msgs:
			case j := <-ss.copied:
				timer.Stop()
				ss.copiedLater = append(ss.copiedLater, j)
				continue
			case req := <-s.resyncs():
				timer.Stop()
				if ss.inTx {
					// Not between transactions: try again at the next one.
					go func() { s.resyncs() <- req }()
					continue
				}
				if err := ss.serveResync(ctx, req); err != nil {
					return err
				}
				continue
			case <-ss.s.pings():
				// A reader waits for a position beyond what is visible.
				// The server answers with a keepalive carrying its WAL
				// position, which becomes visible if nothing is pending.
				timer.Stop()
				if err := ss.status(ctx, true); err != nil {
					return err
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				// The server has nothing more right now: make what was
				// received visible.
				if !ss.inTx && ss.w.Pending() {
					if err := ss.sync(ctx); err != nil {
						return err
					}
				}
				continue
			}
			timer.Stop()
		}
		if r.err != nil {
			return r.err
		}
		if err := ss.handleCopyData(ctx, r.data); err != nil {
			return err
		}
	}
}

// receiveQueue is how many messages the reader may read ahead of the
// apply loop.
const receiveQueue = 512

// received is one message of the replication connection: the payload of a
// CopyData message, or the error that ended the stream.
type received struct {
	data []byte
	err  error
}

// receive reads the replication connection on its own goroutine, so that
// reading and decoding the socket overlaps with applying, and the apply
// loop waits on a channel rather than arming a deadline per message. It
// stops after the first error, or when stop is closed.
func receive(conn *pgconn.PgConn, out chan<- received, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		var r received
		msg, err := conn.ReceiveMessage(context.Background())
		switch msg := msg.(type) {
		case nil:
			r.err = fmt.Errorf("receive: %w", err)
		case *pgproto3.CopyData:
			// The message's buffer is reused by the next read.
			r.data = bytes.Clone(msg.Data)
		case *pgproto3.ErrorResponse:
			r.err = pgconn.ErrorResponseToPgError(msg)
		case *pgproto3.NoticeResponse:
			if strings.Contains(msg.Message, `skipped loading publication "`+Publication+`"`) {
				// PostgreSQL 18 decodes on without a dropped publication,
				// publishing nothing: as its older versions' error.
				r.err = errPublicationGone
				break
			}
			slog.Warn("notice from the replication stream", "severity", msg.Severity, "message", msg.Message)
			continue
		default:
			r.err = fmt.Errorf("unexpected replication message %T", msg)
		}
		select {
		case out <- r:
		case <-stop:
			return
		}
		if r.err != nil {
			return
		}
	}
}

func (s *Stream) tailFull() bool {
	for _, m := range s.Mirrors.All() {
		if m.TailRows() >= s.FlushRows {
			return true
		}
	}
	return false
}

func slotConfirmedLSN(ctx context.Context, cfg *pgx.ConnConfig, slot string) (uint64, error) {
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(cfg))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn); err != nil {
		return 0, fmt.Errorf("read slot %s: %w", slot, err)
	}
	l, err := pglogrepl.ParseLSN(lsn)
	return uint64(l), err
}

// Group commit: source transactions received back to back share one
// DuckDB commit, made when the server pauses (idleSyncDelay without a
// message) or when the oldest of them waited maxBatchDelay.
//
// While the stream is far behind the server (catching up a backlog), the
// batches grow to maxBacklogDelay: what is received is old anyway, and
// fewer, larger DuckDB commits apply it faster.
const (
	idleSyncDelay   = 1 * time.Millisecond
	maxBatchDelay   = 2 * time.Millisecond
	maxBacklogDelay = 200 * time.Millisecond
	backlogBytes    = 8 << 20
)

// batchDelay is how long the oldest transaction of a batch may wait for
// its DuckDB commit.
func (ss *session) batchDelay() time.Duration {
	if ss.serverEnd > ss.endLSN+backlogBytes {
		return maxBacklogDelay
	}
	// A batch that reads back unchanged TOAST values costs a scan of
	// data files, the same for one row as for thousands: while more
	// transactions come, the batch grows as long as the last scan took
	// (a batch ends anyway when the server pauses).
	return min(max(ss.w.LookupDelay(), maxBatchDelay), maxBacklogDelay)
}

// sync commits the applied transactions to DuckDB, making them visible.
func (ss *session) sync(ctx context.Context) error {
	if err := ss.w.Sync(ctx); err != nil {
		return fmt.Errorf("apply transactions up to %s: %w", pglogrepl.LSN(ss.endLSN), err)
	}
	ss.doneLSN = ss.endLSN
	ss.s.setVisible(ss.endLSN)
	ss.batchAt = time.Time{}
	return nil
}

// flush commits every dirty mirror to Iceberg, then confirms the stream up
// to the last applied transaction.
func (ss *session) flush(ctx context.Context) error {
	allFlushed := true
	for _, m := range ss.s.Mirrors.All() {
		if !m.Dirty() || m.Err() != nil {
			continue // a broken mirror holds nothing back: Resync copies its source again
		}
		if err := m.Flush(ctx, ss.w.Conn()); err != nil {
			if errors.Is(err, catalog.ErrInconsistent) {
				return err
			}
			if m.FlushFailed() >= maxFlushFailures {
				slog.Error("flush failed again; the mirror is marked broken", "mirror", m.Namespace+"."+m.Name, "err", err)
				if err := ss.s.Mirrors.Break(ctx, m, "its changes cannot be written to Iceberg: "+catalog.Redact(err.Error())); err != nil {
					slog.Error("cannot record that the mirror is broken", "err", err)
				}
				continue
			}
			slog.Error("flush failed; will retry", "mirror", m.Namespace+"."+m.Name, "err", catalog.Redact(err.Error()))
		}
		if m.Dirty() {
			allFlushed = false // failed, or waiting for a compaction
		}
	}
	ss.s.maintain(ctx)
	if !allFlushed || len(ss.jobs) > 0 {
		// A copy running holds the slot before the change that started
		// it: its mirror's later changes are only in the job's spool.
		return nil
	}
	confirm := ss.doneLSN
	if ss.idleLSN > confirm {
		confirm = ss.idleLSN
	}
	if confirm > ss.s.confirmedLSN.Load() {
		ss.s.confirmedLSN.Store(confirm)
		return ss.sendStatus(ctx)
	}
	return nil
}

// maintain starts a compaction of every mirror that has accumulated small
// files; it runs beside the stream, which keeps applying changes.
func (s *Stream) maintain(ctx context.Context) {
	for _, m := range s.Mirrors.All() {
		if !m.NeedsCompaction() {
			continue
		}
		go func() {
			done, err := m.Compact(ctx, s.Mirrors.Duck, false)
			switch {
			case errors.Is(err, catalog.ErrInconsistent) && s.Fatal != nil:
				s.Fatal(err)
			case err != nil && ctx.Err() == nil:
				slog.Error("compaction failed", "mirror", m.Namespace+"."+m.Name, "err", err)
			case done:
				slog.Info("mirror compacted", "mirror", m.Namespace+"."+m.Name)
			}
		}()
	}
}

// maxFlushFailures is how many flushes of a mirror may fail in a row
// before it is marked broken, so that it holds the slot back no longer.
const maxFlushFailures = 3

func (ss *session) sendStatus(ctx context.Context) error { return ss.status(ctx, false) }

// status reports the stream's positions to the server; with replyRequested,
// the server answers at once with a keepalive carrying its own position.
func (ss *session) status(ctx context.Context, replyRequested bool) error {
	c := pglogrepl.LSN(ss.s.confirmedLSN.Load())
	w := pglogrepl.LSN(ss.s.receivedLSN.Load())
	if w < c {
		w = c
	}
	ss.lastSend = time.Now()
	return pglogrepl.SendStandbyStatusUpdate(ctx, ss.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: w, WALFlushPosition: c, WALApplyPosition: c,
		ReplyRequested: replyRequested,
	})
}

func (ss *session) handleCopyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return err
		}
		end := uint64(ka.ServerWALEnd)
		ss.serverEnd = max(ss.serverEnd, end)
		if !ss.inTx && !ss.w.Pending() {
			// Everything the server sent before its WAL end is applied.
			ss.s.setVisible(end)
			if !ss.anyDirty() {
				// ... and flushed: the server may forget it.
				ss.idleLSN = end
			}
		}
		advanced := end > ss.s.receivedLSN.Load()
		if advanced {
			ss.s.receivedLSN.Store(end)
		}
		// Answering at once keeps the server's keepalives, and so the
		// visible position, coming while it has nothing else to send.
		if ka.ReplyRequested || advanced {
			return ss.sendStatus(ctx)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return err
		}
		// WALStart is the LSN of the message; its payload size says nothing
		// about WAL positions (a TOASTed value makes it large).
		if start := uint64(xld.WALStart); start > ss.s.receivedLSN.Load() {
			ss.s.receivedLSN.Store(start)
		}
		ss.serverEnd = max(ss.serverEnd, uint64(xld.ServerWALEnd))
		msg, err := pglogrepl.ParseV2(xld.WALData, ss.inStream)
		if err != nil {
			return fmt.Errorf("parse pgoutput message: %w", err)
		}
		if ss.inStream {
			return ss.handleStreamed(ctx, msg, xld.WALData)
		}
		ss.raw, ss.rawInStream = xld.WALData, false
		return ss.handle(ctx, msg)
	}
	return nil
}

func (ss *session) anyDirty() bool {
	for _, m := range ss.s.Mirrors.All() {
		if m.Dirty() {
			return true
		}
	}
	return false
}

// mirrorsFor returns the mirrors of a relation that must apply the current
// transaction; those being copied keep the change in their job's spool
// (spoolFor).
func (ss *session) mirrorsFor(ctx context.Context, relID uint32) ([]*catalog.Mirror, error) {
	if m := ss.only; m != nil {
		// Replaying a copy job's spool: its mirror alone.
		if m.SourceOID == relID && ss.txLSN > m.AppliedLSN() && ss.onlyNaN == 0 {
			return []*catalog.Mirror{m}, nil
		}
		return nil, nil
	}
	var out []*catalog.Mirror
	for _, m := range ss.s.Mirrors.BySource(relID) {
		if ss.jobs[m] != nil {
			continue // its changes wait in the job's spool
		}
		if err := ss.waitReady(ctx, m); err != nil {
			return nil, err
		}
		if m.Err() != nil {
			continue
		}
		if ss.txLSN > m.AppliedLSN() && !ss.resync[m] {
			out = append(out, m)
		}
	}
	return out, nil
}

// waitReady waits until the mirror's initial copy is committed, keeping the
// replication connection alive meanwhile.
func (ss *session) waitReady(ctx context.Context, m *catalog.Mirror) error {
	select {
	case <-m.Ready():
		return nil // the common case, without a timer
	default:
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-m.Ready():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := ss.sendStatus(ctx); err != nil {
				return err
			}
		}
	}
}

// handleStreamed handles a message inside a stream chunk: changes of the
// in-progress transaction go to its spool.
func (ss *session) handleStreamed(ctx context.Context, msg pglogrepl.Message, raw []byte) error {
	switch msg := msg.(type) {
	case *pglogrepl.StreamStopMessageV2:
		ss.inStream = false
	case *pglogrepl.RelationMessageV2:
		ss.rels[msg.RelationID] = msg
		ss.raw, ss.rawInStream = raw, true
		return ss.spoolFor(msg.RelationID, 0)
	case *pglogrepl.InsertMessageV2, *pglogrepl.UpdateMessageV2, *pglogrepl.DeleteMessageV2, *pglogrepl.TruncateMessageV2,
		*pglogrepl.LogicalDecodingMessageV2:
		sp := ss.spools[ss.streamXid]
		if sp == nil {
			var err error
			if sp, err = newSpool(ss.s.SpoolDir, ss.streamXid); err != nil {
				return err
			}
			ss.spools[ss.streamXid] = sp
		}
		return sp.add(raw)
	}
	return nil
}

// commitStreamed applies a streamed transaction from its spool as one
// transaction with the given commit LSN.
func (ss *session) commitStreamed(ctx context.Context, msg *pglogrepl.StreamCommitMessageV2) error {
	sp := ss.spools[msg.Xid]
	delete(ss.spools, msg.Xid)
	ss.inTx, ss.txLSN, ss.txChanged, ss.ddlSeq = true, uint64(msg.CommitLSN), false, 0
	if sp != nil {
		defer sp.remove()
		err := sp.replay(func(raw []byte) error {
			m, err := pglogrepl.ParseV2(raw, true)
			if err != nil {
				return fmt.Errorf("parse spooled message: %w", err)
			}
			if xid := streamedXid(m); sp.aborted[xid] {
				return nil
			}
			ss.raw, ss.rawInStream = raw, true
			return ss.handle(ctx, m)
		})
		if err != nil {
			return err
		}
	}
	return ss.handle(ctx, &pglogrepl.CommitMessage{CommitLSN: msg.CommitLSN, TransactionEndLSN: msg.TransactionEndLSN, CommitTime: msg.CommitTime})
}

func streamedXid(m pglogrepl.Message) uint32 {
	switch m := m.(type) {
	case *pglogrepl.InsertMessageV2:
		return m.Xid
	case *pglogrepl.UpdateMessageV2:
		return m.Xid
	case *pglogrepl.DeleteMessageV2:
		return m.Xid
	case *pglogrepl.TruncateMessageV2:
		return m.Xid
	case *pglogrepl.LogicalDecodingMessageV2:
		return m.Xid
	}
	return 0
}

func (ss *session) handle(ctx context.Context, msg pglogrepl.Message) error {
	switch msg := msg.(type) {
	case *pglogrepl.StreamStartMessageV2:
		ss.inStream, ss.streamXid = true, msg.Xid
	case *pglogrepl.StreamCommitMessageV2:
		return ss.commitStreamed(ctx, msg)
	case *pglogrepl.StreamAbortMessageV2:
		if sp := ss.spools[msg.Xid]; sp != nil {
			if msg.SubXid == msg.Xid {
				sp.remove()
				delete(ss.spools, msg.Xid)
			} else {
				sp.aborted[msg.SubXid] = true
			}
		}
	case *pglogrepl.RelationMessageV2:
		ss.rels[msg.RelationID] = msg
		return ss.spoolFor(msg.RelationID, 0)
	case *pglogrepl.BeginMessage:
		ss.inTx, ss.txLSN, ss.txChanged, ss.ddlSeq = true, uint64(msg.FinalLSN), false, 0
		clear(ss.rewrites)
	case *pglogrepl.LogicalDecodingMessageV2:
		if msg.Transactional && msg.Prefix == DDLPrefix {
			return ss.handleDDL(ctx, msg.Content)
		}
	case *pglogrepl.CommitMessage:
		if ss.batchAt.IsZero() {
			ss.batchAt = time.Now()
		}
		ss.resyncRewritten()
		ss.w.EndTransaction(uint64(msg.CommitLSN))
		ss.inTx = false
		ss.endLSN = uint64(msg.TransactionEndLSN)
		ss.s.lastCommit.Store(msg.CommitTime.UnixNano())
		for m := range ss.resync {
			if err := ss.startCopy(ctx, m, uint64(msg.CommitLSN), 0); err != nil {
				return err
			}
		}
		clear(ss.resync)
	case *pglogrepl.InsertMessageV2:
		if err := ss.spoolFor(msg.RelationID, ss.txLSN); err != nil {
			return err
		}
		return ss.apply(ctx, msg)
	case *pglogrepl.UpdateMessageV2:
		if err := ss.spoolFor(msg.RelationID, ss.txLSN); err != nil {
			return err
		}
		return ss.apply(ctx, msg)
	case *pglogrepl.DeleteMessageV2:
		if err := ss.spoolFor(msg.RelationID, ss.txLSN); err != nil {
			return err
		}
		return ss.apply(ctx, msg)
	case *pglogrepl.TruncateMessageV2:
		for _, id := range msg.RelationIDs {
			if err := ss.spoolFor(id, ss.txLSN); err != nil {
				return err
			}
		}
		return ss.apply(ctx, msg)
	}
	return nil
}

// apply applies a row change (insert, update, delete, truncate) to the
// mirrors of its relation.
func (ss *session) apply(ctx context.Context, msg pglogrepl.Message) error {
	switch msg := msg.(type) {
	case *pglogrepl.InsertMessageV2:
		return ss.forEach(ctx, msg.RelationID, func(m *catalog.Mirror, rel *pglogrepl.RelationMessageV2) error {
			row, err := ss.wholeRow(m, rel, msg.Tuple)
			if err != nil {
				return err
			}
			if err := checkNaN(m, row, nil); err != nil {
				return err
			}
			return ss.w.Insert(ctx, m, row)
		})
	case *pglogrepl.UpdateMessageV2:
		return ss.forEach(ctx, msg.RelationID, func(m *catalog.Mirror, rel *pglogrepl.RelationMessageV2) error {
			var key, old []*string
			if msg.OldTuple != nil {
				var err error
				if old, err = ss.wholeRow(m, rel, msg.OldTuple); err != nil {
					return err
				}
				if key, err = oldKey(m, old); err != nil {
					return err
				}
			} else {
				// The key did not change: it is in the new tuple, where
				// other columns may be unchanged TOAST values.
				k, err := ss.keyFromTuple(m, rel, msg.NewTuple)
				if err != nil {
					return err
				}
				key = k
			}
			row, unchanged, err := ss.row(m, rel, msg.NewTuple)
			if err != nil {
				return err
			}
			// The old row, when the server sends one, holds the values it
			// sent: with REPLICA IDENTITY FULL all of them (PostgreSQL
			// inlines TOASTed values into the old row it logs), else the
			// key's. The writer reads back the others, as of before the
			// update.
			unchanged = slices.DeleteFunc(unchanged, func(c int) bool {
				if old != nil && old[c] != nil {
					row[c] = old[c]
					return true
				}
				return false
			})
			if err := checkNaN(m, row, key); err != nil {
				return err
			}
			return ss.w.Update(ctx, m, key, row, unchanged)
		})
	case *pglogrepl.DeleteMessageV2:
		return ss.forEach(ctx, msg.RelationID, func(m *catalog.Mirror, rel *pglogrepl.RelationMessageV2) error {
			old, err := ss.wholeRow(m, rel, msg.OldTuple)
			if err != nil {
				return err
			}
			key, err := oldKey(m, old)
			if err != nil {
				return err
			}
			if err := checkNaN(m, nil, key); err != nil {
				return err
			}
			return ss.w.Delete(ctx, m, key)
		})
	case *pglogrepl.TruncateMessageV2:
		// One message for all the tables of a TRUNCATE, cascaded ones included.
		for _, id := range msg.RelationIDs {
			ms, err := ss.mirrorsFor(ctx, id)
			if err != nil {
				return err
			}
			for _, m := range ms {
				ss.txChanged = true
				if err := ss.w.Truncate(ctx, m); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (ss *session) forEach(ctx context.Context, relID uint32, fn func(*catalog.Mirror, *pglogrepl.RelationMessageV2) error) error {
	rel := ss.rels[relID]
	if rel == nil {
		return fmt.Errorf("change for relation %d before its relation message", relID)
	}
	ms, err := ss.mirrorsFor(ctx, relID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		ss.txChanged = true
		if err := fn(m, rel); err != nil {
			var ne *nanError
			if !errors.As(err, &ne) {
				return fmt.Errorf("mirror %s.%s: %w", m.Namespace, m.Name, err)
			}
			// The source is copied again, and the column stored as text:
			// at commit, or after the replay of a job's spool.
			why := fmt.Sprintf("column %q received NaN, which its DECIMAL storage cannot hold", ne.col)
			if ss.only == m {
				ss.onlyNaN = ss.txLSN
				slog.Info("mirror will copy its source again", "mirror", m.Namespace+"."+m.Name, "reason", why)
			} else {
				ss.markResync(m, why)
			}
		}
	}
	return nil
}

// nanError is a change that brings NaN into a DECIMAL column of a mirror
// (catalog.DecimalType), which its storage cannot hold.
type nanError struct{ col string }

func (e *nanError) Error() string { return fmt.Sprintf("NaN in the DECIMAL column %q", e.col) }

// checkNaN returns a nanError when a value of row (the mirror's columns,
// nil for none) or of key (its key columns) is NaN in a DECIMAL column.
func checkNaN(m *catalog.Mirror, row, key []*string) error {
	for i, v := range row {
		if m.Columns[i].Type.IsNaN(v) {
			return &nanError{m.Columns[i].Name}
		}
	}
	for i, v := range key {
		if c := m.Columns[m.Key[i]]; c.Type.IsNaN(v) {
			return &nanError{c.Name}
		}
	}
	return nil
}

// oldKey is the key of the old row of an update or delete. Key columns
// are never NULL (a primary key, or an index of NOT NULL columns), so a
// missing one means the old row was logged by another replica identity:
// that of a partition given one without the key of its partitioned table.
// The mirror cannot tell which row to change; it stops (broken) rather
// than go wrong.
func oldKey(m *catalog.Mirror, old []*string) ([]*string, error) {
	key := m.KeyOf(old)
	if !m.Full && slices.Contains(key, nil) {
		return nil, &catalog.MirrorError{Mirror: m, Err: errors.New("an update or delete came without the key of the old row: " +
			"a partition of the source has a replica identity without the source's key")}
	}
	return key, nil
}

// keyFromTuple reads the mirror's key columns from a tuple.
func (ss *session) keyFromTuple(m *catalog.Mirror, rel *pglogrepl.RelationMessageV2, tuple *pglogrepl.TupleData) ([]*string, error) {
	if tuple == nil {
		return nil, errors.New("missing tuple data")
	}
	row := make([]*string, len(m.Columns))
	for i, col := range tuple.Columns {
		if i >= len(rel.Columns) {
			break
		}
		idx := m.ColumnIndex(rel.Columns[i].Name)
		if idx < 0 || col.DataType != pglogrepl.TupleDataTypeText {
			continue
		}
		v := string(col.Data)
		row[idx] = &v
	}
	return m.KeyOf(row), nil
}

// row decodes a tuple into the mirror's column order. It returns the
// columns whose values the server left out as unchanged TOAST values
// (sent as 'u'), which are nil in the row.
func (ss *session) row(m *catalog.Mirror, rel *pglogrepl.RelationMessageV2, tuple *pglogrepl.TupleData) ([]*string, []int, error) {
	if tuple == nil {
		return nil, nil, errors.New("missing tuple data")
	}
	out := make([]*string, len(m.Columns))
	var unchanged []int
	for i, col := range tuple.Columns {
		if i >= len(rel.Columns) {
			break
		}
		idx := m.ColumnIndex(rel.Columns[i].Name)
		if idx < 0 {
			continue
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeText:
			v := string(col.Data)
			out[idx] = &v
		case pglogrepl.TupleDataTypeToast:
			unchanged = append(unchanged, idx)
		case pglogrepl.TupleDataTypeBinary:
			return nil, nil, fmt.Errorf("column %q arrived in binary format", rel.Columns[i].Name)
		}
	}
	return out, unchanged, nil
}

// wholeRow decodes a tuple that cannot leave values out: a new row, or an
// old one (PostgreSQL inlines the TOASTed values of old rows it logs).
func (ss *session) wholeRow(m *catalog.Mirror, rel *pglogrepl.RelationMessageV2, tuple *pglogrepl.TupleData) ([]*string, error) {
	row, unchanged, err := ss.row(m, rel, tuple)
	if err == nil && len(unchanged) > 0 {
		err = fmt.Errorf("column %q arrived as an unchanged TOAST value outside an update's new row", m.Columns[unchanged[0]].Name)
	}
	return row, err
}

func randomSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// resyncLost copies again, one after the other, every mirror of a
// database whose slot had to be made anew (SlotLost): each copy's
// snapshot comes after the new slot's start, so the mirror holds every
// change again once its copy is in (readers see the old rows until then).
func (s *Stream) resyncLost(ctx context.Context) {
	for _, m := range s.Mirrors.All() {
		select {
		case <-m.Ready():
		default:
			continue // its initial copy, under way, comes after the new slot
		}
		slog.Info("copying the source again: the replication slot was lost", "mirror", m.Namespace+"."+m.Name)
		s.RecopyOrBreak(ctx, m, "the replication slot was lost")
	}
}

// RecopyOrBreak copies m's source again (Resync), up to five times (a
// stream that reconnects meanwhile abandons the copy), for a mirror that
// missed changes (why); if every try fails, the mirror is marked broken,
// for resync_table, rather than left following on without them.
func (s *Stream) RecopyOrBreak(ctx context.Context, m *catalog.Mirror, why string) {
	var err error
	for try := range 5 {
		if try > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(try) * time.Second):
			}
		}
		if err = s.Resync(ctx, m, 0); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	reason := why + " and copying the source again failed: " + catalog.Redact(err.Error())
	slog.Error("cannot copy the mirror's source again", "mirror", m.Namespace+"."+m.Name, "err", err)
	if err := s.Mirrors.Break(ctx, m, reason); err != nil {
		slog.Error("cannot record that the mirror is broken", "err", err)
	}
}

// errPublicationGone: the stream's publication was dropped.
var errPublicationGone = errors.New("publication " + Publication + " does not exist")

// repairPublication answers a publication dropped by hand (DROP
// PUBLICATION): pgoutput looks the publication up as of each change it
// decodes, so the slot cannot be read past the drop any more, and changes
// made since were never published. It makes the publication again with
// every mirror's source and drops the slot: the next session makes the
// slot anew and copies every mirror again (SlotLost).
func (s *Stream) repairPublication(ctx context.Context) error {
	slog.Error("the publication is gone: making it again, with a new slot, and copying every mirror again", "database", s.Config.Database, "publication", Publication)
	conn, err := pgx.ConnectConfig(ctx, sessionConfig(s.Config))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := ensurePublication(ctx, conn); err != nil {
		return err
	}
	seen := map[uint32]bool{}
	for _, m := range s.Mirrors.All() {
		if m.SourceOID == 0 || seen[m.SourceOID] {
			continue
		}
		seen[m.SourceOID] = true
		var name string
		err := conn.QueryRow(ctx, `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, m.SourceOID).Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // dropped: its mirror goes too
		}
		if err != nil {
			return err
		}
		if err := Publish(ctx, s.Config, name, m.SourceOID); err != nil {
			return err
		}
	}
	for try := 0; ; try++ {
		_, err = conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", s.Slot)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || try == 50 { // in use: our walsender is ending
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
