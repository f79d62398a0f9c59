package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// ResponseRecord is what the OpenAI Responses surface keeps about a job
// submitted through it, with the job's status.
type ResponseRecord struct {
	JobID        uuid.UUID
	Status       string
	FinishReason string
	CreatedAt    time.Time
	// Meta is the Response object's request fields (respevent.Meta).
	Meta json.RawMessage
}

// SubmitResponse stores a queued job together with its Responses record
// (meta: the request fields the Response object echoes; input: the input
// items), in one transaction: a response never exists without its job,
// nor a job submitted as a response without its record.
func (s *Store) SubmitResponse(ctx context.Context, p SubmitParams, meta, input json.RawMessage) (Job, error) {
	return s.submit(ctx, p, func(tx pgx.Tx, id uuid.UUID) error {
		return s.q.ResponseInsert(ctx, tx, dbsqlc.ResponseInsertParams{JobID: id, Meta: pgJSON(meta), Input: pgJSON(input)})
	})
}

// GetResponse returns a tenant's response record. A deleted response, and
// another tenant's, are ErrNotFound.
func (s *Store) GetResponse(ctx context.Context, tenant string, id uuid.UUID) (ResponseRecord, error) {
	row, err := s.q.ResponseGet(ctx, s.pool, dbsqlc.ResponseGetParams{ID: id, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return ResponseRecord{}, ErrNotFound
	}
	if err != nil {
		return ResponseRecord{}, fmt.Errorf("get response %s: %w", id, err)
	}
	rec := ResponseRecord{JobID: id, Status: row.Status, CreatedAt: row.CreatedAt, Meta: row.Meta}
	if row.FinishReason != nil {
		rec.FinishReason = *row.FinishReason
	}
	s.NoteAccess(ctx, tenant, id, AccessResponse)
	return rec, nil
}

// ResponseInput returns a tenant's response's input items (a JSON array).
func (s *Store) ResponseInput(ctx context.Context, tenant string, id uuid.UUID) (json.RawMessage, error) {
	in, err := s.q.ResponseInput(ctx, s.pool, dbsqlc.ResponseInputParams{ID: id, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get response %s input: %w", id, err)
	}
	s.NoteAccess(ctx, tenant, id, AccessInput)
	return in, nil
}

// DeleteResponse hides a tenant's response from the Responses surface. The
// job and its chunks stay (chunks are append-only; retention removes them
// with the job). ErrNotFound if there is no such response, or it was
// deleted already.
func (s *Store) DeleteResponse(ctx context.Context, tenant string, id uuid.UUID) error {
	_, err := s.q.ResponseDelete(ctx, s.pool, dbsqlc.ResponseDeleteParams{ID: id, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete response %s: %w", id, err)
	}
	return nil
}
