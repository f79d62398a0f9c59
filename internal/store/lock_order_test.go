package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestLockOrder: the chunk writer's fence, which locks several running
// jobs' rows, takes its locks in job id order whatever order it is given
// the jobs in, so two batches never deadlock with each other. (The
// heartbeat, the other statement that locks many rows, never waits for a
// lock at all: TestHeartbeat/LockedRowIsBusy.) A deadlock is broken by PostgreSQL only after
// deadlock_timeout (1 s), and with the writer in the cycle every token of
// its batch arrived a second late; `jobstream bench` showed it as a p99 of
// 1-2 s at 300 streams.
//
// Each round: another transaction holds the lower job's row (as a writer
// or heartbeat midway through its locks would), the statement under test
// is given the jobs higher first and must block on the lower one without
// holding the higher one; the other transaction then locks the higher one
// without waiting. Out of order, that second lock closes a cycle.
func TestLockOrder(t *testing.T) {
	t.Parallel()
	const owner = "lock-order"
	pool := dbtest.PoolSize(t, 8)
	s := store.New(pool)
	tenant := testserver.Tenant(t)

	statements := map[string]struct {
		holderLock string // what the other transaction takes
		run        func(ctx context.Context, hi, lo store.Lease) error
	}{
		"WriteBatch": {"FOR NO KEY UPDATE", func(ctx context.Context, hi, lo store.Lease) error {
			held, err := s.WriteBatch(ctx, owner, []store.NewChunk{testserver.Content(hi, 0, "x"), testserver.Content(lo, 0, "x")}, nil)
			if err == nil && (!held[hi] || !held[lo]) {
				err = fmt.Errorf("writer held %v, want both leases", held)
			}
			return err
		}},
	}
	for name, st := range statements {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Without the ordering, a round deadlocks when the map
			// iteration or the plan happens to lock the higher job
			// first; eight rounds make a pass by luck unlikely.
			for round := range 8 {
				lo := testserver.RunningJob(t, pool, tenant, owner)
				hi := testserver.RunningJob(t, pool, tenant, owner)
				if bytes.Compare(lo.JobID[:], hi.JobID[:]) > 0 {
					lo, hi = hi, lo
				}
				// Move the lower job's row after the higher one in the
				// heap, so that neither a scan of the table nor the
				// given order visits the lower one first.
				if _, err := pool.Exec(context.Background(), `UPDATE jobs SET started_at = started_at WHERE id = $1`, lo.JobID); err != nil {
					t.Fatal(err)
				}
				if err := lockRound(t, pool, st.holderLock, lo, hi, st.run); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		})
	}
}

func lockRound(t *testing.T, pool *pgxpool.Pool, lock string, lo, hi store.Lease, run func(ctx context.Context, hi, lo store.Lease) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), testserver.Timeout)
	defer cancel()
	holder, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer holder.Rollback(ctx)
	var pid int
	if err := holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return err
	}
	if _, err := holder.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 `+lock, lo.JobID); err != nil {
		return fmt.Errorf("lock the lower job: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, hi, lo) }()
	// Wait for the statement to block on the holder's row: its backend
	// shows the holder among its blockers.
	for {
		var blocked bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid)))`, pid).Scan(&blocked); err != nil {
			return err
		}
		if blocked {
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("the statement did not wait for the locked row: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
	}
	if _, err := holder.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 `+lock, hi.JobID); err != nil {
		return fmt.Errorf("lock the higher job while the statement waits: %w", err)
	}
	if err := holder.Commit(ctx); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("the statement: %w", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	return nil
}
