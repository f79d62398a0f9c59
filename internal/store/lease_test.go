package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// Claim and RescueExpired act on every job of a database, not one
// tenant's, so these tests get a database each.

func TestClaim(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store *store.Store
		pool  *pgxpool.Pool
	}
	setup := func(t *testing.T, conns int32) testBundle {
		pool := testserver.Pool(t, testserver.Database(t), conns)
		return testBundle{store: store.New(pool), pool: pool}
	}
	ctx := context.Background()

	t.Run("ConcurrentClaimersNeverDoubleClaim", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 8)
		const jobs, claimers = 500, 8
		if _, err := b.pool.Exec(ctx, `
			INSERT INTO jobs (id, tenant, engine, request)
			SELECT gen_random_uuid(), 'claim', 'sim', '{}' FROM generate_series(1, $1)`, jobs); err != nil {
			t.Fatal(err)
		}
		var (
			mu      sync.Mutex
			claimed = map[uuid.UUID][]string{}
			wg      sync.WaitGroup
			start   = make(chan struct{})
		)
		for i := range claimers {
			owner := "claimer-" + string(rune('a'+i))
			wg.Go(func() {
				<-start
				for {
					cs, err := b.store.Claim(ctx, owner, 7, time.Minute)
					if err != nil {
						t.Errorf("%s: %v", owner, err)
						return
					}
					if len(cs) == 0 {
						return
					}
					mu.Lock()
					for _, c := range cs {
						claimed[c.JobID] = append(claimed[c.JobID], owner)
						if c.Attempt != 1 || c.NextSeq != 0 || c.Tenant != "claim" {
							t.Errorf("claim %+v: want attempt 1, next seq 0", c)
						}
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()

		if len(claimed) != jobs {
			t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
		}
		for id, owners := range claimed {
			if len(owners) != 1 {
				t.Errorf("job %s claimed by %v", id, owners)
			}
		}
		// The database agrees with what each claimer was told.
		rows, _ := b.pool.Query(ctx, `SELECT id, lease_owner, attempt, status FROM jobs`)
		type row struct {
			ID      uuid.UUID
			Owner   string
			Attempt int
			Status  string
		}
		all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			if r.Status != store.StatusRunning || r.Attempt != 1 || len(claimed[r.ID]) != 1 || claimed[r.ID][0] != r.Owner {
				t.Errorf("job %s: %+v, claimed by %v", r.ID, r, claimed[r.ID])
			}
		}
	})

	t.Run("OldestFirstAndRequestDecoded", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 2)
		var ids []uuid.UUID
		for i := range 3 {
			j, err := b.store.Submit(ctx, store.SubmitParams{Tenant: "t", Engine: "sim", RoomID: "r",
				Request: store.Request{Command: "c", Params: map[string]json.RawMessage{"n": json.RawMessage{byte('0' + i)}}}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		cs, err := b.store.Claim(ctx, "w", 2, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 2 || cs[0].JobID != ids[0] && cs[1].JobID != ids[0] {
			t.Fatalf("claimed %+v, want the two oldest", cs)
		}
		for _, c := range cs {
			if c.Request.Command != "c" || c.RoomID != "r" || c.Engine != "sim" {
				t.Errorf("claim = %+v", c)
			}
		}
		rest, _ := b.store.Claim(ctx, "w", 10, time.Minute)
		if len(rest) != 1 || rest[0].JobID != ids[2] {
			t.Errorf("second claim = %+v, want the third job", rest)
		}
	})

	t.Run("ReclaimContinuesSeqAndSeesCancel", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 2)
		j, err := b.store.Submit(ctx, store.SubmitParams{Tenant: "t", Engine: "sim", Request: store.Request{Command: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := b.store.Claim(ctx, "w1", 1, time.Minute)
		if len(cs) != 1 {
			t.Fatal("no claim")
		}
		if _, err := b.store.WriteBatch(ctx, "w1", []store.NewChunk{content(cs[0].Lease, 0, "a"), content(cs[0].Lease, 1, "b")}, nil); err != nil {
			t.Fatal(err)
		}
		// Back to the queue behind the store's back, with a cancel request.
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
			cancel_requested_at = now() WHERE id = $1`, j.ID); err != nil {
			t.Fatal(err)
		}
		cs, _ = b.store.Claim(ctx, "w2", 1, time.Minute)
		if len(cs) != 1 || cs[0].Attempt != 2 || cs[0].NextSeq != 2 || !cs[0].CancelRequested {
			t.Errorf("re-claim = %+v, want attempt 2, next seq 2, cancel requested", cs)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 2)
	s := store.New(pool)

	for range 3 {
		if _, err := s.Submit(ctx, store.SubmitParams{Tenant: "t", Engine: "sim"}); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := s.Claim(ctx, "w1", 3, time.Second)
	if err != nil || len(cs) != 3 {
		t.Fatalf("claim: %v, %v", cs, err)
	}
	var before time.Time
	_ = pool.QueryRow(ctx, `SELECT lease_expires_at FROM jobs WHERE id = $1`, cs[0].JobID).Scan(&before)

	// Steal one, finish another.
	if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, cs[1].JobID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{finishChunk(cs[2].Lease, 0, "stop")}, []store.Finish{completed(cs[2].Lease)}); err != nil {
		t.Fatal(err)
	}
	leases := []store.Lease{cs[0].Lease, cs[1].Lease, cs[2].Lease}
	res, err := s.Heartbeat(ctx, "w1", time.Hour, leases)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].JobID != cs[0].JobID || res[0].CancelRequested {
		t.Errorf("Heartbeat = %+v, want only %s still held", res, cs[0].JobID)
	}
	var after time.Time
	_ = pool.QueryRow(ctx, `SELECT lease_expires_at FROM jobs WHERE id = $1`, cs[0].JobID).Scan(&after)
	if after.Sub(before) < 50*time.Minute {
		t.Errorf("lease extended from %v to %v, want about an hour", before, after)
	}
	if res, err := s.Heartbeat(ctx, "w1", time.Hour, nil); err != nil || res != nil {
		t.Errorf("Heartbeat(nil) = %v, %v", res, err)
	}
}

func TestRescueExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 2)
	s := store.New(pool)

	submit := func(maxAttempts int) uuid.UUID {
		j, err := s.Submit(ctx, store.SubmitParams{Tenant: "t", Engine: "sim", MaxAttempts: maxAttempts})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	var (
		fresh     = submit(3) // no chunks, attempts left: requeued
		streaming = submit(3) // wrote chunks: failed, never replayed
		exhausted = submit(1) // no chunks, no attempts left: failed
		alive     = submit(3) // lease not expired: untouched
	)
	cs, err := s.Claim(ctx, "w1", 10, time.Hour)
	if err != nil || len(cs) != 4 {
		t.Fatalf("claim: %v, %v", cs, err)
	}
	lease := map[uuid.UUID]store.Lease{}
	for _, c := range cs {
		lease[c.JobID] = c.Lease
	}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(lease[streaming], 0, "a"), content(lease[streaming], 1, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ANY($1)`,
		[]uuid.UUID{fresh, streaming, exhausted}); err != nil {
		t.Fatal(err)
	}

	res, err := s.RescueExpired(ctx, 100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(res.Failed, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	wantFailed := []uuid.UUID{streaming, exhausted}
	slices.SortFunc(wantFailed, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(res.Requeued, []uuid.UUID{fresh}) || !slices.Equal(res.Failed, wantFailed) {
		t.Fatalf("rescued %+v, want requeued [%s], failed %v", res, fresh, wantFailed)
	}

	t.Run("Requeued", func(t *testing.T) {
		j, _ := s.Get(ctx, "t", fresh)
		if j.Status != store.StatusQueued || j.Attempt != 1 {
			t.Errorf("job = %+v, want queued after attempt 1", j)
		}
		cs, _ := s.Claim(ctx, "w2", 10, time.Hour)
		if len(cs) != 1 || cs[0].JobID != fresh || cs[0].Attempt != 2 {
			t.Errorf("re-claim = %+v, want attempt 2 of %s", cs, fresh)
		}
	})

	t.Run("FailedMidStream", func(t *testing.T) {
		snap, _ := s.Read(ctx, "t", streaming, 0, 10)
		if snap.Status != store.StatusFailed || snap.FinishReason != "error" || len(snap.Chunks) != 3 {
			t.Fatalf("snapshot = %+v, want failed with 3 chunks", snap)
		}
		var last struct {
			FinishReason string `json:"finish_reason"`
			Error        struct{ Message, Type string }
		}
		if err := json.Unmarshal(snap.Chunks[2].Data, &last); err != nil || last.FinishReason != "error" || last.Error.Type != "lease_expired" {
			t.Errorf("last chunk %s, want an error finish chunk of type lease_expired", snap.Chunks[2].Data)
		}
		j, _ := s.Get(ctx, "t", streaming)
		if len(j.Error) == 0 || j.FinishedAt == nil {
			t.Errorf("job = %+v, want error and finished_at", j)
		}
		// The old owner's late writes are fenced off.
		held, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(lease[streaming], 2, "late")}, []store.Finish{completed(lease[streaming])})
		if err != nil || held[lease[streaming]] {
			t.Errorf("late write: held = %v, err = %v; want fenced", held, err)
		}
		if seqs := chunkSeqs(t, pool, streaming); !slices.Equal(seqs, []int{0, 1, 2}) {
			t.Errorf("seqs = %v", seqs)
		}
	})

	t.Run("FailedOutOfAttempts", func(t *testing.T) {
		snap, _ := s.Read(ctx, "t", exhausted, 0, 10)
		if snap.Status != store.StatusFailed || len(snap.Chunks) != 1 || snap.Chunks[0].Seq != 0 {
			t.Errorf("snapshot = %+v, want failed with its error chunk at seq 0", snap)
		}
	})

	t.Run("AliveUntouched", func(t *testing.T) {
		j, _ := s.Get(ctx, "t", alive)
		if j.Status != store.StatusRunning {
			t.Errorf("job with a live lease is %s", j.Status)
		}
		res, err := s.RescueExpired(ctx, 100, time.Second)
		if err != nil || len(res.Requeued)+len(res.Failed) != 0 {
			t.Errorf("second rescue = %+v, %v; want nothing", res, err)
		}
	})
}

// TestHeartbeatLockedRowIsBusy: a row locked by another transaction does
// not hold up the heartbeat of the other leases (issue 9): they are renewed
// at once, and the locked one comes back held but not renewed, for the
// worker to retry. Once the lock is gone it renews too.
func TestHeartbeatLockedRowIsBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 3)
	s := store.New(pool)
	const owner = "w1"
	locked := testserver.RunningJob(t, pool, "t", owner)
	free := testserver.RunningJob(t, pool, "t", owner)
	if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() WHERE id = ANY($1)`, []uuid.UUID{locked.JobID, free.JobID}); err != nil {
		t.Fatal(err)
	}

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, locked.JobID); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, testserver.Timeout)
	defer cancel()
	res, err := s.Heartbeat(hctx, owner, time.Hour, []store.Lease{locked, free})
	if err != nil {
		t.Fatalf("heartbeat with a locked row: %v (it waited for the lock)", err)
	}
	got := map[store.Lease]store.HeartbeatResult{}
	for _, r := range res {
		got[r.Lease] = r
	}
	if r, ok := got[free]; !ok || !r.Renewed {
		t.Errorf("free lease: %+v, want renewed", got)
	}
	if r, ok := got[locked]; !ok || r.Renewed {
		t.Errorf("locked lease: %+v, want held but not renewed", got)
	}
	var freeLive, lockedLive bool
	_ = pool.QueryRow(ctx, `SELECT lease_expires_at > now() + interval '50 minutes' FROM jobs WHERE id = $1`, free.JobID).Scan(&freeLive)
	if !freeLive {
		t.Error("the free lease was not extended")
	}

	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = s.Heartbeat(ctx, owner, time.Hour, []store.Lease{locked, free})
	if err != nil || len(res) != 2 || !res[0].Renewed || !res[1].Renewed {
		t.Fatalf("heartbeat after the lock = %+v, %v; want both renewed", res, err)
	}
	_ = pool.QueryRow(ctx, `SELECT lease_expires_at > now() + interval '50 minutes' FROM jobs WHERE id = $1`, locked.JobID).Scan(&lockedLive)
	if !lockedLive {
		t.Error("the formerly locked lease was not extended")
	}
}

// TestRescueDecidesUnderTheLock: the rescuer decides whether a job has
// output, and where its error chunk goes, from what is committed once it
// holds the job's row lock, not from the snapshot its statement started
// with (issue 9). A NowGate holds the rescuer's JobExpiredLock after its
// snapshot and before its row locks; meanwhile the expired lease's owner
// commits a chunk (its fence takes the row FOR SHARE and does not look at
// the expiry). Then the rescuer goes on:
//
//   - AttemptsLeft: the job must be failed, not requeued (a new attempt
//     would replay output readers have seen);
//   - LastAttempt: the error chunk must follow the late chunk (seq 1), not
//     collide with it and abort the whole rescue.
func TestRescueDecidesUnderTheLock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		maxAttempts int
	}{
		{"AttemptsLeft", 3},
		{"LastAttempt", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := testserver.Database(t)
			gate := testserver.NewNowGate(t, db)
			pool := testserver.Pool(t, db, 2)
			rescuer := store.New(testserver.Pool(t, gate.URL, 1))
			s := store.New(pool)
			const owner = "late-writer"
			l := testserver.RunningJob(t, pool, "t", owner)
			if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 second', max_attempts = $2 WHERE id = $1`, l.JobID, tc.maxAttempts); err != nil {
				t.Fatal(err)
			}

			gate.Close()
			rescued := make(chan error, 1)
			var res store.Rescued
			go func() {
				var err error
				res, err = rescuer.RescueExpired(ctx, 10, time.Second)
				rescued <- err
			}()
			gate.WaitHeld("name: JobExpiredLock")
			held, err := s.WriteBatch(ctx, owner, []store.NewChunk{content(l, 0, "seen by a reader")}, nil)
			if err != nil || !held[l] {
				t.Fatalf("the late write: held %v, %v", held, err)
			}
			gate.Open()
			if err := testserver.Recv(t, rescued, "the rescue"); err != nil {
				t.Fatalf("rescue: %v", err)
			}
			if len(res.Requeued) != 0 || len(res.Failed) != 1 {
				t.Errorf("rescued %+v, want the job failed", res)
			}
			snap, err := s.Read(ctx, "t", l.JobID, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Status != store.StatusFailed || len(snap.Chunks) != 2 || snap.Chunks[1].Seq != 1 {
				t.Fatalf("job %s with %d chunks (%+v), want failed: the late chunk, then the error chunk at seq 1", snap.Status, len(snap.Chunks), snap.Chunks)
			}
			var last struct {
				Error struct{ Message, Type string }
			}
			if err := json.Unmarshal(snap.Chunks[1].Data, &last); err != nil || last.Error.Type != "lease_expired" || !strings.Contains(last.Error.Message, "stopped heartbeating") {
				t.Errorf("error chunk %s, want lease_expired mid-stream", snap.Chunks[1].Data)
			}
		})
	}
}

// TestHotOperationTimeout: a hot-path operation blocked on a row lock held
// elsewhere gives up after the Store's HotOperationTimeout, for its caller
// to retry, instead of hanging for as long as the lock is held (issue 9).
// Here the chunk writer's batch waits on a job row locked FOR UPDATE.
func TestHotOperationTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 3)
	s := store.NewWithConfig(pool, store.Config{HotOperationTimeout: 200 * time.Millisecond})
	const owner = "w1"
	l := testserver.RunningJob(t, pool, "t", owner)

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, l.JobID); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.WriteBatch(ctx, owner, []store.NewChunk{content(l, 0, "x")}, nil)
		errc <- err
	}()
	if err := testserver.Recv(t, errc, "the blocked batch to give up"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked batch: %v, want a deadline error", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if held, err := s.WriteBatch(ctx, owner, []store.NewChunk{content(l, 0, "x")}, nil); err != nil || !held[l] {
		t.Fatalf("retry after the lock: %v, %v", held, err)
	}
}

// TestHeartbeatWaitsOutABatch: a lease whose row is locked for a moment (a
// chunk writer batch holds it FOR SHARE until it commits) is renewed by the
// same heartbeat once the lock goes, not left for a retry: under load the
// writer holds some job's row most of the time.
func TestHeartbeatWaitsOutABatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 3)
	s := store.New(pool)
	const owner = "w1"
	l := testserver.RunningJob(t, pool, "t", owner)

	batch, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback(ctx)
	if _, err := batch.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR SHARE`, l.JobID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res []store.HeartbeatResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.Heartbeat(ctx, owner, time.Hour, []store.Lease{l})
		done <- result{res, err}
	}()
	for waiting := false; !waiting; {
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, 'name: JobHeartbeatWait') > 0)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("heartbeat returned %+v, %v without waiting for the batch", r.res, r.err)
		default:
		}
	}
	if err := batch.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := testserver.Recv(t, done, "the heartbeat")
	if r.err != nil || len(r.res) != 1 || !r.res[0].Renewed {
		t.Fatalf("heartbeat = %+v, %v; want the lease renewed once the batch committed", r.res, r.err)
	}
}

// TestHeartbeatStuckRowDoesNotStallBatchedOnes: one row locked for long
// (an operator's open transaction) must not keep the heartbeat from
// renewing the other leases whose rows were locked only for a moment (a
// chunk writer batch holds them FOR SHARE; under load that is most of
// them at any instant). Before the fix the wait pass renewed all busy
// leases in one statement, and the stuck row's lock_timeout rolled back
// the renewal of every one of them, beat after beat, until their leases
// expired and the rescuer failed healthy streams.
func TestHeartbeatStuckRowDoesNotStallBatchedOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 4)
	s := store.New(pool)
	const owner = "w1"
	stuck := testserver.RunningJob(t, pool, "t", owner)
	batched := testserver.RunningJob(t, pool, "t", owner)
	if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() WHERE id = ANY($1)`, []uuid.UUID{stuck.JobID, batched.JobID}); err != nil {
		t.Fatal(err)
	}

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, stuck.JobID); err != nil {
		t.Fatal(err)
	}
	batch, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback(ctx)
	if _, err := batch.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR SHARE`, batched.JobID); err != nil {
		t.Fatal(err)
	}

	type result struct {
		res []store.HeartbeatResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.Heartbeat(ctx, owner, time.Hour, []store.Lease{stuck, batched})
		done <- result{res, err}
	}()
	// Once the heartbeat waits for a lock (both rows were busy at its
	// first pass), the batch commits: only the stuck row stays locked.
	for waiting := false; !waiting; {
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, 'name: JobHeartbeatWait') > 0)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("heartbeat returned %+v, %v without waiting for a lock", r.res, r.err)
		default:
		}
	}
	if err := batch.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := testserver.Recv(t, done, "the heartbeat")
	if r.err != nil {
		t.Fatalf("heartbeat: %v", r.err)
	}
	got := map[store.Lease]store.HeartbeatResult{}
	for _, h := range r.res {
		got[h.Lease] = h
	}
	if h, ok := got[batched]; !ok || !h.Renewed {
		t.Errorf("batched lease: %+v, want renewed once its batch committed", got)
	}
	if h, ok := got[stuck]; !ok || h.Renewed {
		t.Errorf("stuck lease: %+v, want held but not renewed", got)
	}
	var live bool
	if err := pool.QueryRow(ctx, `SELECT lease_expires_at > now() + interval '50 minutes' FROM jobs WHERE id = $1`, batched.JobID).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if !live {
		t.Error("the batched lease was not extended: the stuck row's lock timeout rolled its renewal back")
	}
}

// TestHeartbeatReportsSecondStatementFailure: when the renewal of a busy
// lease fails for a reason other than the lock outlasting its wait (here
// the hot-operation deadline, shorter than the lock wait, cuts it), the
// failure is returned with the results of the first statement, not
// swallowed as if the beat were healthy (issue 19): the worker must count
// it as a failure of the database.
func TestHeartbeatReportsSecondStatementFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 3)
	// Shorter than the 500 ms the second statement waits for a lock.
	s := store.NewWithConfig(pool, store.Config{HotOperationTimeout: 450 * time.Millisecond})
	const owner = "w1"
	locked := testserver.RunningJob(t, pool, "t", owner)
	free := testserver.RunningJob(t, pool, "t", owner)
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, locked.JobID); err != nil {
		t.Fatal(err)
	}
	res, err := s.Heartbeat(ctx, owner, time.Hour, []store.Lease{locked, free})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("heartbeat = %+v, %v; want the deadline's error", res, err)
	}
	got := map[store.Lease]store.HeartbeatResult{}
	for _, r := range res {
		got[r.Lease] = r
	}
	if r, ok := got[free]; !ok || !r.Renewed {
		t.Errorf("free lease: %+v, want renewed by the first statement", got)
	}
	if r, ok := got[locked]; !ok || r.Renewed {
		t.Errorf("locked lease: %+v, want held but not renewed", got)
	}
}
