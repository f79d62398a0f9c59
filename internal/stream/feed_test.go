package stream_test

import (
	"context"
	"encoding/json"
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

// feedBundle is a Reader with a Feed, counting the reads each answers.
type feedBundle struct {
	testBundle
	feed         *stream.Feed
	local, query atomic.Int64
	mu           sync.Mutex
	offset       time.Duration // the Feed's clock runs this far ahead
}

// setupFeed returns a Reader with a Feed that keeps keep chunks a job and
// trusts "nothing new" for trust.
func setupFeed(t *testing.T, recheck time.Duration, keep int, trust time.Duration) *feedBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	b := &feedBundle{}
	b.feed = stream.NewFeed(hub, stream.FeedConfig{Keep: keep, Trust: trust})
	b.feed.SetNow(func() time.Time { b.mu.Lock(); defer b.mu.Unlock(); return time.Now().Add(b.offset) })
	r := stream.New(s, hub, stream.Config{
		Recheck: recheck,
		Feed:    b.feed,
		Hooks: stream.Hooks{
			Local: func(int) { b.local.Add(1) },
			Query: func(reads, _ int, _ time.Duration, _ error) { b.query.Add(int64(reads)) },
		},
	})
	b.testBundle = testBundle{store: s, reader: r, tenant: testserver.Tenant(t), waiting: make(chan struct{}, 1)}
	r.SetWaitHook(func() {
		select {
		case b.waiting <- struct{}{}:
		default:
		}
	})
	return b
}

func (b *feedBundle) advance(d time.Duration) {
	b.mu.Lock()
	b.offset += d
	b.mu.Unlock()
}

// commit writes chunks as the chunk writer does: stored, then handed to
// the Feed with the transaction's timestamp.
func (b *feedBundle) commit(t *testing.T, chunks []store.NewChunk, finishes ...store.Finish) {
	t.Helper()
	held, at, err := b.store.WriteBatchAt(context.Background(), owner, chunks, finishes)
	if err != nil || at.IsZero() {
		t.Fatalf("write: %v (at %v)", err, at)
	}
	var closed []store.Lease
	for _, f := range finishes {
		closed = append(closed, f.Lease)
	}
	var rows []store.NewChunk
	for _, c := range chunks {
		if held[c.Lease] && !isFinished(c.Lease, finishes) {
			rows = append(rows, c)
		}
	}
	b.feed.Committed(rows, closed, at)
}

func isFinished(l store.Lease, fs []store.Finish) bool {
	for _, f := range fs {
		if f.Lease == l {
			return true
		}
	}
	return false
}

func (b *feedBundle) counts() (local, query int64) { return b.local.Load(), b.query.Load() }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestFeedAnswersAsPostgresDoes: every read of a job running here, at any
// offset the Feed keeps, is answered from memory and is byte for byte the
// answer PostgreSQL gives (chunks, created_at, a NUL escape replaced as the
// store does, the limit's More); offsets it does not keep, another
// tenant's reads, and the finished job go to PostgreSQL.
func TestFeedAnswersAsPostgresDoes(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, time.Hour, 2, time.Hour) // keeps 2 to 4 chunks: 3 to 6 of 0 to 6
	ctx := context.Background()
	l := b.job(t)
	b.feed.Open(l, b.tenant, 0)
	var chunks []store.NewChunk
	for i := range 7 {
		chunks = append(chunks, testserver.Content(l, i, "t\u0000"+string(rune('a'+i))))
	}
	b.commit(t, chunks[:3])
	b.commit(t, chunks[3:])
	if n := b.feed.Len(); n != 1 {
		t.Fatalf("the feed keeps %d jobs, want 1", n)
	}
	for _, tc := range []struct {
		from, limit int
		local       bool
	}{
		{from: 0, limit: 100, local: false}, // before what is kept
		{from: 1, limit: 100, local: false},
		{from: 3, limit: 100, local: true},
		{from: 4, limit: 2, local: true}, // cut by the limit: More
		{from: 6, limit: 100, local: true},
		{from: 7, limit: 100, local: true},  // nothing new
		{from: 8, limit: 100, local: false}, // past the end: ask PostgreSQL
	} {
		l0, q0 := b.counts()
		got, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: tc.from, Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		l1, q1 := b.counts()
		if local := l1 > l0 && q1 == q0; local != tc.local {
			t.Errorf("from %d: answered locally = %v (local reads +%d, queries +%d), want %v", tc.from, local, l1-l0, q1-q0, tc.local)
		}
		want, err := b.store.Read(ctx, b.tenant, l.JobID, tc.from, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Errorf("from %d limit %d:\n got %s\nwant %s", tc.from, tc.limit, g, w)
		}
	}
	// Another tenant never gets the job from memory: not found, as from
	// PostgreSQL.
	if _, err := b.reader.Read(ctx, stream.Params{Tenant: "other", JobID: l.JobID, From: 7, Limit: 10}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another tenant's read: %v, want ErrNotFound", err)
	}
	// The finishing commit closes the entry: the final chunk and the
	// terminal status come from PostgreSQL.
	b.commit(t, []store.NewChunk{testserver.FinishChunk(l, 7, "stop")}, store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"})
	if n := b.feed.Len(); n != 0 {
		t.Errorf("the feed keeps %d jobs after the finish, want 0", n)
	}
	got, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 7, Limit: 10})
	if err != nil || !got.Terminal() || len(got.Chunks) != 1 {
		t.Errorf("after the finish: %+v, %v; want the finish chunk and completed", got, err)
	}
}

// TestFeedWakesWaiters: a waiting read is woken by the Feed's commit and
// answered from memory, with no read statement at all.
func TestFeedWakesWaiters(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, time.Hour, 16, time.Hour)
	l := b.job(t)
	b.feed.Open(l, b.tenant, 0)
	done := make(chan readResult, 1)
	go func() {
		snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 0, Limit: 10, Wait: time.Minute})
		done <- readResult{snap: snap, err: err}
	}()
	<-b.waiting
	b.commit(t, []store.NewChunk{testserver.Content(l, 0, "hello")})
	r := <-done
	if r.err != nil || len(r.snap.Chunks) != 1 || r.snap.Chunks[0].Seq != 0 {
		t.Fatalf("read: %+v, %v", r.snap, r.err)
	}
	if local, query := b.counts(); local < 2 || query != 0 {
		t.Errorf("local reads %d, queries %d: want every read answered from memory", local, query)
	}
}

// TestFeedTrustsOnlyRecentCommits: "nothing new" is answered from memory
// only within Trust of the job's last commit; after it, and on every
// recheck, the read goes to PostgreSQL, so a chunk another node stored
// (this node lost the lease without noticing yet) is found.
func TestFeedTrustsOnlyRecentCommits(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, 50*time.Millisecond, 16, time.Hour)
	ctx := context.Background()
	l := b.job(t)
	b.feed.Open(l, b.tenant, 0)
	b.commit(t, []store.NewChunk{testserver.Content(l, 0, "ours")})
	// Stored behind the Feed's back, as another node's rescuer would.
	b.write(t, []store.NewChunk{testserver.Content(l, 1, "theirs")})

	// Trusted: nothing new, from memory.
	got, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 1, Limit: 10})
	if err != nil || len(got.Chunks) != 0 {
		t.Fatalf("trusted read: %+v, %v; want nothing new", got, err)
	}
	// A waiting read rechecks PostgreSQL when its timer fires, even while
	// the Feed is trusted.
	got, err = b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 1, Limit: 10, Wait: time.Minute})
	if err != nil || len(got.Chunks) != 1 || got.Chunks[0].Seq != 1 {
		t.Fatalf("waiting read: %+v, %v; want chunk 1 found on the recheck", got, err)
	}
	// Past Trust, even a read that does not wait asks PostgreSQL.
	b.advance(2 * time.Hour)
	_, q0 := b.counts()
	got, err = b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 1, Limit: 10})
	if err != nil || len(got.Chunks) != 1 {
		t.Fatalf("untrusted read: %+v, %v; want chunk 1", got, err)
	}
	if _, q1 := b.counts(); q1 == q0 {
		t.Error("a read past Trust was answered from memory")
	}
}

// TestFeedForgetsGapsAndOtherAttempts: a commit that does not continue the
// kept chunks drops the entry (its readers read PostgreSQL), rows of an
// older attempt are ignored, and Close of an older attempt leaves the
// newer one.
func TestFeedForgetsGapsAndOtherAttempts(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, time.Hour, 16, time.Hour)
	l := b.job(t)
	b.feed.Open(l, b.tenant, 0)
	at := time.Now()
	old := store.Lease{JobID: l.JobID, Attempt: l.Attempt - 1}
	b.feed.Committed([]store.NewChunk{testserver.Content(old, 0, "stale")}, nil, at)
	b.feed.Close(old)
	if n := b.feed.Len(); n != 1 {
		t.Fatalf("an older attempt's rows or Close changed the entry: %d jobs kept", n)
	}
	snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 0, Limit: 10})
	if err != nil || len(snap.Chunks) != 0 {
		t.Fatalf("read: %+v, %v; want nothing (the stale row ignored)", snap, err)
	}
	b.feed.Committed([]store.NewChunk{testserver.Content(l, 1, "gap")}, nil, at)
	if n := b.feed.Len(); n != 0 {
		t.Errorf("a gap left the entry: %d jobs kept", n)
	}
}

// TestFeedForeignWakeWithinTrust: a chunk another writer stores (this
// node lost the lease without knowing) wakes a reader the Feed then tells
// "nothing new"; the reader still reads it from PostgreSQL once Trust
// ends, not a recheck period (here an hour) later.
func TestFeedForeignWakeWithinTrust(t *testing.T) {
	t.Parallel()
	b := setupFeed(t, time.Hour, 16, 2*time.Second)
	l := b.job(t)
	b.feed.Open(l, b.tenant, 0)
	b.commit(t, []store.NewChunk{testserver.Content(l, 0, "ours")})
	done := make(chan readResult, 1)
	go func() {
		start := time.Now()
		snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: b.tenant, JobID: l.JobID, From: 1, Limit: 10, Wait: time.Minute})
		done <- readResult{snap: snap, err: err, elapsed: time.Since(start)}
	}()
	<-b.waiting
	// Stored and notified behind the Feed's back.
	b.write(t, []store.NewChunk{testserver.Content(l, 1, "theirs")})
	r := <-done
	if r.err != nil || len(r.snap.Chunks) != 1 || r.snap.Chunks[0].Seq != 1 {
		t.Fatalf("read: %+v, %v; want chunk 1 once the Feed's trust ended", r.snap, r.err)
	}
	// Not at the wait's end (a minute), which is when a read would find
	// it if only the recheck timer (an hour) ended waits.
	if r.elapsed > 30*time.Second {
		t.Errorf("found after %s: the wait outlasted the Feed's trust (2 s)", r.elapsed)
	}
}
