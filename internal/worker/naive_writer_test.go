package worker_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

func TestNaiveWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		writerBundle
		w *worker.NaiveWriter
	}
	setup := func(t *testing.T) testBundle {
		pool := dbtest.Pool(t)
		b := testBundle{writerBundle: writerBundle{store: store.New(pool), pool: pool, tenant: t.Name(), flushes: make(chan worker.FlushStats, 100)}}
		b.w = worker.NewNaiveWriter(b.store, owner, worker.WriterConfig{OnFlush: func(st worker.FlushStats) { b.flushes <- st }})
		return b
	}

	t.Run("OneCommitAndNotifyPerChunk", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		for i := range 3 {
			if err := b.w.Append(ctx, testserver.Content(l, i, "x")); err != nil {
				t.Fatal(err)
			}
			// Append returns after its own commit.
			if got := b.seqs(t, l); len(got) != i+1 {
				t.Fatalf("after Append %d: stored %v", i, got)
			}
		}
		if err := b.w.Finish(ctx, testserver.FinishChunk(l, 3, "stop"), completed(l)); err != nil {
			t.Fatal(err)
		}
		if got := b.seqs(t, l); !reflect.DeepEqual(got, []int{0, 1, 2, 3}) {
			t.Fatalf("stored %v", got)
		}
		for i := range 4 {
			st := testserver.Recv(t, b.flushes, "a commit")
			if st.Err != nil || st.Rows != 1 || st.Notifies != 1 || st.Fenced != 0 {
				t.Fatalf("commit %d: %+v, want one row and one NOTIFY", i, st)
			}
		}
		job, err := b.store.Get(ctx, b.tenant, l.JobID)
		if err != nil || job.Status != store.StatusCompleted {
			t.Fatalf("job: %s, %v", job.Status, err)
		}
	})

	t.Run("FencedOnTheLease", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := testserver.RunningJob(t, b.pool, b.tenant, owner)
		if err := b.w.Append(ctx, testserver.Content(l, 0, "x")); err != nil {
			t.Fatal(err)
		}
		// Another worker takes the job over (a rescue and a new claim).
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET attempt = attempt + 1, lease_owner = 'someone else' WHERE id = $1`, l.JobID); err != nil {
			t.Fatal(err)
		}
		if err := b.w.Append(ctx, testserver.Content(l, 1, "x")); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("Append after the lease was lost: %v, want ErrLeaseLost", err)
		}
		// Known lost: refused without a commit.
		if err := b.w.Finish(ctx, testserver.FinishChunk(l, 1, "stop"), completed(l)); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("Finish after the lease was lost: %v, want ErrLeaseLost", err)
		}
		if got := b.seqs(t, l); !reflect.DeepEqual(got, []int{0}) {
			t.Fatalf("stored %v, want [0]", got)
		}
		testserver.Recv(t, b.flushes, "the first commit")
		if st := testserver.Recv(t, b.flushes, "the fenced commit"); st.Fenced != 1 || st.Notifies != 0 {
			t.Fatalf("fenced commit: %+v", st)
		}
		select {
		case st := <-b.flushes:
			t.Fatalf("a commit after the lease was known lost: %+v", st)
		default:
		}
		job, err := b.store.Get(ctx, b.tenant, l.JobID)
		if err != nil || job.Status != store.StatusRunning {
			t.Fatalf("job: %s, %v; the new owner's job must stay running", job.Status, err)
		}
	})
}

// TestWriteMode: Config.WriteMode picks the chunk writer.
func TestWriteMode(t *testing.T) {
	t.Parallel()
	s := store.New(dbtest.Pool(t))
	if _, ok := worker.New(s, nil, worker.Config{}).Writer().(*worker.Writer); !ok {
		t.Fatal("default write mode: not the batching Writer")
	}
	if _, ok := worker.New(s, nil, worker.Config{WriteMode: worker.WriteNaive}).Writer().(*worker.NaiveWriter); !ok {
		t.Fatal("naive write mode: not the NaiveWriter")
	}
}
