package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// accessedBy returns the actors of the job's 'accessed' events, with what
// each read first.
func accessedBy(t *testing.T, s *store.Store, job uuid.UUID) map[string]string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT actor, reason FROM job_events WHERE job_id = $1 AND event = 'accessed'`, job)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var actor, reason string
		if err := rows.Scan(&actor, &reason); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[actor]; dup {
			t.Errorf("job %s: two accessed events by %s", job, actor)
		}
		out[actor] = reason
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReaderRecordsEveryWayOfReading: a client's Read is recorded whichever
// source answers it: the Feed (no statement at all), the coalesced
// statement that serves many readers, or a follow that waits before its
// first chunk. Every later Read of the same client and job is not; another
// tenant's client, which gets ErrNotFound, is not either.
func TestReaderRecordsEveryWayOfReading(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, time.Hour, 8, time.Hour)
	ctx := context.Background()
	client := func() (string, context.Context) {
		name := "api_key:" + uuid.NewString()
		return name, store.WithActor(ctx, store.Actor{Name: name})
	}

	// Served from memory: the job runs here.
	local := b.job(t)
	b.feed.Open(local, b.tenant, 0)
	b.commit(t, []store.NewChunk{testserver.Content(local, 0, "a"), testserver.Content(local, 1, "b")})
	who, cctx := client()
	for range 5 {
		snap, err := b.reader.Read(cctx, stream.Params{Tenant: b.tenant, JobID: local.JobID, Limit: 10})
		if err != nil || len(snap.Chunks) != 2 {
			t.Fatalf("read from the Feed: %d chunks, %v", len(snap.Chunks), err)
		}
	}
	if l, q := b.counts(); l != 5 || q != 0 {
		t.Fatalf("reads answered locally %d, by PostgreSQL %d; want 5 and 0", l, q)
	}
	if got := accessedBy(t, b.store, local.JobID); len(got) != 1 || got[who] != store.AccessChunks {
		t.Errorf("reads served from memory recorded %v, want one by %s", got, who)
	}

	// Served by the coalesced statement: the job runs elsewhere.
	remote := b.job(t)
	if _, err := b.store.WriteBatch(ctx, owner, []store.NewChunk{testserver.Content(remote, 0, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	who, cctx = client()
	for range 3 {
		if snap, err := b.reader.Read(cctx, stream.Params{Tenant: b.tenant, JobID: remote.JobID, Limit: 10}); err != nil || len(snap.Chunks) != 1 {
			t.Fatalf("read from PostgreSQL: %d chunks, %v", len(snap.Chunks), err)
		}
	}
	if _, q := b.counts(); q != 3 {
		t.Fatalf("reads answered by PostgreSQL: %d, want 3", q)
	}
	if got := accessedBy(t, b.store, remote.JobID); len(got) != 1 || got[who] != store.AccessChunks {
		t.Errorf("coalesced reads recorded %v, want one by %s", got, who)
	}

	// A follow of a job with nothing yet: recorded before it waits.
	quiet := b.job(t)
	b.feed.Open(quiet, b.tenant, 0)
	who, cctx = client()
	done := make(chan error, 1)
	go func() {
		_, err := b.reader.Read(cctx, stream.Params{Tenant: b.tenant, JobID: quiet.JobID, Limit: 10, Wait: time.Minute})
		done <- err
	}()
	testserver.Recv(t, b.waiting, "the follow to wait")
	if got := accessedBy(t, b.store, quiet.JobID); len(got) != 1 || got[who] != store.AccessChunks {
		t.Errorf("a waiting follow recorded %v, want one by %s", got, who)
	}
	b.commit(t, []store.NewChunk{testserver.Content(quiet, 0, "d")})
	if err := testserver.Recv(t, done, "the follow to return"); err != nil {
		t.Fatal(err)
	}

	// Another tenant's client.
	_, cctx = client()
	if _, err := b.reader.Read(cctx, stream.Params{Tenant: "other-" + b.tenant, JobID: remote.JobID, Limit: 10}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another tenant's read: %v, want ErrNotFound", err)
	}
	if got := accessedBy(t, b.store, remote.JobID); len(got) != 1 {
		t.Errorf("after another tenant's read: %v, want only the first client's", got)
	}
}
