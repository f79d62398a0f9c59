package worker_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/worker"
)

// TestWorkerChainsEveryChunk: jobs run by either chunk writer, completed,
// failed or cancelled, verify (the worker's in-memory chain matches what
// verification recomputes from the stored rows).
func TestWorkerChainsEveryChunk(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{worker.WriteBatched, worker.WriteNaive} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := setupWorker(t, worker.Config{WriteMode: mode})
			ids := []uuid.UUID{
				b.submit(t, sim.ID, map[string]any{"sim_tokens": 40, "sim_tokens_per_second": 0}),
				b.submit(t, sim.ID, map[string]any{"sim_tokens": 10, "sim_tokens_per_second": 0, "sim_fail_after": 4}),
			}
			for _, id := range ids {
				_, snap := b.follow(t, id, nil)
				res, err := b.store.Verify(context.Background(), tenant, id)
				if err != nil || !res.OK || res.Chunks == 0 {
					t.Errorf("job ended %s: Verify = %+v, %v", snap.Status, res, err)
				}
			}
			// A running job verifies up to its last committed chunk, and
			// its cancel seals it.
			slow := b.submit(t, sim.ID, map[string]any{"sim_tokens": 1000, "sim_tokens_per_second": 20})
			if _, err := b.store.RequestCancel(context.Background(), tenant, slow); err != nil {
				t.Fatal(err)
			}
			_, snap := b.follow(t, slow, nil)
			res, err := b.store.Verify(context.Background(), tenant, slow)
			if err != nil || !res.OK || snap.Status != store.StatusCancelled {
				t.Errorf("cancelled job (%s): Verify = %+v, %v", snap.Status, res, err)
			}
		})
	}
}
