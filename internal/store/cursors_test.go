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

// hour is a send timeout no test outlives: a page handed out with it stays
// the writer's until its answer's fate is reported.
var hour = store.PollOptions{SendTimeout: time.Hour}

func TestCursorPoll(t *testing.T) {
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
	poll := func(t *testing.T, b *testBundle, sess uuid.UUID, limit int, opts store.PollOptions) store.CursorPage {
		t.Helper()
		page, err := b.store.CursorPoll(ctx, b.tenant, b.lease.JobID, sess, limit, opts)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return page
	}
	sent := func(t *testing.T, b *testBundle, sess uuid.UUID, gen int64) bool {
		t.Helper()
		ok, err := b.store.CursorSent(ctx, b.tenant, b.lease.JobID, sess, gen)
		if err != nil {
			t.Fatalf("sent: %v", err)
		}
		return ok
	}
	// deliver is a poll whose answer was written completely.
	deliver := func(t *testing.T, b *testBundle, sess uuid.UUID, limit int) store.CursorPage {
		t.Helper()
		page := poll(t, b, sess, limit, hour)
		if len(page.Chunks) > 0 && !sent(t, b, sess, page.Gen) {
			t.Fatalf("page %d was not outstanding when its answer was written", page.Gen)
		}
		return page
	}

	t.Run("EachChunkOncePerSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, other := newSession(t, b.store, b.tenant), newSession(t, b.store, b.tenant)
		write(t, b, 0, 5)

		page := deliver(t, b, a, 100)
		if got := seqsOf(page.Chunks); !slices.Equal(got, []int{0, 1, 2, 3, 4}) || page.Status != store.StatusRunning || page.Verdict != store.VerdictNone {
			t.Fatalf("first poll: seqs %v status %s verdict %s, want 0..4 running none", got, page.Status, page.Verdict)
		}
		page = deliver(t, b, a, 100)
		if len(page.Chunks) != 0 || page.Verdict != store.VerdictAck || page.From != 5 {
			t.Fatalf("second poll: %v verdict %s from %d; want none, ack, from 5", seqsOf(page.Chunks), page.Verdict, page.From)
		}
		write(t, b, 5, 7)
		page = deliver(t, b, a, 100)
		if got := seqsOf(page.Chunks); !slices.Equal(got, []int{5, 6}) || page.Verdict != store.VerdictNone {
			t.Fatalf("poll after new chunks: %v %s, want [5 6] none", got, page.Verdict)
		}
		// Another session has a cursor of its own.
		if page := deliver(t, b, other, 100); len(page.Chunks) != 7 {
			t.Fatalf("other session got %d chunks, want 7", len(page.Chunks))
		}
		// The cursor stands before the page not acknowledged yet.
		cur, err := b.store.CursorGet(ctx, b.tenant, b.lease.JobID, a)
		if err != nil || cur.Next != 5 {
			t.Fatalf("CursorGet = %+v, %v; want Next 5", cur, err)
		}
	})

	t.Run("LimitLeavesTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		write(t, b, 0, 8)
		// The first poll creates the cursor; the others are one
		// statement: both stop at the limit.
		for _, want := range [][]int{{0, 1, 2}, {3, 4, 5}} {
			page := deliver(t, b, sess, 3)
			if got := seqsOf(page.Chunks); !slices.Equal(got, want) || !page.More {
				t.Fatalf("limited poll: %v more=%v, want %v more", got, page.More, want)
			}
		}
		page := deliver(t, b, sess, 3)
		if got := seqsOf(page.Chunks); !slices.Equal(got, []int{6, 7}) || page.More {
			t.Fatalf("next poll: %v more=%v, want [6 7]", got, page.More)
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
		page := deliver(t, b, sess, 100)
		if page.Status != store.StatusCompleted || len(page.Chunks) != 2 {
			t.Fatalf("got %s with %d chunks, want completed with 2", page.Status, len(page.Chunks))
		}
	})

	t.Run("UnknownOrOtherTenant", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		if _, err := b.store.CursorPoll(ctx, b.tenant, uuid.New(), sess, 10, hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown job: err %v, want ErrNotFound", err)
		}
		if _, err := b.store.CursorPoll(ctx, "someone-else", b.lease.JobID, sess, 10, hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("other tenant: err %v, want ErrNotFound", err)
		}
		if _, err := b.store.CursorGet(ctx, "someone-else", b.lease.JobID, sess); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CursorGet other tenant: err %v, want ErrNotFound", err)
		}
		if cur, err := b.store.CursorGet(ctx, b.tenant, b.lease.JobID, sess); err != nil || cur != (store.Cursor{}) {
			t.Errorf("CursorGet before any read = %+v, %v; want zero", cur, err)
		}
		// Another tenant cannot settle the session's page either.
		write(t, b, 0, 2)
		page := poll(t, b, sess, 10, hour)
		for _, f := range []func(context.Context, string, uuid.UUID, uuid.UUID, int64) (bool, error){b.store.CursorSent, b.store.CursorUnsent} {
			if ok, err := f(ctx, "someone-else", b.lease.JobID, sess, page.Gen); ok || err != nil {
				t.Errorf("another tenant settled the page: %v, %v", ok, err)
			}
		}
	})

	// The attack of jobstream issue 18: a page handed out whose answer
	// never arrived. It is handed out again until an answer is written
	// completely, whatever the reason it was not.
	t.Run("UnacknowledgedPageIsSentAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		write(t, b, 0, 6)

		// The answer failed (its write returned an error).
		first := poll(t, b, sess, 4, hour)
		if ok, err := b.store.CursorUnsent(ctx, b.tenant, b.lease.JobID, sess, first.Gen); !ok || err != nil {
			t.Fatalf("unsent: %v, %v", ok, err)
		}
		again := poll(t, b, sess, 4, store.PollOptions{})
		if got := seqsOf(again.Chunks); !slices.Equal(got, []int{0, 1, 2, 3}) || again.Verdict != store.VerdictResend || again.Gen == first.Gen {
			t.Fatalf("after a failed answer: %v verdict %s gen %d (first %d); want [0..3] resend, a new gen", got, again.Verdict, again.Gen, first.Gen)
		}
		// Its writer died: the answer was handed out with a send
		// timeout of 0 and never reported, so the next poll sends it
		// again.
		again = poll(t, b, sess, 4, store.PollOptions{})
		if got := seqsOf(again.Chunks); !slices.Equal(got, []int{0, 1, 2, 3}) || again.Verdict != store.VerdictResend {
			t.Fatalf("after an unreported answer: %v verdict %s; want [0..3] resend", got, again.Verdict)
		}
		// Written, then reset unread by the client: unread wins, in
		// either order.
		if !sent(t, b, sess, again.Gen) {
			t.Fatal("sent: page not outstanding")
		}
		if ok, err := b.store.CursorUnsent(ctx, b.tenant, b.lease.JobID, sess, again.Gen); !ok || err != nil {
			t.Fatalf("unsent after sent: %v, %v", ok, err)
		}
		if sent(t, b, sess, again.Gen) {
			t.Fatal("a page reset unread was recorded written afterwards")
		}
		again = poll(t, b, sess, 4, hour)
		if got := seqsOf(again.Chunks); !slices.Equal(got, []int{0, 1, 2, 3}) || again.Verdict != store.VerdictResend {
			t.Fatalf("after an unread answer: %v verdict %s; want [0..3] resend", got, again.Verdict)
		}
		// A report about an older page changes nothing.
		if sent(t, b, sess, first.Gen) {
			t.Fatal("a stale page was recorded written")
		}
		// Written: the next poll goes on from there.
		if !sent(t, b, sess, again.Gen) {
			t.Fatal("sent: page not outstanding")
		}
		next := poll(t, b, sess, 4, hour)
		if got := seqsOf(next.Chunks); !slices.Equal(got, []int{4, 5}) || next.Verdict != store.VerdictAck {
			t.Fatalf("after a written answer: %v verdict %s; want [4 5] ack", got, next.Verdict)
		}
	})

	// What the polling process knows before the database does.
	t.Run("Hints", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		write(t, b, 0, 6)
		first := poll(t, b, sess, 2, hour)
		// Written, not recorded yet.
		second := poll(t, b, sess, 2, store.PollOptions{Written: first.Gen, SendTimeout: time.Hour})
		if got := seqsOf(second.Chunks); !slices.Equal(got, []int{2, 3}) || second.Verdict != store.VerdictAck {
			t.Fatalf("written hint: %v %s, want [2 3] ack", got, second.Verdict)
		}
		// Reset unread, though recorded written.
		sent(t, b, sess, second.Gen)
		third := poll(t, b, sess, 2, store.PollOptions{Unread: second.Gen, SendTimeout: time.Hour})
		if got := seqsOf(third.Chunks); !slices.Equal(got, []int{2, 3}) || third.Verdict != store.VerdictResend {
			t.Fatalf("unread hint: %v %s, want [2 3] resend", got, third.Verdict)
		}
		// A hint about another page changes nothing.
		busy := poll(t, b, sess, 2, store.PollOptions{Written: second.Gen, SendTimeout: time.Hour})
		if busy.Verdict != store.VerdictBusy {
			t.Fatalf("stale written hint: verdict %s, want busy", busy.Verdict)
		}
	})

	// A poll that finds the session's previous page still being written
	// hands out nothing and changes nothing, until that answer's fate is
	// known.
	t.Run("BusyUntilSettled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		sess := newSession(t, b.store, b.tenant)
		write(t, b, 0, 4)
		first := poll(t, b, sess, 2, hour)
		busy := poll(t, b, sess, 2, hour)
		if busy.Verdict != store.VerdictBusy || len(busy.Chunks) != 0 || busy.BusyGen != first.Gen || time.Until(busy.BusyUntil) < 30*time.Minute {
			t.Fatalf("overlapping poll: %+v; want busy on gen %d for an hour", busy, first.Gen)
		}
		sent(t, b, sess, first.Gen)
		if next := poll(t, b, sess, 2, hour); !slices.Equal(seqsOf(next.Chunks), []int{2, 3}) || next.Verdict != store.VerdictAck {
			t.Fatalf("after the first answer was written: %v %s; want [2 3] ack", seqsOf(next.Chunks), next.Verdict)
		}
	})

	// Many polls of one session at once, while the job streams, each
	// waiting out the others' answers: every chunk goes to exactly one of
	// them.
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
					page, err := b.store.CursorPoll(ctx, b.tenant, b.lease.JobID, sess, 7, hour)
					if err != nil {
						errc <- err
						return
					}
					if page.Verdict == store.VerdictBusy {
						continue
					}
					mu.Lock()
					got = append(got, seqsOf(page.Chunks)...)
					mu.Unlock()
					if len(page.Chunks) > 0 {
						if _, err := b.store.CursorSent(ctx, b.tenant, b.lease.JobID, sess, page.Gen); err != nil {
							errc <- err
							return
						}
					}
					if page.Terminal() && len(page.Chunks) == 0 {
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
	page, _ := s.CursorPoll(ctx, tenant, l.JobID, sess, 100, hour)
	if len(page.Chunks) != 5 {
		t.Fatalf("CursorPoll after PartialRead got %d chunks, want 5", len(page.Chunks))
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
