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

// Record is everything stored about one job, read in one snapshot: what
// an export carries.
type Record struct {
	Job    Job
	Chunks []StoredChunk
	Events []Event
}

// StoredChunk is a chunk exactly as stored: Text is its data's text,
// byte for byte what the chain hashed.
type StoredChunk struct {
	Seq        int
	StreamType string
	Text       string
	Hash       []byte
	CreatedAt  time.Time
}

// Event is one entry of a job's audit trail (job_events; see
// migrations/00006_audit.sql for the events and actors).
type Event struct {
	ID         int64
	Event      string
	Actor      string
	FromStatus *string
	ToStatus   *string
	Attempt    *int
	LeaseOwner *string
	Reason     *string
	Detail     json.RawMessage
	DBRole     string
	At         time.Time
}

// Record reads a job's record, of any tenant (the CLI's export).
func (s *Store) Record(ctx context.Context, id uuid.UUID) (Record, error) {
	var rec Record
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		row, err := s.q.JobGetAny(ctx, tx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if rec.Job, err = jobFromRow(row); err != nil {
			return err
		}
		chunks, err := s.q.ChunkChainList(ctx, tx, id)
		if err != nil {
			return err
		}
		rec.Chunks = make([]StoredChunk, len(chunks))
		for i, c := range chunks {
			rec.Chunks[i] = StoredChunk{Seq: int(c.Seq), StreamType: c.StreamType, Text: c.Data, Hash: c.Hash, CreatedAt: c.CreatedAt}
		}
		events, err := s.q.JobEventList(ctx, tx, id)
		if err != nil {
			return err
		}
		rec.Events = eventsFromRows(events)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("read job %s record: %w", id, err)
	}
	return rec, nil
}

// Records calls fn with the record of every job f selects, in creation
// order.
func (s *Store) Records(ctx context.Context, f JobFilter, fn func(Record) error) error {
	return s.pageIDs(ctx, f, func(id uuid.UUID) error {
		rec, err := s.Record(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil // removed since it was listed
		}
		if err != nil {
			return err
		}
		return fn(rec)
	})
}

// Events returns a page of a job's audit trail, oldest first: up to limit
// events after the event with id after (0: from the first), for the job's
// own tenant only (another tenant's job is ErrNotFound, as everywhere).
func (s *Store) Events(ctx context.Context, tenant string, id uuid.UUID, after int64, limit int) ([]Event, error) {
	var out []Event
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := s.q.JobGet(ctx, tx, dbsqlc.JobGetParams{ID: id, Tenant: tenant}); errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		rows, err := s.q.JobEventPage(ctx, tx, dbsqlc.JobEventPageParams{JobID: id, AfterID: after, Max: int64(limit)})
		if err != nil {
			return err
		}
		list := make([]dbsqlc.JobEventListRow, len(rows))
		for i, r := range rows {
			list[i] = dbsqlc.JobEventListRow(r)
		}
		out = eventsFromRows(list)
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read job %s events: %w", id, err)
	}
	s.NoteAccess(ctx, tenant, id, AccessAudit)
	return out, nil
}

func eventsFromRows(rows []dbsqlc.JobEventListRow) []Event {
	out := make([]Event, len(rows))
	for i, e := range rows {
		out[i] = Event{
			ID: e.ID, Event: e.Event, Actor: e.Actor, FromStatus: e.FromStatus, ToStatus: e.ToStatus,
			LeaseOwner: e.LeaseOwner, Reason: e.Reason, Detail: e.Detail, DBRole: e.DbRole, At: e.At,
		}
		if e.Attempt != nil {
			n := int(*e.Attempt)
			out[i].Attempt = &n
		}
	}
	return out
}
