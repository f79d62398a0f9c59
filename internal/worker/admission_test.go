package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

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
