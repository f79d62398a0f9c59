package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Hold authorities: who may lift a hold (migrations/00042_hold_authority.sql).
const (
	// HoldOperator: placed with jobstream hold (the database owner's
	// connection, such as the legal department's); only an operator
	// lifts it.
	HoldOperator = "operator"
	// HoldTenant: placed by the tenant's own key (POST /v1/jobs/{id}/hold);
	// the tenant or an operator lifts it.
	HoldTenant = "tenant"
)

// Hold is a legal hold on a job: retention keeps the job and its chunks
// past any policy while it exists.
type Hold struct {
	JobID  uuid.UUID
	Tenant string // set by HoldList and the tenant calls
	Reason string
	// HeldBy is who placed it: api_key:<id>, or the person who ran
	// jobstream hold.
	HeldBy    string
	Authority string // HoldOperator or HoldTenant
	HeldAt    time.Time
}

// ErrOperatorHold: a tenant tried to lift a hold an operator placed.
var ErrOperatorHold = errors.New("held by an operator")

// OperatorHoldError is ErrOperatorHold naming who placed the hold.
type OperatorHoldError struct{ HeldBy string }

func (e *OperatorHoldError) Error() string {
	return "held by an operator (legal hold placed by " + e.HeldBy + "); only an operator can lift it"
}

// Unwrap makes errors.Is(err, ErrOperatorHold) hold.
func (e *OperatorHoldError) Unwrap() error { return ErrOperatorHold }

// SQLSTATEs the hold functions raise (migrations/00042_hold_authority.sql).
const (
	sqlstateOperatorHold = "JS403"
	sqlstateRetained     = "JS409"
)

// holdError maps what the hold functions raise onto the store's errors:
// no row is ErrNotFound (no such job of the tenant, or, to lift, no hold).
func holdError(err error, what string, id uuid.UUID) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateOperatorHold:
		return &OperatorHoldError{HeldBy: pgErr.Detail}
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateRetained:
		return ErrRetained
	}
	return fmt.Errorf("%s job %s: %w", what, id, err)
}

// checkHold returns an *UnstorableError naming the first of the named
// texts PostgreSQL would refuse, before anything is sent: a NUL in a
// reason must be the client's 400, never the database's 500.
func checkHold(texts ...[2]string) error {
	for _, t := range texts {
		if err := CheckText(t[0], t[1]); err != nil {
			return err
		}
	}
	return nil
}

func holdFrom(jobID uuid.UUID, reason, heldBy, authority string, heldAt time.Time) Hold {
	return Hold{JobID: jobID, Reason: reason, HeldBy: heldBy, Authority: authority, HeldAt: heldAt}
}

// HoldPlaceTenant places a hold with tenant authority on a job of tenant,
// as actor (api_key:<id>). Holding a job the tenant already holds keeps
// the hold (a non-empty reason replaces the old one); a job an operator
// holds stays held as the operator placed it, and that hold is returned.
// The trigger on job_holds records hold_placed. ErrNotFound: no such job
// for the tenant; ErrRetained: retention is already removing it;
// *UnstorableError: reason or actor cannot be stored (nothing is).
func (s *Store) HoldPlaceTenant(ctx context.Context, tenant string, id uuid.UUID, reason, actor string) (Hold, error) {
	if err := checkHold([2]string{"tenant", tenant}, [2]string{"reason", reason}, [2]string{"actor", actor}); err != nil {
		return Hold{}, err
	}
	r, err := s.q.HoldPlaceTenant(ctx, s.pool, dbsqlc.HoldPlaceTenantParams{ID: id, Tenant: tenant, Reason: reason, Actor: actor})
	if err != nil {
		return Hold{}, holdError(err, "hold", id)
	}
	h := holdFrom(r.JobID, r.Reason, r.HeldBy, r.Authority, r.HeldAt)
	h.Tenant = tenant
	return h, nil
}

// HoldLiftTenant lifts the tenant-authority hold on a job of tenant, as
// actor, and returns the hold it lifted. ErrNotFound: the job is not held
// (or not the tenant's); *OperatorHoldError: an operator placed the hold,
// which stays.
func (s *Store) HoldLiftTenant(ctx context.Context, tenant string, id uuid.UUID, actor string) (Hold, error) {
	if err := checkHold([2]string{"tenant", tenant}, [2]string{"actor", actor}); err != nil {
		return Hold{}, err
	}
	r, err := s.q.HoldLiftTenant(ctx, s.pool, dbsqlc.HoldLiftTenantParams{ID: id, Tenant: tenant, Actor: actor})
	if err != nil {
		return Hold{}, holdError(err, "unhold", id)
	}
	h := holdFrom(r.JobID, r.Reason, r.HeldBy, r.Authority, r.HeldAt)
	h.Tenant = tenant
	return h, nil
}

// HoldPlaceOperator places a hold with operator authority on any tenant's
// job, as actor (the person). It needs the database owner's connection
// (jobstream hold): the server's role may not execute it. A tenant's hold
// on the job becomes the operator's (holder, time, authority), so the
// tenant can no longer lift it; an operator's hold is kept (a non-empty
// reason replaces the old one). Errors as HoldPlaceTenant.
func (s *Store) HoldPlaceOperator(ctx context.Context, id uuid.UUID, reason, actor string) (Hold, error) {
	if err := checkHold([2]string{"reason", reason}, [2]string{"actor", actor}); err != nil {
		return Hold{}, err
	}
	r, err := s.q.HoldPlaceOperator(ctx, s.pool, dbsqlc.HoldPlaceOperatorParams{ID: id, Reason: reason, Actor: actor})
	if err != nil {
		return Hold{}, holdError(err, "hold", id)
	}
	return holdFrom(r.JobID, r.Reason, r.HeldBy, r.Authority, r.HeldAt), nil
}

// HoldLiftOperator lifts any hold on any tenant's job, as actor, with the
// database owner's connection, and returns it. ErrNotFound: not held.
func (s *Store) HoldLiftOperator(ctx context.Context, id uuid.UUID, actor string) (Hold, error) {
	if err := checkHold([2]string{"actor", actor}); err != nil {
		return Hold{}, err
	}
	r, err := s.q.HoldLiftOperator(ctx, s.pool, dbsqlc.HoldLiftOperatorParams{ID: id, Actor: actor})
	if err != nil {
		return Hold{}, holdError(err, "unhold", id)
	}
	return holdFrom(r.JobID, r.Reason, r.HeldBy, r.Authority, r.HeldAt), nil
}

// HoldList returns the holds on tenant's jobs (every tenant's when empty).
func (s *Store) HoldList(ctx context.Context, tenant string) ([]Hold, error) {
	rows, err := s.q.HoldList(ctx, s.pool, strPtr(tenant))
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	out := make([]Hold, len(rows))
	for i, r := range rows {
		out[i] = holdFrom(r.JobID, r.Reason, r.HeldBy, r.Authority, r.HeldAt)
		out[i].Tenant = r.Tenant
	}
	return out, nil
}
