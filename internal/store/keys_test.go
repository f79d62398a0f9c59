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

func newKey(t *testing.T, s *store.Store, name, tenant string) store.APIKey {
	t.Helper()
	sum := sha256.Sum256([]byte("secret of " + name))
	k, err := s.KeyCreate(context.Background(), store.NewKey{Name: name, Tenant: tenant, AccessKey: "ak_" + uuid.NewString(), SecretHash: sum[:]})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return k
}

func TestKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CreateAndFind", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		k := newKey(t, s, "alice", "")
		if k.Tenant != k.ID.String() {
			t.Errorf("default tenant = %q, want the key's own id %s", k.Tenant, k.ID)
		}
		got, err := s.KeyByAccess(ctx, k.AccessKey)
		if err != nil || got.ID != k.ID || got.Name != "alice" || len(got.SecretHash) != 32 || got.RevokedAt != nil {
			t.Fatalf("KeyByAccess = %+v, %v", got, err)
		}
		if _, err := s.KeyByAccess(ctx, "ak_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown access key: %v, want ErrNotFound", err)
		}
		shared := newKey(t, s, "team", "team-tenant")
		if shared.Tenant != "team-tenant" {
			t.Errorf("explicit tenant = %q", shared.Tenant)
		}
	})

	t.Run("DuplicateAccessKey", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		k := newKey(t, s, "a", "")
		_, err := s.KeyCreate(ctx, store.NewKey{Name: "b", AccessKey: k.AccessKey, SecretHash: k.SecretHash})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate access key: %v, want ErrConflict", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		a, b := newKey(t, s, "first", ""), newKey(t, s, "second", "")
		keys, err := s.KeyList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ia, ib := -1, -1
		for i, k := range keys {
			switch k.ID {
			case a.ID:
				ia = i
			case b.ID:
				ib = i
			}
		}
		if ia < 0 || ib < 0 || ia > ib {
			t.Fatalf("list positions of the two keys: %d, %d; want both, oldest first", ia, ib)
		}
	})

	t.Run("RevokeByAccessKeyOrID", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		for _, byID := range []bool{false, true} {
			k := newKey(t, s, "r", "")
			hash := sha256.Sum256([]byte(uuid.NewString()))
			if _, err := s.SessionCreate(ctx, hash[:], &k.ID, k.Name, k.Tenant, time.Hour, 100); err != nil {
				t.Fatal(err)
			}
			ref := k.AccessKey
			if byID {
				ref = k.ID.String()
			}
			res, err := s.KeyRevoke(ctx, ref)
			got := res.Key
			if err != nil || got.ID != k.ID || got.RevokedAt == nil {
				t.Fatalf("revoke by %q: %+v, %v", ref, got, err)
			}
			if _, err := s.SessionTouch(ctx, hash[:], time.Hour); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("session of a revoked key: %v, want ErrNotFound", err)
			}
			again, err := s.KeyRevoke(ctx, ref)
			if err != nil || !again.Key.RevokedAt.Equal(*got.RevokedAt) {
				t.Errorf("revoking twice: %+v, %v; want the first revocation time kept", again, err)
			}
		}
		if _, err := s.KeyRevoke(ctx, "ak_nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoke unknown: %v, want ErrNotFound", err)
		}
	})
}
