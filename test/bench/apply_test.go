package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The source table of the apply benchmarks: a key and four columns of the
// common kinds.
const applySourceDDL = `CREATE TABLE src (
	id bigint PRIMARY KEY, a integer, b double precision, c text, d timestamptz)`

// applySourceRows is the SELECT list producing row g of src.
const applySourceRows = `g, (g % 100000)::int, g * 0.5, 'row ' || g,
	timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'`

const (
	insertRows  = 1_000_000 // rows inserted by the insert-only load
	updateBase  = 1_000_000 // rows in src before the update-heavy load
	updateRows  = 200_000   // rows updated by the update-heavy load
	rowsPerTxn  = 1_000     // rows per source transaction in both loads
	catchUpWait = 150 * time.Second
)

// applyLoad is a workload run on src while no sidecar reads the WAL.
type applyLoad struct {
	name    string
	preload int64 // rows in src before the mirror is created
	rows    int64 // rows changed by the load
	txns    int   // transactions of the load
	// stmt is the k-th transaction's statement (k from 0).
	stmt func(k int) (string, []any)
}

// TestCDCApplyThroughput measures how fast the sidecar applies a backlog of
// replicated changes, next to pg_recvlogical draining the same WAL with
// pgoutput into /dev/null. The load runs while the sidecar is held at a
// gate, so both start from the same backlog on an otherwise idle machine:
// first pg_recvlogical drains its own slot up to the load's end, then the
// gate opens and the sidecar catches up. The sidecar's start (until its
// walsender is streaming) is reported apart and left out of its rate.
func TestCDCApplyThroughput(t *testing.T) {
	requireBench(t)
	loads := []applyLoad{
		{
			name: "insert-only", rows: insertRows, txns: insertRows / rowsPerTxn,
			stmt: func(k int) (string, []any) {
				return "INSERT INTO src SELECT " + applySourceRows + " FROM generate_series($1::bigint, $2::bigint) g",
					[]any{k*rowsPerTxn + 1, (k + 1) * rowsPerTxn}
			},
		},
		{
			// Every fifth row of the table, 1,000 rows of a 5,000-key range
			// per transaction: the updates touch all of the mirror's data.
			name: "update-heavy", preload: updateBase, rows: updateRows, txns: updateRows / rowsPerTxn,
			stmt: func(k int) (string, []any) {
				const span = updateBase / (updateRows / rowsPerTxn)
				return `UPDATE src SET a = a + 1, b = b * 1.5, d = d + interval '1 minute'
					WHERE id > $1 AND id <= $2 AND id % 5 = 0`, []any{k * span, (k + 1) * span}
			},
		},
	}
	for _, load := range loads {
		t.Run(load.name, func(t *testing.T) { runApplyBench(t, load) })
	}
}

func runApplyBench(t *testing.T, load applyLoad) {
	ctx := context.Background()
	g := newGate(t)
	c, conn := startCluster(t, g.option())
	mustExec(t, conn, applySourceDDL)
	if load.preload > 0 {
		mustExec(t, conn, "INSERT INTO src SELECT "+applySourceRows+" FROM generate_series(1, $1::bigint) g", load.preload)
		mustExec(t, conn, "VACUUM ANALYZE src")
	}
	mustExec(t, conn, "CALL mooncake.create_table('src_iceberg', 'src')")
	slot := mooncakeSlot(t, conn)

	// pg_recvlogical's own publication and slot, made before the load so
	// that it has the same WAL to decode.
	mustExec(t, conn, "CREATE PUBLICATION bench_pub FOR TABLE src")
	mustExec(t, conn, "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')")

	holdSidecar(t, c, g, conn, slot)

	// The load, while nothing reads the WAL. The last transaction notes the
	// WAL insert position before its commit: its commit record starts at or
	// after it, and every earlier transaction's before it.
	loadStart := time.Now()
	var target string
	for k := 0; k < load.txns; k++ {
		sql, args := load.stmt(k)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if tag.RowsAffected() != rowsPerTxn {
			t.Fatalf("transaction %d changed %d rows; want %d", k, tag.RowsAffected(), rowsPerTxn)
		}
		if k == load.txns-1 {
			if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	loadTime := time.Since(loadStart)
	endPos := queryText(t, conn, "SELECT pg_current_wal_lsn()::text")
	walBytes := queryInt(t, conn, "SELECT pg_wal_lsn_diff($1::pg_lsn, confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'bench_recv'", endPos)

	recvTime := runRecvLogical(t, c.Port(), endPos)

	// Open the gate: the waiting sidecar starts, loads its mirrors, starts
	// streaming and applies the backlog.
	poll := c.Conn(t, "postgres")
	gateOpened := time.Now()
	g.open(t)
	wctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	if err := waitSlotActive(wctx, conn, slot); err != nil {
		t.Fatal(err)
	}
	streaming := time.Now()
	g.profile(t, "cdc-"+load.name, 10*time.Second)
	if err := waitApplied(wctx, poll, "src_iceberg", target, 10*time.Millisecond); err != nil {
		t.Fatalf("the mirror did not apply the load within %v: %v", catchUpWait, err)
	}
	caughtUp := time.Now()
	startup := streaming.Sub(gateOpened)
	apply := caughtUp.Sub(streaming)

	ours := perSecond(load.rows, apply)
	theirs := perSecond(load.rows, recvTime)
	figure("cdc %s: %s rows/s (pg_recvlogical %s rows/s, ratio %.2f; target >= 0.90)",
		load.name, thousands(ours), thousands(theirs), ours/theirs)
	figure("cdc %s: %s rows in %d transactions, %s of WAL: sidecar start %s, apply %s (%s rows/s counting the start); pg_recvlogical %s; load itself %s (%s rows/s)",
		load.name, thousands(float64(load.rows)), load.txns, mib(walBytes/1024), secs(startup), secs(apply),
		thousands(perSecond(load.rows, caughtUp.Sub(gateOpened))), secs(recvTime), secs(loadTime),
		thousands(perSecond(load.rows, loadTime)))

	checkApplied(t, conn, load)
}

// runRecvLogical drains slot bench_recv with pg_recvlogical up to endPos
// and returns how long that took, from the program's start to its exit.
func runRecvLogical(t *testing.T, port int, endPos string) time.Duration {
	t.Helper()
	prog := filepath.Join(pgBindir(t), "pg_recvlogical")
	cmd := exec.Command(prog, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres",
		"--slot", "bench_recv", "--start", "--endpos", endPos, "--no-loop",
		"-o", "proto_version=2", "-o", "publication_names=bench_pub", "-f", "/dev/null", "-v")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("pg_recvlogical: %v\n%s", err, out)
	}
	// -v makes it say how it stopped: at a WAL record or at a keepalive.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("%s", lines[len(lines)-1])
	return took
}

// checkApplied compares the mirror with its source after the load, so the
// figures are not those of a mirror that skipped work.
func checkApplied(t *testing.T, conn *pgx.Conn, load applyLoad) {
	t.Helper()
	const q = "SELECT count(*)::text || ' ' || coalesce(sum(a), 0)::text || ' ' || coalesce(max(d), 'epoch')::text FROM "
	src := queryText(t, conn, q+"src")
	mirror := queryText(t, conn, q+"src_iceberg")
	if src != mirror {
		t.Errorf("after %s: src has (count, sum(a), max(d)) = %s; src_iceberg has %s", load.name, src, mirror)
	}
}
