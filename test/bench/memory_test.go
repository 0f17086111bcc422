package bench

import (
	"context"
	"testing"
	"time"
)

const (
	bigTxnRows  = 5_000_000              // rows of the one large transaction
	rssEvery    = 100 * time.Millisecond // sampling period
	bigTxnWait  = 170 * time.Second      // for the mirror to apply it
	rssTargetKB = 512 * 1024             // the target peak: 512 MiB
)

// TestSidecarPeakRSS measures the sidecar's resident memory while it
// replicates one transaction inserting 5,000,000 rows: sampled from
// /proc/<pid>/status every 100 ms from before the transaction starts until
// the mirror has applied it. VmHWM (the kernel's own high-water mark since
// the sidecar started) is reported beside the sampled peak.
func TestSidecarPeakRSS(t *testing.T) {
	requireBench(t)
	ctx := context.Background()
	c, conn := startCluster(t)
	mustExec(t, conn, applySourceDDL)
	mustExec(t, conn, "CALL mooncake.create_table('src_iceberg', 'src')")

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
	if _, err := tx.Exec(ctx, "INSERT INTO src SELECT "+applySourceRows+" FROM generate_series(1, $1::bigint) g", bigTxnRows); err != nil {
		t.Fatal(err)
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
	poll := c.Conn(t, "postgres")
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
	figure("sidecar peak RSS, one %s-row transaction: %s sampled (VmHWM %s; target <= %s, ratio %.2f)",
		thousands(bigTxnRows), mib(peak), hwmText, mib(rssTargetKB), float64(peak)/rssTargetKB)
	figure("sidecar peak RSS: %s before, %s until the commit (the transaction streaming in), %s after; transaction %s in PostgreSQL, commit to applied %s (%s rows/s); %d samples",
		mib(before["VmRSS"]), mib(peakAtCommit), mib(peak), secs(committed.Sub(start)), secs(applied.Sub(committed)),
		thousands(perSecond(bigTxnRows, applied.Sub(committed))), samples)

	if applyErr == nil {
		rows := queryInt(t, poll, "SELECT rows FROM mooncake.columnstore_tables WHERE table_name = 'src_iceberg'")
		if rows != bigTxnRows {
			t.Errorf("mooncake.columnstore_tables reports %d rows in src_iceberg; want %d", rows, bigTxnRows)
		}
	}
}
