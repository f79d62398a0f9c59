package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestWorkerKilled: a node is killed with SIGKILL while it runs three jobs.
// Once their leases expire (--lease-ttl 2s), the surviving node's rescuer
//
//   - fails the job that was streaming, with an error finish chunk that
//     follows its last chunk, so readers on any node see a clean end;
//   - requeues the job whose model had not answered yet (no chunk
//     written), which the survivor then runs to completion;
//   - fails the job that had no chunk but no attempt left either.
//
// Readers that were on the dead node resume on the survivor; every reader
// gets every chunk exactly once, in order.
func TestWorkerKilled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := setup(t)
	ttl := []string{"--lease-ttl", "2s"}
	a := b.serve(ttl...)

	streaming := b.submit(a, "streaming when killed", "sim_tokens", 40_000, "sim_tokens_per_second", 20)
	// The model answers after 15 s: nothing is written before the kill.
	// (4 s was not always enough: on a loaded 2-core machine getting from
	// here to the kill took 6 s, and the job completed on the dead node.)
	silent := b.submit(a, "not answered yet", "sim_first_token_delay", 15, "sim_tokens", 10, "sim_tokens_per_second", 0)
	lastTry := b.submit(a, "not answered, last attempt", "sim_first_token_delay", 15, "sim_tokens", 10, "sim_tokens_per_second", 0)
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET max_attempts = 1 WHERE id = $1`, lastTry.ID); err != nil {
		t.Fatal(err)
	}
	b.waitStatus(silent.ID, store.StatusRunning)
	b.waitStatus(lastTry.ID, store.StatusRunning)
	page, err := b.client(a).Chunks(ctx, streaming.ID, client.ChunksParams{Offset: 2, Wait: 20 * time.Second})
	if err != nil || len(page.Chunks) == 0 {
		t.Fatalf("the stream did not start: %+v, %v", page, err)
	}

	// The survivor starts once a holds every job, so it claims none.
	s := b.serve(ttl...)
	onDead := func(served func()) reader { return reader{hc: b.hc, urls: fixed(a.URL, s.URL), served: served} }
	onSurvivor := reader{hc: b.hc, urls: fixed(s.URL)}
	served1, ok1 := signal()
	served2, ok2 := signal()
	served3, ok3 := signal()
	sseFromDead := goRead(func() (read, error) { return onDead(served1).sse(ctx, streaming.ID) })
	pollFromDead := goRead(func() (read, error) { return onDead(served2).poll(ctx, streaming.ID) })
	lastTryRead := goRead(func() (read, error) { return onDead(served3).sse(ctx, lastTry.ID) })
	sseOnSurvivor := goRead(func() (read, error) { return onSurvivor.sse(ctx, streaming.ID) })
	silentRead := goRead(func() (read, error) { return onSurvivor.poll(ctx, silent.ID) })

	// Kill a mid-stream, once the readers on it are being served.
	for _, c := range []<-chan struct{}{ok1, ok2, ok3} {
		testserver.Recv(t, c, "a reader to be served by the node about to die")
	}
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]<-chan readResult{"SSE from the dead node": sseFromDead, "long-poll from the dead node": pollFromDead, "SSE on the survivor": sseOnSurvivor} {
		r := testserver.Recv(t, c, name)
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		if r.Status != store.StatusFailed {
			t.Errorf("%s: ended %s, want failed", name, r.Status)
		}
		b.exactlyOnce(name, streaming.ID, r.Chunks)
	}
	chunks := b.stored(streaming.ID)
	if last := chunks[len(chunks)-1]; finishReason(last) != "error" || errorType(last) != "lease_expired" {
		t.Errorf("last chunk %s, want an error finish chunk of type lease_expired", last.Data)
	}

	r := testserver.Recv(t, silentRead, "the requeued job to end")
	if r.err != nil || r.Status != store.StatusCompleted || len(r.Chunks) != 12 {
		t.Errorf("requeued job: %s with %d chunks (%v), want completed with 12", r.Status, len(r.Chunks), r.err)
	}
	b.exactlyOnce("requeued job reader", silent.ID, r.Chunks)
	ev := b.events(silent.ID)
	// queued, running (a), queued (rescued), running (survivor), completed.
	if len(ev) != 5 || ev[2].To != store.StatusQueued || ev[3].To != store.StatusRunning || ev[1].Owner == ev[3].Owner || ev[3].Attempt != 2 {
		t.Errorf("requeued job's events: %+v, want a second attempt on another node", ev)
	}

	r = testserver.Recv(t, lastTryRead, "the job out of attempts to end")
	if r.err != nil || r.Status != store.StatusFailed || len(r.Chunks) != 1 || errorType(r.Chunks[0]) != "lease_expired" {
		t.Errorf("job out of attempts: %s with %v (%v), want failed with one lease_expired chunk", r.Status, r.Chunks, r.err)
	}
}
