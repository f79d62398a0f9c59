package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hashOf := func() []byte { h := sha256.Sum256([]byte(uuid.NewString())); return h[:] }

	t.Run("CreateTouchDelete", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		k := newKey(t, s, "alice", "")
		h := hashOf()
		created, err := s.SessionCreate(ctx, h, &k.ID, k.Name, k.Tenant, time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.SessionTouch(ctx, h, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != created.ID || *got.APIKeyID != k.ID || got.Tenant != k.Tenant || got.KeyName != "alice" {
			t.Fatalf("touched session %+v does not match %+v", got, created)
		}
		if !got.ExpiresAt.After(created.ExpiresAt.Add(50 * time.Minute)) {
			t.Errorf("expiry did not slide: %s -> %s", created.ExpiresAt, got.ExpiresAt)
		}
		if err := s.SessionDelete(ctx, h); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionTouch(ctx, h, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted session: %v, want ErrNotFound", err)
		}
	})

	t.Run("Anonymous", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		h := hashOf()
		if _, err := s.SessionCreate(ctx, h, nil, "", "dev", time.Minute, 100); err != nil {
			t.Fatal(err)
		}
		got, err := s.SessionTouch(ctx, h, time.Minute)
		if err != nil || got.APIKeyID != nil || got.Tenant != "dev" || got.KeyName != "" {
			t.Fatalf("anonymous session: %+v, %v", got, err)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		h := hashOf()
		if _, err := s.SessionCreate(ctx, h, nil, "", "dev", -time.Second, 100); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionTouch(ctx, h, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: %v, want ErrNotFound", err)
		}
		// The next session created sweeps it away.
		if _, err := s.SessionCreate(ctx, hashOf(), nil, "", "dev", time.Hour, 100); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := dbtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM sessions WHERE token_hash = $1`, h).Scan(&n); err != nil || n != 0 {
			t.Fatalf("expired session rows left: %d, %v", n, err)
		}
	})

	// Logging in again and again (no cookie kept) ends the least
	// recently used sessions beyond the cap, per key and, for anonymous
	// sessions, per tenant; other keys' sessions are untouched.
	t.Run("CappedPerKey", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		alice, bob := newKey(t, s, "alice", ""), newKey(t, s, "bob", "")
		bobs := hashOf()
		if _, err := s.SessionCreate(ctx, bobs, &bob.ID, bob.Name, bob.Tenant, time.Hour, 3); err != nil {
			t.Fatal(err)
		}
		anonTenant := "anon-" + uuid.NewString()
		var hashes, anon [][]byte
		for range 10 {
			h := hashOf()
			if _, err := s.SessionCreate(ctx, h, &alice.ID, alice.Name, alice.Tenant, time.Hour, 3); err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, h)
			a := hashOf()
			if _, err := s.SessionCreate(ctx, a, nil, "", anonTenant, time.Hour, 3); err != nil {
				t.Fatal(err)
			}
			anon = append(anon, a)
		}
		for _, set := range []struct {
			name   string
			hashes [][]byte
			where  string
			arg    any
		}{
			{"alice", hashes, "api_key_id = $1", alice.ID},
			{"anonymous", anon, "api_key_id IS NULL AND tenant = $1", anonTenant},
		} {
			var n int
			if err := dbtest.Pool(t).QueryRow(ctx, "SELECT count(*) FROM sessions WHERE "+set.where, set.arg).Scan(&n); err != nil || n != 3 {
				t.Fatalf("%s has %d sessions (%v), want 3", set.name, n, err)
			}
			if _, err := s.SessionTouch(ctx, set.hashes[0], time.Hour); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s's oldest session: %v, want ErrNotFound", set.name, err)
			}
			if _, err := s.SessionTouch(ctx, set.hashes[9], time.Hour); err != nil {
				t.Errorf("%s's newest session: %v", set.name, err)
			}
		}
		if _, err := s.SessionTouch(ctx, bobs, time.Hour); err != nil {
			t.Errorf("bob's session: %v", err)
		}
	})
}
