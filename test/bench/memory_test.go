package bench

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

const (
	bigTxnRows    = 5_000_000              // rows inserted by the first large transaction
	bigUpdateRows = 1_000_000              // rows updated by the second
	rssEvery      = 100 * time.Millisecond // sampling period
	bigTxnWait    = 170 * time.Second      // for the mirror to apply one of them
	rssTargetKB   = 512 * 1024             // the target peak: 512 MiB
)

// TestSidecarPeakRSS measures the sidecar's resident memory while it
// replicates one transaction inserting 5,000,000 rows, then one updating
// 1,000,000 of them: sampled from /proc/<pid>/status every 100 ms from
// before each transaction starts until the mirror has applied it. VmHWM
// (the kernel's own high-water mark since the sidecar started) is reported
// beside the sampled peaks.
func TestSidecarPeakRSS(t *testing.T) {
	requireBench(t)
	c, conn := startCluster(t)
	mustExec(t, conn, applySourceDDL)
	mustExec(t, conn, "CALL mooncake.create_table('src_iceberg', 'src')")
	poll := c.Conn(t, "postgres")

	bigTxn(t, c, conn, poll, "INSERT INTO src SELECT "+applySourceRows+" FROM generate_series(1, $1::bigint) g", bigTxnRows, "inserting")
	// Before deletes: the count of mooncake.columnstore_tables leaves out
	// rows deleted but not yet compacted away.
	rows := queryInt(t, poll, "SELECT rows FROM mooncake.columnstore_tables WHERE table_name = 'src_iceberg'")
	if rows != bigTxnRows {
		t.Errorf("mooncake.columnstore_tables reports %d rows in src_iceberg; want %d", rows, bigTxnRows)
	}
	bigTxn(t, c, conn, poll, "UPDATE src SET a = a + 1, c = c || ' updated' WHERE id % 5 = 0", bigUpdateRows, "updating")
	checkApplied(t, conn, applyLoad{name: "the large transactions"})
}

// bigTxn runs sql (with argument n when it takes one) as one transaction
// that must change n rows, and reports the sidecar's peak RSS until the
// mirror has applied it.
func bigTxn(t *testing.T, c *pgtest.Cluster, conn, poll *pgx.Conn, sql string, n int64, what string) {
	t.Helper()
	ctx := context.Background()
	pid := c.SidecarPID(t)
	before, err := procStatusKB(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	sampler := startRSSSampler(pid, rssEvery)

	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var args []any
	if n == bigTxnRows {
		args = append(args, n)
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != n {
		t.Fatalf("%s changed %d rows; want %d", sql, tag.RowsAffected(), n)
	}
	var target string
	if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	peakAtCommit := sampler.peak()

	wctx, cancel := context.WithTimeout(ctx, bigTxnWait)
	defer cancel()
	applyErr := waitApplied(wctx, poll, "src_iceberg", target, 100*time.Millisecond)
	applied := time.Now()
	peak, samples, lost := sampler.finish()
	hwm, hwmErr := procStatusKB(pid, "VmHWM")

	if lost != nil {
		t.Errorf("sampling stopped early, the sidecar went away: %v", lost)
	}
	if applyErr != nil {
		t.Errorf("the mirror did not apply the transaction within %v: %v", bigTxnWait, applyErr)
	}
	hwmText := "unknown"
	if hwmErr == nil {
		hwmText = mib(hwm["VmHWM"])
	}
	figure("sidecar peak RSS, one transaction %s %s rows: %s sampled (VmHWM since start %s; target <= %s, ratio %.2f)",
		what, thousands(float64(n)), mib(peak), hwmText, mib(rssTargetKB), float64(peak)/rssTargetKB)
	figure("sidecar peak RSS %s %s rows: %s before, %s until the commit (the transaction streaming in), %s after; transaction %s in PostgreSQL, commit to applied %s (%s rows/s); %d samples",
		what, thousands(float64(n)), mib(before["VmRSS"]), mib(peakAtCommit), mib(peak), secs(committed.Sub(start)),
		secs(applied.Sub(committed)), thousands(perSecond(n, applied.Sub(committed))), samples)
}
