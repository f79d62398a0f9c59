package worker_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/worker"
)

// gate is an engine whose turns wait for a value on release (or for their
// context), then answer "ok". A stubborn gate ignores its context, as a
// model call that cannot be cancelled would.
type gate struct {
	release  chan struct{}
	stubborn bool
}

func (g gate) Stream(ctx context.Context, _ engine.Request, emit engine.Emit) (engine.Finish, error) {
	if g.stubborn {
		<-g.release
	} else {
		select {
		case <-g.release:
		case <-ctx.Done():
			return engine.Finish{}, ctx.Err()
		}
	}
	if err := emit(engine.Content("ok")); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: engine.FinishStop}, nil
}

// submitAs submits a job of tenant to engine eng.
func (b workerBundle) submitAs(t *testing.T, tenant, eng string, params map[string]any) uuid.UUID {
	t.Helper()
	p := map[string]json.RawMessage{}
	for k, v := range params {
		raw, _ := json.Marshal(v)
		p[k] = raw
	}
	job, err := b.store.Submit(context.Background(), store.SubmitParams{Tenant: tenant, Engine: eng, Request: store.Request{Command: "go", Params: p}})
	if err != nil {
		t.Fatal(err)
	}
	return job.ID
}

// end long-polls a job of tenant until it ends, for at most within, and
// returns its chunks and final snapshot.
func (b workerBundle) end(t *testing.T, tenant string, id uuid.UUID, within time.Duration) ([]store.Chunk, store.Snapshot) {
	t.Helper()
	deadline := time.Now().Add(within)
	var all []store.Chunk
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			t.Fatalf("job %s of %s has not ended within %s (%d chunks)", id, tenant, within, len(all))
		}
		snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: tenant, JobID: id, From: len(all), Limit: 1000, Wait: wait})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, snap.Chunks...)
		if snap.Terminal() && !snap.More {
			return all, snap
		}
	}
}

// batches records the worker's claim batches on a channel, empty ones left
// out.
func batches(w *worker.Worker) <-chan []store.Claim {
	ch := make(chan []store.Claim, 1000)
	worker.SetClaimed(w, func(cs []store.Claim) {
		if len(cs) > 0 {
			ch <- cs
		}
	})
	return ch
}

func next(t *testing.T, ch <-chan []store.Claim) []store.Claim {
	t.Helper()
	select {
	case cs := <-ch:
		return cs
	case <-time.After(30 * time.Second):
		t.Fatal("no claim within 30s")
		return nil
	}
}

// TestFairClaims: a tenant that floods the queue does not keep another
// tenant's job from starting (issue 18, item 2).
func TestFairClaims(t *testing.T) {
	t.Parallel()

	// The tester's attack: with 4 slots, tenant a submits jobs whose model
	// never answers (sim_first_token_delay 600 s); b's job must still run
	// at once. a holds at most 3 slots (the default cap, three quarters);
	// the fourth runs b's job while a's others wait queued.
	t.Run("FloodLeavesRoom", func(t *testing.T) {
		t.Parallel()
		var claims <-chan []store.Claim
		b := setupWorkerWith(t, worker.Config{Concurrency: 4, ShutdownGrace: time.Millisecond}, nil, func(w *worker.Worker) { claims = batches(w) })
		for range 8 {
			b.submitAs(t, "a", sim.ID, map[string]any{"sim_first_token_delay": 600})
		}
		for n := 0; n < 3; {
			n += len(next(t, claims))
		}
		bJob := b.submitAs(t, "b", sim.ID, map[string]any{"sim_tokens": 5, "sim_tokens_per_second": 0})
		if _, snap := b.end(t, "b", bJob, 20*time.Second); snap.Status != store.StatusCompleted {
			t.Errorf("b's job ended %s, want completed while a's flood waits", snap.Status)
		}
		var running, queued int
		if err := b.pool.QueryRow(context.Background(), `
			SELECT count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'queued')
			FROM jobs WHERE tenant = 'a'`).Scan(&running, &queued); err != nil {
			t.Fatal(err)
		}
		if running != 3 || queued != 5 {
			t.Errorf("a has %d running, %d queued; want 3 (the cap) and 5", running, queued)
		}
	})

	// Without a cap, a flood that came first fills every slot; b's job is
	// then the very next one claimed when a slot frees, ahead of the
	// flood's older jobs (round robin: fewest running first).
	t.Run("RoundRobin", func(t *testing.T) {
		t.Parallel()
		g := gate{release: make(chan struct{})}
		var claims <-chan []store.Claim
		b := setupWorkerWith(t, worker.Config{Concurrency: 2, TenantCap: -1, ShutdownGrace: time.Millisecond},
			map[string]engine.Engine{"gate": g}, func(w *worker.Worker) { claims = batches(w) })
		t.Cleanup(func() { close(g.release) })
		for range 10 {
			b.submitAs(t, "a", "gate", nil)
		}
		for n := 0; n < 2; {
			for _, c := range next(t, claims) {
				if c.Tenant != "a" {
					t.Fatalf("claimed %s's job", c.Tenant)
				}
				n++
			}
		}
		bJob := b.submitAs(t, "b", "gate", nil)
		// Both slots are a's; b's job waits for one. One of a's ends.
		g.release <- struct{}{}
		cs := next(t, claims)
		if !slices.ContainsFunc(cs, func(c store.Claim) bool { return c.JobID == bJob }) {
			t.Errorf("the claim after a slot freed took %v, want b's job ahead of a's 8 older ones", cs)
		}
	})
}

// TestMaxRuntime: a job is stopped at the worker's maximum runtime and
// ends failed with an error finish chunk of type timeout, whether or not
// it had written anything.
func TestMaxRuntime(t *testing.T) {
	t.Parallel()
	const bound = 300 * time.Millisecond
	b := setupWorker(t, worker.Config{MaxRuntime: bound})
	silent := b.submit(t, sim.ID, map[string]any{"sim_first_token_delay": 600})
	streaming := b.submit(t, sim.ID, map[string]any{"sim_tokens": 100_000, "sim_tokens_per_second": 200})
	for name, id := range map[string]uuid.UUID{"Silent": silent, "Streaming": streaming} {
		t.Run(name, func(t *testing.T) {
			chunks, snap := b.end(t, tenant, id, 30*time.Second)
			if snap.Status != store.StatusFailed || snap.FinishReason != "error" {
				t.Fatalf("ended %s/%s, want failed/error", snap.Status, snap.FinishReason)
			}
			last := data(t, chunks[len(chunks)-1])
			e, _ := last["error"].(map[string]any)
			if last["finish_reason"] != "error" || e["type"] != "timeout" || !strings.Contains(e["message"].(string), "maximum runtime of 300ms") {
				t.Errorf("last chunk %v, want an error of type timeout naming the 300ms maximum runtime", last)
			}
			if name == "Streaming" && len(chunks) < 2 {
				t.Errorf("%d chunks: the streaming job wrote nothing before its bound", len(chunks))
			}
			j, _ := b.store.Get(context.Background(), tenant, id)
			if !strings.Contains(string(j.Error), `"timeout"`) {
				t.Errorf("job error %s, want type timeout", j.Error)
			}
			if res, err := b.store.Verify(context.Background(), tenant, id); err != nil || !res.OK {
				t.Errorf("verify: %+v, %v", res, err)
			}
		})
	}
}

// TestMaxRuntimeInTheDatabase: a model call that ignores its deadline (and
// so keeps its worker's lease alive) is still ended: the rescuer fails the
// job a lease TTL past its deadline, and when the call finally returns,
// its worker writes nothing more.
func TestMaxRuntimeInTheDatabase(t *testing.T) {
	t.Parallel()
	g := gate{release: make(chan struct{}), stubborn: true}
	done := make(chan store.Lease, 1)
	b := setupWorkerWith(t, worker.Config{MaxRuntime: 100 * time.Millisecond, LeaseTTL: time.Second, RescueInterval: 50 * time.Millisecond},
		map[string]engine.Engine{"stuck": g}, func(w *worker.Worker) { worker.SetJobDone(w, func(l store.Lease) { done <- l }) })
	id := b.submit(t, "stuck", nil)
	chunks, snap := b.end(t, tenant, id, 30*time.Second)
	if snap.Status != store.StatusFailed || len(chunks) != 1 {
		t.Fatalf("ended %s with %d chunks, want failed with the rescuer's error chunk", snap.Status, len(chunks))
	}
	last := data(t, chunks[0])
	if e, _ := last["error"].(map[string]any); e["type"] != "timeout" || !strings.Contains(e["message"].(string), "maximum runtime") {
		t.Errorf("chunk %v, want a timeout error", last)
	}
	events, err := b.store.Events(context.Background(), tenant, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if e := events[len(events)-1]; e.Event != "failed" || !strings.HasPrefix(e.Actor, "rescuer:") {
		t.Errorf("last event %s by %s, want failed by the rescuer", e.Event, e.Actor)
	}
	// The model call returns at last: its output is fenced off.
	close(g.release)
	<-done
	if n := maxSeq(t, b.pool, id); n != 0 {
		t.Errorf("max seq %d after the stuck call returned, want 0 (only the rescuer's chunk)", n)
	}
	if j, _ := b.store.Get(context.Background(), tenant, id); j.Status != store.StatusFailed {
		t.Errorf("job is %s after the stuck call returned, want failed", j.Status)
	}
}
