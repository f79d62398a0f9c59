package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/pgsetup"
)

// TestSQLPrint: sql --print prints the database jobstream uses: DATABASE_URL
// when set, else the local server's.
func TestSQLPrint(t *testing.T) {
	t.Parallel()
	url := dbtest.Isolated(t)
	if res := runCmd(t, map[string]string{"DATABASE_URL": url}, "sql", "--print"); res.err != nil || strings.TrimSpace(res.stdout) != url {
		t.Fatalf("sql --print = %q (%v), want %q", res.stdout, res.err, url)
	}
	// No DATABASE_URL: the local server found like serve finds it.
	res := runCmd(t, map[string]string{"PGHOST": "127.0.0.1", "PGUSER": "postgres", "PATH": "/usr/bin"}, "sql", "--print")
	if res.err != nil || !strings.HasPrefix(res.stdout, "postgres://postgres@127.0.0.1:5432/"+pgsetup.DefaultDatabase) {
		t.Fatalf("sql --print without DATABASE_URL = %q (%v)", res.stdout, res.err)
	}
	if res := runCmd(t, map[string]string{"DATABASE_URL": url}, "sql", "--print", "--", "-c", "x"); res.err == nil {
		t.Fatal("sql --print with psql arguments: no error")
	}
}

// TestSQLRunsPsql: sql hands its arguments to psql on the database.
func TestSQLRunsPsql(t *testing.T) {
	t.Parallel()
	if pgsetup.FindClient(func(k string) string { return map[string]string{"PATH": "/usr/bin:/bin"}[k] }, "psql") == "" {
		t.Skip("psql not installed")
	}
	url := dbtest.Isolated(t)
	res := runCmd(t, map[string]string{"DATABASE_URL": url, "PATH": "/usr/bin:/bin"}, "sql", "--", "-At", "-c", "SELECT count(*) FROM job_chunks_default")
	if res.err != nil || strings.TrimSpace(res.stdout) != "0" {
		t.Fatalf("sql -- -c: %q (%v) %s", res.stdout, res.err, res.stderr)
	}
}

// TestAnalystCommands: analyst create prints a DSN that logs in as a role
// seeing only its tenant's jobs; list and drop work.
func TestAnalystCommands(t *testing.T) {
	t.Parallel()
	url := dbtest.Isolated(t)
	env := map[string]string{"DATABASE_URL": url}
	ctx := context.Background()
	owner, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	if _, err := owner.Exec(ctx, `INSERT INTO jobs (id, tenant, engine, request) VALUES (gen_random_uuid(), 'acme', 'sim', '{}'), (gen_random_uuid(), 'globex', 'sim', '{}')`); err != nil {
		t.Fatal(err)
	}
	res := runCmd(t, env, "analyst", "create", "--tenant", "acme")
	if res.err != nil || !strings.Contains(res.stderr, "created for tenant acme") {
		t.Fatalf("analyst create: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	dsn := strings.TrimSpace(res.stdout)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil || !strings.HasPrefix(cfg.User, "analyst_") || cfg.Password == "" {
		t.Fatalf("DSN %q: user %q (%v)", dsn, cfg.User, err)
	}
	t.Cleanup(func() { runCmd(t, env, "analyst", "drop", cfg.User) })
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var tenants string
	err = conn.QueryRow(ctx, `SELECT string_agg(DISTINCT tenant, ',') FROM jobs`).Scan(&tenants)
	conn.Close(ctx)
	if err != nil || tenants != "acme" {
		t.Fatalf("the analyst sees tenants %q (%v), want acme", tenants, err)
	}
	if res := runCmd(t, env, "analyst", "list"); res.err != nil || !strings.Contains(res.stdout, cfg.User) {
		t.Fatalf("analyst list: %v\n%s", res.err, res.stdout)
	}
	if res := runCmd(t, env, "analyst", "drop", cfg.User); res.err != nil || !strings.Contains(res.stdout, "dropped") {
		t.Fatalf("analyst drop: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "analyst", "create"); res.err == nil {
		t.Fatal("analyst create without --tenant: no error")
	}
}
