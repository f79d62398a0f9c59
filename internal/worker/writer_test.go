package worker_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

const owner = "writer-test"

type writerBundle struct {
	store  *store.Store
	pool   *pgxpool.Pool
	tenant string
	// flushes receives the stats of every commit attempt, in order.
	flushes chan worker.FlushStats
}

// setupWriter returns a bundle and a function that starts a Writer with cfg
// (its OnFlush feeds b.flushes) and stops it when the test ends. The Writer
// is returned unstarted so a test can queue rows before its first flush.
func setupWriter(t *testing.T, cfg worker.WriterConfig) (writerBundle, *worker.Writer, func()) {
	t.Helper()
	return setupWriterOn(t, dbtest.Pool(t), cfg)
}

// setupWriterOn is setupWriter on the database of pool.
func setupWriterOn(t *testing.T, pool *pgxpool.Pool, cfg worker.WriterConfig) (writerBundle, *worker.Writer, func()) {
	t.Helper()
	b := writerBundle{store: store.New(pool), pool: pool, tenant: testserver.Tenant(t), flushes: make(chan worker.FlushStats, 1000)}
	onFlush := cfg.OnFlush
	cfg.OnFlush = func(st worker.FlushStats) {
		if onFlush != nil {
			onFlush(st)
		}
		b.flushes <- st
	}
	w := worker.NewWriter(b.store, owner, cfg)
	start := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx, time.Second) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return b, w, start
}

func (b writerBundle) seqs(t *testing.T, l store.Lease) []int {
	t.Helper()
	rows, _ := b.pool.Query(context.Background(), `SELECT seq FROM job_chunks WHERE job_id = $1 ORDER BY seq`, l.JobID)
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// waitCommitted receives flushes until n rows were committed.
func (b writerBundle) waitCommitted(t *testing.T, n int) {
	t.Helper()
	for got := 0; got < n; {
		st := testserver.Recv(t, b.flushes, fmt.Sprintf("a flush (%d of %d rows committed)", got, n))
		if st.Err != nil {
			t.Fatalf("flush: %v", st.Err)
		}
		got += st.Rows
	}
}

func completed(l store.Lease) store.Finish {
	return store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}
}

func TestWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("FinishWaitsForChunksCutFromTheBatch", func(t *testing.T) {
		t.Parallel()
		var (
			b       writerBundle
			l, idle store.Lease
			checked = make(chan error, 100)
		)
		b, w, start := setupWriter(t, worker.WriterConfig{
			MaxBatch: 3,
			OnFlush: func(st worker.FlushStats) {
				// After every commit: if the job is finished, all of its
				// chunks must be there.
				var status string
				var n int
				err := b.pool.QueryRow(context.Background(), `SELECT status, (SELECT count(*) FROM job_chunks WHERE job_id = $1)
					FROM jobs WHERE id = $1`, l.JobID).Scan(&status, &n)
				if err == nil && status == store.StatusCompleted && n != 11 {
					err = fmt.Errorf("job completed with %d of its 11 chunks committed", n)
				}
				checked <- err
			},
		})
		l = testserver.RunningJob(t, b.pool, b.tenant, owner)
		idle = testserver.RunningJob(t, b.pool, b.tenant, owner)

		// Queue ten chunks and the finish before the writer runs, so that
		// MaxBatch cuts the job's chunks over four transactions.
		for i := range 10 {
			if err := w.Append(ctx, testserver.Content(l, i, "x")); err != nil {
				t.Fatal(err)
			}
		}
		// Finish queues, then waits for the commit or its context: with a
		// context already done it returns at once, leaving the finish
		// queued (its result is delivered to no one).
		done, cancel := context.WithCancel(ctx)
		cancel()
		if err := w.Finish(done, testserver.FinishChunk(l, 10, "stop"), completed(l)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Finish with a done context = %v", err)
		}
		// A finish of a job with nothing pending is not held back.
		if err := w.Finish(done, testserver.FinishChunk(idle, 0, "stop"), completed(idle)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Finish with a done context = %v", err)
		}
		if n := w.Pending(); n != 12 {
			t.Fatalf("Pending = %d, want 12", n)
		}
		start()

		var stats []worker.FlushStats
		for rows := 0; rows < 12; {
			st := testserver.Recv(t, b.flushes, "a flush")
			if err := <-checked; err != nil {
				t.Error(err)
			}
			stats = append(stats, st)
			rows += st.Rows
		}
		var shape []string
		for _, st := range stats {
			shape = append(shape, fmt.Sprintf("%d rows/%d finishes", st.Rows, st.Finishes))
		}
		want := []string{"4 rows/1 finishes", "3 rows/0 finishes", "3 rows/0 finishes", "2 rows/1 finishes"}
		if !reflect.DeepEqual(shape, want) {
			t.Errorf("flushes = %v, want %v", shape, want)
		}
		snap, err := b.store.Read(ctx, b.tenant, l.JobID, 0, 100)
		if err != nil || snap.Status != store.StatusCompleted || len(snap.Chunks) != 11 {
			t.Errorf("job = %s with %d chunks (%v), want completed with 11", snap.Status, len(snap.Chunks), err)
		}
	})

	t.Run("FinishReturnsOnceCommitted", func(t *testing.T) {
		t.Parallel()
		b, w, start := setupWriter(t, worker.WriterConfig{})
		start()
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		for i := range 3 {
			if err := w.Append(ctx, testserver.Content(l, i, "x")); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Finish(ctx, testserver.FinishChunk(l, 3, "stop"), completed(l)); err != nil {
			t.Fatal(err)
		}
		snap, err := b.store.Read(ctx, b.tenant, l.JobID, 0, 100)
		if err != nil || !snap.Terminal() || len(snap.Chunks) != 4 {
			t.Errorf("after Finish: %s with %d chunks (%v)", snap.Status, len(snap.Chunks), err)
		}
		w.Release(l)
		if w.Pending() != 0 {
			t.Errorf("Pending = %d after the finish", w.Pending())
		}
	})

	// A full buffer is backpressure: Append waits for room rather than
	// failing, and the rows keep their order.
	t.Run("FullBufferWaitsForRoom", func(t *testing.T) {
		t.Parallel()
		var waits []bool
		b, w, start := setupWriter(t, worker.WriterConfig{MaxPending: 5, OverloadWait: time.Hour,
			OnWait: func(_ time.Duration, ok bool) { waits = append(waits, ok) }})
		waiting := make(chan struct{}, 1)
		worker.SetWaitStart(w, func() { waiting <- struct{}{} })
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		for i := range 5 {
			if err := w.Append(ctx, testserver.Content(l, i, "x")); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		appended := make(chan error, 1)
		go func() { appended <- w.Append(ctx, testserver.Content(l, 5, "x")) }()
		testserver.Recv(t, waiting, "the sixth Append to wait for room")
		if n := w.Pending(); n != 5 {
			t.Errorf("Pending = %d while an Append waits, want the bound of 5", n)
		}
		start()
		if err := testserver.Recv(t, appended, "the waiting Append"); err != nil {
			t.Fatalf("append once there was room: %v", err)
		}
		b.waitCommitted(t, 6)
		if got := b.seqs(t, l); !reflect.DeepEqual(got, []int{0, 1, 2, 3, 4, 5}) {
			t.Errorf("stored seqs %v, want 0..5 in order", got)
		}
		if !reflect.DeepEqual(waits, []bool{true}) {
			t.Errorf("OnWait outcomes %v, want one wait that got room", waits)
		}
	})

	// When no room comes (the database stays away), the job fails after
	// OverloadWait rather than buffering without bound.
	t.Run("OverloadedAfterOverloadWait", func(t *testing.T) {
		t.Parallel()
		b, w, _ := setupWriter(t, worker.WriterConfig{MaxPending: 5, OverloadWait: 20 * time.Millisecond})
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		for i := range 5 {
			if err := w.Append(ctx, testserver.Content(l, i, "x")); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		if err := w.Append(ctx, testserver.Content(l, 5, "x")); !errors.Is(err, worker.ErrOverloaded) {
			t.Fatalf("append to a buffer that stays full: %v, want ErrOverloaded", err)
		}
		if n := w.Pending(); n != 5 {
			t.Errorf("Pending = %d, want 5", n)
		}
	})

	t.Run("WaitEndsWithContext", func(t *testing.T) {
		t.Parallel()
		b, w, _ := setupWriter(t, worker.WriterConfig{MaxPending: 1, OverloadWait: time.Hour})
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		if err := w.Append(ctx, testserver.Content(l, 0, "x")); err != nil {
			t.Fatal(err)
		}
		jctx, cancel := context.WithCancel(ctx)
		worker.SetWaitStart(w, cancel)
		if err := w.Append(jctx, testserver.Content(l, 1, "x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("append whose job was cancelled while waiting: %v, want context.Canceled", err)
		}
	})

	for _, theft := range []struct{ name, sql string }{
		{"LostLeaseStopsWrites/OtherOwner", `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`},
		{"LostLeaseStopsWrites/NewAttempt", `UPDATE jobs SET attempt = attempt + 1 WHERE id = $1`},
	} {
		t.Run(theft.name, func(t *testing.T) {
			t.Parallel()
			b, w, start := setupWriter(t, worker.WriterConfig{})
			start()
			l := testserver.RunningJob(t, b.pool, b.tenant, owner)
			for i := range 2 {
				if err := w.Append(ctx, testserver.Content(l, i, "x")); err != nil {
					t.Fatal(err)
				}
			}
			b.waitCommitted(t, 2)

			if _, err := b.pool.Exec(ctx, theft.sql, l.JobID); err != nil {
				t.Fatal(err)
			}
			// Append only queues: the next commit finds the lease gone.
			if err := w.Append(ctx, testserver.Content(l, 2, "late")); err != nil {
				t.Fatalf("append after the theft: %v", err)
			}
			for {
				st := testserver.Recv(t, b.flushes, "the fenced flush")
				if st.Fenced > 0 {
					break
				}
			}
			if err := w.Append(ctx, testserver.Content(l, 3, "later")); !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("Append after a fenced flush = %v, want ErrLeaseLost", err)
			}
			if err := w.Finish(ctx, testserver.FinishChunk(l, 3, "stop"), completed(l)); !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("Finish = %v, want ErrLeaseLost", err)
			}
			if seqs := b.seqs(t, l); !reflect.DeepEqual(seqs, []int{0, 1}) {
				t.Errorf("stored seqs = %v, want [0 1]: nothing after the theft", seqs)
			}
			job, _ := b.store.Get(ctx, b.tenant, l.JobID)
			if job.Status != store.StatusRunning {
				t.Errorf("status = %s: the old owner finished a job it lost", job.Status)
			}
		})
	}

	t.Run("FinishOfLostLeaseWithoutEarlierChunks", func(t *testing.T) {
		t.Parallel()
		b, w, start := setupWriter(t, worker.WriterConfig{})
		start()
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, l.JobID); err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(ctx, testserver.FinishChunk(l, 0, "stop"), completed(l)); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("Finish = %v, want ErrLeaseLost", err)
		}
		if seqs := b.seqs(t, l); len(seqs) != 0 {
			t.Errorf("stored seqs = %v", seqs)
		}
	})
}
