package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

type event struct {
	Event, Actor       string
	FromStatus, Reason *string
}

func (e event) String() string {
	s := e.Event + " by " + e.Actor
	if e.Reason != nil {
		s += " (" + *e.Reason + ")"
	}
	return s
}

func eventsOf(t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, id uuid.UUID) []string {
	t.Helper()
	rows, err := q.Query(context.Background(), `SELECT event, actor, from_status, reason FROM job_events WHERE job_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var e event
		err := r.Scan(&e.Event, &e.Actor, &e.FromStatus, &e.Reason)
		return e.String(), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAuditTrailActors: every transition is recorded with who made it,
// and a cancel request is recorded even when the job then completes.
func TestAuditTrailActors(t *testing.T) {
	t.Parallel()
	// A database of its own: Claim and RescueExpired act on every job.
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 3)
	s := store.New(pool)
	ctx := context.Background()
	key := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO api_keys (id, name, tenant, access_key, secret_hash) VALUES ($1, 'k', 'acme', $2, sha256('s'))`, key, "ak-"+key.String()); err != nil {
		t.Fatal(err)
	}
	keyActor := "api_key:" + key.String()
	actx := store.WithActor(ctx, store.Actor{Name: keyActor})
	check := func(id uuid.UUID, want ...string) {
		t.Helper()
		got := eventsOf(t, pool, id)
		if len(got) != len(want) {
			t.Errorf("events = %q, want %q", got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("event %d = %q, want %q (all: %q)", i, got[i], want[i], got)
			}
		}
	}

	// Created by a key, claimed by a worker, cancel requested by the key
	// (StopPixelExecution) but completed anyway.
	job := mustSubmit(t, s, store.SubmitParams{Tenant: "acme", APIKeyID: &key})
	claims, err := s.Claim(ctx, "worker-a", 1, time.Hour)
	if err != nil || len(claims) != 1 {
		t.Fatalf("Claim = %v, %v", claims, err)
	}
	l := claims[0].Lease
	if _, err := s.RequestCancel(store.WithActor(ctx, store.Actor{Name: keyActor, Via: "StopPixelExecution"}), "acme", job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, "worker-a", []store.NewChunk{content(l, 0, "a"), finishChunk(l, 1, "stop")}, []store.Finish{completed(l)}); err != nil {
		t.Fatal(err)
	}
	check(job.ID,
		"created by "+keyActor,
		"claimed by worker:worker-a",
		"cancel_requested by "+keyActor+" (StopPixelExecution)",
		"completed by worker:worker-a (stop)")

	// Cancelled while queued, through the native API.
	queued := mustSubmit(t, s, store.SubmitParams{Tenant: "acme", APIKeyID: &key})
	if _, err := s.RequestCancel(actx, "acme", queued.ID); err != nil {
		t.Fatal(err)
	}
	check(queued.ID, "created by "+keyActor, "cancel_requested by "+keyActor, "cancelled by "+keyActor+" (cancel_requested)")

	// Handed back at shutdown, then claimed again, then lost: the rescuer
	// requeues it (no chunk yet); claimed and lost again after a chunk,
	// the rescuer fails it.
	lost := mustSubmit(t, s, store.SubmitParams{Tenant: "acme"})
	claim := func(owner string) store.Lease {
		t.Helper()
		cs, err := s.Claim(ctx, owner, 1, time.Hour)
		if err != nil || len(cs) != 1 {
			t.Fatalf("Claim = %v, %v", cs, err)
		}
		return cs[0].Lease
	}
	expire := func() {
		t.Helper()
		if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, lost.ID); err != nil {
			t.Fatal(err)
		}
	}
	l = claim("worker-b")
	if err := s.HandBack(ctx, "worker-b", l); err != nil {
		t.Fatal(err)
	}
	claim("worker-c")
	expire()
	rctx := store.WithActor(ctx, store.Actor{Name: "rescuer:worker-r"})
	if _, err := s.RescueExpired(rctx, 10, time.Second); err != nil {
		t.Fatal(err)
	}
	l = claim("worker-d")
	if _, err := s.WriteBatch(ctx, "worker-d", []store.NewChunk{content(l, 0, "a")}, nil); err != nil {
		t.Fatal(err)
	}
	expire()
	if _, err := s.RescueExpired(rctx, 10, time.Second); err != nil {
		t.Fatal(err)
	}
	check(lost.ID,
		"created by tenant:acme",
		"claimed by worker:worker-b",
		"handed_back by worker:worker-b",
		"claimed by worker:worker-c",
		"lease_expired by rescuer:worker-r (lease_expired)",
		"claimed by worker:worker-d",
		"lease_expired by rescuer:worker-r (lease_expired)")
	var to string
	if err := pool.QueryRow(ctx, `SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id DESC LIMIT 1`, lost.ID).Scan(&to); err != nil || to != "failed" {
		t.Errorf("last event's to_status = %q (%v), want failed", to, err)
	}

	// A cancel request for a finished job is recorded too.
	if _, err := s.RequestCancel(actx, "acme", job.ID); err != nil {
		t.Fatal(err)
	}
	if got := eventsOf(t, pool, job.ID); got[len(got)-1] != "cancel_requested by "+keyActor {
		t.Errorf("last event = %q, want a cancel request", got[len(got)-1])
	}
}
