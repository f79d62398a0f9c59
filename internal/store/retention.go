package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// ErrRetained: the job cannot be held because retention is already
// removing it.
var ErrRetained = errors.New("being removed by retention")

// PartitionsEnsure creates the job_chunks day partitions for days UTC days
// from the day of from that do not exist yet, and returns their names.
func (s *Store) PartitionsEnsure(ctx context.Context, from time.Time, days int) ([]string, error) {
	day := from.UTC()
	names, err := s.q.PartitionsEnsure(ctx, s.pool, dbsqlc.PartitionsEnsureParams{
		FromDay: pgtype.Date{Time: time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC), Valid: true},
		Days:    int32(days),
	})
	if err != nil {
		return nil, fmt.Errorf("create chunk partitions: %w", err)
	}
	return names, nil
}

// PartitionPlan is a day partition of job_chunks past the retention
// horizon: it can be dropped when Keep is 0.
type PartitionPlan struct {
	Name   string
	Lo, Hi uuid.UUID
	Jobs   int64
	Keep   int64 // jobs not expired yet, or held
}

// RetentionPlan lists the day partitions wholly past the retention horizon
// at now, oldest first, under the database's policies and settings. It
// changes nothing: any now will do (a dry run may look ahead).
func (s *Store) RetentionPlan(ctx context.Context, now time.Time) ([]PartitionPlan, error) {
	rows, err := s.q.RetentionPlan(ctx, s.pool, now)
	if err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	out := make([]PartitionPlan, len(rows))
	for i, r := range rows {
		out[i] = PartitionPlan{Name: r.Partition, Lo: r.Lo, Hi: r.Hi, Jobs: r.Jobs, Keep: r.Keep}
	}
	return out, nil
}

// RangeChunks counts the chunks of jobs with ids in [lo, hi).
func (s *Store) RangeChunks(ctx context.Context, lo, hi uuid.UUID) (int64, error) {
	n, err := s.q.RetentionRangeChunks(ctx, s.pool, dbsqlc.RetentionRangeChunksParams{Lo: lo, Hi: hi})
	if err != nil {
		return 0, fmt.Errorf("count chunks: %w", err)
	}
	return n, nil
}

// RetentionDropPartition drops the named day partition if all its jobs
// have expired by the database's clock and none is held, recording a
// retention_deleted event for each (with ranBy, who runs the pass); it
// reports the number of jobs and whether it dropped. It does not drop when
// a hold or a young job appeared since the plan, or when the partition's
// lock is not granted within 2 s.
func (s *Store) RetentionDropPartition(ctx context.Context, name, ranBy string) (int64, bool, error) {
	n, err := s.q.RetentionDropPartition(ctx, s.pool, dbsqlc.RetentionDropPartitionParams{Partition: name, RanBy: ranBy})
	if err != nil {
		return 0, false, fmt.Errorf("drop partition %s: %w", name, err)
	}
	return max(n, 0), n >= 0, nil
}

// RetainedJob is a job retention removed, or would remove.
type RetainedJob struct {
	ID     uuid.UUID
	Tenant string
	Chunks int64
	// Recorded: the job's chunks went with a dropped partition, which
	// recorded its removal; only its row was left to delete.
	Recorded bool
}

// RetentionDeleteBatch deletes up to limit (at most 1,000) jobs expired by
// the database's clock and not held, oldest first, with their chunks and
// one audit event each (with ranBy, who runs the pass), in one
// transaction.
func (s *Store) RetentionDeleteBatch(ctx context.Context, limit int, ranBy string) ([]RetainedJob, error) {
	rows, err := s.q.RetentionDeleteBatch(ctx, s.pool, dbsqlc.RetentionDeleteBatchParams{Max: int32(limit), RanBy: ranBy})
	if err != nil {
		return nil, fmt.Errorf("retention batch: %w", err)
	}
	out := make([]RetainedJob, len(rows))
	for i, r := range rows {
		out[i] = RetainedJob{ID: r.JobID, Tenant: r.Tenant, Chunks: r.Chunks, Recorded: r.Recorded}
	}
	return out, nil
}

// RetentionExpired lists up to limit jobs that have expired at now and are
// not held, oldest first, with ids above after (uuid.Nil for the first
// page): what RetentionDeleteBatch would delete.
func (s *Store) RetentionExpired(ctx context.Context, now time.Time, after uuid.UUID, limit int) ([]RetainedJob, error) {
	rows, err := s.q.RetentionExpiredList(ctx, s.pool, dbsqlc.RetentionExpiredListParams{Now: now, AfterID: after, Max: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list expired jobs: %w", err)
	}
	out := make([]RetainedJob, len(rows))
	for i, r := range rows {
		out[i] = RetainedJob{ID: r.ID, Tenant: r.Tenant, Chunks: r.Chunks}
	}
	return out, nil
}

// RetentionLead takes the advisory lock that lets one node at a time run
// retention. It returns ok false when another session holds it; otherwise
// release gives the lock back (ending the session also does, so a node
// that dies never keeps it).
func (s *Store) RetentionLead(ctx context.Context) (release func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("retention lock: %w", err)
	}
	ok, err = s.q.RetentionTryLead(ctx, conn)
	if err != nil || !ok {
		conn.Release()
		if err != nil {
			return nil, false, fmt.Errorf("retention lock: %w", err)
		}
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.q.RetentionUnlead(ctx, conn); err != nil {
			// The lock dies with the session: do not hand it back to the pool.
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, true, nil
}

// RetentionClock is the database's clock, by which every deleting pass
// judges.
func (s *Store) RetentionClock(ctx context.Context) (time.Time, error) {
	now, err := s.q.RetentionClock(ctx, s.pool)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return now, nil
}

// RetentionSettings is the server-wide retention rule, kept in the
// database so that every node and every pass applies the same one.
type RetentionSettings struct {
	// DefaultDays applies to tenants without a policy; 0 keeps forever.
	DefaultDays int
	// MinDays is the floor below which no policy may go (0: none).
	MinDays   int
	UpdatedAt time.Time
}

// MaxRetentionDays bounds every retention figure (about 273 years), as
// the database's checks do.
const MaxRetentionDays = 100000

// RetentionSettingsGet reads the server-wide retention rule.
func (s *Store) RetentionSettingsGet(ctx context.Context) (RetentionSettings, error) {
	r, err := s.q.RetentionSettingsGet(ctx, s.pool)
	if err != nil {
		return RetentionSettings{}, fmt.Errorf("read retention settings: %w", err)
	}
	return RetentionSettings{DefaultDays: int(r.DefaultDays), MinDays: int(r.MinDays), UpdatedAt: r.UpdatedAt}, nil
}

// RetentionSettingsSet changes the server-wide default and/or minimum (nil
// keeps it). Only the database owner may; the server's role reads it.
func (s *Store) RetentionSettingsSet(ctx context.Context, defaultDays, minDays *int) (RetentionSettings, error) {
	var p dbsqlc.RetentionSettingsSetParams
	for _, v := range []*int{defaultDays, minDays} {
		if v != nil && (*v < 0 || *v > MaxRetentionDays) {
			return RetentionSettings{}, fmt.Errorf("%d days is out of range: 0 to %d", *v, MaxRetentionDays)
		}
	}
	if defaultDays != nil {
		p.DefaultDays = ptr(int32(*defaultDays))
	}
	if minDays != nil {
		p.MinDays = ptr(int32(*minDays))
	}
	r, err := s.q.RetentionSettingsSet(ctx, s.pool, p)
	if err != nil {
		return RetentionSettings{}, fmt.Errorf("set retention settings: %w", err)
	}
	return RetentionSettings{DefaultDays: int(r.DefaultDays), MinDays: int(r.MinDays), UpdatedAt: r.UpdatedAt}, nil
}

// Policy is a tenant's retention policy: finished jobs are kept KeepDays
// days (0: forever).
type Policy struct {
	Tenant    string
	KeepDays  int
	UpdatedAt time.Time
}

// PolicySet sets a tenant's retention policy.
func (s *Store) PolicySet(ctx context.Context, tenant string, keepDays int) (Policy, error) {
	if keepDays < 0 || keepDays > MaxRetentionDays {
		return Policy{}, fmt.Errorf("%d days is out of range: 0 (forever) to %d", keepDays, MaxRetentionDays)
	}
	r, err := s.q.PolicySet(ctx, s.pool, dbsqlc.PolicySetParams{Tenant: tenant, KeepDays: int32(keepDays)})
	if err != nil {
		return Policy{}, fmt.Errorf("set retention policy: %w", err)
	}
	return Policy{Tenant: r.Tenant, KeepDays: int(r.KeepDays), UpdatedAt: r.UpdatedAt}, nil
}

// PolicyDelete removes a tenant's policy (it gets the server default);
// ErrNotFound when it had none.
func (s *Store) PolicyDelete(ctx context.Context, tenant string) error {
	n, err := s.q.PolicyDelete(ctx, s.pool, tenant)
	if err != nil {
		return fmt.Errorf("delete retention policy: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// PolicyList returns every tenant's policy.
func (s *Store) PolicyList(ctx context.Context) ([]Policy, error) {
	rows, err := s.q.PolicyList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list retention policies: %w", err)
	}
	out := make([]Policy, len(rows))
	for i, r := range rows {
		out[i] = Policy{Tenant: r.Tenant, KeepDays: int(r.KeepDays), UpdatedAt: r.UpdatedAt}
	}
	return out, nil
}

// Hold is a legal hold on a job: retention keeps the job and its chunks
// past any policy while it exists.
type Hold struct {
	JobID  uuid.UUID
	Tenant string
	Reason string
	HeldBy string
	HeldAt time.Time
}

// HoldSet places a hold on a job of tenant (any tenant when tenant is
// empty, for the CLI). Holding a held job keeps it held (and updates a
// non-empty reason). Every call is recorded in the audit trail (event
// hold_placed, actor heldBy, the hold's reason). ErrNotFound: no such job
// for the tenant; ErrRetained: retention is already removing it.
func (s *Store) HoldSet(ctx context.Context, tenant string, id uuid.UUID, reason, heldBy string) (Hold, error) {
	var h Hold
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.q.HoldLockJob(ctx, tx, dbsqlc.HoldLockJobParams{ID: id, Tenant: strPtr(tenant)}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		r, err := s.q.HoldInsert(ctx, tx, dbsqlc.HoldInsertParams{ID: id, Reason: reason, HeldBy: heldBy})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRetained
		}
		if err != nil {
			return err
		}
		h = Hold{JobID: r.JobID, Reason: r.Reason, HeldBy: r.HeldBy, HeldAt: r.HeldAt}
		return s.q.JobEventHold(ctx, tx, dbsqlc.JobEventHoldParams{ID: &id, Event: ptr("hold_placed"), Actor: &heldBy, Reason: strPtr(r.Reason)})
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRetained) {
		return Hold{}, err
	}
	if err != nil {
		return Hold{}, fmt.Errorf("hold job %s: %w", id, err)
	}
	return h, nil
}

// HoldClear lifts the hold on a job of tenant (any tenant when empty), as
// by (an actor name, recorded in the audit trail with event hold_lifted).
// ErrNotFound: the job is not held (or not the tenant's).
func (s *Store) HoldClear(ctx context.Context, tenant string, id uuid.UUID, by string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := s.q.HoldDelete(ctx, tx, dbsqlc.HoldDeleteParams{ID: id, Tenant: strPtr(tenant)})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return s.q.JobEventHold(ctx, tx, dbsqlc.JobEventHoldParams{ID: &id, Event: ptr("hold_lifted"), Actor: &by})
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("unhold job %s: %w", id, err)
	}
	return nil
}

// HoldList returns the holds on tenant's jobs (every tenant's when empty).
func (s *Store) HoldList(ctx context.Context, tenant string) ([]Hold, error) {
	rows, err := s.q.HoldList(ctx, s.pool, strPtr(tenant))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	out := make([]Hold, len(rows))
	for i, r := range rows {
		out[i] = Hold{JobID: r.JobID, Tenant: r.Tenant, Reason: r.Reason, HeldBy: r.HeldBy, HeldAt: r.HeldAt}
	}
	return out, nil
}
