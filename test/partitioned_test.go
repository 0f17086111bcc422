package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// TestPartitionedUnderLoad mirrors a partitioned table while writers
// insert into it and into its partitions, update rows within and across
// partitions (the partition key) and delete them, and partitions are
// created, attached with rows, detached (also CONCURRENTLY), truncated and
// dropped, a column is added, and the sidecar is killed right after
// several of those statements (before or while the mirror copies its
// source again); a second mirror is created while the writers run. At
// each checkpoint the mirrors hold exactly the rows of the partitioned
// table, once each.
func TestPartitionedUnderLoad(t *testing.T) {
	c, conn := startMooncake(t)
	ctx := context.Background()
	exec(t, conn, `CREATE TABLE orders (id bigint, day date, qty int, note text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)`)
	for m := 1; m <= 4; m++ {
		exec(t, conn, fmt.Sprintf(`CREATE TABLE orders_%d PARTITION OF orders FOR VALUES FROM ('2024-%02d-01') TO ('2024-%02d-01')`, m, m, m+1))
	}
	exec(t, conn, `INSERT INTO orders SELECT g, date '2024-01-01' + g % 120, g % 7, 'n' || g FROM generate_series(1, 4000) g`)
	exec(t, conn, `CALL mooncake.create_table('orders_mirror', 'orders')`)

	mirrors := []string{"orders_mirror"}
	var nextID atomic.Int64
	nextID.Store(100000)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var applied atomic.Int64
	startWriters := func(round int) {
		stop.Store(false)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc := c.Conn(t, "postgres")
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for !stop.Load() {
					day := time.Date(2024, 1, 1+r.IntN(182), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
					var q string
					switch r.IntN(5) {
					case 0, 1:
						q = fmt.Sprintf("INSERT INTO orders (id, day, qty) VALUES (%d, '%s', %d)", nextID.Add(1), day, r.IntN(10))
					case 2:
						q = fmt.Sprintf("UPDATE orders SET qty = qty + 1, note = 'u' WHERE id = %d", 1+r.IntN(4000))
					case 3:
						// Moves the row to another partition (or fails
						// when none takes the new day).
						q = fmt.Sprintf("UPDATE orders SET day = '%s' WHERE id = %d", day, 1+r.IntN(4000))
					case 4:
						q = fmt.Sprintf("DELETE FROM orders WHERE id = %d", 1+r.IntN(4000))
					}
					// Rows for a day no partition takes fail (23514), as
					// do statements on a partition being attached.
					if _, err := wc.Exec(ctx, q); err == nil {
						applied.Add(1)
					}
					time.Sleep(time.Millisecond)
				}
			}()
		}
	}
	checkpoint := func(what string) {
		t.Helper()
		stop.Store(true)
		wg.Wait()
		for _, m := range mirrors {
			waitConverged(t, conn, "orders", m, 60*time.Second)
			if n := queryInt(t, conn, `SELECT count(*) - count(DISTINCT (id, day)) FROM `+m); n != 0 {
				t.Fatalf("after %s: %s has %d duplicate keys", what, m, n)
			}
			var state string
			if err := conn.QueryRow(ctx, "SELECT state || coalesce(': ' || error, '') FROM mooncake.columnstore_tables WHERE table_name = $1", m).Scan(&state); err != nil || state != "ready" {
				t.Fatalf("after %s: %s state %q (%v)", what, m, state, err)
			}
		}
		t.Logf("after %s: %d rows, %d statements applied", what, queryInt(t, conn, "SELECT count(*) FROM orders"), applied.Load())
	}
	kill := func() {
		c.KillSidecar(t)
		c.WaitSidecar(t)
	}

	steps := []struct {
		name string
		run  func()
	}{
		{"create_table under load", func() {
			exec(t, conn, `CALL mooncake.create_table('orders_mirror_b', 'orders')`)
			mirrors = append(mirrors, "orders_mirror_b")
		}},
		{"a partition created later", func() {
			exec(t, conn, `CREATE TABLE orders_5 PARTITION OF orders FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')`)
		}},
		{"ATTACH of a table with rows, sidecar killed", func() {
			exec(t, conn, `CREATE TABLE orders_6 (LIKE orders INCLUDING ALL)`)
			exec(t, conn, `INSERT INTO orders_6 SELECT g, date '2024-06-01' + g % 30, 1, 'jun' FROM generate_series(50000, 50999) g`)
			exec(t, conn, `ALTER TABLE orders ATTACH PARTITION orders_6 FOR VALUES FROM ('2024-06-01') TO ('2024-07-01')`)
			kill()
		}},
		{"DETACH", func() {
			exec(t, conn, `ALTER TABLE orders DETACH PARTITION orders_1`)
			exec(t, conn, `INSERT INTO orders_1 VALUES (60000, '2024-01-05', 1, 'detached')`)
		}},
		{"TRUNCATE of a partition, sidecar killed", func() {
			exec(t, conn, `TRUNCATE orders_2`)
			kill()
		}},
		{"ATTACH back", func() {
			exec(t, conn, `ALTER TABLE orders ATTACH PARTITION orders_1 FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')`)
		}},
		{"DETACH CONCURRENTLY, sidecar killed", func() {
			exec(t, conn, `ALTER TABLE orders DETACH PARTITION orders_3 CONCURRENTLY`)
			kill()
		}},
		{"DROP TABLE of a partition", func() {
			exec(t, conn, `DROP TABLE orders_4`)
		}},
		{"ADD COLUMN, sidecar killed", func() {
			exec(t, conn, `ALTER TABLE orders ADD COLUMN extra int`)
			exec(t, conn, `UPDATE orders SET extra = qty WHERE id % 10 = 0`)
			kill()
		}},
	}
	for i, s := range steps {
		startWriters(i)
		time.Sleep(300 * time.Millisecond)
		s.run()
		time.Sleep(300 * time.Millisecond)
		checkpoint(s.name)
	}
}

// TestPartitionReplicaIdentityChanged gives a partition of a mirrored
// partitioned table a replica identity without the table's key: its
// updates then log old rows without the key, and the mirror is marked
// broken, with the reason, rather than change the wrong rows. resync_table
// leaves it broken, with the partition named, while the partition stays
// so, and repairs it after.
func TestPartitionReplicaIdentityChanged(t *testing.T) {
	_, conn := startMooncake(t)
	exec(t, conn, `CREATE TABLE codes (id int, day date, code int NOT NULL, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)`)
	exec(t, conn, `CREATE TABLE codes_2024 PARTITION OF codes FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`)
	exec(t, conn, `INSERT INTO codes SELECT g, date '2024-01-01' + g, g FROM generate_series(1, 10) g`)
	exec(t, conn, `CALL mooncake.create_table('codes_mirror', 'codes')`)
	exec(t, conn, `CREATE UNIQUE INDEX codes_2024_code ON codes_2024 (code)`)
	exec(t, conn, `ALTER TABLE codes_2024 REPLICA IDENTITY USING INDEX codes_2024_code`)
	exec(t, conn, `UPDATE codes SET code = 100, id = 100 WHERE id = 1`)
	var state, reason string
	if _, ok := waitFor(10*time.Second, func() bool {
		conn.QueryRow(context.Background(), `SELECT state, coalesce(error, '') FROM mooncake.columnstore_tables WHERE table_name = 'codes_mirror'`).Scan(&state, &reason)
		return state == "broken"
	}); !ok {
		t.Fatalf("mirror state %q (%s); want broken", state, reason)
	}
	t.Logf("broken: %s", reason)
	_, err := conn.Exec(context.Background(), `CALL mooncake.resync_table('codes_mirror')`)
	if sqlState(err) != "XX001" {
		t.Fatalf("resync_table: %v; want XX001 (broken)", err)
	}
	reason = pgtest.QueryText(t, conn, `SELECT error FROM mooncake.columnstore_tables WHERE table_name = 'codes_mirror'`)
	if !strings.Contains(reason, "partition public.codes_2024") {
		t.Fatalf("broken after resync_table for %q; want the partition named", reason)
	}
	exec(t, conn, `ALTER TABLE codes_2024 REPLICA IDENTITY DEFAULT`)
	exec(t, conn, `CALL mooncake.resync_table('codes_mirror')`)
	exec(t, conn, `UPDATE codes SET code = 200 WHERE id = 2`)
	waitConverged(t, conn, "codes", "codes_mirror", 10*time.Second)
}
