package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// statements counts the statements a pool sends whose text contains
// marker (sqlc puts "-- name: Query" in each).
type statements struct {
	marker string
	n      atomic.Int64
}

func (c *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, c.marker) {
		c.n.Add(1)
	}
	return ctx
}

func (c *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// tracedAppPool is appPool, its statements traced by tracer.
func tracedAppPool(t *testing.T, url string, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 3
	cfg.AfterConnect = store.AfterConnectApp
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// accessed is one 'accessed' event.
type accessed struct {
	Actor, Reason, Hour, Request, DBRole string
	// HourOfAt says detail.hour is the UTC hour of the event's own time.
	HourOfAt bool
}

func accessEvents(t *testing.T, pool *pgxpool.Pool, job uuid.UUID) []accessed {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT actor, coalesce(reason, ''), coalesce(detail->>'hour', ''), coalesce(detail->>'request', ''), db_role,
		       detail->>'hour' = to_char(date_trunc('hour', at, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
		FROM job_events WHERE job_id = $1 AND event = 'accessed' ORDER BY seq`, job)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (accessed, error) {
		var a accessed
		return a, r.Scan(&a.Actor, &a.Reason, &a.Hour, &a.Request, &a.DBRole, &a.HourOfAt)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dbHour is the database's current UTC hour.
func dbHour(t *testing.T, pool *pgxpool.Pool) time.Time {
	t.Helper()
	var h time.Time
	if err := pool.QueryRow(context.Background(), `SELECT date_trunc('hour', now(), 'UTC')`).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReadsRecordedOncePerClientJobHour (issue 17, item 10): a client's
// reads of a job's content leave one 'accessed' event per client, job and
// UTC hour, whatever they read and however often, written by the server's
// role into the job's chained audit trail. After the first, a poller's
// reads cost no statement; another node's first read costs one that writes
// nothing (the dedupe is the database's). Another tenant's client, a
// worker and the CLI record nothing.
func TestReadsRecordedOncePerClientJobHour(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	owner := dbtest.Pool(t)
	records := &statements{marker: "name: JobAccessRecord"}
	app := tracedAppPool(t, url, records)
	s := store.New(app)
	tenant := testserver.Tenant(t)
	l := testserver.RunningJob(t, owner, tenant, "w")
	if _, err := s.WriteBatch(ctx, "w", []store.NewChunk{testserver.Content(l, 0, "secret"), testserver.Content(l, 1, " words")}, nil); err != nil {
		t.Fatal(err)
	}
	keyA, keyB, keyC, keyD := "api_key:"+uuid.NewString(), "api_key:"+uuid.NewString(), "api_key:"+uuid.NewString(), "api_key:"+uuid.NewString()
	path := "/v1/jobs/" + l.JobID.String() + "/chunks"
	as := func(actor string) context.Context {
		return store.WithActor(ctx, store.Actor{Name: actor, Request: "GET " + path})
	}
	start := dbHour(t, owner)

	// Key A polls the job 20 times, and reads its transcript, events
	// and chain: one record, one statement.
	for range 20 {
		if snap, err := s.Read(as(keyA), tenant, l.JobID, 0, 10); err != nil || len(snap.Chunks) != 2 {
			t.Fatalf("read as key A: %d chunks, %v", len(snap.Chunks), err)
		}
	}
	if _, err := s.Transcript(as(keyA), tenant, l.JobID, store.TranscriptAll); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Events(as(keyA), tenant, l.JobID, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(as(keyA), tenant, l.JobID); err != nil {
		t.Fatal(err)
	}
	afterA := records.n.Load()
	// Key B: its own record.
	for range 5 {
		if _, err := s.Transcript(as(keyB), tenant, l.JobID, store.TranscriptAll); err != nil {
			t.Fatal(err)
		}
	}
	afterB := records.n.Load()
	// Another tenant's key: not found, nothing recorded, even when asked
	// to record directly.
	if _, err := s.Read(as(keyC), "other-"+tenant, l.JobID, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's read: %v, want ErrNotFound", err)
	}
	s.NoteAccess(as(keyC), "other-"+tenant, l.JobID, store.AccessChunks)
	// No client: a worker, the CLI.
	if _, err := s.Read(store.WithActor(ctx, store.Actor{Name: "worker:w"}), tenant, l.JobID, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, tenant, l.JobID, 0, 10); err != nil {
		t.Fatal(err)
	}
	afterOthers := records.n.Load()
	// Another node (its own cache): one statement, no second record.
	if _, err := store.New(app).Read(as(keyA), tenant, l.JobID, 0, 10); err != nil {
		t.Fatal(err)
	}
	afterNode := records.n.Load()
	// This process's hour ends (its clock moved): the database is asked
	// again and, still in its hour, records nothing.
	store.SetAccessClock(s, func() time.Time { return time.Now().Add(time.Hour) })
	if _, err := s.Read(as(keyA), tenant, l.JobID, 0, 10); err != nil {
		t.Fatal(err)
	}
	afterClock := records.n.Load()
	store.SetAccessClock(s, time.Now)
	// Key D read the job in the previous hour: that does not stand for
	// this one.
	if _, err := owner.Exec(ctx, `INSERT INTO job_access (job_id, actor, hour) VALUES ($1, $2, date_trunc('hour', now(), 'UTC') - interval '1 hour')`, l.JobID, keyD); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(as(keyD), tenant, l.JobID, 0, 10); err != nil {
		t.Fatal(err)
	}

	if end := dbHour(t, owner); !end.Equal(start) {
		t.Skipf("the test ran across an hour boundary (%s, %s): its counts are per hour", start, end)
	}
	hour := start.UTC().Format("2006-01-02T15:04:05Z")
	want := []accessed{
		{Actor: keyA, Reason: store.AccessChunks, Hour: hour, Request: "GET " + path, DBRole: store.AppRole, HourOfAt: true},
		{Actor: keyB, Reason: store.AccessTranscript, Hour: hour, Request: "GET " + path, DBRole: store.AppRole, HourOfAt: true},
		{Actor: keyD, Reason: store.AccessChunks, Hour: hour, Request: "GET " + path, DBRole: store.AppRole, HourOfAt: true},
	}
	got := accessEvents(t, owner, l.JobID)
	if len(got) != len(want) {
		t.Fatalf("accessed events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("accessed event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"key A's 23 reads", afterA, 1},
		{"key B's 5 reads", afterB - afterA, 1},
		{"reads of another tenant's key (its one statement writes nothing), a worker's, the CLI's", afterOthers - afterB, 1},
		{"another node's first read", afterNode - afterOthers, 1},
		{"a read after this process's hour", afterClock - afterNode, 1},
	} {
		if c.got != c.want {
			t.Errorf("%s cost %d JobAccessRecord statements, want %d", c.what, c.got, c.want)
		}
	}
	var rows int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM job_access WHERE job_id = $1 AND actor = $2`, l.JobID, keyC).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("another tenant's key left %d job_access rows (%v), want none", rows, err)
	}
	if broken := eventChainBreaks(t, owner, l.JobID); broken != "" {
		t.Errorf("the job's event chain: %s", broken)
	}
}

// logRecords is a slog handler that keeps the messages at Warn and above.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecords) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

func (h *logRecords) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// TestAccessRecordNeverFailsARead: when the record cannot be written (the
// server's role may not, or job_access is locked past the record's
// deadline), the read still answers, with its content, and the failure is
// logged; the next read tries again.
func TestAccessRecordNeverFailsARead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testserver.Database(t) // its grants and locks are changed
	owner := testserver.Pool(t, url, 2)
	logs := &logRecords{}
	s := store.NewWithConfig(appPool(t, url), store.Config{Logger: slog.New(logs), AccessTimeout: 200 * time.Millisecond})
	l := testserver.RunningJob(t, owner, "acme", "w")
	if _, err := s.WriteBatch(ctx, "w", []store.NewChunk{testserver.Content(l, 0, "hello")}, nil); err != nil {
		t.Fatal(err)
	}
	client := store.WithActor(ctx, store.Actor{Name: "api_key:" + uuid.NewString()})
	const failed = "recording a read of a job failed"

	if _, err := owner.Exec(ctx, `REVOKE INSERT ON job_access FROM jobstream_app`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if snap, err := s.Read(client, "acme", l.JobID, 0, 10); err != nil || len(snap.Chunks) != 1 {
			t.Fatalf("read %d without the right to record it: %d chunks, %v", i, len(snap.Chunks), err)
		}
		if n := logs.count(failed); n != i {
			t.Errorf("after read %d: %d failures logged, want %d", i, n, i)
		}
	}
	if _, err := owner.Exec(ctx, `GRANT INSERT ON job_access TO jobstream_app`); err != nil {
		t.Fatal(err)
	}

	// job_access locked: the read waits for its record no longer than
	// AccessTimeout.
	tx, err := owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after the commit below, a no-op
	if _, err := tx.Exec(ctx, `LOCK TABLE job_access IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if got, err := s.Transcript(client, "acme", l.JobID, store.TranscriptAll); err != nil || got.Content != "hello" {
		t.Fatalf("transcript with job_access locked: %+v, %v", got, err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("the read took %s with job_access locked, want about the 200ms AccessTimeout", d)
	}
	if n := logs.count(failed); n != 3 {
		t.Errorf("%d failures logged, want 3", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := store.AccessCached(s); n != 0 {
		t.Errorf("%d pairs cached after failed records, want none: the next read must try again", n)
	}
	if _, err := s.Read(client, "acme", l.JobID, 0, 10); err != nil {
		t.Fatal(err)
	}
	if got := accessEvents(t, owner, l.JobID); len(got) != 1 || logs.count(failed) != 3 {
		t.Errorf("once it can: %+v recorded, %d failures logged; want one record", got, logs.count(failed))
	}
}

// TestJobAccessPrivileges: the server's role may only insert and read
// job_access; the rows go with their job when retention deletes it (a
// cascade run as the table's owner: jobstream_retention needs no right on
// job_access), while the 'accessed' events stay.
func TestJobAccessPrivileges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner := dbtest.Pool(t)
	var grants string
	if err := owner.QueryRow(ctx, `
		SELECT coalesce(string_agg(privilege_type, ',' ORDER BY privilege_type), '')
		FROM information_schema.role_table_grants WHERE table_name = 'job_access' AND grantee = 'jobstream_app'`).Scan(&grants); err != nil {
		t.Fatal(err)
	}
	if grants != "INSERT,SELECT" {
		t.Errorf("jobstream_app's privileges on job_access: %q, want INSERT,SELECT", grants)
	}
	var retention bool
	if err := owner.QueryRow(ctx, `SELECT has_table_privilege('jobstream_retention', 'job_access', 'SELECT, INSERT, UPDATE, DELETE')`).Scan(&retention); err != nil || retention {
		t.Errorf("jobstream_retention has privileges on job_access (%v)", err)
	}

	app := appPool(t, dbtest.URL(t))
	s := store.New(app)
	tenant := testserver.Tenant(t)
	l := testserver.RunningJob(t, owner, tenant, "w")
	key := "api_key:" + uuid.NewString()
	s.NoteAccess(store.WithActor(ctx, store.Actor{Name: key}), tenant, l.JobID, store.AccessChunks)
	for _, q := range []string{
		`DELETE FROM job_access WHERE job_id = $1`,
		`UPDATE job_access SET hour = hour - interval '1 hour' WHERE job_id = $1`,
	} {
		if _, err := app.Exec(ctx, q, l.JobID); sqlState(err) != "42501" {
			t.Errorf("%s as %s: %v, want refused", q, store.AppRole, err)
		}
	}

	if _, err := owner.Exec(ctx, `BEGIN; SET LOCAL ROLE jobstream_retention; DELETE FROM jobs WHERE id = '`+l.JobID.String()+`'; COMMIT`); err != nil {
		t.Fatalf("retention deletes a job that was read: %v", err)
	}
	var rows int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM job_access WHERE job_id = $1`, l.JobID).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("job_access rows of the deleted job: %d (%v), want none", rows, err)
	}
	if got := accessEvents(t, owner, l.JobID); len(got) != 1 || got[0].Actor != key {
		t.Errorf("accessed events of the deleted job: %+v, want key's one", got)
	}
}

// adminEvent is one row of admin_events.
type adminEvent struct {
	Event, Tenant, Subject, Actor, DBRole string
	Detail                                json.RawMessage
}

func adminEventsBy(t *testing.T, pool *pgxpool.Pool, actor string) []adminEvent {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT event, tenant, subject, actor, db_role, detail FROM admin_events WHERE actor = $1 ORDER BY seq`, actor)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (adminEvent, error) {
		var e adminEvent
		return e, r.Scan(&e.Event, &e.Tenant, &e.Subject, &e.Actor, &e.DBRole, &e.Detail)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// actorPool is a pool of the owner whose connections name actor as the
// person acting (jobstream.actor, as the CLI's do).
func actorPool(t *testing.T, actor string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.RuntimeParams["jobstream.actor"] = actor
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestKeyAndAnalystChangesAreAdminEvents: creating and revoking a key,
// creating and dropping an analyst are admin events naming the person
// (jobstream.actor) and what changed.
func TestKeyAndAnalystChangesAreAdminEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	actor := "cli:tester-" + uuid.NewString()[:8] + "@host"
	pool := actorPool(t, actor)
	s := store.New(pool)
	tenant := testserver.Tenant(t)
	key, err := s.KeyCreate(ctx, store.NewKey{Name: "audited", AccessKey: "ak_" + uuid.NewString(), SecretHash: make([]byte, 32), Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyRevoke(ctx, key.AccessKey); err != nil {
		t.Fatal(err)
	}
	an, _, err := s.AnalystCreate(ctx, "", tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AnalystDrop(ctx, an.Role); err != nil {
		t.Fatal(err)
	}
	got := adminEventsBy(t, pool, actor)
	want := []struct{ event, subject string }{
		{"key_created", key.ID.String()}, {"key_revoked", key.ID.String()},
		{"analyst_created", an.Role}, {"analyst_dropped", an.Role},
	}
	if len(got) != len(want) {
		t.Fatalf("admin events by %s: %+v, want %v", actor, got, want)
	}
	for i, w := range want {
		if got[i].Event != w.event || got[i].Subject != w.subject || got[i].Tenant != tenant {
			t.Errorf("admin event %d: %+v, want %s of %s for tenant %s", i, got[i], w.event, w.subject, tenant)
		}
	}
}

// TestRecordExport: an export is an admin event with its selection and
// size, which the server's role cannot forge.
func TestRecordExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	actor := "cli:exporter-" + uuid.NewString()[:8] + "@host"
	pool := actorPool(t, actor)
	s := store.New(pool)
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", -5*3600))
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	if _, err := s.RecordExport(ctx, store.ExportFilter{Tenant: "acme", Since: since}, 7, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordExport(ctx, store.ExportFilter{IDs: ids}, 1, false); err != nil {
		t.Fatal(err)
	}
	got := adminEventsBy(t, pool, actor)
	if len(got) != 2 {
		t.Fatalf("admin events by %s: %+v, want 2 exports", actor, got)
	}
	type detail struct {
		Tenant   *string     `json:"tenant"`
		Since    *time.Time  `json:"since"`
		IDs      []uuid.UUID `json:"ids"`
		Jobs     int         `json:"jobs"`
		Complete bool        `json:"complete"`
	}
	var d0, d1 detail
	if err := json.Unmarshal(got[0].Detail, &d0); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got[1].Detail, &d1); err != nil {
		t.Fatal(err)
	}
	if e := got[0]; e.Event != "export" || e.Tenant != "acme" || e.Subject != "acme" || d0.Tenant == nil || *d0.Tenant != "acme" ||
		d0.Since == nil || !d0.Since.Equal(since) || d0.IDs != nil || d0.Jobs != 7 || !d0.Complete {
		t.Errorf("export of a tenant: %+v %s", e, e.Detail)
	}
	if e := got[1]; e.Event != "export" || e.Tenant != "" || d1.Tenant != nil || d1.Since != nil ||
		len(d1.IDs) != 2 || d1.IDs[0] != ids[0] || d1.IDs[1] != ids[1] || d1.Jobs != 1 || d1.Complete {
		t.Errorf("export of ids: %+v %s", e, e.Detail)
	}

	if _, err := store.New(appPool(t, dbtest.URL(t))).RecordExport(ctx, store.ExportFilter{Tenant: "acme"}, 0, true); sqlState(err) != "42501" {
		t.Errorf("an export recorded by %s: %v, want refused", store.AppRole, err)
	}
}
