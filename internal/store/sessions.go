package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Session is a SEMOSS session (the JSESSIONID cookie). Sessions live in
// PostgreSQL so that any node serves any session. The cookie's token is
// known only to the client: the store sees its hash.
type Session struct {
	ID uuid.UUID
	// APIKeyID is nil for an anonymous (dev mode) session.
	APIKeyID *uuid.UUID
	Tenant   string
	// KeyName is the name of the session's key, "" for anonymous ones.
	KeyName   string
	ExpiresAt time.Time
}

// expiredBatch is how many expired sessions one SessionCreate removes.
const expiredBatch = 100

// SessionCreate stores a session whose token hashes to tokenHash, expiring
// after ttl without use. It keeps at most keep sessions per key (per
// tenant for anonymous ones), ending the least recently used beyond them,
// and removes a batch of expired sessions: the table's size follows the
// live clients, and no client can grow it by logging in again and again.
func (s *Store) SessionCreate(ctx context.Context, tokenHash []byte, keyID *uuid.UUID, keyName, tenant string, ttl time.Duration, keep int) (Session, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Session{}, fmt.Errorf("new session id: %w", err)
	}
	row, err := s.q.SessionInsert(ctx, s.pool, dbsqlc.SessionInsertParams{
		ID: id, TokenHash: tokenHash, ApiKeyID: keyID, Tenant: tenant, TtlSeconds: ttl.Seconds(),
	})
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	// Expired sessions go first, so that the cap counts live ones: a
	// login never leaves fewer than keep live sessions behind an expired
	// one the trim kept.
	if _, err := s.q.SessionDeleteExpired(ctx, s.pool, expiredBatch); err != nil {
		return Session{}, fmt.Errorf("delete expired sessions: %w", err)
	}
	n := int32(max(keep, 1))
	if keyID != nil {
		_, err = s.q.SessionTrimForKey(ctx, s.pool, dbsqlc.SessionTrimForKeyParams{ApiKeyID: keyID, Keep: n})
	} else {
		_, err = s.q.SessionTrimAnonymous(ctx, s.pool, dbsqlc.SessionTrimAnonymousParams{Tenant: tenant, Keep: n})
	}
	if err != nil {
		return Session{}, fmt.Errorf("trim sessions: %w", err)
	}
	return Session{ID: row.ID, APIKeyID: keyID, Tenant: tenant, KeyName: keyName, ExpiresAt: row.ExpiresAt}, nil
}

// SessionTouch returns the live session whose token hashes to tokenHash
// and slides its expiry to ttl from now. A session that expired, or whose
// key was revoked, gives ErrNotFound.
func (s *Store) SessionTouch(ctx context.Context, tokenHash []byte, ttl time.Duration) (Session, error) {
	row, err := s.q.SessionTouch(ctx, s.pool, dbsqlc.SessionTouchParams{TokenHash: tokenHash, TtlSeconds: ttl.Seconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("touch session: %w", err)
	}
	return Session{ID: row.ID, APIKeyID: row.ApiKeyID, Tenant: row.Tenant, KeyName: row.KeyName, ExpiresAt: row.ExpiresAt}, nil
}

// SessionDelete ends the session whose token hashes to tokenHash (logout).
// Its stream cursors go with it. Ending an unknown session is not an error.
func (s *Store) SessionDelete(ctx context.Context, tokenHash []byte) error {
	if err := s.q.SessionDelete(ctx, s.pool, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
