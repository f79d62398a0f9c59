package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

// seedTenant gives tenant a row in every table an analyst can read: a
// finished job with content and tool chunks (and so events), a pixel job,
// a stream cursor, a hold and a retention policy.
func seedTenant(t *testing.T, pool *pgxpool.Pool, st *store.Store, tenant string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	id, _ := uuid.NewV7()
	sess, _ := uuid.NewV7()
	stmts := []string{
		`INSERT INTO jobs (id, tenant, engine, request, status, finish_reason, usage, started_at, finished_at)
		 VALUES ($1, $2, 'sim', '{}', 'completed', 'tool_calls', '{"input_tokens":3,"output_tokens":5}', now(), now())`,
		`INSERT INTO pixel_jobs (job_id, insight_id, expression, sync) VALUES ($1, 'i', 'LLM()', false)`,
		`INSERT INTO sessions (id, token_hash, tenant, expires_at)
		 SELECT $3::uuid, sha256(convert_to($3::uuid::text, 'UTF8')), $2, now() + interval '1 day' WHERE $1::uuid IS NOT NULL`,
		`INSERT INTO stream_cursors (job_id, session_id) SELECT $1, $3 WHERE $2::text IS NOT NULL`,
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s, pgxArgs(s, id, tenant, sess)...); err != nil {
			t.Fatalf("seed %s: %v", tenant, err)
		}
	}
	if err := dbtest.InsertChunks(ctx, pool, id, []dbtest.Chunk{
		{StreamType: "content", Data: `{"content":"hi"}`},
		{StreamType: "tool", Data: `{"index":0,"id":"c1","type":"function","function":{"name":"lookup","arguments":"{}"}}`},
		{StreamType: "content", Data: `{"finish_reason":"tool_calls"}`},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.HoldPlaceTenant(ctx, tenant, id, "seed", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PolicySet(ctx, tenant, 30); err != nil {
		t.Fatal(err)
	}
	return id
}

// pgxArgs passes the arguments a statement uses ($1..$n).
func pgxArgs(s string, args ...any) []any {
	n := 0
	for i := range args {
		if strings.Contains(s, fmt.Sprintf("$%d", i+1)) {
			n = i + 1
		}
	}
	return args[:n]
}

func analystPool(t *testing.T, dbURL, role, password string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	pool, err := pgxpool.New(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestAnalystSeesOnlyItsTenant: an analyst role sees exactly its tenant's
// rows in every table and view it may read, and can write nothing.
func TestAnalystSeesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.Isolated(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	mine := seedTenant(t, pool, st, "acme")
	seedTenant(t, pool, st, "globex")

	an, password, err := st.AnalystCreate(ctx, "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.AnalystDrop(context.Background(), an.Role) })
	other, _, err := st.AnalystCreate(ctx, "", "globex")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.AnalystDrop(context.Background(), other.Role) })
	if _, _, err := st.AnalystCreate(ctx, an.Role, "acme"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second create of %s: %v, want ErrConflict", an.Role, err)
	}
	ap := analystPool(t, dbURL, an.Role, password)

	// Every relation the analyst role may read.
	rows, err := pool.Query(ctx, `
		SELECT c.relname,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped),
		       c.relkind IN ('r', 'p')
		FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v')
		  AND has_table_privilege('jobstream_analyst', c.oid, 'SELECT')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct {
		name          string
		tenant, table bool
	}
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.name, &x.tenant, &x.table)
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rels {
		names = append(names, r.name)
	}
	for _, want := range []string{"jobs", "job_chunks", "job_events", "job_transcripts", "job_timings", "finish_reasons", "tool_usage", "token_usage_daily", "job_stats", "analysts"} {
		if !slices.Contains(names, want) {
			t.Errorf("analysts cannot read %s (they can read %v)", want, names)
		}
	}
	for _, bad := range []string{"api_keys", "sessions", "goose_db_version", "admin_events", "retention_settings"} {
		if slices.Contains(names, bad) {
			t.Errorf("analysts can read %s", bad)
		}
	}

	count := func(p *pgxpool.Pool, q string, args ...any) int {
		t.Helper()
		var n int
		if err := p.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for _, r := range rels {
		var own, total, foreign int
		total = count(ap, `SELECT count(*) FROM `+r.name)
		switch {
		case r.tenant:
			own = count(pool, `SELECT count(*) FROM `+r.name+` WHERE tenant = 'acme'`)
			foreign = count(ap, `SELECT count(*) FROM `+r.name+` WHERE tenant <> 'acme'`)
		default:
			col := "job_id"
			own = count(pool, `SELECT count(*) FROM `+r.name+` WHERE `+col+` = $1`, mine)
			foreign = count(ap, `SELECT count(*) FROM `+r.name+` WHERE `+col+` <> $1`, mine)
		}
		if own == 0 || total != own || foreign != 0 {
			t.Errorf("%s: the analyst sees %d rows (%d of another tenant), the tenant has %d", r.name, total, foreign, own)
		}
		if all := count(pool, `SELECT count(*) FROM `+r.name); all <= own && r.name != "analysts" {
			t.Errorf("%s: the other tenant has no rows, so the test proves nothing", r.name)
		}
		if !r.table {
			continue
		}
		for _, w := range []string{
			`INSERT INTO ` + r.name + ` DEFAULT VALUES`,
			`UPDATE ` + r.name + ` SET created_at = created_at`,
			`DELETE FROM ` + r.name,
			`TRUNCATE ` + r.name,
		} {
			_, err := ap.Exec(ctx, w)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "42703") {
				t.Errorf("analyst %q: %v, want permission denied", w, err)
			}
		}
	}
	if _, err := ap.Exec(ctx, `CREATE TABLE mine (x int)`); err == nil {
		t.Error("an analyst created a table")
	}
	// Other tenants' jobs are not reachable through job_transcript either.
	var text string
	if err := ap.QueryRow(ctx, `SELECT coalesce(string_agg(content, ''), '') FROM jobs j, job_transcript(j.id)`).Scan(&text); err != nil || text != "hi" {
		t.Errorf("transcripts the analyst sees: %q (%v), want its own %q", text, err, "hi")
	}
	// Dropping the analyst drops its role.
	if err := st.AnalystDrop(ctx, other.Role); err != nil {
		t.Fatal(err)
	}
	if n := count(pool, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, other.Role); n != 0 {
		t.Errorf("role %s survived analyst drop", other.Role)
	}
	if err := st.AnalystDrop(ctx, other.Role); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second drop: %v, want ErrNotFound", err)
	}
}

// TestServerRoleEvaluatesTenantPolicies: the row-level security policies
// may evaluate the analyst-tenant lookup for any role; as the server's role
// (jobstream_app) it must answer (NULL: not an analyst) rather than fail
// the server's query with "permission denied for table analysts", which a
// concurrent SEMOSS cursor poll hit. The server still cannot change the
// mapping.
func TestServerRoleEvaluatesTenantPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		conn.Conn().Close(ctx) //nolint:errcheck // drop the session with its role
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, `SET ROLE jobstream_app`); err != nil {
		t.Fatal(err)
	}
	var tenant *string
	if err := conn.QueryRow(ctx, `SELECT jobstream_analyst_tenant()`).Scan(&tenant); err != nil {
		t.Fatalf("jobstream_analyst_tenant() as jobstream_app: %v", err)
	}
	if tenant != nil {
		t.Errorf("jobstream_analyst_tenant() as jobstream_app = %q, want NULL", *tenant)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO analysts (role, tenant) VALUES ('x', 'y')`); err == nil {
		t.Error("jobstream_app can change the analyst mapping, want permission denied")
	}
}
