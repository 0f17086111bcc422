package pgtest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgmooncake/mooncake/test/pgtest"
)

func TestStart(t *testing.T) {
	c := pgtest.Start(t, pgtest.WithSetting("application_name", "pgtest's self-test"))

	var one int
	if err := c.Conn(t, "postgres").QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
		t.Fatalf("select 1: %v", err)
	}
	if one != 1 {
		t.Errorf("select 1 = %d; want 1", one)
	}

	settings := []struct {
		name string
		want string
	}{
		{"wal_level", "logical"},
		{"max_replication_slots", "20"},
		{"listen_addresses", "127.0.0.1"},
		{"application_name", "pgtest's self-test"},
	}
	for _, tc := range settings {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.MustQueryString(t, "select current_setting($1)", tc.name); got != tc.want {
				t.Errorf("current_setting(%q) = %q; want %q", tc.name, got, tc.want)
			}
		})
	}

	if _, err := os.Stat(filepath.Join(c.DataDir(), "PG_VERSION")); err != nil {
		t.Errorf("DataDir() = %q holds no cluster: %v", c.DataDir(), err)
	}
	c.MustExec(t, "create table t (id int primary key)")
	c.MustExec(t, "insert into t values ($1)", 42)
	if got := c.MustQueryString(t, "select id from t"); got != "42" {
		t.Errorf("select id from t = %q; want %q", got, "42")
	}
}

func TestRestart(t *testing.T) {
	c := pgtest.Start(t)
	c.MustExec(t, "create table t (id int)")
	c.Restart(t, "immediate")
	if got := c.MustQueryString(t, "select count(*) from t"); got != "0" {
		t.Errorf("count(*) after restart = %q; want %q", got, "0")
	}
}
