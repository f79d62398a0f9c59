package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Claim is a job a worker has claimed.
type Claim struct {
	Lease
	Tenant          string
	Engine          string
	RoomID          string
	Request         Request
	CancelRequested bool
	// NextSeq is the seq of this attempt's first chunk.
	NextSeq int
}

// Claim claims up to max queued jobs for owner with a lease of ttl.
func (s *Store) Claim(ctx context.Context, owner string, max int, ttl time.Duration) ([]Claim, error) {
	rows, err := s.q.JobClaim(ctx, s.pool, dbsqlc.JobClaimParams{Owner: owner, LeaseSeconds: ttl.Seconds(), Max: int64(max)})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	claims := make([]Claim, 0, len(rows))
	for _, r := range rows {
		c := Claim{
			Lease:           Lease{JobID: r.ID, Attempt: int(r.Attempt)},
			Tenant:          r.Tenant,
			Engine:          r.Engine,
			CancelRequested: r.CancelRequestedAt != nil,
			NextSeq:         int(r.NextSeq),
		}
		if r.RoomID != nil {
			c.RoomID = *r.RoomID
		}
		if err := json.Unmarshal(r.Request, &c.Request); err != nil {
			return nil, fmt.Errorf("decode job %s request: %w", r.ID, err)
		}
		claims = append(claims, c)
	}
	return claims, nil
}

// HeartbeatResult is one lease still held after a heartbeat.
type HeartbeatResult struct {
	JobID           uuid.UUID
	CancelRequested bool
}

// Heartbeat extends the given leases by ttl in one statement and returns
// those still held. A lease missing from the result is lost.
func (s *Store) Heartbeat(ctx context.Context, owner string, ttl time.Duration, leases []Lease) ([]HeartbeatResult, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	p := dbsqlc.JobHeartbeatParams{Owner: owner, LeaseSeconds: ttl.Seconds()}
	p.Ids, p.Attempts = lockOrder(leases)
	rows, err := s.q.JobHeartbeat(ctx, s.pool, p)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	out := make([]HeartbeatResult, len(rows))
	for i, r := range rows {
		out[i] = HeartbeatResult{JobID: r.ID, CancelRequested: r.CancelRequested}
	}
	return out, nil
}

// CancelOutcome says what a cancel request found.
type CancelOutcome int

const (
	// CancelDone: the job was queued and is now cancelled.
	CancelDone CancelOutcome = iota
	// CancelRequested: the job is running; its worker was asked to stop.
	CancelRequested
	// CancelAlreadyFinished: the job had already ended; nothing changed.
	CancelAlreadyFinished
)

// RequestCancel cancels a queued job at once, or asks the worker holding a
// running job to stop (it then writes the "cancelled" finish chunk).
func (s *Store) RequestCancel(ctx context.Context, tenant string, id uuid.UUID) (CancelOutcome, error) {
	var out CancelOutcome
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := s.q.JobCancelQueued(ctx, tx, dbsqlc.JobCancelQueuedParams{ID: id, Tenant: tenant})
		if err == nil {
			out = CancelDone
			return s.notifyIDs(ctx, tx, ChannelChunks, []uuid.UUID{id})
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		status, err := s.q.JobRequestCancel(ctx, tx, dbsqlc.JobRequestCancelParams{ID: id, Tenant: tenant})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if Terminal(status) {
			out = CancelAlreadyFinished
			return nil
		}
		// Queued jobs were handled above, so this one is running (or was
		// claimed since): tell its worker.
		out = CancelRequested
		return s.q.Notify(ctx, tx, dbsqlc.NotifyParams{Channel: ChannelCancel, Payload: id.String()})
	})
	if errors.Is(err, ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return out, nil
}

// Rescued reports what RescueExpired did.
type Rescued struct {
	Requeued []uuid.UUID
	Failed   []uuid.UUID
}

// RescueExpired handles up to max running jobs whose lease expired (their
// worker died or lost the database): a job with no chunk written yet goes
// back to the queue while attempts remain; any other job is failed with an
// error finish chunk, because replaying a model call would duplicate output
// readers have already seen. All in one transaction.
func (s *Store) RescueExpired(ctx context.Context, max int) (Rescued, error) {
	var res Rescued
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := s.q.JobExpiredLock(ctx, tx, int64(max))
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.NextSeq == 0 && r.Attempt < r.MaxAttempts {
				if err := s.q.JobRequeue(ctx, tx, dbsqlc.JobRequeueParams{ID: r.ID, Attempt: r.Attempt}); err != nil {
					return err
				}
				res.Requeued = append(res.Requeued, r.ID)
				continue
			}
			msg := "the worker running this job stopped heartbeating (lease expired)"
			if r.NextSeq == 0 {
				msg = fmt.Sprintf("the job's worker was lost %d times (lease expired); giving up", r.Attempt)
			}
			e, _ := json.Marshal(map[string]string{"message": msg, "type": "lease_expired"})
			if err := s.q.JobFailExpired(ctx, tx, dbsqlc.JobFailExpiredParams{ID: r.ID, Attempt: r.Attempt, Seq: r.NextSeq, Error: e}); err != nil {
				return err
			}
			res.Failed = append(res.Failed, r.ID)
		}
		if len(res.Requeued) > 0 {
			if err := s.q.Notify(ctx, tx, dbsqlc.NotifyParams{Channel: ChannelJobs, Payload: "rescued"}); err != nil {
				return err
			}
		}
		return s.notifyIDs(ctx, tx, ChannelChunks, res.Failed)
	})
	if err != nil {
		return Rescued{}, fmt.Errorf("rescue expired jobs: %w", err)
	}
	return res, nil
}

// Turn is one finished job of a room, for rebuilding history.
type Turn struct {
	JobID     uuid.UUID
	Request   Request
	Status    string
	Content   string
	ToolCalls json.RawMessage
}

// lockOrder returns the leases' job ids and attempts sorted by job id: the
// order in which every statement that locks several jobs rows of running
// jobs (JobHeartbeat, JobLeaseHeld) takes its locks, so that two of them
// never wait for each other in a cycle (a deadlock, which PostgreSQL breaks
// only after deadlock_timeout).
func lockOrder(leases []Lease) ([]uuid.UUID, []int32) {
	sorted := slices.Clone(leases)
	slices.SortFunc(sorted, func(a, b Lease) int {
		if c := bytes.Compare(a.JobID[:], b.JobID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Attempt, b.Attempt)
	})
	ids := make([]uuid.UUID, len(sorted))
	attempts := make([]int32, len(sorted))
	for i, l := range sorted {
		ids[i], attempts[i] = l.JobID, int32(l.Attempt)
	}
	return ids, attempts
}
