package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

// TestWriterReleaseForgetsLostLease: rows still queued for a lost lease when
// its job releases it are dropped, so no later flush re-marks the lease lost
// and the Writer's memory of lost leases does not grow without bound.
func TestWriterReleaseForgetsLostLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, w, start := setupWriter(t, worker.WriterConfig{MaxBatch: 1})
	lost := testserver.RunningJob(t, b.pool, b.tenant, owner)
	other := testserver.RunningJob(t, b.pool, b.tenant, owner)
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, lost.JobID); err != nil {
		t.Fatal(err)
	}
	// Two rows queued before the first flush; MaxBatch 1 commits them in
	// two batches, so the second is still queued when the first finds the
	// lease gone.
	for seq := range 2 {
		if err := w.Append(ctx, store.NewChunk{Lease: lost, Seq: seq, StreamType: "content", Data: []byte(`{"content":"x"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	start()
	st := testserver.Recv(t, b.flushes, "the first flush")
	if st.Err != nil || st.Rows != 1 {
		t.Fatalf("first flush = %+v", st)
	}
	if err := w.Append(ctx, store.NewChunk{Lease: lost, Seq: 2, StreamType: "content", Data: []byte(`{}`)}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Append after the lease was found lost = %v, want ErrLeaseLost", err)
	}
	w.Release(lost)
	// A later batch commits after anything queued before it.
	last := store.NewChunk{Lease: other, Seq: 0, StreamType: "content", Data: []byte(`{"finish_reason":"stop"}`)}
	if err := w.Finish(ctx, last, completed(other)); err != nil {
		t.Fatal(err)
	}
	if n := worker.LostLeases(w); n != 0 {
		t.Fatalf("Writer remembers %d lost leases after Release, want 0", n)
	}
	if got := b.seqs(t, lost); len(got) != 0 {
		t.Fatalf("rows %v written under a stolen lease", got)
	}
}

// TestWriterReleaseDuringFlush: a lease released while a batch holding its
// rows is out to the database is not marked lost again by that batch's
// outcome, which would leave the entry behind forever.
func TestWriterReleaseDuringFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, w, start := setupWriter(t, worker.WriterConfig{})
	inFlight, proceed := holdFirstWrite(w)
	lost := testserver.RunningJob(t, b.pool, b.tenant, owner)
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, lost.JobID); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(ctx, store.NewChunk{Lease: lost, Seq: 0, StreamType: "content", Data: []byte(`{"content":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	start()
	testserver.Recv(t, inFlight, "the batch to leave the queue")
	w.Release(lost)
	close(proceed)
	if st := testserver.Recv(t, b.flushes, "the flush"); st.Err != nil || st.Fenced != 1 {
		t.Fatalf("flush = %+v, want one fenced job", st)
	}
	if n := worker.LostLeases(w); n != 0 {
		t.Fatalf("Writer remembers %d lost leases after Release, want 0", n)
	}
	if got := b.seqs(t, lost); len(got) != 0 {
		t.Fatalf("rows %v written under a stolen lease", got)
	}
}

// TestWriterReleaseDuringFailedFlush: a lease released while a batch
// holding its rows is out to the database, when that commit fails, is not
// marked lost by the retry of the same rows either. The test has a
// database of its own: a trigger fails the first insert of chunks.
func TestWriterReleaseDuringFailedFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, dbtest.Isolated(t), 4)
	b, w, start := setupWriterOn(t, pool, worker.WriterConfig{})
	if _, err := pool.Exec(ctx, `
		CREATE SEQUENCE fail_once;
		CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('fail_once') = 1 THEN RAISE EXCEPTION 'the first insert fails'; END IF;
			RETURN NULL;
		END $$;
		CREATE TRIGGER fail_once AFTER INSERT ON job_chunks FOR EACH STATEMENT EXECUTE FUNCTION fail_once();`); err != nil {
		t.Fatal(err)
	}
	inFlight, proceed := holdFirstWrite(w)
	lost := testserver.RunningJob(t, b.pool, b.tenant, owner)
	other := testserver.RunningJob(t, b.pool, b.tenant, owner)
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, lost.JobID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.NewChunk{testserver.Content(lost, 0, "x"), testserver.Content(other, 0, "y")} {
		if err := w.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	start()
	testserver.Recv(t, inFlight, "the batch to leave the queue")
	w.Release(lost)
	close(proceed)
	if st := testserver.Recv(t, b.flushes, "the failing flush"); st.Err == nil {
		t.Fatalf("first flush = %+v, want the trigger's error", st)
	}
	if st := testserver.Recv(t, b.flushes, "the retry"); st.Err != nil || st.Fenced != 1 {
		t.Fatalf("retry = %+v, want one fenced job", st)
	}
	if n := worker.LostLeases(w); n != 0 {
		t.Fatalf("Writer remembers %d lost leases after Release, want 0", n)
	}
	if got := b.seqs(t, other); len(got) != 1 {
		t.Errorf("the other job's rows: %v, want [0]", got)
	}
}

// holdFirstWrite makes w's first batch wait, once it left the queue, until
// proceed is closed; inFlight is closed when it gets there.
func holdFirstWrite(w *worker.Writer) (inFlight, proceed chan struct{}) {
	inFlight, proceed = make(chan struct{}), make(chan struct{})
	var once sync.Once
	worker.SetBeforeWrite(w, func() {
		once.Do(func() {
			close(inFlight)
			<-proceed
		})
	})
	return inFlight, proceed
}

// TestWriterReleaseAfterFinishTimeout: a job whose Finish wait timed out
// (the database was slow) releases its lease while its finish is still
// queued; when that finish is later committed and finds the lease lost,
// the Writer must not remember the lease forever (issue 19).
func TestWriterReleaseAfterFinishTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, w, start := setupWriter(t, worker.WriterConfig{})
	lost := testserver.RunningJob(t, b.pool, b.tenant, owner)
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, lost.JobID); err != nil {
		t.Fatal(err)
	}
	// The writer has not run yet: the Finish's wait ends (its context
	// is over) with the finish still queued, and the job releases.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Finish(gone, testserver.FinishChunk(lost, 0, "stop"), completed(lost)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Finish = %v, want context.Canceled", err)
	}
	w.Release(lost)
	start()
	if st := testserver.Recv(t, b.flushes, "the flush"); st.Err != nil || st.Fenced != 1 {
		t.Fatalf("flush = %+v, want one fenced job", st)
	}
	if n := worker.LostLeases(w); n != 0 {
		t.Fatalf("Writer remembers %d lost leases after Release, want 0", n)
	}
}
