package stream_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// coalesceBundle is a Reader on a real LISTEN connection, with counters of
// its statements and spared reads.
type coalesceBundle struct {
	store   *store.Store
	hub     *notify.Hub
	reader  *stream.Reader
	tenant  string
	stmts   atomic.Int64
	reads   atomic.Int64 // reads served by those statements
	skipped chan struct{}
	waiting chan struct{}
}

func setupCoalesce(t *testing.T, cfg stream.Config) *coalesceBundle {
	t.Helper()
	pool := dbtest.PoolSize(t, 6)
	b := &coalesceBundle{store: store.New(pool), hub: notify.NewHub(store.ParseIDs), tenant: t.Name(),
		skipped: make(chan struct{}, 100), waiting: make(chan struct{}, 1000)}
	testserver.StartListener(t, dbtest.URL(t), "", b.hub, nil)
	cfg.Recheck = time.Hour // only notifications wake waiting reads
	cfg.Hooks = stream.Hooks{
		Query: func(reads, rows int, d time.Duration, err error) {
			b.stmts.Add(1)
			b.reads.Add(int64(reads))
		},
		Skip: func() { b.skipped <- struct{}{} },
	}
	b.reader = stream.New(b.store, b.hub, cfg)
	b.reader.SetWaitHook(func() { b.waiting <- struct{}{} })
	return b
}

func (b *coalesceBundle) write(t *testing.T, chunks ...store.NewChunk) {
	t.Helper()
	if _, err := b.store.WriteBatch(context.Background(), owner, chunks, nil); err != nil {
		t.Fatal(err)
	}
}

// TestReaderCoalesced: when one commit wakes the readers of many jobs,
// every reader gets exactly its own job's new chunks, and the reads share
// statements.
func TestReaderCoalesced(t *testing.T) {
	t.Parallel()
	b := setupCoalesce(t, stream.Config{MaxReads: 1})
	const jobs, readersPerJob = 40, 2
	leases := make([]store.Lease, jobs)
	for i := range leases {
		leases[i] = testserver.RunningJob(t, b.store.Pool(), b.tenant, owner)
	}
	type got struct {
		job  int
		snap store.Snapshot
		err  error
	}
	results := make(chan got, jobs*readersPerJob)
	var wg sync.WaitGroup
	for i, l := range leases {
		for range readersPerJob {
			wg.Add(1)
			go func() {
				defer wg.Done()
				snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 0, Limit: 100, Wait: time.Minute})
				results <- got{i, snap, err}
			}()
		}
	}
	for range jobs * readersPerJob {
		testserver.Recv(t, b.waiting, "a reader waiting")
	}
	before := b.stmts.Load()
	// One transaction gives job i chunks 0..i%3 (one to three chunks).
	var chunks []store.NewChunk
	for i, l := range leases {
		for s := 0; s <= i%3; s++ {
			chunks = append(chunks, testserver.Content(l, s, l.JobID.String()))
		}
	}
	b.write(t, chunks...)
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			t.Fatalf("job %d: %v", r.job, r.err)
		}
		if len(r.snap.Chunks) != r.job%3+1 {
			t.Fatalf("job %d: %d chunks, want %d", r.job, len(r.snap.Chunks), r.job%3+1)
		}
		for s, c := range r.snap.Chunks {
			want := `{"content":"` + leases[r.job].JobID.String() + `"}`
			if c.Seq != s || string(c.Data) != want {
				t.Fatalf("job %d chunk %d: seq %d %s, want seq %d %s", r.job, s, c.Seq, c.Data, s, want)
			}
		}
	}
	stmts := b.stmts.Load() - before
	t.Logf("%d woken readers of %d jobs read in %d statements", jobs*readersPerJob, jobs, stmts)
	if stmts >= jobs {
		t.Fatalf("%d statements for %d woken jobs: reads were not coalesced", stmts, jobs)
	}
}

// TestReaderIdleCache: a Read that continues where the previous one ended
// skips its first read when nothing was committed since, and does not when
// something was.
func TestReaderIdleCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("NothingNewSkipsTheFirstRead", func(t *testing.T) {
		t.Parallel()
		b := setupCoalesce(t, stream.Config{})
		l := testserver.RunningJob(t, b.store.Pool(), b.tenant, owner)
		// Let the write's notification be fanned out first: arriving
		// after the Read subscribed, it would (rightly) make the kept
		// waiter look woken.
		probe := b.hub.Subscribe(l.JobID)
		b.write(t, testserver.Content(l, 0, "a"), testserver.Content(l, 1, "b"))
		testserver.Recv(t, probe.C, "the notification")
		probe.Close()
		snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10, Wait: time.Minute})
		if err != nil || len(snap.Chunks) != 2 {
			t.Fatalf("first read: %d chunks, %v", len(snap.Chunks), err)
		}
		stmts := b.stmts.Load()
		res := make(chan store.Snapshot, 1)
		go func() {
			snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 2, Limit: 10, Wait: time.Minute})
			if err != nil {
				t.Error(err)
			}
			res <- snap
		}()
		testserver.Recv(t, b.skipped, "the first read skipped")
		testserver.Recv(t, b.waiting, "the read waiting")
		if n := b.stmts.Load() - stmts; n != 0 {
			t.Fatalf("%d statements before waiting, want 0", n)
		}
		b.write(t, testserver.Content(l, 2, "c"))
		snap = testserver.Recv(t, res, "the second read")
		if len(snap.Chunks) != 1 || snap.Chunks[0].Seq != 2 {
			t.Fatalf("second read: %+v", snap.Chunks)
		}
	})

	t.Run("ACommitInBetweenIsRead", func(t *testing.T) {
		t.Parallel()
		b := setupCoalesce(t, stream.Config{})
		l := testserver.RunningJob(t, b.store.Pool(), b.tenant, owner)
		b.write(t, testserver.Content(l, 0, "a"))
		if _, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10, Wait: time.Minute}); err != nil {
			t.Fatal(err)
		}
		// Commit chunk 1 and wait until its notification was fanned
		// out (a probe waiter of the same job is woken by the same call).
		probe := b.hub.Subscribe(l.JobID)
		defer probe.Close()
		b.write(t, testserver.Content(l, 1, "b"))
		testserver.Recv(t, probe.C, "the notification")
		snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 1, Limit: 10, Wait: time.Minute})
		if err != nil || len(snap.Chunks) != 1 || snap.Chunks[0].Seq != 1 {
			t.Fatalf("read after a commit: %+v, %v", snap.Chunks, err)
		}
		select {
		case <-b.skipped:
			t.Fatal("the read was skipped although a chunk was committed")
		default:
		}
	})

	t.Run("AnotherTenantIsNotFound", func(t *testing.T) {
		t.Parallel()
		b := setupCoalesce(t, stream.Config{})
		l := testserver.RunningJob(t, b.store.Pool(), b.tenant, owner)
		b.write(t, testserver.Content(l, 0, "a"))
		if _, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10, Wait: time.Minute}); err != nil {
			t.Fatal(err)
		}
		_, err := b.reader.Read(ctx, stream.Params{Tenant: "intruder", JobID: l.JobID, From: 1, Limit: 10, Wait: time.Minute})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other tenant: %v, want ErrNotFound", err)
		}
	})
}
