package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestKeyRevokeAndHoldDoNotDeadlock is the review's finding 3: a key
// revocation appends its key leaf (the admin event's) and then locks the
// key's job rows; a hold on one of those jobs locks the job row and then
// appends its hold leaf. When appending a leaf took the log's advisory
// lock to commit, the two deadlocked. Here the revocation is held open
// after its key leaf (a session row of the key is locked, so it waits in
// SessionDeleteForKey, before any job row); the hold on a queued job of the
// key runs meanwhile and must get through (before, it waited for the log's
// lock); then the revocation is let go and must complete too, cancelling
// the held job.
func TestKeyRevokeAndHoldDoNotDeadlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 6)
	s := store.New(pool)
	const tenant = "deadlock"
	k := newKey(t, s, "revoked-while-held", tenant)
	j, err := s.Submit(ctx, store.SubmitParams{Tenant: tenant, APIKeyID: &k.ID, Engine: "sim", Request: store.Request{Command: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(uuid.NewString()))
	if _, err := s.SessionCreate(ctx, sum[:], &k.ID, k.Name, tenant, time.Hour, 10); err != nil {
		t.Fatal(err)
	}

	// The gate: a session row of the key, locked.
	gate, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Rollback(ctx)
	if _, err := gate.Exec(ctx, `SELECT 1 FROM sessions WHERE api_key_id = $1 FOR UPDATE`, k.ID); err != nil {
		t.Fatal(err)
	}

	revoked := make(chan error, 1)
	go func() {
		_, err := s.KeyRevoke(store.WithActor(ctx, store.Actor{Name: "cli:admin"}), k.AccessKey)
		revoked <- err
	}()
	// The revocation has revoked the key (its admin event and key leaf
	// written) and waits at the gate.
	waitLocked(t, pool, "SessionDeleteForKey")

	held := make(chan error, 1)
	go func() {
		_, err := s.HoldPlaceTenant(ctx, tenant, j.ID, "litigation", "api_key:"+k.ID.String())
		held <- err
	}()
	// The hold must not wait for the revocation: it takes the job's row,
	// then appends its leaf. Should it wait, the deadlock follows once the
	// gate opens; it is reported rather than hung.
	holdErr, waited := recvOrLocked(t, pool, held, "HoldPlaceTenant")
	if err := gate.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if waited {
		holdErr = testserver.Recv(t, held, "the hold")
		t.Errorf("the hold waited for the revocation (hold: %v)", holdErr)
	}
	if holdErr != nil {
		t.Errorf("hold: %v", holdErr)
	}
	if err := testserver.Recv(t, revoked, "the revocation"); err != nil {
		t.Errorf("revoke: %v", err)
	}
	if got, err := s.Get(ctx, tenant, j.ID); err != nil || got.Status != store.StatusCancelled {
		t.Errorf("the key's queued job: %+v, %v; want cancelled", got, err)
	}
	var holds int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM job_holds WHERE job_id = $1`, j.ID).Scan(&holds); err != nil || holds != 1 {
		t.Errorf("%d holds on the job (%v), want 1", holds, err)
	}
}

// recvOrLocked returns what c delivers, or reports waited once a statement
// whose text contains query waits for a lock, failing the test after
// testserver.Timeout.
func recvOrLocked(t *testing.T, pool *pgxpool.Pool, c <-chan error, query string) (err error, waited bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testserver.Timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-c:
			return err, false
		case <-ctx.Done():
			t.Fatalf("%q neither returned nor waited for a lock within %s", query, testserver.Timeout)
		case <-tick.C:
		}
		var waiting bool
		if err := pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0)`, query).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return nil, true
		}
	}
}
