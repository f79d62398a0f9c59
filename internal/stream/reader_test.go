package stream_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

const owner = "writer"

type testBundle struct {
	store  *store.Store
	reader *stream.Reader
	tenant string
	// waiting receives (without blocking the reader) each time a read
	// goes to sleep waiting for a wake-up.
	waiting chan struct{}
}

// setup returns a Reader woken by a real LISTEN connection on the package
// database. recheck is the Reader's timer: an hour means only a
// notification can wake a waiting read.
func setup(t *testing.T, recheck time.Duration) testBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	b := testBundle{store: s, reader: stream.NewReader(s, hub, recheck), tenant: testserver.Tenant(t), waiting: make(chan struct{}, 1)}
	b.reader.SetWaitHook(func() {
		select {
		case b.waiting <- struct{}{}:
		default:
		}
	})
	return b
}

func (b testBundle) job(t *testing.T) store.Lease {
	return testserver.RunningJob(t, b.store.Pool(), b.tenant, owner)
}

func (b testBundle) write(t *testing.T, chunks []store.NewChunk, finishes ...store.Finish) {
	t.Helper()
	held, err := b.store.WriteBatch(context.Background(), owner, chunks, finishes)
	if err != nil {
		t.Error(err) // may run on a writer goroutine
		return
	}
	for l, ok := range held {
		if !ok {
			t.Errorf("lease %v lost", l)
		}
	}
}

// finish writes l's finish chunk at seq together with its completion.
func (b testBundle) finish(t *testing.T, l store.Lease, seq int) {
	b.write(t, []store.NewChunk{testserver.FinishChunk(l, seq, "stop")},
		store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"})
}

type readResult struct {
	snap    store.Snapshot
	err     error
	elapsed time.Duration
}

func (b testBundle) readAsync(ctx context.Context, p stream.Params) <-chan readResult {
	res := make(chan readResult, 1)
	go func() {
		start := time.Now()
		snap, err := b.reader.Read(ctx, p)
		res <- readResult{snap, err, time.Since(start)}
	}()
	return res
}

// follow reads l from offset from to its end with long-polls of wait,
// returning every chunk in order. It fails the test on a gap, a repeat, a
// long-poll that expired although chunks were committed meanwhile, or a
// terminal snapshot that does not reach the job's last chunk.
func (b testBundle) follow(t *testing.T, l store.Lease, from, limit int, wait time.Duration, last int) []store.Chunk {
	var got []store.Chunk
	next := from
	for {
		snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: b.tenant, JobID: l.JobID, From: next, Limit: limit, Wait: wait})
		if err != nil {
			t.Errorf("read from %d: %v", next, err)
			return got
		}
		for _, c := range snap.Chunks {
			if c.Seq != next {
				t.Errorf("read from %d: got seq %d, want %d", next, c.Seq, next)
				return got
			}
			next++
			got = append(got, c)
		}
		if len(snap.Chunks) == 0 && !snap.Terminal() {
			t.Errorf("read from %d: a %s long-poll expired with nothing: a wake-up was lost", next, wait)
			return got
		}
		if snap.Terminal() && !snap.More {
			// The reader race: a terminal status must come with every
			// chunk committed before it.
			if next != last+1 {
				t.Errorf("terminal snapshot (%s) ends at seq %d, but the job's last chunk is %d", snap.Status, next-1, last)
			}
			return got
		}
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("LongPollWokenByCommit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		const wait = time.Minute
		res := b.readAsync(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 100, Wait: wait})
		testserver.Recv(t, b.waiting, "the read to wait")
		b.write(t, []store.NewChunk{testserver.Content(l, 0, "hello")})
		r := testserver.Recv(t, res, "the long-poll to return")
		if r.err != nil {
			t.Fatal(r.err)
		}
		// With a one-hour recheck and a one-minute wait, only the
		// notification of the commit can have ended the wait.
		if len(r.snap.Chunks) != 1 || r.snap.Chunks[0].Seq != 0 || r.snap.Status != store.StatusRunning {
			t.Errorf("snapshot = %+v, want chunk 0 of a running job", r.snap)
		}
		if r.elapsed >= wait {
			t.Errorf("returned after %s: the wait expired instead of being woken", r.elapsed)
		}
	})

	t.Run("LongPollWokenByFinish", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		b.write(t, []store.NewChunk{testserver.Content(l, 0, "a")})
		res := b.readAsync(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 1, Limit: 100, Wait: time.Minute})
		testserver.Recv(t, b.waiting, "the read to wait")
		b.finish(t, l, 1)
		r := testserver.Recv(t, res, "the long-poll to return")
		if r.err != nil || !r.snap.Terminal() || len(r.snap.Chunks) != 1 || r.snap.Chunks[0].Seq != 1 {
			t.Errorf("snapshot = %+v, %v; want the finish chunk with status completed", r.snap, r.err)
		}
	})

	t.Run("TwoReadersAtDifferentOffsets", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		const total = 40 // content chunks; the finish chunk is seq 40
		var first []store.NewChunk
		for i := range 5 {
			first = append(first, testserver.Content(l, i, fmt.Sprintf("t%d ", i)))
		}
		b.write(t, first)

		var wg sync.WaitGroup
		var fromZero, fromThree []store.Chunk
		wg.Go(func() { fromZero = b.follow(t, l, 0, 1000, time.Minute, total) })
		wg.Go(func() { fromThree = b.follow(t, l, 3, 7, time.Minute, total) })
		for i := 5; i < total; i += 3 {
			var batch []store.NewChunk
			for j := i; j < min(i+3, total); j++ {
				batch = append(batch, testserver.Content(l, j, fmt.Sprintf("t%d ", j)))
			}
			b.write(t, batch)
		}
		b.finish(t, l, total)
		wg.Wait()

		if len(fromZero) != total+1 || len(fromThree) != total+1-3 {
			t.Fatalf("read %d and %d chunks, want %d and %d", len(fromZero), len(fromThree), total+1, total+1-3)
		}
		if !reflect.DeepEqual(fromZero[3:], fromThree) {
			t.Error("the two readers saw different sequences")
		}
	})

	t.Run("ReplayAfterCompletion", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		var chunks []store.NewChunk
		for i := range 25 {
			chunks = append(chunks, testserver.Content(l, i, "x"))
		}
		b.write(t, chunks)
		b.finish(t, l, 25)

		// One read gets it all, with the final status, without waiting.
		snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 1000, Wait: time.Minute})
		if err != nil || len(snap.Chunks) != 26 || !snap.Terminal() || snap.More || snap.FinishReason != "stop" {
			t.Fatalf("replay = %d chunks, status %s, more %v, err %v", len(snap.Chunks), snap.Status, snap.More, err)
		}
		// Page by page, the same.
		paged := b.follow(t, l, 0, 4, time.Minute, 25)
		if !reflect.DeepEqual(paged, snap.Chunks) {
			t.Error("paged replay differs from the one-read replay")
		}
	})

	t.Run("ReaderRaceHammer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		const readers, commits = 12, 150
		var wg sync.WaitGroup
		results := make([][]store.Chunk, readers)
		for i := range readers {
			limit := []int{1, 3, 1000}[i%3]
			wg.Go(func() { results[i] = b.follow(t, l, 0, limit, 10*time.Second, commits) })
		}
		for i := range commits {
			b.write(t, []store.NewChunk{testserver.Content(l, i, fmt.Sprint(i))})
		}
		b.finish(t, l, commits)
		wg.Wait()
		for i, got := range results {
			if len(got) != commits+1 {
				t.Errorf("reader %d got %d chunks, want %d", i, len(got), commits+1)
			}
		}
	})

	t.Run("PollOnly", func(t *testing.T) {
		t.Parallel()
		s := store.New(dbtest.Pool(t))
		r := stream.NewReader(s, nil, 0) // no hub: re-reads on a short timer
		waiting := make(chan struct{}, 1)
		r.SetWaitHook(func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
		})
		tenant := testserver.Tenant(t)
		l := testserver.RunningJob(t, s.Pool(), tenant, owner)
		res := make(chan readResult, 1)
		go func() {
			snap, err := r.Read(ctx, stream.Params{Tenant: tenant, JobID: l.JobID, Limit: 10, Wait: time.Minute})
			res <- readResult{snap: snap, err: err}
		}()
		testserver.Recv(t, waiting, "the read to wait")
		if _, err := s.WriteBatch(ctx, owner, []store.NewChunk{testserver.Content(l, 0, "x")}, nil); err != nil {
			t.Fatal(err)
		}
		got := testserver.Recv(t, res, "the poll to find the chunk")
		if got.err != nil || len(got.snap.Chunks) != 1 {
			t.Errorf("snapshot = %+v, %v", got.snap, got.err)
		}
	})

	t.Run("WaitExpires", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10, Wait: 20 * time.Millisecond})
		if err != nil || len(snap.Chunks) != 0 || snap.Status != store.StatusRunning {
			t.Errorf("expired wait = %+v, %v; want no chunks, running", snap, err)
		}
	})

	t.Run("NoWaitReturnsAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10})
		if err != nil || len(snap.Chunks) != 0 || snap.Status != store.StatusRunning {
			t.Errorf("read = %+v, %v", snap, err)
		}
		select {
		case <-b.waiting:
			t.Error("a read with no wait went to sleep")
		default:
		}
	})

	t.Run("ContextCancelEndsTheWait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		ctx, cancel := context.WithCancel(ctx)
		res := b.readAsync(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10, Wait: time.Minute})
		testserver.Recv(t, b.waiting, "the read to wait")
		cancel()
		r := testserver.Recv(t, res, "the read to return")
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", r.err)
		}
	})

	t.Run("UnknownJobDoesNotWait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		_, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: uuid.New(), Limit: 10, Wait: time.Minute})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
		l := b.job(t)
		_, err = b.reader.Read(ctx, stream.Params{Tenant: "someone-else", JobID: l.JobID, Limit: 10, Wait: time.Minute})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another tenant's job: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("MinWaitLingers", func(t *testing.T) {
		t.Parallel()
		b := setup(t, time.Hour)
		l := b.job(t)
		b.write(t, []store.NewChunk{testserver.Content(l, 0, "a")})
		// A slow poller asks for a linger: even with a chunk ready, the
		// read keeps collecting until min_wait has passed.
		const minWait = 100 * time.Millisecond
		r := testserver.Recv(t, b.readAsync(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, Limit: 10, Wait: time.Minute, MinWait: minWait}), "the read")
		if r.err != nil || len(r.snap.Chunks) != 1 {
			t.Errorf("read = %+v, %v", r.snap, r.err)
		}
		if r.elapsed < minWait {
			t.Errorf("returned after %s, before min_wait %s", r.elapsed, minWait)
		}
	})
}
