package store_test

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

// TestSessionCreateConcurrentAtCap: many logins with one key at once, at
// the session cap (issue 19: 1,600 logins from 8 threads gave 29
// "trim sessions: deadlock detected"), all succeed, with expired sessions
// being swept and live ones touched meanwhile, and the cap holds once
// they are done.
func TestSessionCreateConcurrentAtCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const workers = 8
	s := store.New(dbtest.PoolSize(t, workers))
	k := newKey(t, s, "alice", "")
	const (
		each = 100
		keep = 4
	)
	hashOf := func() []byte { h := sha256.Sum256([]byte(uuid.NewString())); return h[:] }
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every fourth session is born expired, so that
				// SessionDeleteExpired deletes rows the trims also want.
				ttl := time.Hour
				if (w+i)%4 == 0 {
					ttl = -time.Second
				}
				h := hashOf()
				if _, err := s.SessionCreate(ctx, h, &k.ID, k.Name, k.Tenant, ttl, keep); err != nil {
					errs <- err
					continue
				}
				// A client using its session moves it up the LRU order.
				_, _ = s.SessionTouch(ctx, h, time.Hour)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed < 5 {
			t.Errorf("concurrent login: %v", err)
		}
		failed++
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent logins failed", failed, workers*each)
	}
	// One more login, alone, leaves exactly the cap.
	if _, err := s.SessionCreate(ctx, hashOf(), &k.ID, k.Name, k.Tenant, time.Hour, keep); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dbtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM sessions WHERE api_key_id = $1`, k.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != keep {
		t.Fatalf("%d sessions after the logins, want %d", n, keep)
	}
}

// TestSessionSweepsNeverWait: the sweeps after a login (trimming a key's
// sessions beyond the cap, deleting expired ones) skip a session row
// another transaction holds instead of waiting for it, which is what keeps
// them out of deadlocks; they delete the rest.
func TestSessionSweepsNeverWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.PoolSize(t, 3)
	s := store.New(pool)
	k := newKey(t, s, "alice", "")
	hashOf := func() []byte { h := sha256.Sum256([]byte(uuid.NewString())); return h[:] }
	// Five sessions of alice, and an expired anonymous session (written
	// directly: a login's own sweep would remove it).
	var ids []uuid.UUID
	for range 5 {
		sess, err := s.SessionCreate(ctx, hashOf(), &k.ID, k.Name, k.Tenant, time.Hour, 100)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sess.ID)
	}
	expired := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO sessions (id, token_hash, tenant, expires_at) VALUES ($1, $2, 'dev', now() - interval '1 second')`, expired, hashOf()); err != nil {
		t.Fatal(err)
	}
	// Another transaction holds alice's second oldest session and the
	// expired one (as a concurrent sweep deleting them would).
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM sessions WHERE id IN ($1, $2) FOR UPDATE`, ids[1], expired); err != nil {
		t.Fatal(err)
	}
	// A login trimming alice to 2 sessions must not wait for them: the
	// deadline only bounds the failure of a sweep that waits.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.SessionCreate(lctx, hashOf(), &k.ID, k.Name, k.Tenant, time.Hour, 2); err != nil {
		t.Fatalf("login while a session row is held: %v", err)
	}
	rows, err := pool.Query(ctx, `SELECT id FROM sessions WHERE api_key_id = $1`, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	// Kept: the two newest, and the held one (skipped); the others went.
	if len(left) != 3 || !slices.Contains(left, ids[1]) || !slices.Contains(left, ids[4]) {
		t.Fatalf("sessions left %v, want the held %s, the newest %s and the new one", left, ids[1], ids[4])
	}
	// Once released, the next login's sweep removes the expired one.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionCreate(ctx, hashOf(), &k.ID, k.Name, k.Tenant, time.Hour, 2); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE id = $1`, expired).Scan(&n); err != nil || n != 0 {
		t.Fatalf("expired session left: %d, %v", n, err)
	}
}
