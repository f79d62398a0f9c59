package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestReadMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type testBundle struct {
		pool   *pgxpool.Pool
		store  *store.Store
		tenant string
	}
	setup := func(t *testing.T) testBundle {
		t.Helper()
		pool := dbtest.Pool(t)
		return testBundle{pool: pool, store: store.New(pool), tenant: t.Name()}
	}
	// job writes n content chunks (seq 0..n-1) under a fresh lease, and
	// finishes the job when finish is set.
	job := func(t *testing.T, b testBundle, n int, finish bool) uuid.UUID {
		t.Helper()
		l := testserver.RunningJob(t, b.pool, b.tenant, "owner")
		var chunks []store.NewChunk
		for i := range n {
			chunks = append(chunks, testserver.Content(l, i, "x"))
		}
		var fins []store.Finish
		if finish {
			chunks = append(chunks, testserver.FinishChunk(l, n, "stop"))
			fins = append(fins, store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"})
		}
		if _, err := b.store.WriteBatch(ctx, "owner", chunks, fins); err != nil {
			t.Fatalf("write: %v", err)
		}
		return l.JobID
	}

	t.Run("EachRequestGetsWhatReadReturns", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := job(t, b, 5, false)
		done := job(t, b, 3, true)
		empty := job(t, b, 0, false)
		reqs := []store.ReadRequest{
			{Tenant: b.tenant, JobID: a, From: 0, Limit: 2},      // cut: More
			{Tenant: b.tenant, JobID: a, From: 2, Limit: 100},    // the rest
			{Tenant: b.tenant, JobID: a, From: 5, Limit: 100},    // nothing new yet
			{Tenant: b.tenant, JobID: done, From: 1, Limit: 100}, // up to the end, terminal
			{Tenant: b.tenant, JobID: empty, From: 0, Limit: 10}, // no chunk at all
			{Tenant: b.tenant, JobID: a, From: 0, Limit: 2},      // a duplicate request
		}
		got, err := b.store.ReadMany(ctx, reqs)
		if err != nil {
			t.Fatalf("ReadMany: %v", err)
		}
		if len(got) != len(reqs) {
			t.Fatalf("got %d results for %d requests", len(got), len(reqs))
		}
		for i, r := range reqs {
			want, err := b.store.Read(ctx, r.Tenant, r.JobID, r.From, r.Limit)
			if err != nil {
				t.Fatalf("Read %+v: %v", r, err)
			}
			if got[i].Err != nil {
				t.Fatalf("request %d: %v", i, got[i].Err)
			}
			g := got[i].Snapshot
			if g.Status != want.Status || g.FinishReason != want.FinishReason || g.More != want.More || len(g.Chunks) != len(want.Chunks) {
				t.Fatalf("request %d (%+v):\n got status %q/%q more %v %d chunks\nwant status %q/%q more %v %d chunks",
					i, r, g.Status, g.FinishReason, g.More, len(g.Chunks), want.Status, want.FinishReason, want.More, len(want.Chunks))
			}
			for k := range g.Chunks {
				if g.Chunks[k].Seq != want.Chunks[k].Seq || string(g.Chunks[k].Data) != string(want.Chunks[k].Data) {
					t.Fatalf("request %d chunk %d: got seq %d %s, want seq %d %s", i, k, g.Chunks[k].Seq, g.Chunks[k].Data, want.Chunks[k].Seq, want.Chunks[k].Data)
				}
			}
		}
		if s := got[0].Snapshot; !s.More || s.Chunks[0].Seq != 0 || s.Chunks[1].Seq != 1 {
			t.Fatalf("cut read: %+v", s)
		}
		if s := got[3].Snapshot; !s.Terminal() || len(s.Chunks) != 3 || s.Chunks[2].Seq != 3 {
			t.Fatalf("terminal read: %+v", s)
		}
	})

	t.Run("UnknownOrOtherTenantIsNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := job(t, b, 2, false)
		got, err := b.store.ReadMany(ctx, []store.ReadRequest{
			{Tenant: b.tenant, JobID: uuid.Must(uuid.NewV7()), Limit: 10},
			{Tenant: "someone else", JobID: a, Limit: 10},
			{Tenant: b.tenant, JobID: a, Limit: 10},
		})
		if err != nil {
			t.Fatalf("ReadMany: %v", err)
		}
		for i := range 2 {
			if !errors.Is(got[i].Err, store.ErrNotFound) {
				t.Fatalf("request %d: err = %v, want ErrNotFound", i, got[i].Err)
			}
		}
		if got[2].Err != nil || len(got[2].Snapshot.Chunks) != 2 {
			t.Fatalf("own job: %+v", got[2])
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got, err := b.store.ReadMany(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("ReadMany(nil) = %v, %v", got, err)
		}
	})
}

func TestNotifyCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ jobs, want int }{{0, 0}, {1, 1}, {213, 1}, {214, 2}, {426, 2}, {427, 3}, {1000, 5}} {
		if got := store.NotifyCount(tc.jobs); got != tc.want {
			t.Errorf("NotifyCount(%d) = %d, want %d", tc.jobs, got, tc.want)
		}
	}
}

// TestNotifyCountMatchesWriteBatch checks NotifyCount against the NOTIFYs a
// WriteBatch really sends.
func TestNotifyCountMatchesWriteBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+store.ChannelChunks); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), "UNLISTEN *")
	const n = 300
	var chunks []store.NewChunk
	mine := map[string]bool{}
	for range n {
		l := testserver.RunningJob(t, pool, t.Name(), "owner")
		mine[l.JobID.String()] = true
		chunks = append(chunks, testserver.Content(l, 0, "x"))
	}
	if _, err := s.WriteBatch(ctx, "owner", chunks, nil); err != nil {
		t.Fatal(err)
	}
	// Other tests of the package share the database and its channel:
	// count the notifications naming this test's jobs until all are seen.
	notes := 0
	for len(mine) > 0 {
		nt, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := store.ParseIDs(nt.Payload)
		if len(ids) == 0 || !mine[ids[0].String()] {
			continue
		}
		notes++
		for _, id := range ids {
			delete(mine, id.String())
		}
	}
	if want := store.NotifyCount(n); notes != want {
		t.Fatalf("%d jobs: %d NOTIFYs, NotifyCount says %d", n, notes, want)
	}
}
