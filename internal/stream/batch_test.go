package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

// fakeStatements stands in for store.ReadMany: each call is one
// "statement"; it blocks until the test releases it, and answers every
// request with a snapshot naming the request and the statement.
type fakeStatements struct {
	mu      sync.Mutex
	calls   [][]store.ReadRequest
	started chan int           // statement number, when it starts
	release chan struct{}      // one receive per statement
	fail    map[int]error      // statement number -> error
	notFoun map[uuid.UUID]bool // jobs answered with ErrNotFound
}

func newFake() *fakeStatements {
	return &fakeStatements{started: make(chan int, 100), release: make(chan struct{}, 100), fail: map[int]error{}, notFoun: map[uuid.UUID]bool{}}
}

func (f *fakeStatements) readMany(ctx context.Context, reqs []store.ReadRequest) ([]store.ReadResult, error) {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, append([]store.ReadRequest(nil), reqs...))
	err := f.fail[n]
	f.mu.Unlock()
	f.started <- n
	<-f.release
	if err != nil {
		return nil, err
	}
	out := make([]store.ReadResult, len(reqs))
	for i, r := range reqs {
		if f.notFoun[r.JobID] {
			out[i].Err = store.ErrNotFound
			continue
		}
		out[i].Snapshot = store.Snapshot{Status: fmt.Sprintf("%s@%d/stmt%d", r.JobID, r.From, n)}
	}
	return out, nil
}

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestCoalescer(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		fake   *fakeStatements
		c      *coalescer
		queued chan int
	}
	setup := func(t *testing.T, maxInFlight int) testBundle {
		f := newFake()
		c := newCoalescer(f.readMany, maxInFlight, 100, time.Minute)
		b := testBundle{fake: f, c: c, queued: make(chan int, 100)}
		c.queued = func(n int) { b.queued <- n }
		return b
	}
	type result struct {
		req  store.ReadRequest
		snap store.Snapshot
		err  error
	}
	readAsync := func(b testBundle, req store.ReadRequest) <-chan result {
		out := make(chan result, 1)
		go func() {
			snap, err := b.c.read(context.Background(), req)
			out <- result{req, snap, err}
		}()
		return out
	}

	t.Run("PendingReadsShareOneStatement", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		first := readAsync(b, store.ReadRequest{Tenant: "t", JobID: uuid.New()})
		recv(t, b.queued, "the first read queued")
		recv(t, b.fake.started, "statement 0")
		// While statement 0 runs, 50 readers of 25 jobs (two per job at
		// the same offset) queue up.
		jobs := make([]uuid.UUID, 25)
		var results []<-chan result
		for i := range 50 {
			if i < 25 {
				jobs[i] = uuid.New()
			}
			results = append(results, readAsync(b, store.ReadRequest{Tenant: "t", JobID: jobs[i%25], From: 7, Limit: 10}))
			recv(t, b.queued, "a read queued")
		}
		b.fake.release <- struct{}{}
		recv(t, first, "the first read")
		recv(t, b.fake.started, "statement 1")
		b.fake.release <- struct{}{}
		for _, rc := range results {
			r := recv(t, rc, "a read")
			want := fmt.Sprintf("%s@7/stmt1", r.req.JobID)
			if r.err != nil || r.snap.Status != want {
				t.Fatalf("read of %s: got %q, %v; want %q", r.req.JobID, r.snap.Status, r.err, want)
			}
		}
		b.fake.mu.Lock()
		defer b.fake.mu.Unlock()
		if len(b.fake.calls) != 2 {
			t.Fatalf("%d statements, want 2", len(b.fake.calls))
		}
		if n := len(b.fake.calls[1]); n != 25 {
			t.Fatalf("statement 1 served %d requests, want 25 (one per job and offset)", n)
		}
	})

	t.Run("NeverJoinsARunningStatement", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 2)
		req := store.ReadRequest{Tenant: "t", JobID: uuid.New(), From: 3}
		early := readAsync(b, req)
		recv(t, b.queued, "the early read queued")
		recv(t, b.fake.started, "statement 0")
		// The same request arrives while statement 0 runs: its snapshot
		// may predate what woke this reader, so it needs a statement of
		// its own.
		late := readAsync(b, req)
		recv(t, b.queued, "the late read queued")
		recv(t, b.fake.started, "statement 1")
		b.fake.release <- struct{}{}
		b.fake.release <- struct{}{}
		if r := recv(t, early, "the early read"); r.snap.Status != fmt.Sprintf("%s@3/stmt0", req.JobID) {
			t.Fatalf("early read: %q", r.snap.Status)
		}
		if r := recv(t, late, "the late read"); r.snap.Status != fmt.Sprintf("%s@3/stmt1", req.JobID) {
			t.Fatalf("late read got %q: it joined a statement that had already started", r.snap.Status)
		}
	})

	t.Run("ErrorsReachEveryReader", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		boom := errors.New("boom")
		b.fake.fail[1] = boom
		gone := uuid.New()
		b.fake.notFoun[gone] = true
		first := readAsync(b, store.ReadRequest{Tenant: "t", JobID: uuid.New()})
		recv(t, b.queued, "the first read queued")
		recv(t, b.fake.started, "statement 0")
		a := readAsync(b, store.ReadRequest{Tenant: "t", JobID: uuid.New()})
		recv(t, b.queued, "a read queued")
		c := readAsync(b, store.ReadRequest{Tenant: "t", JobID: gone})
		recv(t, b.queued, "a read queued")
		b.fake.release <- struct{}{}
		recv(t, first, "the first read")
		recv(t, b.fake.started, "statement 1")
		b.fake.release <- struct{}{}
		if r := recv(t, a, "read a"); !errors.Is(r.err, boom) {
			t.Fatalf("read a: %v, want %v", r.err, boom)
		}
		if r := recv(t, c, "read c"); !errors.Is(r.err, boom) {
			t.Fatalf("read c: %v, want %v", r.err, boom)
		}
		// Statement 2 succeeds: a missing job is that reader's error only.
		d := readAsync(b, store.ReadRequest{Tenant: "t", JobID: gone})
		recv(t, b.queued, "a read queued")
		recv(t, b.fake.started, "statement 2")
		b.fake.release <- struct{}{}
		if r := recv(t, d, "read d"); !errors.Is(r.err, store.ErrNotFound) {
			t.Fatalf("read d: %v, want ErrNotFound", r.err)
		}
	})

	t.Run("CallerCancellationLeavesTheStatementToOthers", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 1)
		blocker := readAsync(b, store.ReadRequest{Tenant: "t", JobID: uuid.New()})
		recv(t, b.queued, "the blocking read queued")
		recv(t, b.fake.started, "statement 0")
		// Two readers of the same job and offset share one pending entry.
		req := store.ReadRequest{Tenant: "t", JobID: uuid.New()}
		ctx, cancel := context.WithCancel(context.Background())
		gone := make(chan error, 1)
		go func() {
			_, err := b.c.read(ctx, req)
			gone <- err
		}()
		recv(t, b.queued, "the read queued")
		stays := readAsync(b, req)
		recv(t, b.queued, "the second read queued")
		b.fake.release <- struct{}{}
		recv(t, blocker, "the blocking read")
		recv(t, b.fake.started, "statement 1")
		cancel()
		if err := recv(t, gone, "the cancelled read"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v", err)
		}
		b.fake.release <- struct{}{}
		if r := recv(t, stays, "the other read"); r.err != nil || r.snap.Status != fmt.Sprintf("%s@0/stmt1", req.JobID) {
			t.Fatalf("other read: %q, %v", r.snap.Status, r.err)
		}
	})
}
