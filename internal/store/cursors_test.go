package store_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

// newSession stores a session of tenant and returns its id.
func newSession(t *testing.T, s *store.Store, tenant string) uuid.UUID {
	t.Helper()
	hash := make([]byte, 32)
	rand.Read(hash)
	sess, err := s.SessionCreate(context.Background(), hash, nil, "", tenant, time.Hour, 100)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return sess.ID
}

func seqsOf(chunks []store.Chunk) []int {
	out := make([]int, len(chunks))
	for i, c := range chunks {
		out[i] = c.Seq
	}
	return out
}

func TestCursorRead(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		pool   *pgxpool.Pool
		store  *store.Store
		tenant string
		lease  store.Lease
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		pool := dbtest.Pool(t)
		b := &testBundle{pool: pool, store: store.New(pool), tenant: "t-" + uuid.NewString()}
		b.lease = runningJob(t, pool, b.tenant, "owner-"+uuid.NewString())
		return b
	}
	write := func(t *testing.T, b *testBundle, from, to int) {
		t.Helper()
		var chunks []store.NewChunk
		for i := from; i < to; i++ {
			chunks = append(chunks, content(b.lease, i, "x"))
		}
		if _, err := b.store.WriteBatch(context.Background(), ownerOf(t, b.pool, b.lease), chunks, nil); err != nil {
			t.Fatalf("write chunks: %v", err)
		}
	}
	ctx := context.Background()

	t.Run("EachChunkOncePerSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, other := newSession(t, b.store, b.tenant), newSession(t, b.store, b.tenant)
		write(t, b, 0, 5)

		snap, err := b.store.CursorRead(ctx, b.tenant, b.lease.JobID, a, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(snap.Chunks); !slices.Equal(got, []int{0, 1, 2, 3, 4}) || snap.Status != store.StatusRunning {
			t.Fatalf("first read: seqs %v status %s, want 0..4 running", got, snap.Status)
		}
		snap, err = b.store.CursorRead(ctx, b.tenant, b.lease.JobID, a, 100)
		if err != nil || len(snap.Chunks) != 0 {
			t.Fatalf("second read: %v chunks, err %v; want none", seqsOf(snap.Chunks), err)
		}
		write(t, b, 5, 7)
		snap, _ = b.store.CursorRead(ctx, b.tenant, b.lease.JobID, a, 100)
		if got := seqsOf(snap.Chunks); !slices.Equal(got, []int{5, 6}) {
			t.Fatalf("read after new chunks: %v, want [5 6]", got)
		}
		// Another session has a cursor of its own.
		snap, _ = b.store.CursorRead(ctx, b.tenant, b.lease.JobID, other, 100)
		if len(snap.Chunks) != 7 {
			t.Fatalf("other session got %d chunks, want 7", len(snap.Chunks))
		}
		cur, err := b.store.CursorGet(ctx, b.tenant, b.lease.JobID, a)
		if err != nil || cur.Next != 7 {
			t.Fatalf("CursorGet = %+v, %v; want Next 7", cur, err)
		}
	})

	t.Run("LimitLeavesTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		write(t, b, 0, 8)
		// The first read creates the cursor (a transaction); the others
		// advance it in one statement (CursorAdvance): both must stop at
		// the limit.
		for _, want := range [][]int{{0, 1, 2}, {3, 4, 5}} {
			snap, _ := b.store.CursorRead(ctx, b.tenant, b.lease.JobID, sess, 3)
			if got := seqsOf(snap.Chunks); !slices.Equal(got, want) || !snap.More {
				t.Fatalf("limited read: %v more=%v, want %v more", got, snap.More, want)
			}
		}
		snap, _ := b.store.CursorRead(ctx, b.tenant, b.lease.JobID, sess, 3)
		if got := seqsOf(snap.Chunks); !slices.Equal(got, []int{6, 7}) || snap.More {
			t.Fatalf("next read: %v more=%v, want [6 7]", got, snap.More)
		}
	})

	t.Run("TerminalStatusWithLastChunk", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		_, err := b.store.WriteBatch(ctx, ownerOf(t, b.pool, b.lease),
			[]store.NewChunk{content(b.lease, 0, "a"), finishChunk(b.lease, 1, "stop")}, []store.Finish{completed(b.lease)})
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := b.store.CursorRead(ctx, b.tenant, b.lease.JobID, sess, 100)
		if snap.Status != store.StatusCompleted || len(snap.Chunks) != 2 {
			t.Fatalf("got %s with %d chunks, want completed with 2", snap.Status, len(snap.Chunks))
		}
	})

	t.Run("UnknownOrOtherTenant", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		if _, err := b.store.CursorRead(ctx, b.tenant, uuid.New(), sess, 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown job: err %v, want ErrNotFound", err)
		}
		if _, err := b.store.CursorRead(ctx, "someone-else", b.lease.JobID, sess, 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant: err %v, want ErrNotFound", err)
		}
		if _, err := b.store.CursorGet(ctx, "someone-else", b.lease.JobID, sess); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CursorGet other tenant: err %v, want ErrNotFound", err)
		}
		if cur, err := b.store.CursorGet(ctx, b.tenant, b.lease.JobID, sess); err != nil || cur != (store.Cursor{}) {
			t.Errorf("CursorGet before any read = %+v, %v; want zero", cur, err)
		}
	})

	// Many polls of one session at once, while the job streams: every
	// chunk goes to exactly one of them.
	t.Run("ConcurrentPollsOfOneSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		const total, pollers = 60, 6
		var (
			mu   sync.Mutex
			got  []int
			wg   sync.WaitGroup
			errc = make(chan error, pollers)
		)
		for range pollers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					snap, err := b.store.CursorRead(ctx, b.tenant, b.lease.JobID, sess, 7)
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					got = append(got, seqsOf(snap.Chunks)...)
					mu.Unlock()
					if snap.Terminal() && len(snap.Chunks) == 0 {
						return
					}
				}
			}()
		}
		owner := ownerOf(t, b.pool, b.lease)
		for i := 0; i < total-1; i += 3 {
			var chunks []store.NewChunk
			for j := i; j < min(i+3, total-1); j++ {
				chunks = append(chunks, content(b.lease, j, "x"))
			}
			if _, err := b.store.WriteBatch(ctx, owner, chunks, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.store.WriteBatch(ctx, owner, []store.NewChunk{finishChunk(b.lease, total-1, "stop")}, []store.Finish{completed(b.lease)}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		slices.Sort(got)
		want := make([]int, total)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pollers received seqs %v; want each of 0..%d exactly once", got, total-1)
		}
	})
}

// ownerOf returns the lease owner of a running job.
func ownerOf(t *testing.T, pool *pgxpool.Pool, l store.Lease) string {
	t.Helper()
	var owner string
	if err := pool.QueryRow(context.Background(), `SELECT lease_owner FROM jobs WHERE id = $1`, l.JobID).Scan(&owner); err != nil {
		t.Fatalf("lease owner: %v", err)
	}
	return owner
}

func TestPartialRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()
	owner := "owner-" + uuid.NewString()
	l := runningJob(t, pool, tenant, owner)
	sess := newSession(t, s, tenant)

	p, err := s.PartialRead(ctx, tenant, l.JobID, sess)
	if err != nil || p != (store.Partial{Status: store.StatusRunning}) {
		t.Fatalf("before any chunk: %+v, %v", p, err)
	}
	usage := store.NewChunk{Lease: l, Seq: 2, StreamType: "usage", Data: json.RawMessage(`{"output_tokens":2}`)}
	if _, err := s.WriteBatch(ctx, owner, []store.NewChunk{content(l, 0, "Hel"), content(l, 1, "lo"), usage}, nil); err != nil {
		t.Fatal(err)
	}
	p, _ = s.PartialRead(ctx, tenant, l.JobID, sess)
	if want := (store.Partial{Status: store.StatusRunning, Total: "Hello", New: "Hello", Fresh: true}); p != want {
		t.Fatalf("first text: %+v, want %+v", p, want)
	}
	p, _ = s.PartialRead(ctx, tenant, l.JobID, sess)
	if want := (store.Partial{Status: store.StatusRunning, Total: "Hello"}); p != want {
		t.Fatalf("nothing new: %+v, want %+v", p, want)
	}
	if _, err := s.WriteBatch(ctx, owner, []store.NewChunk{content(l, 3, " you"), finishChunk(l, 4, "stop")}, []store.Finish{completed(l)}); err != nil {
		t.Fatal(err)
	}
	p, _ = s.PartialRead(ctx, tenant, l.JobID, sess)
	if want := (store.Partial{Status: store.StatusCompleted, Total: "Hello you", New: " you", Fresh: true}); p != want {
		t.Fatalf("after finish: %+v, want %+v", p, want)
	}
	// pixelJobStreaming's cursor is separate.
	snap, _ := s.CursorRead(ctx, tenant, l.JobID, sess, 100)
	if len(snap.Chunks) != 5 {
		t.Fatalf("CursorRead after PartialRead got %d chunks, want 5", len(snap.Chunks))
	}
	if _, err := s.PartialRead(ctx, "other", l.JobID, sess); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v, want ErrNotFound", err)
	}
}

func TestCursorTakeError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()
	owner := "owner-" + uuid.NewString()
	l := runningJob(t, pool, tenant, owner)
	sess := newSession(t, s, tenant)

	status, jobErr, err := s.CursorTakeError(ctx, tenant, l.JobID, sess)
	if err != nil || status != store.StatusRunning || jobErr != nil {
		t.Fatalf("running job: %s %s %v", status, jobErr, err)
	}
	e := json.RawMessage(`{"message":"boom","type":"sim_error"}`)
	fin := store.Finish{Lease: l, Status: store.StatusFailed, FinishReason: "error", Error: e}
	if _, err := s.WriteBatch(ctx, owner, []store.NewChunk{finishChunk(l, 0, "error")}, []store.Finish{fin}); err != nil {
		t.Fatal(err)
	}
	status, jobErr, err = s.CursorTakeError(ctx, tenant, l.JobID, sess)
	var body struct{ Message, Type string }
	if err != nil || status != store.StatusFailed || json.Unmarshal(jobErr, &body) != nil || body.Message != "boom" {
		t.Fatalf("first call on failed job: %s %s %v", status, jobErr, err)
	}
	status, jobErr, err = s.CursorTakeError(ctx, tenant, l.JobID, sess)
	if err != nil || status != store.StatusFailed || jobErr != nil {
		t.Fatalf("second call: %s %s %v; want the error only once", status, jobErr, err)
	}
}
