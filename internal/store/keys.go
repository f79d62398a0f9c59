package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// ErrConflict: a row with the same unique key already exists.
var ErrConflict = errors.New("already exists")

// APIKey is an API key record. SecretHash is the SHA-256 of the secret;
// the secret itself is never stored (internal/auth makes and checks them).
type APIKey struct {
	ID         uuid.UUID
	Name       string
	Tenant     string
	AccessKey  string
	SecretHash []byte
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

func keyFromRow(r dbsqlc.ApiKey) APIKey {
	return APIKey{
		ID: r.ID, Name: r.Name, Tenant: r.Tenant, AccessKey: r.AccessKey,
		SecretHash: r.SecretHash, CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt,
	}
}

// NewKey describes a key to store.
type NewKey struct {
	Name       string
	AccessKey  string
	SecretHash []byte
	// Tenant defaults to the new key's own id, so the key sees only its
	// own jobs.
	Tenant string
}

// KeyCreate stores a new API key. It returns ErrConflict if the access key
// is taken.
func (s *Store) KeyCreate(ctx context.Context, k NewKey) (APIKey, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return APIKey{}, fmt.Errorf("new key id: %w", err)
	}
	tenant := k.Tenant
	if tenant == "" {
		tenant = id.String()
	}
	row, err := s.q.KeyInsert(ctx, s.pool, dbsqlc.KeyInsertParams{
		ID: id, Name: k.Name, Tenant: tenant, AccessKey: k.AccessKey, SecretHash: k.SecretHash,
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation {
		return APIKey{}, fmt.Errorf("access key: %w", ErrConflict)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("create key: %w", err)
	}
	return keyFromRow(row), nil
}

// KeyByAccess returns the key with the given access key, revoked or not,
// or ErrNotFound.
func (s *Store) KeyByAccess(ctx context.Context, accessKey string) (APIKey, error) {
	row, err := s.q.KeyGetByAccess(ctx, s.pool, accessKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("get key: %w", err)
	}
	return keyFromRow(row), nil
}

// KeyList returns every key, oldest first.
func (s *Store) KeyList(ctx context.Context) ([]APIKey, error) {
	rows, err := s.q.KeyList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys := make([]APIKey, len(rows))
	for i, r := range rows {
		keys[i] = keyFromRow(r)
	}
	return keys, nil
}

// Revoked is what KeyRevoke did.
type Revoked struct {
	Key APIKey
	// Cancelled are the key's queued jobs, now cancelled.
	Cancelled []uuid.UUID
	// Stopping are the key's running jobs, whose workers were told to
	// stop them (each then ends cancelled).
	Stopping []uuid.UUID
}

// KeyRevoke revokes the key whose access key or id is ref, ends its
// sessions and cancels the jobs it submitted that have not ended: a
// queued job at once (its finish chunk {"finish_reason":"cancelled"}), a
// running one by asking its worker to stop it. All in one transaction,
// recorded in each job's audit trail as a cancel request (reason
// key_revoked) by ctx's Actor (who revoked the key; "cli" if none) and,
// for a queued job, its cancellation by the same actor. A job submitted
// with the key while it is being revoked either is cancelled with the
// others or is refused (ErrKeyRevoked, see JobInsert). It returns
// ErrNotFound when no key matches. Revoking a revoked key is not an
// error, and cancels whatever the key still has running.
func (s *Store) KeyRevoke(ctx context.Context, ref string) (Revoked, error) {
	p := dbsqlc.KeyRevokeParams{Ref: ref}
	if id, err := uuid.Parse(ref); err == nil {
		p.ID = &id
	}
	actor := cmp.Or(ActorFrom(ctx).Name, "cli")
	var out Revoked
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = Revoked{}
		if _, err := s.q.KeyLock(ctx, tx, dbsqlc.KeyLockParams{Ref: p.Ref, ID: p.ID}); err != nil {
			return err
		}
		row, err := s.q.KeyRevoke(ctx, tx, p)
		if err != nil {
			return err
		}
		out.Key = keyFromRow(row)
		if _, err = s.q.SessionDeleteForKey(ctx, tx, &out.Key.ID); err != nil {
			return err
		}
		return s.cancelKeyJobs(ctx, tx, out.Key.ID, actor, &out)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Revoked{}, ErrNotFound
	}
	if err != nil {
		return Revoked{}, fmt.Errorf("revoke key: %w", err)
	}
	return out, nil
}

// cancelKeyJobs cancels the queued jobs of a key being revoked and asks
// the workers of its running ones to stop them, in tx (see KeyRevoke).
func (s *Store) cancelKeyJobs(ctx context.Context, tx pgx.Tx, keyID uuid.UUID, actor string, out *Revoked) error {
	if _, err := s.q.JobEventsCancelRequestedForKey(ctx, tx, dbsqlc.JobEventsCancelRequestedForKeyParams{ApiKeyID: &keyID, Actor: actor}); err != nil {
		return err
	}
	queued, err := s.q.JobLockQueuedForKey(ctx, tx, &keyID)
	if err != nil {
		return err
	}
	if err := s.setAudit(ctx, tx, actor, ""); err != nil {
		return err
	}
	for _, id := range queued {
		if _, err := s.q.ChunkAppendLocked(ctx, tx, dbsqlc.ChunkAppendLockedParams{
			JobID: id, StreamType: "content", Data: `{"finish_reason":"cancelled"}`,
		}); err != nil {
			return err
		}
		if err := s.q.JobCancelQueued(ctx, tx, id); err != nil {
			return err
		}
	}
	out.Cancelled = queued
	if out.Stopping, err = s.q.JobRequestCancelForKey(ctx, tx, &keyID); err != nil {
		return err
	}
	if err := s.notifyIDs(ctx, tx, ChannelCancel, out.Stopping); err != nil {
		return err
	}
	return s.notifyIDs(ctx, tx, ChannelChunks, out.Cancelled)
}

// RevokedKey is a key found revoked by KeysRevokedWithin.
type RevokedKey struct {
	ID        uuid.UUID
	AccessKey string
}

// KeysRevokedWithin returns the keys revoked in the last window, by the
// database's clock.
func (s *Store) KeysRevokedWithin(ctx context.Context, window time.Duration) ([]RevokedKey, error) {
	rows, err := s.q.KeyRevokedWithin(ctx, s.pool, window.Seconds())
	if err != nil {
		return nil, fmt.Errorf("keys revoked within %s: %w", window, err)
	}
	out := make([]RevokedKey, len(rows))
	for i, r := range rows {
		out[i] = RevokedKey{ID: r.ID, AccessKey: r.AccessKey}
	}
	return out, nil
}
