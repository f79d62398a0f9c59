package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/worker"
)

// TestAdmissionControl: while the chunk writer's backlog is above
// AdmitBacklog the worker claims no new job, so a submitted job stays
// queued (it does not start and then fail as overloaded); once the backlog
// drains, the job is claimed and completes. The backlog is real: rows
// queued in the writer, whose first commit is held.
func TestAdmissionControl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const admit = 10
	// Rows of a lease nobody holds, appended before the worker runs: the
	// claim loop's first look already sees the backlog. One row per
	// commit, and the first commit is held, so admit+1 rows stay queued.
	ghost := store.Lease{JobID: uuid.Must(uuid.NewV7()), Attempt: 1}
	var proceed chan struct{}
	held := make(chan int, 1)
	var w *worker.Writer
	b := setupWorkerWith(t, worker.Config{AdmitBacklog: admit, PollInterval: time.Hour, Writer: worker.WriterConfig{MaxBatch: 1}}, nil, func(wk *worker.Worker) {
		w = wk.Writer().(*worker.Writer)
		_, proceed = holdFirstWrite(w)
		worker.SetHeld(wk, func(n int) {
			select {
			case held <- n:
			default:
			}
		})
		for seq := range admit + 2 {
			if err := w.Append(ctx, store.NewChunk{Lease: ghost, Seq: seq, StreamType: "content", Data: []byte(`{"content":"x"}`)}); err != nil {
				t.Fatal(err)
			}
		}
	})
	released := false
	defer func() {
		if !released {
			close(proceed)
		}
	}()
	if n := w.Pending(); n <= admit {
		t.Fatalf("backlog %d, want above %d", n, admit)
	}

	id := b.submit(t, sim.ID, map[string]any{"sim_tokens": 3, "sim_tokens_per_second": 0})
	// Any signal from before the submit is stale.
	select {
	case <-held:
	default:
	}
	b.worker.Wake()
	select {
	case n := <-held:
		if n <= admit {
			t.Fatalf("held back with backlog %d", n)
		}
	case <-time.After(time.Minute):
		t.Fatal("the claim loop never held back")
	}
	job, err := b.store.Get(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != store.StatusQueued || job.Attempt != 0 {
		t.Fatalf("job is %s (attempt %d) while the backlog is above the bound, want queued", job.Status, job.Attempt)
	}

	// The backlog drains: the next commit wakes the claim loop.
	released = true
	close(proceed)
	_, snap := b.follow(t, id, nil)
	if snap.Status != store.StatusCompleted {
		t.Fatalf("job ended %s, want completed", snap.Status)
	}
}

// gateEngine streams one token per call once its gate opens, reporting
// each call's start.
type gateEngine struct {
	started chan struct{}
	gate    chan struct{}
}

func (e *gateEngine) Stream(ctx context.Context, _ engine.Request, emit engine.Emit) (engine.Finish, error) {
	e.started <- struct{}{}
	select {
	case <-e.gate:
	case <-ctx.Done():
		return engine.Finish{}, ctx.Err()
	}
	if err := emit(engine.Content("x")); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: engine.FinishStop}, nil
}

// TestAdmissionSteps: with the writer's backlog above half of
// AdmitBacklog (behind, not past the bound), the worker claims at most
// AdmitStep jobs and then nothing more until the writer's next commit,
// however many jobs are queued and however often it is woken; after the
// commit it takes the next step, and every job completes.
func TestAdmissionSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const admit, step, jobs = 10, 2, 6
	ghost := store.Lease{JobID: uuid.Must(uuid.NewV7()), Attempt: 1}
	gate := &gateEngine{started: make(chan struct{}, jobs), gate: make(chan struct{})}
	var proceed chan struct{}
	held := make(chan int, 64)
	var w *worker.Writer
	b := setupWorkerWith(t, worker.Config{AdmitBacklog: admit, AdmitStep: step, PollInterval: time.Hour, Writer: worker.WriterConfig{MaxBatch: 1}},
		map[string]engine.Engine{"gate": gate}, func(wk *worker.Worker) {
			w = wk.Writer().(*worker.Writer)
			_, proceed = holdFirstWrite(w)
			worker.SetHeld(wk, func(n int) { held <- n })
			// 8 rows of a lease nobody holds: 7 or 8 stay queued behind
			// the held first commit, above admit/2 and not above admit.
			for seq := range 8 {
				if err := w.Append(ctx, store.NewChunk{Lease: ghost, Seq: seq, StreamType: "content", Data: []byte(`{"content":"x"}`)}); err != nil {
					t.Fatal(err)
				}
			}
		})
	released := false
	defer func() {
		if !released {
			close(proceed)
			close(gate.gate)
		}
	}()
	// All queued at once (one statement), then one wake-up.
	var ids []uuid.UUID
	rows, err := b.pool.Query(ctx, `INSERT INTO jobs (id, tenant, engine, request)
		SELECT gen_random_uuid(), $1, 'gate', '{"command":"gate"}' FROM generate_series(1, $2) RETURNING id`, tenant, jobs)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Close(); rows.Err() != nil || len(ids) != jobs {
		t.Fatalf("queued %d jobs: %v", len(ids), rows.Err())
	}
	b.worker.Wake()
	for range step {
		select {
		case <-gate.started:
		case <-time.After(time.Minute):
			t.Fatal("no job started")
		}
	}
	// Every wake-up from here on must claim nothing: drain the signals,
	// wake the loop, and wait until it has held back once more.
	for len(held) > 0 {
		<-held
	}
	b.worker.Wake()
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the claim loop never held back")
	}
	var queued int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id = ANY($1) AND status = 'queued'`, ids).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != jobs-step {
		t.Fatalf("%d of %d jobs still queued while the writer is behind, want %d (one step of %d claimed)", queued, jobs, jobs-step, step)
	}
	select {
	case <-gate.started:
		t.Fatal("a job beyond the step started before any commit")
	default:
	}
	// The commit lets the next steps through; every job completes.
	released = true
	close(proceed)
	close(gate.gate)
	for _, id := range ids {
		if _, snap := b.follow(t, id, nil); snap.Status != store.StatusCompleted {
			t.Fatalf("job %s ended %s, want completed", id, snap.Status)
		}
	}
}
