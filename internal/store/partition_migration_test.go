package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/migrations"
)

// partitionVersion is the migration that partitions job_chunks.
const partitionVersion = 7

// TestPartitionMigration: partitioning job_chunks keeps its rows, columns,
// triggers, grants and dependent views whatever earlier migrations added,
// puts each chunk in its day's partition, gives nobody more privileges than
// before, and rolls back to a plain table with the same rows.
func TestPartitionMigration(t *testing.T) {
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
	if _, err := p.UpTo(ctx, partitionVersion-1); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// What a deployment may have by then: rows of an old day and of a
	// non-UUIDv7 id, an extra column, a trigger, a grant, a view.
	exec(`INSERT INTO jobs (id, tenant, engine, request) VALUES
		('018c0000-0000-7000-8000-000000000001', 't', 'sim', '{}'),
		('80e6ad4e-d866-4f0e-b629-12e0992ee152', 't', 'sim', '{}')`)
	for _, id := range []string{"018c0000-0000-7000-8000-000000000001", "80e6ad4e-d866-4f0e-b629-12e0992ee152"} {
		if err := dbtest.InsertChunks(ctx, pool, uuid.MustParse(id), dbtest.ContentChunks(3)); err != nil {
			t.Fatal(err)
		}
	}
	exec(`ALTER TABLE job_chunks ADD COLUMN extra_test text DEFAULT 'x'`)
	exec(`CREATE FUNCTION test_no_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no update'; END $$`)
	exec(`CREATE TRIGGER test_no_update BEFORE UPDATE ON job_chunks FOR EACH ROW EXECUTE FUNCTION test_no_update()`)
	exec(`GRANT SELECT ON job_chunks TO PUBLIC`)
	exec(`CREATE VIEW test_chunk_count AS SELECT job_id, count(*) AS n FROM job_chunks GROUP BY 1`)

	if _, err := p.UpTo(ctx, partitionVersion); err != nil {
		t.Fatal(err)
	}
	query := func(q string) string {
		t.Helper()
		var s sql.NullString
		if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s.String
	}
	if got := query(`SELECT string_agg(tableoid::regclass::text || ':' || seq || ':' || extra_test, ',' ORDER BY job_id, seq) FROM job_chunks`); got !=
		"job_chunks_p20231124:0:x,job_chunks_p20231124:1:x,job_chunks_p20231124:2:x,job_chunks_default:0:x,job_chunks_default:1:x,job_chunks_default:2:x" {
		t.Errorf("chunks after partitioning: %s", got)
	}
	if got := query(`SELECT relkind::text FROM pg_class WHERE relname = 'job_chunks'`); got != "p" {
		t.Errorf("job_chunks relkind %s, want p", got)
	}
	// The test's trigger, or an append-only one of an earlier migration
	// (triggers fire in name order).
	if _, err := db.ExecContext(ctx, `UPDATE job_chunks SET seq = seq`); err == nil || !strings.Contains(err.Error(), "no update") && !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update after partitioning: %v, want a trigger's error", err)
	}
	if got := query(`SELECT count(*)::text FROM pg_trigger WHERE tgrelid = 'job_chunks'::regclass AND tgname = 'test_no_update'`); got != "1" {
		t.Errorf("test trigger on job_chunks: %s, want 1", got)
	}
	if got := query(`SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants WHERE table_name = 'job_chunks' AND grantee = 'PUBLIC'`); got != "SELECT" {
		t.Errorf("PUBLIC's privileges on job_chunks: %q, want SELECT", got)
	}
	if got := query(`SELECT count(*)::text FROM information_schema.role_table_grants WHERE table_name LIKE 'job_chunks_%' AND grantee <> current_user`); got != "0" {
		t.Errorf("%s grants on partitions, want none", got)
	}
	if got := query(`SELECT sum(n)::text FROM test_chunk_count`); got != "6" {
		t.Errorf("dependent view counts %s chunks, want 6", got)
	}
	if got := query(`SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'job_chunks'::regclass
			AND conname IN ('job_chunks_job_id_fkey', 'job_chunks_pkey', 'job_chunks_seq_check')`); got != "job_chunks_job_id_fkey,job_chunks_pkey,job_chunks_seq_check" {
		t.Errorf("constraints: %s", got)
	}
	if got := query(`SELECT count(*)::text FROM pg_constraint WHERE conrelid = 'job_events'::regclass AND contype = 'f'`); got != "0" {
		t.Errorf("job_events keeps %s foreign keys, want none", got)
	}

	if _, err := p.DownTo(ctx, partitionVersion-1); err != nil {
		t.Fatal(err)
	}
	if got := query(`SELECT relkind::text || ':' || (SELECT count(*) FROM job_chunks) FROM pg_class WHERE relname = 'job_chunks'`); got != "r:6" {
		t.Errorf("after down: %s, want a plain table with 6 rows", got)
	}
	if got := query(`SELECT count(*)::text FROM pg_class WHERE relname LIKE 'job_chunks\_%'`); got != "1" { // job_chunks_pkey
		t.Errorf("after down, %s relations named job_chunks_*, want only the primary key", got)
	}
	// And up again: the whole chain works from any state.
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}
