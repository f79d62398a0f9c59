package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// ErrNotErasable: the job cannot be erased now. The error wrapping it says
// why: it is held, has not ended, was already erased, or its chain does
// not verify (erasing it would destroy the evidence of what changed).
var ErrNotErasable = errors.New("not erasable")

// sqlstateNoData is what jobstream_erase raises for a job that does not exist.
const sqlstateNoData = "P0002"

// Erase erases an ended, unheld job's content (its request text, its
// chunks' data, a Responses API input, a SEMOSS expression) and keeps its
// ids, hashes and seal, recording actor and reason, through the SECURITY
// DEFINER function jobstream_erase (migrations/00051_erase.sql), which
// only the database's owner may execute (jobstream erase): the server's
// role cannot. The same transaction writes the job's erased event and the
// log's erased leaf. Returns when the job was erased, by the database's
// clock. ErrNotFound: no such job; ErrNotErasable (wrapped with the
// database's reason); *UnstorableError: reason or actor cannot be stored.
func (s *Store) Erase(ctx context.Context, id uuid.UUID, reason, actor string) (time.Time, error) {
	if err := checkHold([2]string{"reason", reason}, [2]string{"actor", actor}); err != nil {
		return time.Time{}, err
	}
	if reason == "" || actor == "" {
		return time.Time{}, errors.New("erase: a reason and an actor are required")
	}
	at, err := s.q.JobErase(ctx, s.pool, dbsqlc.JobEraseParams{ID: id, Reason: reason, Actor: actor})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateNoData:
		return time.Time{}, ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateRetained:
		return time.Time{}, fmt.Errorf("%w: %s", ErrNotErasable, pgErr.Message)
	case err != nil:
		return time.Time{}, fmt.Errorf("erase job %s: %w", id, err)
	}
	return at, nil
}
