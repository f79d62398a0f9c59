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

// Cursor is where one session stands in one job's output on the SEMOSS
// surface, whose clients poll with a job id and no offset. Cursors live in
// PostgreSQL (stream_cursors), so a session's polls may land on any node,
// before or after a restart, and still see every chunk once, in order
// (CursorPoll says exactly when).
type Cursor struct {
	// Next is pixelJobStreaming's acknowledged position: the session has
	// received every chunk before it (see CursorPoll).
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
// changed (Partial and ErrorSent; Next moves only in CursorPoll). Concurrent calls for the same session and job run one after the
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
			PartialSeq: int32(c.Partial), ErrorSent: c.ErrorSent,
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

// PollOptions are what a pixelJobStreaming poll knows beyond the database
// about the session's outstanding page (see CursorPoll).
type PollOptions struct {
	// Written is the token of a page this process wrote completely but
	// may not have recorded yet (CursorSent): it counts as written. 0: none.
	Written int64
	// Unread is the token of a page this process knows the client did not
	// read (it reset the connection), whatever the database says. 0: none.
	Unread int64
	// SendTimeout is how long the page handed out may take to be written
	// before a later poll presumes its writer dead and sends it again.
	SendTimeout time.Duration
}

// Poll verdicts on the session's outstanding page (CursorPage.Verdict).
const (
	// VerdictNone: nothing was outstanding.
	VerdictNone = "none"
	// VerdictAck: the outstanding page's answer was written completely;
	// the cursor moved past it.
	VerdictAck = "ack"
	// VerdictResend: the outstanding page's answer failed, went unread or
	// was never finished; it is read again.
	VerdictResend = "resend"
	// VerdictBusy: another poll is still writing the outstanding page's
	// answer; nothing was read or changed.
	VerdictBusy = "busy"
)

// CursorPage is what CursorPoll found.
type CursorPage struct {
	Snapshot
	// Verdict is what the poll made of the page handed out before
	// (VerdictNone, VerdictAck, VerdictResend or VerdictBusy).
	Verdict string
	// From is where this page starts, the acknowledged position: where
	// to wait from when nothing was new.
	From int
	// Sync is true for a job a synchronous runPixel submitted.
	Sync bool
	// Gen is the page's token when it has chunks: report its answer's
	// fate with it (CursorSent, CursorUnsent).
	Gen int64
	// Busy: the token of the page another poll is still writing, and
	// until when it may (past it, a poll sends that page again).
	BusyGen   int64
	BusyUntil time.Time
}

// CursorPoll is a pixelJobStreaming poll of the session's cursor on the
// job: it hands out the chunks the session has not acknowledged (up to
// limit) and the job's status, from one snapshot, creating the cursor on
// the session's first poll. ErrNotFound: an unknown job or another
// tenant's.
//
// The cursor does not move when a page is handed out. The page stays
// outstanding until the session's next poll, which acknowledges it only if
// its answer was written to the connection completely (CursorSent, or
// opts.Written); otherwise that poll gets the same chunks again. So a page
// whose answer failed or never finished is delivered again, and a session
// that polls one poll at a time gets every chunk once, in order, as long as
// the answers written completely reach it. A poll that finds another poll
// of the session still writing its page hands out nothing (VerdictBusy):
// the caller waits for that answer's fate and polls again, so overlapping
// polls of one session never get the same chunks twice nor skip any.
//
// A session that has a cursor (every poll but its first) costs one
// statement (CursorAdvance), which locks the cursor row: run it under a
// deadline.
func (s *Store) CursorPoll(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, limit int, opts PollOptions) (CursorPage, error) {
	page, found, err := s.cursorAdvance(ctx, tenant, jobID, sessionID, limit, opts)
	if err == nil && found {
		s.NoteAccess(ctx, tenant, jobID, AccessChunks)
	}
	if err != nil || found {
		return page, err
	}
	// The session's first poll of the job: create its cursor (nothing
	// when a concurrent poll did, or the job is not the tenant's).
	if _, err := s.q.CursorCreate(ctx, s.pool, dbsqlc.CursorCreateParams{JobID: jobID, SessionID: sessionID, Tenant: tenant}); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return CursorPage{}, fmt.Errorf("create cursor on job %s: %w", jobID, err)
	}
	page, found, err = s.cursorAdvance(ctx, tenant, jobID, sessionID, limit, opts)
	if err == nil && !found {
		return CursorPage{}, ErrNotFound
	}
	if err == nil {
		s.NoteAccess(ctx, tenant, jobID, AccessChunks)
	}
	return page, err
}

func (s *Store) cursorAdvance(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, limit int, opts PollOptions) (CursorPage, bool, error) {
	adv, err := s.q.CursorAdvance(ctx, s.pool, dbsqlc.CursorAdvanceParams{
		JobID: jobID, SessionID: sessionID, Tenant: tenant,
		UnreadGen: opts.Unread, WrittenGen: opts.Written,
		Max: int64(limit) + 1, PageSize: int64(limit),
		SendTimeout: opts.SendTimeout.Seconds(),
	})
	if err != nil {
		return CursorPage{}, false, fmt.Errorf("cursor on job %s: %w", jobID, err)
	}
	if len(adv) == 0 {
		return CursorPage{}, false, nil
	}
	rows := make([]dbsqlc.ChunkReadRow, len(adv))
	for i, r := range adv {
		rows[i] = dbsqlc.ChunkReadRow{Status: r.Status, FinishReason: r.FinishReason, Seq: r.Seq, StreamType: r.StreamType, Data: r.Data, CreatedAt: r.CreatedAt}
	}
	first := adv[0]
	page := CursorPage{Snapshot: snapshotOf(rows, limit), Verdict: first.Verdict, From: int(first.FromSeq), Sync: first.Sync}
	switch {
	case first.Verdict == VerdictBusy:
		page.BusyGen, page.BusyUntil = first.PrevGen, first.PrevDeadline
	case len(page.Chunks) > 0:
		page.Gen = first.PrevGen + 1
	}
	return page, true, nil
}

// CursorSent records that the answer carrying the page with token gen was
// written to the connection completely, so that the session's next poll
// acknowledges it. It reports whether the page was still outstanding and
// unsettled (false: a later poll already sent it again, or it failed).
func (s *Store) CursorSent(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, gen int64) (bool, error) {
	n, err := s.q.CursorSent(ctx, s.pool, dbsqlc.CursorSentParams{JobID: jobID, SessionID: sessionID, Tenant: tenant, Gen: gen})
	if err != nil {
		return false, fmt.Errorf("record page %d of job %s sent: %w", gen, jobID, err)
	}
	return n > 0, nil
}

// CursorUnsent records that the answer carrying the page with token gen
// did not reach the client, so that the session's next poll gets the page
// again. It overrides a CursorSent recorded first. It reports whether the
// page was still outstanding.
func (s *Store) CursorUnsent(ctx context.Context, tenant string, jobID, sessionID uuid.UUID, gen int64) (bool, error) {
	n, err := s.q.CursorUnsent(ctx, s.pool, dbsqlc.CursorUnsentParams{JobID: jobID, SessionID: sessionID, Tenant: tenant, Gen: gen})
	if err != nil {
		return false, fmt.Errorf("record page %d of job %s unsent: %w", gen, jobID, err)
	}
	return n > 0, nil
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
