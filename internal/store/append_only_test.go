package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// appPool is a pool configured as the server's: connected as the
// superuser, working as store.AppRole.
func appPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 3
	cfg.AfterConnect = store.AfterConnectApp
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestAppRoleIsAppendOnly: the server's role writes jobs through every
// path the server uses, but cannot update or delete a chunk or an event,
// nor delete a job (which would cascade to its chunks).
func TestAppRoleIsAppendOnly(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	owner := testserver.Pool(t, url, 2)
	app := appPool(t, url)
	s := store.New(app)
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()

	var role string
	if err := app.QueryRow(ctx, `SELECT current_user`).Scan(&role); err != nil || role != store.AppRole {
		t.Fatalf("app pool works as %q (%v), want %s", role, err, store.AppRole)
	}

	// The server's write paths work as the app role.
	queued := mustSubmit(t, s, store.SubmitParams{Tenant: tenant})
	claims, err := s.Claim(ctx, "w1", 1, time.Hour)
	if err != nil || len(claims) != 1 {
		t.Fatalf("Claim = %v, %v", claims, err)
	}
	l := claims[0].Lease
	if _, err := s.Heartbeat(ctx, "w1", time.Hour, []store.Lease{l}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 0, "a"), finishChunk(l, 1, "stop")}, []store.Finish{completed(l)}); err != nil {
		t.Fatalf("WriteBatch as %s: %v", store.AppRole, err)
	}
	if res, err := s.Verify(ctx, tenant, queued.ID); err != nil || !res.OK {
		t.Errorf("Verify = %+v, %v", res, err)
	}
	other := mustSubmit(t, s, store.SubmitParams{Tenant: tenant})
	if _, err := s.RequestCancel(ctx, tenant, other.ID); err != nil {
		t.Fatalf("RequestCancel as %s: %v", store.AppRole, err)
	}
	third := mustSubmit(t, s, store.SubmitParams{Tenant: tenant})
	cl, err := s.Claim(ctx, "w2", 1, time.Hour)
	if err != nil || len(cl) != 1 || cl[0].JobID != third.ID {
		t.Fatalf("Claim = %v, %v", cl, err)
	}
	if err := s.HandBack(ctx, "w2", cl[0].Lease); err != nil {
		t.Fatalf("HandBack as %s: %v", store.AppRole, err)
	}
	if _, err := owner.Exec(ctx, `UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_owner = 'dead', lease_expires_at = now() - interval '1 minute' WHERE id = $1`, third.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RescueExpired(ctx, 10, time.Second); err != nil {
		t.Fatalf("RescueExpired as %s: %v", store.AppRole, err)
	}

	for _, stmt := range []string{
		`UPDATE job_chunks SET data = '{"content":"forged"}' WHERE job_id = $1`,
		`DELETE FROM job_chunks WHERE job_id = $1`,
		`DELETE FROM jobs WHERE id = $1`,
		`UPDATE job_events SET actor = 'someone else' WHERE job_id = $1`,
		`DELETE FROM job_events WHERE job_id = $1`,
	} {
		_, err := app.Exec(ctx, stmt, queued.ID)
		if sqlState(err) != "42501" || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as %s: %v, want permission denied", stmt, store.AppRole, err)
		}
	}
	// Even when retention's setting is on: the role has no such privilege.
	err = pgx.BeginFunc(ctx, app, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jobstream.retention = 'on'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM job_chunks WHERE job_id = $1`, queued.ID)
		return err
	})
	if sqlState(err) != "42501" {
		t.Errorf("DELETE with jobstream.retention on as %s: %v, want permission denied", store.AppRole, err)
	}
	if n := len(chunkSeqs(t, owner, queued.ID)); n != 2 {
		t.Errorf("%d chunks left, want 2", n)
	}
}

// TestOwnerTriggersKeepChunksAppendOnly: connected as the owner (here a
// superuser), an UPDATE of a chunk is always rejected, a DELETE (directly
// or by deleting its job) unless it runs as jobstream_retention, and events
// can be neither changed nor removed. The auditor's attack of issue 17
// (item 3) fails: setting jobstream.retention, which any session may, lets
// nothing through any more.
func TestOwnerTriggersKeepChunksAppendOnly(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	owner := testserver.Pool(t, url, 2)
	s := store.New(owner)
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()
	id := completedJob(t, s, owner, tenant)

	rejected := func(what string, err error) {
		t.Helper()
		if sqlState(err) != "42501" || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s as the owner: %v, want the append-only trigger's error", what, err)
		}
	}
	_, err := owner.Exec(ctx, `UPDATE job_chunks SET data = '{"content":"forged"}' WHERE job_id = $1 AND seq = 0`, id)
	rejected("UPDATE job_chunks", err)
	_, err = owner.Exec(ctx, `DELETE FROM job_chunks WHERE job_id = $1 AND seq = 4`, id)
	rejected("DELETE FROM job_chunks", err)
	_, err = owner.Exec(ctx, `DELETE FROM jobs WHERE id = $1`, id)
	if sqlState(err) != "42501" || !strings.Contains(err.Error(), "removed only by retention") {
		t.Errorf("DELETE FROM jobs (cascading to its chunks) as the owner: %v, want the jobs guard's error", err)
	}
	_, err = owner.Exec(ctx, `UPDATE job_events SET actor = 'x' WHERE job_id = $1`, id)
	rejected("UPDATE job_events", err)
	_, err = owner.Exec(ctx, `DELETE FROM job_events WHERE job_id = $1`, id)
	rejected("DELETE FROM job_events", err)
	err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `TRUNCATE job_chunks`)
		if err == nil {
			return errors.New("TRUNCATE succeeded") // rolled back
		}
		return err
	})
	rejected("TRUNCATE job_chunks", err)
	if n := len(chunkSeqs(t, owner, id)); n != 5 {
		t.Fatalf("%d chunks left after rejected changes, want 5", n)
	}

	// The old switch: a custom setting any session may set. It opens
	// nothing.
	for _, stmt := range []string{
		`UPDATE job_chunks SET seq = seq WHERE job_id = $1`,
		`DELETE FROM job_chunks WHERE job_id = $1`,
		`DELETE FROM jobs WHERE id = $1`,
	} {
		err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL jobstream.retention = 'on'`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, stmt, id)
			return err
		})
		if sqlState(err) != "42501" {
			t.Errorf("%s with jobstream.retention on, as the owner: %v, want refused", stmt, err)
		}
	}
	if n := len(chunkSeqs(t, owner, id)); n != 5 {
		t.Fatalf("%d chunks left after the setting's attack, want 5", n)
	}
	// Retention's path: its role, and an UPDATE is still rejected.
	err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE jobstream_retention`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE job_chunks SET seq = seq WHERE job_id = $1`, id)
		return err
	})
	if sqlState(err) != "42501" {
		t.Errorf("UPDATE job_chunks as jobstream_retention: %v, want refused", err)
	}
	err = pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE jobstream_retention`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM jobs WHERE id = $1`, id)
		return err
	})
	if err != nil {
		t.Fatalf("retention's delete: %v", err)
	}
	if n := len(chunkSeqs(t, owner, id)); n != 0 {
		t.Errorf("%d chunks left after retention's delete, want 0", n)
	}
	// The role was transaction-local: the next transaction is guarded.
	other := completedJob(t, s, owner, tenant)
	_, err = owner.Exec(ctx, `DELETE FROM job_chunks WHERE job_id = $1`, other)
	rejected("DELETE after retention's transaction", err)
	// The audit trail outlived the job.
	var events int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM job_events WHERE job_id = $1`, id).Scan(&events); err != nil || events == 0 {
		t.Errorf("%d events left for the deleted job (%v), want its trail", events, err)
	}
}
