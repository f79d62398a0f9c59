package store_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
)

// TestAnalyticsFileMatchesMigrations: sql/analytics.sql re-creates exactly
// the views the migrations install, security_invoker included.
func TestAnalyticsFileMatchesMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.Isolated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	defs := func() map[string]string {
		rows, err := pool.Query(ctx, `SELECT c.relname, pg_get_viewdef(c.oid) || coalesce(array_to_string(c.reloptions, ','), '')
			FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]string{}
		for rows.Next() {
			var n, d string
			if err := rows.Scan(&n, &d); err != nil {
				t.Fatal(err)
			}
			m[n] = d
		}
		return m
	}
	before := defs()
	src, err := os.ReadFile("../../sql/analytics.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(src)); err != nil {
		t.Fatalf("sql/analytics.sql: %v", err)
	}
	after := defs()
	if len(after) != len(before) {
		t.Errorf("views: %d after, %d before", len(after), len(before))
	}
	for name, d := range before {
		if after[name] != d {
			t.Errorf("view %s differs from its migration:\nmigrated: %s\nfile:     %s", name, d, after[name])
		}
		if !strings.Contains(d, "security_invoker=true") {
			t.Errorf("view %s is not security_invoker: %s", name, d)
		}
	}
}
