package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

// The attacks of issue 17 ("the record's integrity"), each done as the
// role the auditor had, against real PostgreSQL. Each fails without
// migrations/00040_integrity.sql.

// oldJob inserts, as the owner, a finished job of tenant created `age` ago
// (its UUIDv7 time too), with n chunks, and returns its id.
func oldJob(t *testing.T, pool *pgxpool.Pool, tenant string, age time.Duration, n int) uuid.UUID {
	t.Helper()
	at := time.Now().Add(-age)
	id := uuid.Must(uuid.NewV7())
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	copy(id[:6], ms[2:])
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO jobs (id, tenant, engine, request, status, created_at, finished_at)
		VALUES ($1, $2, 'sim', '{"command":"old"}', 'completed', $3, $3)`, id, tenant, at); err != nil {
		t.Fatal(err)
	}
	if err := dbtest.InsertChunks(ctx, pool, id, dbtest.ContentChunks(n)); err != nil {
		t.Fatal(err)
	}
	return id
}

// isolatedOwner returns a database of this test alone and a pool on it as
// the owner (the tests' superuser), closed when the test ends.
func isolatedOwner(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	url := dbtest.Isolated(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return url, pool
}

func exists(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) bool {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestTempTablesShadowNothing (item 1): as the server's session, temporary
// tables named like retention's tables change nothing a SECURITY DEFINER
// function decides, and the caller can no longer choose the time or the
// default policy a pass judges by.
func TestTempTablesShadowNothing(t *testing.T) {
	t.Parallel()
	url, owner := isolatedOwner(t)
	ctx := context.Background()
	// The test database is a copy of a template, which does not carry
	// database privileges: TEMP is still PUBLIC's here, as on a server
	// whose owner never revoked it. The attacker can create the tables.
	if _, err := store.New(owner).PolicySet(ctx, "forever", 0); err != nil {
		t.Fatal(err)
	}
	kept := oldJob(t, owner, "forever", 3*365*24*time.Hour, 2)
	defaulted := oldJob(t, owner, "nopolicy", 3*365*24*time.Hour, 2)

	// One connection, so the temp tables are the session's.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET ROLE jobstream_app`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TEMP TABLE retention_policies (tenant text, keep_days int)`,
		`CREATE TEMP TABLE retention_settings (singleton boolean, default_days int, min_days int)`,
		`INSERT INTO pg_temp.retention_settings VALUES (true, 1, 0)`,
		`CREATE TEMP TABLE job_holds (job_id uuid)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The auditor's call, with the caller's time and default: gone.
	if _, err := conn.Exec(ctx, `SELECT * FROM jobstream_retention_delete_batch('3000-01-01', 1, 1000)`); err == nil {
		t.Fatal("jobstream_retention_delete_batch still takes the time and default days from its caller")
	}
	rows, err := conn.Query(ctx, `SELECT job_id FROM jobstream_retention_delete_batch(1000, 'attacker')`)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 0 || !exists(t, owner, kept) || !exists(t, owner, defaulted) {
		t.Fatalf("with shadowing temp tables the pass deleted %v (forever-policy job kept: %v, no-policy job kept: %v)",
			deleted, exists(t, owner, kept), exists(t, owner, defaulted))
	}
	// Partitions: only from yesterday to a month ahead, at most 31 days.
	for _, q := range []string{
		`SELECT jobstream_chunk_partitions_ensure(current_date, 100000)`,
		`SELECT jobstream_chunk_partitions_ensure('1990-01-01', 1)`,
	} {
		if _, err := conn.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "partitions are made for 1 to 31 days") {
			t.Errorf("%s: %v, want refused", q, err)
		}
	}
}

// TestTempTablesCannotDropAHeldPartition (item 1): temporary jobs and
// job_holds tables made a whole day's partition, legal holds included, look
// droppable. Now the function reads the real tables.
func TestTempTablesCannotDropAHeldPartition(t *testing.T) {
	t.Parallel()
	url, owner := isolatedOwner(t)
	ctx := context.Background()
	st := store.New(owner)
	one := 1
	if _, err := st.RetentionSettingsSet(ctx, &one, nil); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().AddDate(0, 0, -40)
	day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	part := "job_chunks_p" + day.Format("20060102")
	if _, err := owner.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF job_chunks FOR VALUES FROM (jobstream_uuid_at('%s')) TO (jobstream_uuid_at('%s'))`,
		part, day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339))); err != nil {
		t.Fatal(err)
	}
	held := oldJob(t, owner, "acme", time.Since(day.Add(time.Hour)), 3)
	if _, err := st.HoldPlaceOperator(ctx, held, "litigation", "cli:legal"); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`SET ROLE jobstream_app`,
		`CREATE TEMP TABLE jobs (id uuid, tenant text, status text, created_at timestamptz)`,
		`CREATE TEMP TABLE job_holds (job_id uuid)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var dropped *int64
	if err := conn.QueryRow(ctx, `SELECT jobstream_retention_drop_partition($1, 'attacker')`, part).Scan(&dropped); err != nil {
		t.Fatal(err)
	}
	var chunks int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM job_chunks WHERE job_id = $1`, held).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if dropped != nil || chunks != 3 {
		t.Fatalf("drop_partition as the server's role with shadow tables: dropped %v, held job keeps %d of 3 chunks", dropped, chunks)
	}
}

// TestDefinerFunctionsPinSearchPath: every SECURITY DEFINER function, and
// every function a row-level security policy calls, resolves names in a
// search_path with pg_temp last (or was bound when created).
func TestDefinerFunctionsPinSearchPath(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	rows, err := pool.Query(context.Background(), `
		SELECT p.oid::regprocedure::text
		FROM pg_proc p
		WHERE p.pronamespace = current_schema()::regnamespace
		  AND p.prosqlbody IS NULL
		  AND (p.prosecdef OR EXISTS (
		        SELECT 1 FROM pg_policies pol
		        WHERE pol.schemaname = current_schema()
		          AND (pol.qual ~ ('\m' || p.proname || '\(') OR pol.with_check ~ ('\m' || p.proname || '\('))))
		  AND NOT EXISTS (
		        SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c
		        WHERE c ~ '^search_path=pg_catalog, [a-z_]+, pg_temp$')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("functions without a pinned search_path (pg_catalog, schema, pg_temp last): %v", bad)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_proc WHERE prosecdef AND pronamespace = current_schema()::regnamespace`).Scan(&n); err != nil || n < 5 {
		t.Fatalf("%d SECURITY DEFINER functions found (%v): the check looks at nothing", n, err)
	}
}

// TestAnalystIsolationHolds (item 2): an analyst of acme cannot create the
// temporary analysts table that read globex's rows; and, had it TEMP after
// all, the table would map nothing; and it cannot read a partition of
// job_chunks past row-level security.
func TestAnalystIsolationHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := dbtest.Isolated(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	mine := oldJob(t, pool, "acme", time.Hour, 1)
	theirs := oldJob(t, pool, "globex", time.Hour, 2)
	an, password, err := st.AnalystCreate(ctx, "", "acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.AnalystDrop(context.Background(), an.Role) })
	ap := analystPool(t, dbURL, an.Role, password)

	if _, err := ap.Exec(ctx, `CREATE TEMP TABLE analysts (role text, tenant text)`); sqlState(err) != "42501" {
		t.Errorf("an analyst created a temporary table: %v", err)
	}
	// Grant TEMP back, as on a database whose revoke did not happen, and
	// try the auditor's attack on one session.
	if _, err := pool.Exec(ctx, fmt.Sprintf(`GRANT TEMPORARY ON DATABASE %s TO %s`,
		pgx.Identifier{strings.TrimPrefix(mustParse(t, dbURL).Database, "/")}.Sanitize(), pgx.Identifier{an.Role}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	conn, err := ap.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range []string{
		`CREATE TEMP TABLE analysts (role text, tenant text)`,
		`INSERT INTO pg_temp.analysts VALUES (current_user, 'globex')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, view := range []string{"jobs", "job_chunks", "job_transcripts", "job_timings"} {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+view+` WHERE job_id = $1 OR false`, theirs).Scan(&n); err != nil {
			if !strings.Contains(err.Error(), "job_id") {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+view+` WHERE id = $1`, theirs).Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		if n != 0 {
			t.Errorf("with a temporary analysts table, the acme analyst sees %d rows of globex's job in %s", n, view)
		}
	}
	var own int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM job_chunks WHERE job_id = $1`, mine).Scan(&own); err != nil || own != 1 {
		t.Errorf("the analyst's own chunks: %d (%v), want 1", own, err)
	}
	// A partition directly: no privilege at all.
	var part string
	if err := pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM job_chunks WHERE job_id = $1 LIMIT 1`, theirs).Scan(&part); err != nil {
		t.Fatal(err)
	}
	if _, err := ap.Exec(ctx, `SELECT * FROM `+part); sqlState(err) != "42501" {
		t.Errorf("an analyst read partition %s directly: %v", part, err)
	}
}

func mustParse(t *testing.T, url string) *pgx.ConnConfig {
	t.Helper()
	c, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServerRoleCannotRewriteTheRecord (item 5): as the server's role,
// every rewrite the auditor made of what surrounds the chunks is refused,
// and what it may write is stamped by the database.
func TestServerRoleCannotRewriteTheRecord(t *testing.T) {
	t.Parallel()
	url, owner := isolatedOwner(t)
	app := appPool(t, url)
	ctx := context.Background()
	s := store.New(owner)
	id := completedJob(t, s, owner, "acme")
	if _, err := s.PolicySet(ctx, "acme", 30); err != nil {
		t.Fatal(err)
	}

	for _, q := range []string{
		`UPDATE jobs SET request = '{"command":"forged"}' WHERE id = $1`,
		`UPDATE jobs SET engine = 'other' WHERE id = $1`,
		`UPDATE jobs SET tenant = 'globex' WHERE id = $1`,
		`UPDATE jobs SET created_at = created_at - interval '1 year' WHERE id = $1`,
		`UPDATE jobs SET usage = '{"output_tokens":1}' WHERE id = $1`,
		`UPDATE jobs SET finish_reason = 'length' WHERE id = $1`,
		`UPDATE jobs SET status = 'failed' WHERE id = $1`,
		`UPDATE jobs SET chunk_count = 1 WHERE id = $1`,
		`UPDATE jobs SET final_hash = NULL WHERE id = $1`,
		`UPDATE retention_policies SET keep_days = 1 WHERE $1::uuid IS NOT NULL`,
		`DELETE FROM retention_policies WHERE $1::uuid IS NOT NULL`,
		`UPDATE retention_settings SET default_days = 1 WHERE $1::uuid IS NOT NULL`,
		`INSERT INTO api_keys (id, name, tenant, access_key, secret_hash) VALUES ($1, 'x', 'acme', 'x', '\x00')`,
		`UPDATE api_keys SET revoked_at = NULL WHERE $1::uuid IS NOT NULL`,
		`INSERT INTO analysts (role, tenant) VALUES ($1::text, 'globex')`,
		`INSERT INTO admin_events (event, actor) SELECT 'forged', $1::text`,
		`UPDATE job_events SET actor = 'x' WHERE job_id = $1`,
	} {
		if _, err := app.Exec(ctx, q, id); sqlState(err) != "42501" {
			t.Errorf("%s as %s: %v, want refused", q, store.AppRole, err)
		}
	}
	// As the owner too, the immutable columns and a finished job's record
	// stay (the guard is a trigger; only disabling it gets past, and the
	// chain then catches the change).
	for _, q := range []string{
		`UPDATE jobs SET request = '{"command":"forged"}' WHERE id = $1`,
		`UPDATE jobs SET usage = '{"output_tokens":1}' WHERE id = $1`,
	} {
		if _, err := owner.Exec(ctx, q, id); sqlState(err) != "42501" {
			t.Errorf("%s as the owner: %v, want refused by jobs_guard", q, err)
		}
	}

	// Events: at, db_role, seq and hash are the database's, whatever the
	// INSERT says.
	var role, actor string
	var at time.Time
	if err := app.QueryRow(ctx, `INSERT INTO job_events (job_id, tenant, event, actor, db_role, at, seq, hash)
		VALUES ($1, 'acme', 'forged', 'someone', 'postgres', '2001-01-01', 0, '\x00')
		RETURNING db_role, actor, at`, id).Scan(&role, &actor, &at); err != nil {
		t.Fatal(err)
	}
	if role != store.AppRole || time.Since(at) > time.Minute {
		t.Errorf("a forged event was stored with db_role %q at %v, want %s now", role, at, store.AppRole)
	}
	if bad := eventChainBreaks(t, owner, id); bad != "" {
		t.Errorf("event chain: %s", bad)
	}

	// Chunks for a job that does not exist, or that has ended.
	for _, job := range []uuid.UUID{uuid.Must(uuid.NewV7()), id} {
		_, err := app.Exec(ctx, `INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
			VALUES ($1, 99, 'content', '{"content":"x"}', sha256('x'))`, job)
		if err == nil || !strings.Contains(err.Error(), "no such job, or it has ended") {
			t.Errorf("chunk for job %s: %v, want refused", job, err)
		}
	}

	// The owner's changes to policies are accounted for.
	var events int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM admin_events WHERE event = 'policy_set' AND tenant = 'acme'
		AND (detail->>'keep_days')::int = 30`).Scan(&events); err != nil || events != 1 {
		t.Errorf("policy_set admin events: %d (%v), want 1", events, err)
	}
}

// eventChainBreaks recomputes a job's event chain in Go, from the stored
// fields, and says where it breaks ("" when intact).
func eventChainBreaks(t *testing.T, pool *pgxpool.Pool, job uuid.UUID) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT seq, event, coalesce(from_status, ''), coalesce(to_status, ''), coalesce(attempt::text, ''),
		       coalesce(lease_owner, ''), actor, coalesce(reason, ''), coalesce(detail::text, ''), tenant, db_role, at, hash
		FROM job_events WHERE job_id = $1 ORDER BY seq`, job)
	if err != nil {
		t.Fatal(err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chain.Event, error) {
		var e chain.Event
		return e, r.Scan(&e.Seq, &e.Event, &e.FromStatus, &e.ToStatus, &e.Attempt, &e.LeaseOwner, &e.Actor,
			&e.Reason, &e.Detail, &e.Tenant, &e.DBRole, &e.At, &e.Hash)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		return "no events"
	}
	return chain.VerifyEvents(job, events)
}

// TestVerifyCatchesAnEditedRequest (item 5): the chain's seed covers the
// request, tenant and engine: an owner who bypasses the triggers and edits
// a finished job's request is caught by both verifiers.
func TestVerifyCatchesAnEditedRequest(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	ctx := context.Background()
	for _, edit := range []string{
		`UPDATE jobs SET request = '{"command":"forged"}' WHERE id = $1`,
		`UPDATE jobs SET engine = 'other' WHERE id = $1`,
		`UPDATE jobs SET tenant = tenant || '-moved' WHERE id = $1`,
	} {
		id := completedJob(t, s, pool, "t-"+uuid.NewString())
		if res, err := s.Verify(ctx, "", id); err != nil || !res.OK {
			t.Fatalf("before the edit: %+v, %v", res, err)
		}
		a.tamper(t, edit, id)
		got, err := s.Verify(ctx, "", id)
		if err != nil || got.OK || got.Reason != chain.ReasonSeed {
			t.Errorf("%s: Verify = %s, %v; want %q", edit, show(got), err, chain.ReasonSeed)
		}
		if sql := a.verify(t, id); sql.Reason != got.Reason || sql.OK {
			t.Errorf("%s: sql/verify.sql = %s, jobstream verify = %s", edit, show(sql), show(got))
		}
	}
}

// TestVerifyCatchesAnEditedAuditTrail (item 5): events carry a chain of
// their own; an owner who edits or deletes one with the triggers off is
// caught by both verifiers, word for word.
func TestVerifyCatchesAnEditedAuditTrail(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	ctx := context.Background()
	for _, tc := range []struct{ edit, want string }{
		{`UPDATE job_events SET actor = 'someone else' WHERE job_id = $1 AND seq = 0`, "the audit trail is broken: event 0 does not match its hash"},
		{`UPDATE job_events SET at = at - interval '1 day' WHERE job_id = $1 AND seq = 1`, "the audit trail is broken: event 1 does not match its hash"},
		{`DELETE FROM job_events WHERE job_id = $1 AND seq = 0`, "the audit trail is broken: event 0 is missing"},
	} {
		id := completedJob(t, s, pool, "t-"+uuid.NewString())
		if res, err := s.Verify(ctx, "", id); err != nil || !res.OK {
			t.Fatalf("before the edit: %+v, %v", res, err)
		}
		if sql := a.verify(t, id); !sql.OK {
			t.Fatalf("sql/verify.sql before the edit: %s", show(sql))
		}
		a.tamper(t, tc.edit, id)
		got, err := s.Verify(ctx, "", id)
		if err != nil || got.OK || got.Reason != tc.want {
			t.Errorf("%s: Verify = %s, %v; want %q", tc.edit, show(got), err, tc.want)
		}
		if sql := a.verify(t, id); sql.Reason != tc.want || sql.OK {
			t.Errorf("%s: sql/verify.sql = %s, want %q", tc.edit, show(sql), tc.want)
		}
	}
}

// TestOrphanChunksAreReported (item 5): chunks whose job does not exist,
// which no write path accepts any more, are found by verify --all's query
// and by sql/verify.sql.
func TestOrphanChunksAreReported(t *testing.T) {
	t.Parallel()
	_, pool := isolatedOwner(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	ctx := context.Background()
	ghost := uuid.Must(uuid.NewV7())
	a.tamper(t, `INSERT INTO job_chunks (job_id, seq, stream_type, data, hash) VALUES ($1, 0, 'content', '{"content":"x"}', sha256('x'))`, ghost)
	ids, err := s.ChunkOrphans(ctx)
	if err != nil || len(ids) != 1 || ids[0] != ghost {
		t.Fatalf("ChunkOrphans = %v, %v; want [%s]", ids, err, ghost)
	}
	var reason string
	if err := a.conn.QueryRow(ctx, `SELECT reason FROM pg_temp.jobstream_verify_all() WHERE job_id = $1`, ghost).Scan(&reason); err != nil || reason != chain.ReasonOrphan {
		t.Errorf("sql/verify.sql on the orphan: %q, %v; want %q", reason, err, chain.ReasonOrphan)
	}
}

// TestForgedRetentionEventCountsForNothing: the server's role may insert
// events, so it can forge a retention_deleted one. That must neither block
// a legal hold nor stop retention from recording the job's real removal.
func TestForgedRetentionEventCountsForNothing(t *testing.T) {
	t.Parallel()
	url, owner := isolatedOwner(t)
	app := appPool(t, url)
	ctx := context.Background()
	st := store.New(owner)
	days := 30
	if _, err := st.RetentionSettingsSet(ctx, &days, nil); err != nil {
		t.Fatal(err)
	}
	id := oldJob(t, owner, "acme", 400*24*time.Hour, 2)
	// The forgery is refused at the door (job_events_stamp); had it got in,
	// jobstream_retention_recorded would not count it either.
	if _, err := app.Exec(ctx, `INSERT INTO job_events (job_id, tenant, event, actor)
		VALUES ($1, 'acme', 'retention_deleted', 'retention')`, id); sqlState(err) != "42501" {
		t.Fatalf("a forged retention_deleted event: %v, want refused", err)
	}
	// A hold is still placed, and lifted.
	if _, err := store.New(app).HoldPlaceTenant(ctx, "acme", id, "", "api_key:k"); err != nil {
		t.Fatalf("hold after a forged retention event: %v", err)
	}
	if _, err := store.New(app).HoldLiftTenant(ctx, "acme", id, "api_key:k"); err != nil {
		t.Fatal(err)
	}
	// The real removal is recorded, by retention's role.
	gone, err := store.New(app).RetentionDeleteBatch(ctx, 100, "test")
	if err != nil || len(gone) != 1 || gone[0].ID != id {
		t.Fatalf("RetentionDeleteBatch = %v, %v; want the job", gone, err)
	}
	var n int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM job_events WHERE job_id = $1 AND event = 'retention_deleted'
		AND db_role = 'jobstream_retention' AND detail->>'ran_by' = 'test'`, id).Scan(&n); err != nil || n != 1 {
		t.Errorf("retention's own events for the job: %d (%v), want 1", n, err)
	}
}

// TestServerRoleCannotForgeRecordEvents (review of issue 17): the server's
// role may write events, but not those that stand for a removal or a hold,
// not under another tenant's name, and not for a job that does not exist.
func TestServerRoleCannotForgeRecordEvents(t *testing.T) {
	t.Parallel()
	url, owner := isolatedOwner(t)
	app := appPool(t, url)
	ctx := context.Background()
	id := completedJob(t, store.New(owner), owner, "acme")
	for _, event := range []string{"retention_deleted", "hold_placed", "hold_lifted", "erased"} {
		if _, err := app.Exec(ctx, `INSERT INTO job_events (job_id, tenant, event, actor) VALUES ($1, 'acme', $2, 'retention')`, id, event); sqlState(err) != "42501" {
			t.Errorf("a %s event as %s: %v, want refused", event, store.AppRole, err)
		}
	}
	if _, err := app.Exec(ctx, `INSERT INTO job_events (job_id, tenant, event, actor) VALUES ($1, 'acme', 'note', 'x')`, uuid.Must(uuid.NewV7())); err == nil {
		t.Error("an event of a job that does not exist was stored")
	}
	var tenant string
	if err := app.QueryRow(ctx, `INSERT INTO job_events (job_id, tenant, event, actor) VALUES ($1, 'globex', 'note', 'x') RETURNING tenant`, id).Scan(&tenant); err != nil || tenant != "acme" {
		t.Errorf("an event under another tenant's name was stored as %q (%v), want the job's acme", tenant, err)
	}
}

// TestServerRoleCannotBackdateJobs (review of issue 17): a job the
// server's role inserts is created now, with an id of now: it cannot look
// old enough for retention, nor land in a day partition being dropped.
func TestServerRoleCannotBackdateJobs(t *testing.T) {
	t.Parallel()
	url := dbtest.Isolated(t)
	app := appPool(t, url)
	ctx := context.Background()
	old := uuid.Must(uuid.NewV7())
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().AddDate(-1, 0, 0).UnixMilli()))
	copy(old[:6], ms[2:])
	if _, err := app.Exec(ctx, `INSERT INTO jobs (id, tenant, engine, request) VALUES ($1, 'acme', 'sim', '{}')`, old); err == nil {
		t.Error("the server's role stored a job with an id of a year ago")
	}
	var created time.Time
	if err := app.QueryRow(ctx, `INSERT INTO jobs (id, tenant, engine, request, created_at) VALUES ($1, 'acme', 'sim', '{}', now() - interval '1 year') RETURNING created_at`,
		uuid.Must(uuid.NewV7())).Scan(&created); err != nil || time.Since(created) > time.Minute {
		t.Errorf("created_at %v (%v), want now", created, err)
	}
	// A finished job's every column is frozen, those added later too.
	id := completedJob(t, store.New(app), app, "acme")
	if _, err := app.Exec(ctx, `UPDATE jobs SET deadline_at = now() WHERE id = $1`, id); sqlState(err) != "42501" {
		t.Errorf("deadline_at of an ended job: %v, want refused", err)
	}
}
