package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestHandBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A database of its own: a handed-back job is queued, and claimers
	// take any queued job of their database.
	pool := testserver.Pool(t, testserver.Database(t), 4)
	s := store.New(pool)
	const owner = "handback-owner"
	tenant := testserver.Tenant(t)
	row := func(t *testing.T, l store.Lease) (status string, attempt, maxAttempts int) {
		t.Helper()
		err := pool.QueryRow(ctx, `SELECT status, attempt, max_attempts FROM jobs WHERE id = $1`, l.JobID).Scan(&status, &attempt, &maxAttempts)
		if err != nil {
			t.Fatal(err)
		}
		return
	}

	t.Run("RequeuedWithoutCountingTheAttempt", func(t *testing.T) {
		t.Parallel()
		l := testserver.RunningJob(t, pool, tenant, owner)
		_, _, maxBefore := row(t, l)
		if err := s.HandBack(ctx, owner, l); err != nil {
			t.Fatal(err)
		}
		status, attempt, maxAfter := row(t, l)
		if status != store.StatusQueued || attempt != l.Attempt || maxAfter != maxBefore+1 {
			t.Errorf("after the hand-back: %s, attempt %d of %d; want queued, attempt %d of %d", status, attempt, maxAfter, l.Attempt, maxBefore+1)
		}
		var owned bool
		if err := pool.QueryRow(ctx, `SELECT lease_owner IS NOT NULL FROM jobs WHERE id = $1`, l.JobID).Scan(&owned); err != nil || owned {
			t.Errorf("lease still held (%v)", err)
		}
	})

	t.Run("FencedOnTheLease", func(t *testing.T) {
		t.Parallel()
		l := testserver.RunningJob(t, pool, tenant, owner)
		for name, other := range map[string]struct {
			owner string
			lease store.Lease
		}{
			"OtherOwner":   {"someone-else", l},
			"StaleAttempt": {owner, store.Lease{JobID: l.JobID, Attempt: l.Attempt - 1}},
		} {
			if err := s.HandBack(ctx, other.owner, other.lease); !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("%s: HandBack = %v, want ErrLeaseLost", name, err)
			}
		}
		if status, _, _ := row(t, l); status != store.StatusRunning {
			t.Errorf("status %s: a hand-back without the lease changed the job", status)
		}
	})

	t.Run("NeverWithChunks", func(t *testing.T) {
		t.Parallel()
		l := testserver.RunningJob(t, pool, tenant, owner)
		if _, err := s.WriteBatch(ctx, owner, []store.NewChunk{testserver.Content(l, 0, "seen")}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.HandBack(ctx, owner, l); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("HandBack of a job with a chunk = %v, want ErrLeaseLost (it must be failed, not replayed)", err)
		}
		if status, _, _ := row(t, l); status != store.StatusRunning {
			t.Errorf("status %s", status)
		}
	})
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{store.ErrNotFound, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("read: %w", &pgconn.PgError{Code: "57P01"}), true},
		{fmt.Errorf("read: %w", &pgconn.PgError{Code: "08006"}), true},
		{fmt.Errorf("read: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
	} {
		if got := store.Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
