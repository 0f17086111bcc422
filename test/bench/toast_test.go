package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// The source of the TOAST benchmark: a key, two small columns and a large
// text column stored out of line without compression (storage EXTERNAL),
// so that an update of a small column leaves it in the TOAST table and
// logical replication sends it as "unchanged".
const toastSourceDDL = `CREATE TABLE src (id bigint PRIMARY KEY, n integer NOT NULL, note text, big text);
	ALTER TABLE src ALTER COLUMN big SET STORAGE EXTERNAL`

// toastBig is the large value of row $1: 200 md5 digests, 6,400 characters
// no two rows share.
const toastBig = `(SELECT string_agg(md5($1::bigint::text || ':' || j), '') FROM generate_series(1, 200) j)`

const (
	toastTxns      = 3_000            // single-row transactions of each burst
	toastCatchUp   = 15 * time.Minute // reading values back row by row, the 20,000-row table took over 6 minutes
	toastFlushWait = 60 * time.Second
)

// ToastFsyncEnv set to "off" runs the TOAST benchmark's source with
// pgtest's fsync = off, under which one session commits over 10,000
// transactions a second; by default the source commits durably, as an
// OLTP database does (700 to 5,000 a second on the development machine,
// as busy as it is).
const ToastFsyncEnv = "MOONCAKE_BENCH_FSYNC"

// TestToastApply measures how the sidecar keeps up with OLTP where most
// updates leave a large TOASTed value unchanged on rows already in the
// mirror's data files: the stream does not carry the value, which the
// apply must read back from the mirror. One session runs 3,000 single-row
// transactions, most of them updates of a small column of a random row,
// some inserts and deletes, first while the sidecar follows (the time
// from the burst's last commit until the mirror shows it), then while the
// sidecar is held at a gate (the rate at which it applies that backlog).
// Each is printed next to the source's own time for the burst, and the
// mirror must equal the source after each.
func TestToastApply(t *testing.T) {
	requireBench(t)
	for _, rows := range []int{20_000, 5_000} {
		t.Run(fmt.Sprintf("%d_rows", rows), func(t *testing.T) { runToastBench(t, rows) })
	}
}

func runToastBench(t *testing.T, rows int) {
	ctx := context.Background()
	g := newGate(t)
	fsync := "on"
	if os.Getenv(ToastFsyncEnv) == "off" {
		fsync = "off"
	}
	c, conn := startCluster(t, g.option(), pgtest.WithSetting("fsync", fsync))
	mustExec(t, conn, toastSourceDDL)
	mustExec(t, conn, "INSERT INTO src SELECT g, 0, 'row ' || g, (SELECT string_agg(md5(g::text || ':' || j), '') FROM generate_series(1, 200) j) FROM generate_series(1, $1::bigint) g", rows)
	mustExec(t, conn, "VACUUM ANALYZE src")
	if n := queryInt(t, conn, "SELECT count(*) FROM pg_class WHERE relname = 'src' AND pg_relation_size(reltoastrelid) > 0"); n != 1 {
		t.Fatal("src's large values are not stored out of line")
	}
	// The initial copy writes the rows to a data file: every row updated
	// below is read back from Parquet.
	mustExec(t, conn, "CALL mooncake.create_table('src_iceberg', 'src')")
	slot := mooncakeSlot(t, conn)
	poll := c.Conn(t, "postgres")

	// ids holds the keys of src's rows, for the burst to pick from.
	ids := make([]int64, rows)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	next := int64(rows + 1)
	r := rand.New(rand.NewPCG(uint64(rows), 1))

	t.Run("live", func(t *testing.T) {
		took, target := toastBurst(t, conn, r, &ids, &next)
		committed := time.Now()
		wctx, cancel := context.WithTimeout(ctx, toastCatchUp)
		defer cancel()
		if err := waitApplied(wctx, poll, "src_iceberg", target, 10*time.Millisecond); err != nil {
			t.Fatalf("the mirror did not apply the burst within %v: %v", toastCatchUp, err)
		}
		lag := time.Since(committed)
		figure("toast %d rows, fsync %s, sidecar following: burst of %s transactions %s (%s tx/s); visible %s after its last commit (burst / burst until visible %.2f)",
			rows, fsync, thousands(toastTxns), secs(took), thousands(perSecond(toastTxns, took)), secs(lag), took.Seconds()/(took+lag).Seconds())
		checkToastMirror(t, conn)
	})

	t.Run("backlog", func(t *testing.T) {
		// Rows the first burst changed are in data files too, as after any
		// flush.
		if _, ok := waitFor(toastFlushWait, func() bool {
			return queryInt(t, poll, `SELECT count(*) FROM mooncake.columnstore_tables
				WHERE table_name = 'src_iceberg' AND flushed_lsn >= applied_lsn AND unflushed_rows = 0`) == 1
		}); !ok {
			t.Fatalf("src_iceberg was not flushed within %v", toastFlushWait)
		}
		holdSidecar(t, c, g, conn, slot)
		took, target := toastBurst(t, conn, r, &ids, &next)
		gateOpened := time.Now()
		g.open(t)
		wctx, cancel := context.WithTimeout(ctx, toastCatchUp)
		defer cancel()
		if err := waitSlotActive(wctx, conn, slot); err != nil {
			t.Fatal(err)
		}
		streaming := time.Now()
		g.profile(t, fmt.Sprintf("cdc-toast-%d", rows), 10*time.Second)
		if err := waitApplied(wctx, poll, "src_iceberg", target, 10*time.Millisecond); err != nil {
			t.Fatalf("the mirror did not apply the burst within %v: %v", toastCatchUp, err)
		}
		apply := time.Since(streaming)
		figure("toast %d rows, fsync %s, backlog: burst of %s transactions %s (%s tx/s); applied in %s (%s tx/s), sidecar start %s; apply rate / source rate %.2f (target >= 1.0)",
			rows, fsync, thousands(toastTxns), secs(took), thousands(perSecond(toastTxns, took)), secs(apply),
			thousands(perSecond(toastTxns, apply)), secs(streaming.Sub(gateOpened)), took.Seconds()/apply.Seconds())
		checkToastMirror(t, conn)
	})
}

// toastBurst runs toastTxns single-row transactions on src from one
// session: 90% update the small column n of a random row (the large value
// stays unchanged), 2% its note too, 4% insert a row, 4% delete one. It
// returns how long they took and the WAL insert position noted inside the
// last one, before its commit.
func toastBurst(t *testing.T, conn *pgx.Conn, r *rand.Rand, ids *[]int64, next *int64) (time.Duration, string) {
	t.Helper()
	ctx := context.Background()
	pick := func() int { return r.IntN(len(*ids)) }
	var target string
	start := time.Now()
	for k := 0; k < toastTxns; k++ {
		var sql string
		var args []any
		switch x := r.IntN(100); {
		case x < 90:
			sql, args = "UPDATE src SET n = n + 1 WHERE id = $1", []any{(*ids)[pick()]}
		case x < 92:
			sql, args = "UPDATE src SET n = n + 1, note = note || '.' WHERE id = $1", []any{(*ids)[pick()]}
		case x < 96:
			sql, args = "INSERT INTO src VALUES ($1::bigint, 0, 'new ' || $1::bigint, "+toastBig+")", []any{*next}
			*ids = append(*ids, *next)
			*next++
		default:
			i := pick()
			sql, args = "DELETE FROM src WHERE id = $1", []any{(*ids)[i]}
			(*ids)[i] = (*ids)[len(*ids)-1]
			*ids = (*ids)[:len(*ids)-1]
		}
		if k < toastTxns-1 {
			if tag, err := conn.Exec(ctx, sql, args...); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("%s %v: %v (%d rows)", sql, args, err, tag.RowsAffected())
			}
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tag, err := tx.Exec(ctx, sql, args...); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s %v: %v (%d rows)", sql, args, err, tag.RowsAffected())
		}
		if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start), target
}

// checkToastMirror compares the mirror with its source row for row, large
// values included.
func checkToastMirror(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for _, q := range []string{
		"SELECT count(*) FROM (SELECT * FROM src EXCEPT ALL SELECT * FROM src_iceberg) d",
		"SELECT count(*) FROM (SELECT * FROM src_iceberg EXCEPT ALL SELECT * FROM src) d",
	} {
		if n := queryInt(t, conn, q); n != 0 {
			t.Errorf("%s: %d rows", q, n)
		}
	}
}
