package retention_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/retention"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

type testBundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
	st   *store.Store
}

func setup(t *testing.T) testBundle {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbtest.Isolated(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return testBundle{ctx: context.Background(), pool: pool, st: store.New(pool)}
}

// idAt returns a UUIDv7 whose time is at.
func idAt(t *testing.T, at time.Time) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	copy(id[:6], ms[2:])
	return id
}

// job inserts a job created at `at` with the given status and n chunks.
func (b testBundle) job(t *testing.T, tenant string, at time.Time, status string, n int) uuid.UUID {
	t.Helper()
	id := idAt(t, at)
	var finished, lease any
	if store.Terminal(status) {
		finished = at.Add(time.Second)
	}
	if status == store.StatusRunning {
		lease = "w1"
	}
	_, err := b.pool.Exec(b.ctx, `
		INSERT INTO jobs (id, tenant, engine, request, status, created_at, finished_at, lease_owner, lease_expires_at)
		VALUES ($1, $2, 'sim', '{}', $3, $4, $5, $6, CASE WHEN $6::text IS NULL THEN NULL ELSE now() + interval '1 hour' END)`,
		id, tenant, status, at, finished, lease)
	if err != nil {
		t.Fatalf("insert job: %v", err)
	}
	if err := dbtest.InsertChunks(b.ctx, b.pool, id, dbtest.ContentChunks(n)); err != nil {
		t.Fatal(err)
	}
	return id
}

// partition creates the day partition of job_chunks for d's UTC day, as
// the owner: the server makes partitions only from yesterday on, and these
// tests need days long past.
func (b testBundle) partition(t *testing.T, d time.Time) {
	t.Helper()
	d = day(d)
	_, err := b.pool.Exec(b.ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF job_chunks FOR VALUES FROM ('%s') TO ('%s');
		SELECT jobstream_revoke_all('%[1]s')`, partName(d), idFloor(d), idFloor(d.AddDate(0, 0, 1))))
	if err != nil {
		t.Fatalf("create partition %s: %v", partName(d), err)
	}
}

// idFloor is the smallest UUIDv7 of the millisecond at.
func idFloor(at time.Time) uuid.UUID {
	var id uuid.UUID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	copy(id[:6], ms[2:])
	return id
}

// defaultDays sets the server-wide default policy.
func (b testBundle) defaultDays(t *testing.T, days int) {
	t.Helper()
	if _, err := b.st.RetentionSettingsSet(b.ctx, &days, nil); err != nil {
		t.Fatal(err)
	}
}

func (b testBundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (b testBundle) exists(t *testing.T, table string) bool {
	t.Helper()
	return b.count(t, `SELECT count(*) FROM pg_class WHERE relname = $1`, table) == 1
}

func (b testBundle) chunks(t *testing.T, id uuid.UUID) int {
	return b.count(t, `SELECT count(*) FROM job_chunks WHERE job_id = $1`, id)
}

// retentionEvents counts the job's retention_deleted events, in either
// shape of job_events (with an event column, or the older to_status one).
func (b testBundle) retentionEvents(t *testing.T, id uuid.UUID) int {
	return b.count(t, `SELECT count(*) FROM job_events e WHERE e.job_id = $1 AND to_jsonb(e) @> '{"actor":"retention","event":"retention_deleted"}'
		OR e.job_id = $1 AND to_jsonb(e) @> '{"to_status":"retention_deleted"}'`, id)
}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func partName(t time.Time) string { return "job_chunks_p" + t.UTC().Format("20060102") }

// TestPass: a pass drops the partitions whose jobs have all expired by the
// database's clock, deletes the other expired jobs in batches, keeps held,
// young, unfinished and keep-forever jobs with every chunk, and records
// each removal in job_events (who ran the pass, the rule and time it
// judged by, the job's seal), which keeps the removed jobs' events.
func TestPass(t *testing.T) {
	t.Parallel()
	b := setup(t)
	base := day(time.Now()).AddDate(0, 0, -400)
	// Three day partitions of 400 days ago.
	p0, p1, p2 := base.Add(2*time.Hour), base.Add(26*time.Hour), base.Add(50*time.Hour)
	for _, d := range []time.Time{p0, p1, p2} {
		b.partition(t, d)
	}
	b.defaultDays(t, 30)
	if _, err := b.st.PolicySet(b.ctx, "forever", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.PolicySet(b.ctx, "long", 1000); err != nil {
		t.Fatal(err)
	}
	a1 := b.job(t, "a", p0, store.StatusCompleted, 5)
	a2 := b.job(t, "a", p0.Add(time.Hour), store.StatusFailed, 3)
	b1 := b.job(t, "a", p1, store.StatusCompleted, 4)
	held := b.job(t, "a", p1.Add(time.Hour), store.StatusCompleted, 6)
	forever := b.job(t, "forever", p2, store.StatusCompleted, 2)
	running := b.job(t, "a", p2.Add(time.Minute), store.StatusRunning, 2)
	long := b.job(t, "long", p2.Add(2*time.Minute), store.StatusCancelled, 1)
	// Three years ago: no partition, so the DEFAULT one.
	old := b.job(t, "a", base.AddDate(-2, 0, 0), store.StatusCompleted, 7)
	if n := b.count(t, `SELECT count(*) FROM job_chunks_default WHERE job_id = $1`, old); n != 7 {
		t.Fatalf("old job's chunks in the default partition: %d, want 7", n)
	}
	if _, err := b.st.HoldPlaceOperator(b.ctx, held, "litigation 42", "test-operator"); err != nil {
		t.Fatal(err)
	}
	opts := retention.Options{RanBy: "cli:tester@host", BatchSize: 1}

	// Dry run: the report names what would go; nothing goes.
	dry := opts
	dry.DryRun = true
	rep, err := retention.Pass(b.ctx, b.st, dry)
	if err != nil {
		t.Fatal(err)
	}
	if got := nonEmpty(rep.Partitions); got != fmt.Sprintf("[{%s 2 8}]", partName(p0)) {
		t.Errorf("dry run partitions with jobs = %s, want %s with 2 jobs and 8 chunks", got, partName(p0))
	}
	if got := jobIDs(rep.Jobs); got != fmt.Sprint([]uuid.UUID{old, b1}) {
		t.Errorf("dry run jobs = %v, want %v", got, []uuid.UUID{old, b1})
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "would drop partition "+partName(p0)) || !strings.Contains(out.String(), "would remove 4 jobs and 19 chunks") {
		t.Errorf("dry run report:\n%s", out.String())
	}
	if n := b.count(t, `SELECT count(*) FROM job_chunks`); n != 30 {
		t.Fatalf("dry run removed chunks: %d left, want 30", n)
	}
	if !b.exists(t, partName(p0)) || b.count(t, `SELECT count(*) FROM jobs WHERE jobstream_retention_recorded(id)`) != 0 {
		t.Fatal("dry run dropped a partition or recorded a removal")
	}

	// The pass itself.
	rep, err = retention.Pass(b.ctx, b.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := nonEmpty(rep.Partitions); got != fmt.Sprintf("[{%s 2 8}]", partName(p0)) || rep.PartitionRows != 2 {
		t.Errorf("partitions with jobs = %s, partition rows %d; want %s and 2", got, rep.PartitionRows, partName(p0))
	}
	if got := jobIDs(rep.Jobs); got != fmt.Sprint([]uuid.UUID{old, b1}) {
		t.Errorf("deleted jobs = %v, want %v", got, []uuid.UUID{old, b1})
	}
	if b.exists(t, partName(p0)) {
		t.Error("partition of the expired day still exists")
	}
	if !b.exists(t, partName(p1)) || !b.exists(t, partName(p2)) {
		t.Error("a partition with a job to keep was dropped")
	}
	for _, id := range []uuid.UUID{a1, a2, b1, old} {
		if n := b.count(t, `SELECT count(*) FROM jobs WHERE id = $1`, id); n != 0 {
			t.Errorf("expired job %s still there", id)
		}
		if n := b.chunks(t, id); n != 0 {
			t.Errorf("expired job %s kept %d chunks", id, n)
		}
		if n := b.retentionEvents(t, id); n != 1 {
			t.Errorf("expired job %s has %d retention events, want 1", id, n)
		}
		if n := b.count(t, `SELECT count(*) FROM job_events WHERE job_id = $1`, id); n < 2 {
			t.Errorf("job %s lost its earlier events", id)
		}
	}
	for id, n := range map[uuid.UUID]int{held: 6, forever: 2, running: 2, long: 1} {
		if got := b.chunks(t, id); got != n {
			t.Errorf("kept job %s has %d chunks, want %d", id, got, n)
		}
		if b.retentionEvents(t, id) != 0 {
			t.Errorf("kept job %s has a retention event", id)
		}
	}

	// Each event says who ran the pass, by which rule and at what time,
	// and the seal of what went.
	var ev struct {
		RanBy, Policy, FinalHash string
		KeepDays, ChunkCount     int
		JudgedAt                 time.Time
	}
	if err := b.pool.QueryRow(b.ctx, `SELECT detail->>'ran_by', detail->>'policy', detail->>'final_hash',
			(detail->>'keep_days')::int, (detail->>'chunk_count')::int, (detail->>'judged_at')::timestamptz
		FROM job_events WHERE job_id = $1 AND event = 'retention_deleted'`, b1).Scan(
		&ev.RanBy, &ev.Policy, &ev.FinalHash, &ev.KeepDays, &ev.ChunkCount, &ev.JudgedAt); err != nil {
		t.Fatal(err)
	}
	if ev.RanBy != "cli:tester@host" || ev.Policy != "default" || ev.KeepDays != 30 || ev.ChunkCount != 4 ||
		len(ev.FinalHash) != 64 || time.Since(ev.JudgedAt) > time.Hour || time.Since(ev.JudgedAt) < 0 {
		t.Errorf("retention event of %s: %+v", b1, ev)
	}

	// Nothing more to do.
	rep, err = retention.Pass(b.ctx, b.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if jobs, _ := rep.Totals(); jobs != 0 || rep.PartitionRows != 0 {
		t.Errorf("second pass removed %d jobs, %d partition rows", jobs, rep.PartitionRows)
	}

	// Lifting the hold lets its day go whole.
	if _, err := b.st.HoldLiftOperator(b.ctx, held, "test-operator"); err != nil {
		t.Fatal(err)
	}
	rep, err = retention.Pass(b.ctx, b.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := nonEmpty(rep.Partitions); got != fmt.Sprintf("[{%s 1 6}]", partName(p1)) {
		t.Errorf("after unhold: partitions %s, want %s with 1 job and 6 chunks", got, partName(p1))
	}
	if b.chunks(t, held) != 0 || b.retentionEvents(t, held) != 1 {
		t.Error("unheld job not removed with its partition")
	}
	if n := b.count(t, `SELECT count(*) FROM job_chunks`); n != 5 {
		t.Errorf("%d chunks left, want 5 (forever, running, long)", n)
	}
}

func nonEmpty(ps []retention.Partition) string {
	var out []retention.Partition
	for _, p := range ps {
		if p.Jobs > 0 {
			out = append(out, p)
		}
	}
	return fmt.Sprint(out)
}

func jobIDs(js []store.RetainedJob) string {
	ids := make([]uuid.UUID, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return fmt.Sprint(ids)
}

// TestHoldRacesPartitionDrop: once a partition drop has recorded a job's
// removal (its row goes in a later batch), the job can no longer be held.
func TestHoldRacesPartitionDrop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := day(time.Now()).AddDate(0, 0, -100).Add(time.Hour)
	b.partition(t, at)
	b.defaultDays(t, 30)
	id := b.job(t, "a", at, store.StatusCompleted, 2)
	jobs, ok, err := b.st.RetentionDropPartition(b.ctx, partName(at), "test")
	if err != nil || !ok || jobs != 1 {
		t.Fatalf("drop = %d, %v, %v; want 1 job dropped", jobs, ok, err)
	}
	if _, err := b.st.HoldPlaceOperator(b.ctx, id, "", "test-operator"); !errors.Is(err, store.ErrRetained) {
		t.Fatalf("hold after the drop: %v, want ErrRetained", err)
	}
	if _, err := b.st.HoldPlaceTenant(b.ctx, "other", b.job(t, "a", at.AddDate(0, 0, 1), store.StatusCompleted, 0), "", "api_key:x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("hold of another tenant's job: %v, want ErrNotFound", err)
	}
}

// TestHeldJobCannotBeDeleted: the hold's foreign key stops even a direct
// DELETE of a held job by retention's own role.
func TestHeldJobCannotBeDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.job(t, "a", time.Now(), store.StatusCompleted, 1)
	if _, err := b.st.HoldPlaceTenant(b.ctx, "a", id, "audit", "api_key:x"); err != nil {
		t.Fatal(err)
	}
	_, err := b.pool.Exec(b.ctx, `BEGIN; SET LOCAL ROLE jobstream_retention; DELETE FROM jobs WHERE id = '`+id.String()+`'; COMMIT`)
	if err == nil || !strings.Contains(err.Error(), "job_holds") {
		t.Fatalf("delete of a held job: %v, want a foreign key violation", err)
	}
}

// TestServiceOneNodeAtATime: a node whose pass finds the lock taken skips it.
func TestServiceOneNodeAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release, ok, err := b.st.RetentionLead(b.ctx)
	if err != nil || !ok {
		t.Fatalf("lead: %v %v", ok, err)
	}
	b.defaultDays(t, 1)
	svc := retention.New(b.st, retention.Config{})
	if _, ran, err := svc.RunOnce(b.ctx); err != nil || ran {
		t.Fatalf("RunOnce while another node leads: ran %v, err %v", ran, err)
	}
	release()
	if _, ran, err := svc.RunOnce(b.ctx); err != nil || !ran {
		t.Fatalf("RunOnce after release: ran %v, err %v", ran, err)
	}
}

// TestEnsurePartitions creates days ahead, skips days whose ids already sit
// in the DEFAULT partition, and is idempotent.
func TestEnsurePartitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	far := day(time.Now()).AddDate(0, 0, 30)
	b.job(t, "a", far.Add(time.Hour), store.StatusCompleted, 1) // lands in DEFAULT
	names, err := b.st.PartitionsEnsure(b.ctx, far.AddDate(0, 0, -1), 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{partName(far.AddDate(0, 0, -1)), partName(far.AddDate(0, 0, 1))}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("created %v, want %v", names, want)
	}
	if names, err = b.st.PartitionsEnsure(b.ctx, far.AddDate(0, 0, -1), 3); err != nil || len(names) != 0 {
		t.Errorf("second ensure created %v (%v)", names, err)
	}
	// A new partition takes chunks of its day.
	id := b.job(t, "a", far.AddDate(0, 0, 1).Add(time.Hour), store.StatusCompleted, 2)
	if n := b.count(t, `SELECT count(*) FROM `+partName(far.AddDate(0, 0, 1))+` WHERE job_id = $1`, id); n != 2 {
		t.Errorf("chunks in their day's partition: %d, want 2", n)
	}
}

// TestBatchesPastAHold: a held job among the oldest expired ones does not
// end the pass early: every unheld expired job goes in one pass.
func TestBatchesPastAHold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := day(time.Now()).AddDate(-1, 0, 0)
	var ids []uuid.UUID
	for i := range 5 {
		ids = append(ids, b.job(t, "a", old.Add(time.Duration(i)*time.Minute), store.StatusCompleted, 1))
	}
	if _, err := b.st.HoldPlaceTenant(b.ctx, "a", ids[0], "", "test"); err != nil {
		t.Fatal(err)
	}
	b.defaultDays(t, 30)
	rep, err := retention.Pass(b.ctx, b.st, retention.Options{RanBy: "test", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := jobIDs(rep.Jobs), fmt.Sprint(ids[1:]); got != want {
		t.Errorf("deleted %s, want %s", got, want)
	}
	if n := b.count(t, `SELECT count(*) FROM jobs`); n != 1 {
		t.Errorf("%d jobs left, want the held one", n)
	}
}

// TestPassAsServerRole: the server's own role (jobstream_app, which may
// not delete chunks or jobs) runs a pass, creates partitions and places
// holds through the functions granted to it.
func TestPassAsServerRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.count(t, `SELECT count(*) FROM pg_roles WHERE rolname = 'jobstream_app' AND has_table_privilege('jobstream_app', 'job_chunks', 'INSERT')`) == 0 {
		t.Skip("this schema has no server role (jobstream_app)")
	}
	old := day(time.Now()).AddDate(-1, 0, 0)
	gone := b.job(t, "a", old, store.StatusCompleted, 3)
	held := b.job(t, "a", old.Add(time.Minute), store.StatusCompleted, 2)

	cfg, err := pgxpool.ParseConfig(b.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE jobstream_app")
		return err
	}
	app, err := pgxpool.NewWithConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	st := store.New(app)
	if _, err := app.Exec(b.ctx, `DELETE FROM job_chunks WHERE job_id = $1`, gone); err == nil {
		t.Fatal("the server's role deleted chunks directly")
	}
	if _, err := st.HoldPlaceTenant(b.ctx, "a", held, "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PartitionsEnsure(b.ctx, time.Now().AddDate(0, 0, 20), 1); err != nil {
		t.Fatal(err)
	}
	b.defaultDays(t, 30)
	rep, _, err := retention.New(st, retention.Config{}).RunOnce(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := jobIDs(rep.Jobs); got != fmt.Sprint([]uuid.UUID{gone}) {
		t.Errorf("deleted %s, want %s", got, gone)
	}
	if b.chunks(t, held) != 2 || b.chunks(t, gone) != 0 {
		t.Error("wrong chunks removed")
	}
}

// waitBlocked returns once a backend of the test's database running a
// statement that contains query waits for a lock, failing the test when
// done delivers first (the statement did not wait) or after
// testserver.Timeout.
func (b testBundle) waitBlocked(t *testing.T, query string, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, testserver.Timeout)
	defer cancel()
	for {
		var waiting bool
		if err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0)`, query).Scan(&waiting); err != nil {
			t.Fatalf("waiting for %q to block: %v", query, err)
		}
		if waiting {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%q returned %v without waiting for the pass", query, err)
		default:
		}
	}
}

// TestHoldWaitsForThePass: a hold placed while a retention pass is
// removing that very job waits for the pass's row lock and is then
// refused, with operator or tenant authority, never placed on a job whose
// chunks are gone: after a partition drop the job's retention event
// refuses it (ErrRetained); after a batch deleted the job there is no job
// (ErrNotFound).
func TestHoldWaitsForThePass(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := day(time.Now()).AddDate(0, 0, -100).Add(time.Hour)
	b.partition(t, at)
	b.defaultDays(t, 30)
	dropped := b.job(t, "a", at, store.StatusCompleted, 2)
	deleted := b.job(t, "a", day(time.Now()).AddDate(-1, 0, 0), store.StatusCompleted, 2)

	for _, tc := range []struct {
		name, pass, query string
		args              []any
		hold              func() error
		want              error
	}{
		{"PartitionDrop", `SELECT jobstream_retention_drop_partition($1, 'test')`, "name: HoldPlaceOperator",
			[]any{partName(at)},
			func() error { _, err := b.st.HoldPlaceOperator(b.ctx, dropped, "late", "jane@legal"); return err },
			store.ErrRetained},
		{"DeleteBatch", `SELECT count(*) FROM jobstream_retention_delete_batch(10, 'test')`, "name: HoldPlaceTenant",
			nil,
			func() error { _, err := b.st.HoldPlaceTenant(b.ctx, "a", deleted, "late", "api_key:k"); return err },
			store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := b.pool.Begin(b.ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(b.ctx)
			var n int64
			// The batch also deletes the row of the job whose partition went.
			if err := tx.QueryRow(b.ctx, tc.pass, tc.args...).Scan(&n); err != nil || n < 1 {
				t.Fatalf("%s = %d, %v; want the job", tc.pass, n, err)
			}
			done := make(chan error, 1)
			go func() { done <- tc.hold() }()
			b.waitBlocked(t, tc.query, done)
			if err := tx.Commit(b.ctx); err != nil {
				t.Fatal(err)
			}
			if err := testserver.Recv(t, done, "the hold"); !errors.Is(err, tc.want) {
				t.Fatalf("hold after the pass = %v, want %v", err, tc.want)
			}
		})
	}
	if n := b.count(t, `SELECT count(*) FROM job_holds`); n != 0 {
		t.Errorf("%d holds, want none", n)
	}
}

// TestForeverKeepsEveryPartition: with every rule keeping forever (no
// default, no policy), a pass has no horizon: it drops no partition, not
// even the empty ones made ahead for the coming days, and deletes nothing.
func TestForeverKeepsEveryPartition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.job(t, "a", day(time.Now()).AddDate(-3, 0, 0), store.StatusCompleted, 1)
	before := b.count(t, `SELECT count(*) FROM jobstream_chunk_partitions()`)
	if before == 0 {
		t.Fatal("no partitions made ahead: the test proves nothing")
	}
	rep, err := retention.Pass(b.ctx, b.st, retention.Options{RanBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if jobs, _ := rep.Totals(); jobs != 0 || len(rep.Partitions) != 0 {
		t.Errorf("a keep-forever pass removed %d jobs and %d partitions", jobs, len(rep.Partitions))
	}
	if after := b.count(t, `SELECT count(*) FROM jobstream_chunk_partitions()`); after != before {
		t.Errorf("%d partitions left of %d", after, before)
	}
	if b.chunks(t, old) != 1 {
		t.Error("the old job lost its chunk")
	}
}
