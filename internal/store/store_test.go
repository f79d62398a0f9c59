package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// Fixtures shared by the store tests.

// runningJob inserts a job that owner already holds (attempt 1, lease for
// an hour) straight in status running: it never passes through the queue,
// so no claimer anywhere can take it.
func runningJob(t *testing.T, pool *pgxpool.Pool, tenant, owner string) store.Lease {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := pool.Exec(context.Background(), `
		INSERT INTO jobs (id, tenant, engine, request, status, attempt, lease_owner, lease_expires_at, started_at)
		VALUES ($1, $2, 'sim', '{"command":"fixture"}', 'running', 1, $3, now() + interval '1 hour', now())`,
		id, tenant, owner)
	if err != nil {
		t.Fatalf("insert running job: %v", err)
	}
	return store.Lease{JobID: id, Attempt: 1}
}

// content returns the i-th content chunk of a lease.
func content(l store.Lease, seq int, text string) store.NewChunk {
	data, _ := json.Marshal(map[string]string{"content": text})
	return store.NewChunk{Lease: l, Seq: seq, StreamType: "content", Data: data}
}

func finishChunk(l store.Lease, seq int, reason string) store.NewChunk {
	data, _ := json.Marshal(map[string]string{"finish_reason": reason})
	return store.NewChunk{Lease: l, Seq: seq, StreamType: "content", Data: data}
}

func completed(l store.Lease) store.Finish {
	return store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "stop", Usage: json.RawMessage(`{"output_tokens":3}`)}
}

// chunkSeqs returns the seqs stored for a job, in order.
func chunkSeqs(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) []int {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT seq FROM job_chunks WHERE job_id = $1 ORDER BY seq`, id)
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read chunk seqs: %v", err)
	}
	return seqs
}

func mustSubmit(t *testing.T, s *store.Store, p store.SubmitParams) store.Job {
	t.Helper()
	if p.Engine == "" {
		p.Engine = "sim"
	}
	if p.Request.Command == "" {
		p.Request.Command = "hello"
	}
	job, err := s.Submit(context.Background(), p)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return job
}

func TestSubmit(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store  *store.Store
		pool   *pgxpool.Pool
		tenant string
	}
	setup := func(t *testing.T) testBundle {
		pool := dbtest.Pool(t)
		return testBundle{store: store.New(pool), pool: pool, tenant: testserver.Tenant(t)}
	}
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		req := store.Request{
			Command:  "hello",
			System:   "be brief",
			Messages: json.RawMessage(`[{"role":"user","content":"hi"}]`),
			Params:   map[string]json.RawMessage{"sim_tokens": json.RawMessage(`5`)},
		}
		job, err := b.store.Submit(ctx, store.SubmitParams{Tenant: b.tenant, Engine: "sim", RoomID: "room-1", Request: req})
		if err != nil {
			t.Fatal(err)
		}
		if job.ID.Version() != 7 {
			t.Errorf("job id %s is UUID version %d, want 7", job.ID, job.ID.Version())
		}
		if job.Status != store.StatusQueued || job.Attempt != 0 || job.StartedAt != nil || job.FinishedAt != nil {
			t.Errorf("new job = %+v, want queued, attempt 0, not started", job)
		}
		got, err := b.store.Get(ctx, b.tenant, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RoomID != "room-1" || got.Request.Command != "hello" || got.Request.System != "be brief" ||
			string(got.Request.Params["sim_tokens"]) != "5" || got.Engine != "sim" {
			t.Errorf("Get = %+v, want the submitted request back", got)
		}
		if !got.CreatedAt.Equal(job.CreatedAt) {
			t.Errorf("created_at %v != %v", got.CreatedAt, job.CreatedAt)
		}
	})

	t.Run("DefaultMaxAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The rescuer requeues a job whose worker died before writing
		// anything only while attempts remain: the default must allow it.
		job := mustSubmit(t, b.store, store.SubmitParams{Tenant: b.tenant})
		if job.MaxAttempts != store.DefaultMaxAttempts {
			t.Errorf("MaxAttempts = %d, want %d", job.MaxAttempts, store.DefaultMaxAttempts)
		}
		one := mustSubmit(t, b.store, store.SubmitParams{Tenant: b.tenant, MaxAttempts: 1})
		if one.MaxAttempts != 1 {
			t.Errorf("MaxAttempts = %d, want 1", one.MaxAttempts)
		}
	})

	t.Run("OtherTenantIsNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		job := mustSubmit(t, b.store, store.SubmitParams{Tenant: b.tenant})
		if _, err := b.store.Get(ctx, b.tenant+"-other", job.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get as another tenant: err = %v, want ErrNotFound", err)
		}
		if _, err := b.store.Get(ctx, b.tenant, uuid.New()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get unknown id: err = %v, want ErrNotFound", err)
		}
		if _, err := b.store.Read(ctx, b.tenant+"-other", job.ID, 0, 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Read as another tenant: err = %v, want ErrNotFound", err)
		}
		if _, err := b.store.Transcript(ctx, b.tenant+"-other", job.ID, store.TranscriptAll); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Transcript as another tenant: err = %v, want ErrNotFound", err)
		}
		if _, err := b.store.RequestCancel(ctx, b.tenant+"-other", job.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RequestCancel as another tenant: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("ErrorAndUsageAbsentUntilSet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := runningJob(t, b.pool, b.tenant, "w1")
		_, err := b.store.WriteBatch(ctx, "w1", []store.NewChunk{finishChunk(l, 0, "stop")},
			[]store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}})
		if err != nil {
			t.Fatal(err)
		}
		job, err := b.store.Get(ctx, b.tenant, l.JobID)
		if err != nil {
			t.Fatal(err)
		}
		// A finish without an error or usage must not read back as JSON
		// null: callers test len(Error) > 0 to decide a job has an error.
		if job.Error != nil || job.Usage != nil {
			t.Errorf("Error = %q, Usage = %q; want both absent", job.Error, job.Usage)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := testserver.Tenant(t)

	var ids []uuid.UUID // oldest first
	for i := range 7 {
		eng := "sim"
		if i%3 == 0 {
			eng = "other"
		}
		ids = append(ids, mustSubmit(t, s, store.SubmitParams{Tenant: tenant, Engine: eng}).ID)
	}
	mustSubmit(t, s, store.SubmitParams{Tenant: tenant + "-other"})
	if _, err := s.RequestCancel(ctx, tenant, ids[1]); err != nil {
		t.Fatal(err)
	}

	t.Run("KeysetPagesNewestFirst", func(t *testing.T) {
		var got []uuid.UUID
		var before *uuid.UUID
		for page := 0; ; page++ {
			jobs, err := s.List(ctx, store.ListParams{Tenant: tenant, BeforeID: before, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if len(jobs) < 3 {
				break
			}
			before = &jobs[len(jobs)-1].ID
			if page > 5 {
				t.Fatal("too many pages")
			}
		}
		if len(got) != len(ids) {
			t.Fatalf("listed %d jobs, want %d", len(got), len(ids))
		}
		for i, id := range got {
			if want := ids[len(ids)-1-i]; id != want {
				t.Errorf("job %d = %s, want %s (newest first)", i, id, want)
			}
		}
	})

	t.Run("Filters", func(t *testing.T) {
		jobs, err := s.List(ctx, store.ListParams{Tenant: tenant, Engine: "other", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 3 {
			t.Errorf("engine=other: %d jobs, want 3", len(jobs))
		}
		for _, j := range jobs {
			if j.Engine != "other" {
				t.Errorf("engine=other listed a job of engine %q", j.Engine)
			}
		}
		jobs, err = s.List(ctx, store.ListParams{Tenant: tenant, Status: store.StatusCancelled, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].ID != ids[1] {
			t.Errorf("status=cancelled: %v, want only %s", jobs, ids[1])
		}
	})
}

func TestRequestCancel(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store  *store.Store
		pool   *pgxpool.Pool
		tenant string
	}
	setup := func(t *testing.T) testBundle {
		pool := dbtest.Pool(t)
		return testBundle{store: store.New(pool), pool: pool, tenant: testserver.Tenant(t)}
	}
	ctx := context.Background()

	t.Run("QueuedIsCancelledAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		job := mustSubmit(t, b.store, store.SubmitParams{Tenant: b.tenant})
		out, err := b.store.RequestCancel(ctx, b.tenant, job.ID)
		if err != nil || out != store.CancelDone {
			t.Fatalf("RequestCancel = %v, %v; want CancelDone", out, err)
		}
		snap, err := b.store.Read(ctx, b.tenant, job.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Status != store.StatusCancelled || snap.FinishReason != "cancelled" || len(snap.Chunks) != 1 ||
			string(snap.Chunks[0].Data) != `{"finish_reason":"cancelled"}` || snap.Chunks[0].Seq != 0 {
			t.Errorf("after cancel: %+v, want cancelled with one finish chunk", snap)
		}
		got, _ := b.store.Get(ctx, b.tenant, job.ID)
		if got.FinishedAt == nil || got.CancelRequestedAt == nil {
			t.Errorf("cancelled job %+v lacks finished_at or cancel_requested_at", got)
		}

		out, err = b.store.RequestCancel(ctx, b.tenant, job.ID)
		if err != nil || out != store.CancelAlreadyFinished {
			t.Errorf("second RequestCancel = %v, %v; want CancelAlreadyFinished", out, err)
		}
		if seqs := chunkSeqs(t, b.pool, job.ID); len(seqs) != 1 {
			t.Errorf("second cancel wrote chunks: %v", seqs)
		}
	})

	t.Run("RunningAsksTheWorker", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := runningJob(t, b.pool, b.tenant, "w1")

		conn, err := pgx.Connect(ctx, dbtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "LISTEN "+store.ChannelCancel); err != nil {
			t.Fatal(err)
		}

		out, err := b.store.RequestCancel(ctx, b.tenant, l.JobID)
		if err != nil || out != store.CancelRequested {
			t.Fatalf("RequestCancel = %v, %v; want CancelRequested", out, err)
		}
		job, _ := b.store.Get(ctx, b.tenant, l.JobID)
		if job.Status != store.StatusRunning || job.CancelRequestedAt == nil {
			t.Errorf("job = %+v, want still running with cancel_requested_at set", job)
		}
		// The worker holding it is told on ChannelCancel.
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			n, err := conn.WaitForNotification(waitCtx)
			if err != nil {
				t.Fatalf("no cancel notification: %v", err)
			}
			if n.Payload == l.JobID.String() {
				break
			}
		}
		// Its heartbeat reports it too.
		hb, err := b.store.Heartbeat(ctx, "w1", time.Hour, []store.Lease{l})
		if err != nil || len(hb) != 1 || !hb[0].CancelRequested {
			t.Errorf("Heartbeat = %+v, %v; want the lease with CancelRequested", hb, err)
		}
	})

	t.Run("UnknownJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.store.RequestCancel(ctx, b.tenant, uuid.New()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}
