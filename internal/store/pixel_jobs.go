package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// PixelJob is what a SEMOSS client submitted a job as.
type PixelJob struct {
	// InsightID is the insight (SEMOSS's per-session workspace) it ran in.
	InsightID string
	// Expression is the LLM pixel's own text, reported as pixelExpression.
	Expression string
	// Sync is set for jobs of the synchronous runPixel, whose completed
	// status reads "Complete" rather than "ProgressComplete".
	Sync bool
}

// PixelJobCreate records a job's pixel metadata. The job id is returned to
// the client only after this succeeds, so a job whose metadata is missing
// (the process died in between) is one no client knows about.
func (s *Store) PixelJobCreate(ctx context.Context, jobID uuid.UUID, p PixelJob) error {
	err := s.q.PixelJobInsert(ctx, s.pool, dbsqlc.PixelJobInsertParams{
		JobID: jobID, InsightID: p.InsightID, Expression: p.Expression, Sync: p.Sync,
	})
	if err != nil {
		return fmt.Errorf("record pixel job %s: %w", jobID, err)
	}
	return nil
}

// PixelJobGet returns a tenant's job's pixel metadata: ErrNotFound for a job
// that has none (submitted on the native API), is unknown, or is another
// tenant's.
func (s *Store) PixelJobGet(ctx context.Context, tenant string, jobID uuid.UUID) (PixelJob, error) {
	row, err := s.q.PixelJobGet(ctx, s.pool, dbsqlc.PixelJobGetParams{JobID: jobID, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return PixelJob{}, ErrNotFound
	}
	if err != nil {
		return PixelJob{}, fmt.Errorf("get pixel job %s: %w", jobID, err)
	}
	return PixelJob{InsightID: row.InsightID, Expression: row.Expression, Sync: row.Sync}, nil
}

// PixelResult is a job's outcome as /engine/result reports it.
type PixelResult struct {
	JobID        uuid.UUID
	Status       string
	FinishReason string
	Error        json.RawMessage
	Usage        json.RawMessage
	RoomID       string
	// RunMillis is the time from submission to finish (0 while running).
	RunMillis int64
	Content   string
	// ToolCalls is the assembled tool calls, a JSON list (see
	// job_transcript).
	ToolCalls json.RawMessage
	// Pixel is nil for a job submitted on the native API.
	Pixel *PixelJob
}

// PixelResult reads a tenant's job, its assembled transcript and its pixel
// metadata in one statement; ErrNotFound for an unknown job or another
// tenant's.
func (s *Store) PixelResult(ctx context.Context, tenant string, jobID uuid.UUID) (PixelResult, error) {
	row, err := s.q.PixelResult(ctx, s.pool, dbsqlc.PixelResultParams{JobID: jobID, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return PixelResult{}, ErrNotFound
	}
	if err != nil {
		return PixelResult{}, fmt.Errorf("result of job %s: %w", jobID, err)
	}
	r := PixelResult{
		JobID: row.ID, Status: row.Status, FinishReason: deref(row.FinishReason),
		Error: row.Error, Usage: row.Usage, RoomID: deref(row.RoomID), RunMillis: deref(row.RunMs),
		Content: deref(row.Content), ToolCalls: row.ToolCalls,
	}
	if deref(row.HasPixel) {
		r.Pixel = &PixelJob{InsightID: deref(row.InsightID), Expression: deref(row.Expression), Sync: deref(row.Sync)}
	}
	s.NoteAccess(ctx, tenant, jobID, AccessResult)
	return r, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
