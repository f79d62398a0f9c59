package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// queue inserts n queued jobs of tenant, oldest first, and returns their ids.
func queue(t *testing.T, pool *pgxpool.Pool, tenant string, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO jobs (id, tenant, engine, request)
		SELECT id, $2, 'sim', '{"command":"fixture"}' FROM unnest($1::uuid[]) AS id`, ids, tenant); err != nil {
		t.Fatalf("queue %d jobs of %s: %v", n, tenant, err)
	}
	return ids
}

// tenantsOf counts claims per tenant.
func tenantsOf(cs []store.Claim) map[string]int {
	n := map[string]int{}
	for _, c := range cs {
		n[c.Tenant]++
	}
	return n
}

// TestClaimFair: a claim shares the free slots among tenants round robin
// (fewest running first, then the oldest job), holds each tenant to its
// cap on the claiming worker, and records each attempt's deadline.
func TestClaimFair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (*store.Store, *pgxpool.Pool) {
		pool := testserver.Pool(t, testserver.Database(t), 2)
		return store.New(pool), pool
	}
	claim := func(t *testing.T, s *store.Store, o store.ClaimOptions) []store.Claim {
		t.Helper()
		if o.LeaseTTL == 0 {
			o.LeaseTTL = time.Minute
		}
		cs, err := s.ClaimWith(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}

	t.Run("RoundRobin", func(t *testing.T) {
		t.Parallel()
		s, pool := setup(t)
		// The flood came first: a FIFO claim would hand every slot to a.
		a := queue(t, pool, "a", 100)
		b := queue(t, pool, "b", 1)
		c := queue(t, pool, "c", 2)
		cs := claim(t, s, store.ClaimOptions{Owner: "w", Max: 3})
		if got := tenantsOf(cs); got["a"] != 1 || got["b"] != 1 || got["c"] != 1 {
			t.Fatalf("first claim of 3: %v, want one job of each tenant", got)
		}
		for _, cl := range cs {
			if want := map[string]uuid.UUID{"a": a[0], "b": b[0], "c": c[0]}[cl.Tenant]; cl.JobID != want {
				t.Errorf("tenant %s: claimed %s, want its oldest job %s", cl.Tenant, cl.JobID, want)
			}
		}
		// Each has one running now; b has nothing left, so a and c
		// share the next slots, a then taking what c leaves.
		cs = claim(t, s, store.ClaimOptions{Owner: "w", Max: 3})
		if got := tenantsOf(cs); got["a"] != 2 || got["c"] != 1 {
			t.Fatalf("second claim of 3: %v, want a 2, c 1", got)
		}
	})

	t.Run("FewestRunningFirst", func(t *testing.T) {
		t.Parallel()
		s, pool := setup(t)
		// a has five jobs running on another node and the oldest queued
		// job; b has none running.
		for range 5 {
			runningJob(t, pool, "a", "other-node")
		}
		queue(t, pool, "a", 10)
		b := queue(t, pool, "b", 10)
		cs := claim(t, s, store.ClaimOptions{Owner: "w", Max: 5})
		if got := tenantsOf(cs); got["b"] != 5 {
			t.Fatalf("claimed %v, want 5 of b: a already runs 5 (counted on every node)", got)
		}
		for i, cl := range cs {
			if cl.JobID != b[i] {
				t.Errorf("claim %d: %s, want b's jobs oldest first (%s)", i, cl.JobID, b[i])
			}
		}
		cs = claim(t, s, store.ClaimOptions{Owner: "w", Max: 4})
		if got := tenantsOf(cs); got["a"] != 2 || got["b"] != 2 {
			t.Fatalf("claimed %v, want 2 each: both run 5", got)
		}
	})

	t.Run("CapPerWorker", func(t *testing.T) {
		t.Parallel()
		s, pool := setup(t)
		queue(t, pool, "a", 20)
		queue(t, pool, "b", 2)
		cs := claim(t, s, store.ClaimOptions{Owner: "w1", Max: 10, TenantCap: 3})
		if got := tenantsOf(cs); got["a"] != 3 || got["b"] != 2 {
			t.Fatalf("claimed %v, want a held to its cap of 3, b's 2", got)
		}
		if cs := claim(t, s, store.ClaimOptions{Owner: "w1", Max: 10, TenantCap: 3}); len(cs) != 0 {
			t.Fatalf("claimed %v past a's cap", tenantsOf(cs))
		}
		// The cap is per worker: another node runs a's jobs too.
		if got := tenantsOf(claim(t, s, store.ClaimOptions{Owner: "w2", Max: 10, TenantCap: 3})); got["a"] != 3 {
			t.Fatalf("another worker claimed %v, want 3 of a", got)
		}
		// No cap: round robin only, the rest of a.
		if got := tenantsOf(claim(t, s, store.ClaimOptions{Owner: "w1", Max: 100})); got["a"] != 14 {
			t.Fatalf("without a cap: %v, want a's 14 left", got)
		}
	})

	t.Run("Deadline", func(t *testing.T) {
		t.Parallel()
		s, pool := setup(t)
		ids := queue(t, pool, "a", 2)
		claim(t, s, store.ClaimOptions{Owner: "w", Max: 1, MaxRuntime: time.Hour})
		claim(t, s, store.ClaimOptions{Owner: "w", Max: 1})
		var bounded time.Duration
		var unbounded *time.Time
		if err := pool.QueryRow(ctx, `
			SELECT (SELECT extract(epoch FROM deadline_at - started_at) FROM jobs WHERE id = $1)::float8 * 1e9,
			       (SELECT deadline_at FROM jobs WHERE id = $2)`, ids[0], ids[1]).Scan(&bounded, &unbounded); err != nil {
			t.Fatal(err)
		}
		if bounded != time.Hour || unbounded != nil {
			t.Errorf("deadlines: %s after the start, %v; want 1h, and none without MaxRuntime", bounded, unbounded)
		}
	})

	t.Run("AsTheServerRole", func(t *testing.T) {
		t.Parallel()
		url := testserver.Database(t)
		admin := testserver.Pool(t, url, 1)
		// UPDATE on jobs is column-level for the server's role: only the
		// columns the server changes (migrations/00040), deadline_at
		// included (00045).
		if _, err := admin.Exec(ctx, `
			REVOKE UPDATE ON jobs FROM jobstream_app;
			GRANT UPDATE (status, lease_owner, lease_expires_at, attempt, finish_reason, error, usage,
			              started_at, finished_at, cancel_requested_at) ON jobs TO jobstream_app;
			GRANT UPDATE (deadline_at) ON jobs TO jobstream_app`); err != nil {
			t.Fatal(err)
		}
		// ... as 00045 does: the grant is there already.
		var granted bool
		if err := admin.QueryRow(ctx, `SELECT has_column_privilege('jobstream_app', 'jobs', 'deadline_at', 'UPDATE')`).Scan(&granted); err != nil || !granted {
			t.Fatalf("jobstream_app may update deadline_at: %v %v", granted, err)
		}
		queue(t, admin, "a", 1)
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AfterConnect = store.AfterConnectApp
		app, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		if cs := claim(t, store.New(app), store.ClaimOptions{Owner: "w", Max: 1, TenantCap: 1, MaxRuntime: time.Minute}); len(cs) != 1 {
			t.Fatalf("claimed %d jobs as jobstream_app, want 1", len(cs))
		}
	})
}

// claimTracer keeps the SQL and arguments of the claim statement.
type claimTracer struct {
	sql  *string
	args *[]any
}

func (c claimTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: JobClaim ") {
		*c.sql, *c.args = d.SQL, d.Args
	}
	return ctx
}

func (claimTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestClaimCost: at 10,000 queued jobs of 100 tenants, one of which has 500
// jobs running, the claim statement reads a few hundred pages (one index
// probe per tenant, then only the rows it claims), never a scan of the
// queued jobs.
func TestClaimCost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 2)
	if _, err := pool.Exec(ctx, `
		INSERT INTO jobs (id, tenant, engine, request)
		SELECT (lpad(to_hex(i), 12, '0') || '70008000000000000000')::uuid, 'tenant-' || (i % 100), 'sim', '{}'
		FROM generate_series(1, 10000) i`); err != nil {
		t.Fatal(err)
	}
	for range 500 {
		runningJob(t, pool, "tenant-0", "elsewhere")
	}
	if _, err := pool.Exec(ctx, `ANALYZE jobs`); err != nil {
		t.Fatal(err)
	}
	// The statement ClaimWith runs, as it runs it.
	var (
		sql  string
		args []any
	)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = claimTracer{sql: &sql, args: &args}
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer traced.Close()
	opts := store.ClaimOptions{Owner: "w", Max: 8, LeaseTTL: time.Minute, TenantCap: 6, MaxRuntime: time.Hour}
	if _, err := store.New(traced).ClaimWith(ctx, opts); err != nil || sql == "" {
		t.Fatalf("claim: %v (statement seen: %t)", err, sql != "")
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var raw []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var plan []struct {
		Plan struct {
			ActualRows float64 `json:"Actual Rows"`
			Hit        float64 `json:"Shared Hit Blocks"`
			Read       float64 `json:"Shared Read Blocks"`
		}
		ExecutionTime float64 `json:"Execution Time"`
	}
	if err := json.Unmarshal(raw, &plan); err != nil {
		t.Fatal(err)
	}
	p := plan[0]
	t.Logf("a claim of 8 at 10,000 queued jobs of 100 tenants: %v buffers, %.2f ms", p.Plan.Hit+p.Plan.Read, p.ExecutionTime)
	if p.Plan.ActualRows != 8 {
		t.Errorf("claimed %v jobs, want 8", p.Plan.ActualRows)
	}
	if strings.Contains(string(raw), `"Seq Scan"`) {
		t.Errorf("the claim scans a table: %s", raw)
	}
	// 100 tenant probes, their running counts (tenant-0's 500 included),
	// 8 locks and updates: a few hundred pages. Reading every queued job
	// is thousands.
	if n := p.Plan.Hit + p.Plan.Read; n > 2000 {
		t.Errorf("the claim touched %v pages, want < 2000: %s", n, raw)
	}
}

// TestRescueOverdue: a running job a lease TTL past its deadline (a worker
// that kept its lease but not the bound) is failed by the rescuer with an
// error finish chunk of type timeout after its last chunk, in the audit
// trail as the rescuer's; its worker's later writes are fenced off, and a
// job within its deadline, or without one, is untouched.
func TestRescueOverdue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 2)
	s := store.New(pool)
	queue(t, pool, "t", 3)
	cs, err := s.ClaimWith(ctx, store.ClaimOptions{Owner: "w1", Max: 2, LeaseTTL: time.Hour, MaxRuntime: time.Hour})
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %v, %v", cs, err)
	}
	overdue, inTime := cs[0].Lease, cs[1].Lease
	unbounded, err := s.Claim(ctx, "w1", 1, time.Hour)
	if err != nil || len(unbounded) != 1 {
		t.Fatalf("claim: %v, %v", unbounded, err)
	}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(overdue, 0, "a"), content(overdue, 1, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	// The deadline passed a minute ago; the grace is 30 s.
	if _, err := pool.Exec(ctx, `UPDATE jobs SET deadline_at = now() - interval '1 minute' WHERE id = $1`, overdue.JobID); err != nil {
		t.Fatal(err)
	}
	failed, err := s.RescueOverdue(store.WithActor(ctx, store.Actor{Name: "rescuer:w2"}), 100, 30*time.Second)
	if err != nil || len(failed) != 1 || failed[0] != overdue.JobID {
		t.Fatalf("RescueOverdue = %v, %v; want [%s]", failed, err, overdue.JobID)
	}

	snap, err := s.Read(ctx, "t", overdue.JobID, 0, 10)
	if err != nil || snap.Status != store.StatusFailed || snap.FinishReason != "error" || len(snap.Chunks) != 3 {
		t.Fatalf("snapshot = %+v, %v; want failed after its 2 chunks and an error chunk", snap, err)
	}
	var last struct {
		FinishReason string `json:"finish_reason"`
		Error        struct{ Message, Type string }
	}
	if err := json.Unmarshal(snap.Chunks[2].Data, &last); err != nil || last.FinishReason != "error" || last.Error.Type != "timeout" ||
		!strings.Contains(last.Error.Message, "maximum runtime") {
		t.Errorf("last chunk %s, want an error finish chunk of type timeout naming the maximum runtime", snap.Chunks[2].Data)
	}
	if res, err := s.Verify(ctx, "t", overdue.JobID); err != nil || !res.OK {
		t.Errorf("verify: %+v, %v; the chain must hold", res, err)
	}
	events, err := s.Events(ctx, "t", overdue.JobID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	e := events[len(events)-1]
	if e.Event != "failed" || e.Actor != "rescuer:w2" || e.Reason == nil || *e.Reason != "timeout" {
		t.Errorf("last event %+v (reason %v), want failed by rescuer:w2 for timeout", e, e.Reason)
	}
	// The worker, still streaming, is fenced off.
	held, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(overdue, 2, "late")}, nil)
	if err != nil || held[overdue] {
		t.Errorf("late write: held = %v, %v; want fenced", held, err)
	}
	for _, l := range []store.Lease{inTime, unbounded[0].Lease} {
		if j, _ := s.Get(ctx, "t", l.JobID); j.Status != store.StatusRunning {
			t.Errorf("job %s within its deadline (or without one) is %s", l.JobID, j.Status)
		}
	}
	if again, err := s.RescueOverdue(ctx, 100, 30*time.Second); err != nil || len(again) != 0 {
		t.Errorf("second pass = %v, %v; want nothing", again, err)
	}
}
