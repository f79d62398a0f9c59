package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/migrations"
)

// holdAuthorityVersion is the migration that gives holds an authority.
const holdAuthorityVersion = 42

// TestHoldAuthorityMigration: holds placed before 00042 get an authority
// (the CLI's, held_by cli, the operator's; a key's the tenant's) without
// an event, the server's role loses every privilege on job_holds but
// SELECT and may execute only the tenant functions, every function pins
// its search_path, and the migration rolls back to the old table and
// grants.
func TestHoldAuthorityMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.IsolatedEmpty(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, holdAuthorityVersion-1); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	query := func(q string) string {
		t.Helper()
		var s sql.NullString
		if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s.String
	}
	appPrivileges := `SELECT string_agg(p, ',' ORDER BY p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
		WHERE has_table_privilege('jobstream_app', 'job_holds', p)`
	// What earlier migrations gave it (default privileges: DELETE, INSERT,
	// SELECT, UPDATE), which the down migration gives back.
	before := query(appPrivileges)
	exec(`INSERT INTO jobs (id, tenant, engine, request) VALUES
		('018c0000-0000-7000-8000-000000000001', 't', 'sim', '{}'),
		('018c0000-0000-7000-8000-000000000002', 't', 'sim', '{}')`)
	exec(`INSERT INTO job_holds (job_id, reason, held_by) VALUES
		('018c0000-0000-7000-8000-000000000001', 'case 1', 'cli'),
		('018c0000-0000-7000-8000-000000000002', 'mine', 'api_key:0190c3d4-0000-7000-8000-000000000000')`)

	if _, err := p.UpTo(ctx, holdAuthorityVersion); err != nil {
		t.Fatal(err)
	}
	if got := query(`SELECT string_agg(held_by || '=' || authority, ',' ORDER BY job_id) FROM job_holds`); got != "cli=operator,api_key:0190c3d4-0000-7000-8000-000000000000=tenant" {
		t.Errorf("authorities after 00042: %s", got)
	}
	if got := query(`SELECT count(*)::text FROM job_events WHERE event LIKE 'hold%'`); got != "0" {
		t.Errorf("00042 wrote %s hold events, want none", got)
	}
	if got := query(appPrivileges); got != "SELECT" {
		t.Errorf("after 00042 the server's role has %q on job_holds, want SELECT", got)
	}
	if got := query(`SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE proname LIKE 'jobstream_hold%'
			AND has_function_privilege('jobstream_app', oid, 'EXECUTE')`); got != "jobstream_hold_lift_tenant,jobstream_hold_place_tenant" {
		t.Errorf("the server's role may execute %q, want only the tenant functions", got)
	}
	// Every function of 00042 pins its search_path, pg_temp last.
	if got := query(`SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc
			WHERE (proname LIKE 'jobstream_hold%' OR proname LIKE 'job_holds_%')
			  AND NOT coalesce(proconfig, '{}') @> ARRAY['search_path=pg_catalog, public, pg_temp']`); got != "" {
		t.Errorf("functions without a pinned search_path: %s", got)
	}

	if _, err := p.DownTo(ctx, holdAuthorityVersion-1); err != nil {
		t.Fatal(err)
	}
	if got := query(`SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'job_holds'::regclass AND attname = 'authority' AND NOT attisdropped`); got != "0" {
		t.Errorf("after down job_holds still has authority")
	}
	if got := query(appPrivileges); got != before {
		t.Errorf("after down the server's role has %q on job_holds, want %q as before", got, before)
	}
	if got := query(`SELECT count(*)::text FROM pg_proc WHERE proname LIKE 'jobstream_hold%' OR proname LIKE 'job_holds_%'`); got != "0" {
		t.Errorf("after down %s functions of 00042 are left", got)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}
