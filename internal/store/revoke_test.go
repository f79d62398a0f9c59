package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// waitLocked returns once a statement whose text contains query waits for
// a row lock in pool's database, failing the test after testserver.Timeout.
func waitLocked(t *testing.T, pool *pgxpool.Pool, query string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testserver.Timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting bool
		if err := pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0)`, query).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %q waited for a lock within %s", query, testserver.Timeout)
		case <-tick.C:
		}
	}
}

// TestKeyRevokeCancelsJobs (issue 18, item 14): revoking a key cancels the
// jobs it submitted that have not ended (queued ones at once, running ones
// by their worker), in their audit trails as cancelled by whoever revoked
// it; other keys' jobs, of the same tenant too, run on; and the key can
// submit nothing more, even while a cache still lets its requests in.
func TestKeyRevokeCancelsJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testserver.Pool(t, testserver.Database(t), 4)
	s := store.New(pool)
	const tenant = "shared"
	k, other := newKey(t, s, "revoked", tenant), newKey(t, s, "other", tenant)
	submit := func(key store.APIKey) uuid.UUID {
		t.Helper()
		j, err := s.Submit(ctx, store.SubmitParams{Tenant: tenant, APIKeyID: &key.ID, Engine: "sim", Request: store.Request{Command: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	running, done := submit(k), submit(k)
	cs, err := s.Claim(ctx, "w1", 2, time.Hour)
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %v, %v", cs, err)
	}
	lease := map[uuid.UUID]store.Lease{cs[0].JobID: cs[0].Lease, cs[1].JobID: cs[1].Lease}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{finishChunk(lease[done], 0, "stop")}, []store.Finish{completed(lease[done])}); err != nil {
		t.Fatal(err)
	}
	queued := []uuid.UUID{submit(k), submit(k)}
	othersJob := submit(other)

	res, err := s.KeyRevoke(store.WithActor(ctx, store.Actor{Name: "cli:admin"}), k.AccessKey)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Cancelled, queued) || !slices.Equal(res.Stopping, []uuid.UUID{running}) {
		t.Fatalf("revoke cancelled %v and is stopping %v; want %v and [%s]", res.Cancelled, res.Stopping, queued, running)
	}
	for _, id := range queued {
		snap, err := s.Read(ctx, tenant, id, 0, 10)
		if err != nil || snap.Status != store.StatusCancelled || len(snap.Chunks) != 1 || string(snap.Chunks[0].Data) != `{"finish_reason":"cancelled"}` {
			t.Errorf("queued job %s: %+v, %v; want cancelled with its finish chunk", id, snap, err)
		}
		events, _ := s.Events(ctx, tenant, id, 0, 1000)
		var got []string
		for _, e := range events[1:] {
			got = append(got, e.Event+" by "+e.Actor+" ("+deref(e.Reason)+")")
		}
		if want := []string{"cancel_requested by cli:admin (key_revoked)", "cancelled by cli:admin (cancel_requested)"}; !slices.Equal(got, want) {
			t.Errorf("queued job's audit trail %q, want %q", got, want)
		}
	}
	// The running job's worker is told to stop (its heartbeat sees it).
	held, err := s.Heartbeat(ctx, "w1", time.Hour, []store.Lease{lease[running]})
	if err != nil || len(held) != 1 || !held[0].CancelRequested {
		t.Errorf("heartbeat of the running job: %+v, %v; want cancel requested", held, err)
	}
	events, _ := s.Events(ctx, tenant, running, 0, 1000)
	if e := events[len(events)-1]; e.Event != "cancel_requested" || e.Actor != "cli:admin" || deref(e.Reason) != "key_revoked" {
		t.Errorf("running job's last event %+v, want cancel_requested by cli:admin, key_revoked", e)
	}
	for id, want := range map[uuid.UUID]string{done: store.StatusCompleted, othersJob: store.StatusQueued} {
		if j, _ := s.Get(ctx, tenant, id); j.Status != want || j.CancelRequestedAt != nil {
			t.Errorf("job %s is %s (cancel requested %v), want %s untouched", id, j.Status, j.CancelRequestedAt, want)
		}
	}
	// A request the credential cache still lets in submits nothing.
	if _, err := s.Submit(ctx, store.SubmitParams{Tenant: tenant, APIKeyID: &k.ID, Engine: "sim", Request: store.Request{Command: "late"}}); !errors.Is(err, store.ErrKeyRevoked) {
		t.Errorf("submit with the revoked key: %v, want ErrKeyRevoked", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE api_key_id = $1`, k.ID).Scan(&n); err != nil || n != 4 {
		t.Errorf("the key has %d jobs (%v), want its 4: nothing stored after the revocation", n, err)
	}
}

// TestKeyRevokeRaces: a submission in progress while its key is revoked
// either commits first, and is cancelled with the key's other jobs, or
// waits for the revocation and is refused. No job of a revoked key is
// left to run.
func TestKeyRevokeRaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SubmissionFirst", func(t *testing.T) {
		t.Parallel()
		pool := testserver.Pool(t, testserver.Database(t), 4)
		s := store.New(pool)
		k := newKey(t, s, "k", "")
		// A submission holding the key's row as JobInsert does, not
		// committed yet.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		id := uuid.Must(uuid.NewV7())
		if _, err := tx.Exec(ctx, `
			INSERT INTO jobs (id, tenant, api_key_id, engine, request)
			SELECT $1, $2, $3, 'sim', '{"command":"c"}'
			WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $3 AND revoked_at IS NULL FOR KEY SHARE)`, id, k.Tenant, k.ID); err != nil {
			t.Fatal(err)
		}
		revoked := make(chan store.Revoked, 1)
		go func() {
			res, err := s.KeyRevoke(ctx, k.AccessKey)
			if err != nil {
				t.Error(err)
			}
			revoked <- res
		}()
		waitLocked(t, pool, "name: KeyLock")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if res := <-revoked; !slices.Equal(res.Cancelled, []uuid.UUID{id}) {
			t.Errorf("revocation cancelled %v, want the job committed while it waited", res.Cancelled)
		}
	})

	t.Run("RevocationFirst", func(t *testing.T) {
		t.Parallel()
		pool := testserver.Pool(t, testserver.Database(t), 4)
		s := store.New(pool)
		k := newKey(t, s, "k", "")
		// A revocation holding the key's row, not committed yet.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE`, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1`, k.ID); err != nil {
			t.Fatal(err)
		}
		submitted := make(chan error, 1)
		go func() {
			_, err := s.Submit(ctx, store.SubmitParams{Tenant: k.Tenant, APIKeyID: &k.ID, Engine: "sim", Request: store.Request{Command: "c"}})
			submitted <- err
		}()
		waitLocked(t, pool, "name: JobInsert")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-submitted; !errors.Is(err, store.ErrKeyRevoked) {
			t.Errorf("submission during the revocation: %v, want ErrKeyRevoked", err)
		}
	})
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
