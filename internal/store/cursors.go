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

// Cursor is where one session stands in one job's output on the SEMOSS
// surface, whose clients poll with a job id and no offset. Cursors live in
// PostgreSQL (stream_cursors), so a session's polls may land on any node,
// before or after a restart, and still see every chunk exactly once.
type Cursor struct {
	// Next is the seq of the next chunk pixelJobStreaming hands out.
	Next int
	// Partial: /engine/partial reported the text of chunks before it.
	Partial int
	// ErrorSent: /engine/error reported the job's error.
	ErrorSent bool
}

// CursorGet returns a session's cursor on a tenant's job without locking
// it: a hint of where to wait from. The zero Cursor when the session has
// not read the job yet; ErrNotFound for an unknown job or another tenant's.
func (s *Store) CursorGet(ctx context.Context, tenant string, jobID, sessionID uuid.UUID) (Cursor, error) {
	row, err := s.q.CursorGet(ctx, s.pool, dbsqlc.CursorGetParams{SessionID: sessionID, JobID: jobID, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, ErrNotFound
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("get cursor on job %s: %w", jobID, err)
	}
	return Cursor{Next: int(row.NextSeq), Partial: int(row.PartialSeq), ErrorSent: row.ErrorSent}, nil
}

// withCursor runs fn on the session's cursor, locked (and created if
// needed) in one short transaction, and stores the cursor fn leaves if it
// changed. Concurrent calls for the same session and job run one after the
// other, each seeing the cursor the previous one committed; other sessions
// never wait. Never call it across a long wait: it holds a connection.
func (s *Store) withCursor(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, fn func(tx pgx.Tx, c *Cursor) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := s.lockCursor(ctx, tx, tenant, jobID, sessionID)
		if err != nil {
			return err
		}
		c := before
		if err := fn(tx, &c); err != nil {
			return err
		}
		if c == before {
			return nil
		}
		return s.q.CursorUpdate(ctx, tx, dbsqlc.CursorUpdateParams{
			JobID: jobID, SessionID: sessionID,
			NextSeq: int32(c.Next), PartialSeq: int32(c.Partial), ErrorSent: c.ErrorSent,
		})
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("cursor on job %s: %w", jobID, err)
	}
	return nil
}

// lockCursor locks the session's cursor on the job, creating it first if
// needed. The common case, a cursor that exists, is one statement and no
// write.
func (s *Store) lockCursor(ctx context.Context, tx pgx.Tx, tenant string, jobID, sessionID uuid.UUID) (Cursor, error) {
	p := dbsqlc.CursorLockParams{JobID: jobID, SessionID: sessionID, Tenant: tenant}
	row, err := s.q.CursorLock(ctx, tx, p)
	if err == nil {
		return Cursor{Next: int(row.NextSeq), Partial: int(row.PartialSeq), ErrorSent: row.ErrorSent}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, err
	}
	created, err := s.q.CursorCreate(ctx, tx, dbsqlc.CursorCreateParams{JobID: jobID, SessionID: sessionID, Tenant: tenant})
	if err == nil {
		return Cursor{Next: int(created.NextSeq), Partial: int(created.PartialSeq), ErrorSent: created.ErrorSent}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, err
	}
	// A concurrent poll of the same session created it first.
	row, err = s.q.CursorLock(ctx, tx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, ErrNotFound
	}
	if err != nil {
		return Cursor{}, err
	}
	return Cursor{Next: int(row.NextSeq), Partial: int(row.PartialSeq), ErrorSent: row.ErrorSent}, nil
}

// CursorRead hands the session the job's chunks it has not received yet (up
// to limit) and advances its cursor past them, atomically: however many
// polls of one session run at once, on however many nodes, each chunk goes
// to exactly one of them. The status and chunks come from one statement
// (ChunkRead), so a terminal status never arrives ahead of a chunk. It
// returns ErrNotFound for an unknown job or another tenant's.
func (s *Store) CursorRead(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, limit int) (Snapshot, error) {
	// A session that has a cursor (every poll but its first): one
	// statement.
	page, err := s.CursorPoll(ctx, tenant, jobID, sessionID, limit)
	if err != nil || page.Found {
		return page.Snapshot, err
	}
	// No cursor yet, or not the tenant's job: create it in a transaction.
	var snap Snapshot
	err = s.withCursor(ctx, tenant, jobID, sessionID, func(tx pgx.Tx, c *Cursor) error {
		rows, err := s.q.ChunkRead(ctx, tx, dbsqlc.ChunkReadParams{JobID: jobID, Tenant: tenant, FromSeq: int32(c.Next), Max: int64(limit) + 1})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return ErrNotFound
		}
		snap = snapshotOf(rows, limit)
		if n := len(snap.Chunks); n > 0 {
			c.Next = snap.Chunks[n-1].Seq + 1
		}
		return nil
	})
	if err == nil {
		s.NoteAccess(ctx, tenant, jobID, AccessChunks)
	}
	return snap, err
}

// CursorPage is what CursorPoll found.
type CursorPage struct {
	Snapshot
	// Found is false when the session has no cursor on the job yet, or
	// the job is not the tenant's: then nothing was read.
	Found bool
	// From is where the cursor stood before the poll: where to wait from
	// when nothing was new.
	From int
	// Sync is true for a job a synchronous runPixel submitted.
	Sync bool
}

// CursorPoll is CursorRead for a session that already has a cursor on the
// job, in ONE round trip (CursorAdvance): the chunks past the cursor (up to
// limit, the cursor advanced past them), the job's status, where the
// cursor stood and whether the job is synchronous. A SEMOSS poll that
// finds data needs nothing else. Without a cursor it reads nothing and
// returns Found false; CursorRead then creates one.
func (s *Store) CursorPoll(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, limit int) (CursorPage, error) {
	adv, err := s.q.CursorAdvance(ctx, s.pool, dbsqlc.CursorAdvanceParams{
		JobID: jobID, SessionID: sessionID, Tenant: tenant, Max: int64(limit) + 1, PageSize: int64(limit),
	})
	if err != nil {
		return CursorPage{}, fmt.Errorf("cursor on job %s: %w", jobID, err)
	}
	if len(adv) == 0 {
		return CursorPage{}, nil
	}
	rows := make([]dbsqlc.ChunkReadRow, len(adv))
	for i, r := range adv {
		rows[i] = dbsqlc.ChunkReadRow{Status: r.Status, FinishReason: r.FinishReason, Seq: r.Seq, StreamType: r.StreamType, Data: r.Data, CreatedAt: r.CreatedAt}
	}
	s.NoteAccess(ctx, tenant, jobID, AccessChunks)
	return CursorPage{Snapshot: snapshotOf(rows, limit), Found: true, From: int(adv[0].FromSeq), Sync: adv[0].Sync}, nil
}

// snapshotOf turns ChunkRead rows (read with max = limit+1) into a Snapshot.
func snapshotOf(rows []dbsqlc.ChunkReadRow, limit int) Snapshot {
	snap := Snapshot{Status: rows[0].Status}
	if rows[0].FinishReason != nil {
		snap.FinishReason = *rows[0].FinishReason
	}
	for _, r := range rows {
		if r.Seq < 0 {
			break
		}
		if len(snap.Chunks) == limit {
			snap.More = true
			break
		}
		snap.Chunks = append(snap.Chunks, Chunk{Seq: int(r.Seq), StreamType: r.StreamType, Data: r.Data, CreatedAt: r.CreatedAt})
	}
	return snap
}

// Partial is /engine/partial's answer: the job's status, all its text so
// far, and the text the session had not been given yet.
type Partial struct {
	Status string
	Total  string
	New    string
	// Fresh reports whether chunks arrived since the session's previous
	// call (New may still be "" when they held no text).
	Fresh bool
}

// PartialRead returns the job's text so far and the part of it new to the
// session, and marks it given, atomically (see CursorRead). Its cursor is
// separate from CursorRead's: a session may use both endpoints.
func (s *Store) PartialRead(ctx context.Context, tenant string, jobID, sessionID uuid.UUID) (Partial, error) {
	var p Partial
	err := s.withCursor(ctx, tenant, jobID, sessionID, func(tx pgx.Tx, c *Cursor) error {
		row, err := s.q.PartialRead(ctx, tx, dbsqlc.PartialReadParams{FromSeq: int32(c.Partial), JobID: jobID, Tenant: tenant})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		p = Partial{Status: row.Status, Total: row.Total, New: row.NewText, Fresh: int(row.EndSeq) > c.Partial}
		c.Partial = max(c.Partial, int(row.EndSeq))
		return nil
	})
	if err == nil {
		s.NoteAccess(ctx, tenant, jobID, AccessPartial)
	}
	return p, err
}

// CursorTakeError returns the job's status and, the first time a session
// asks after the job failed, its error (later calls get nil): SEMOSS's
// /engine/error reports each error line once.
func (s *Store) CursorTakeError(ctx context.Context, tenant string, jobID, sessionID uuid.UUID) (status string, jobErr json.RawMessage, err error) {
	err = s.withCursor(ctx, tenant, jobID, sessionID, func(tx pgx.Tx, c *Cursor) error {
		row, err := s.q.JobGet(ctx, tx, dbsqlc.JobGetParams{ID: jobID, Tenant: tenant})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		status = row.Status
		if row.Status == StatusFailed && !c.ErrorSent {
			jobErr, c.ErrorSent = row.Error, true
		}
		return nil
	})
	return status, jobErr, err
}
