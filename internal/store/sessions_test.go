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
		created, err := s.SessionCreate(ctx, h, &k.ID, k.Name, k.Tenant, time.Minute)
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
		if _, err := s.SessionCreate(ctx, h, nil, "", "dev", time.Minute); err != nil {
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
		if _, err := s.SessionCreate(ctx, h, nil, "", "dev", -time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionTouch(ctx, h, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: %v, want ErrNotFound", err)
		}
		// The next session created sweeps it away.
		if _, err := s.SessionCreate(ctx, hashOf(), nil, "", "dev", time.Hour); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := dbtest.Pool(t).QueryRow(ctx, `SELECT count(*) FROM sessions WHERE token_hash = $1`, h).Scan(&n); err != nil || n != 0 {
			t.Fatalf("expired session rows left: %d, %v", n, err)
		}
	})
}
