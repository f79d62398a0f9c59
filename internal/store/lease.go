package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/chain"
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
	// ChainTip is the chain hash that chunk continues from: the last
	// stored chunk's, or the job's seed.
	ChainTip chain.Hash
}

// Claim claims up to max queued jobs for owner with a lease of ttl, with
// no per-tenant cap and no deadline (ClaimWith).
func (s *Store) Claim(ctx context.Context, owner string, max int, ttl time.Duration) ([]Claim, error) {
	return s.ClaimWith(ctx, ClaimOptions{Owner: owner, Max: max, LeaseTTL: ttl})
}

// ClaimOptions are a claim's parameters.
type ClaimOptions struct {
	// Owner names the claiming worker in leases.
	Owner string
	// Max is the most jobs to claim: the worker's free slots.
	Max int
	// LeaseTTL is the leases' lifetime without a heartbeat.
	LeaseTTL time.Duration
	// TenantCap is the most jobs of one tenant Owner may have running,
	// the claimed ones included; <= 0: no cap.
	TenantCap int
	// MaxRuntime bounds how long each claimed attempt may run: its
	// deadline (deadline_at) is the claim's time plus MaxRuntime, after
	// which RescueOverdue fails it. <= 0: no deadline.
	MaxRuntime time.Duration
}

// ClaimWith claims queued jobs fairly across tenants: the free slots go
// round robin, the tenant with the fewest jobs running first, then the
// oldest job, and no tenant gets more than TenantCap jobs running on this
// worker (see JobClaim).
func (s *Store) ClaimWith(ctx context.Context, o ClaimOptions) ([]Claim, error) {
	ctx, cancel := s.hot(ctx)
	defer cancel()
	p := dbsqlc.JobClaimParams{
		Owner:        o.Owner,
		LeaseSeconds: o.LeaseTTL.Seconds(),
		Max:          int32(min(o.Max, math.MaxInt32)),
	}
	if o.TenantCap > 0 {
		p.TenantCap = ptr(int32(min(o.TenantCap, math.MaxInt32)))
	}
	if o.MaxRuntime > 0 {
		p.MaxRuntimeSeconds = ptr(o.MaxRuntime.Seconds())
	}
	rows, err := s.q.JobClaim(ctx, s.pool, p)
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
		copy(c.ChainTip[:], r.PrevHash)
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
	Lease
	CancelRequested bool
	// Renewed is false when the job's row was locked by another
	// transaction: the lease is still held but was not extended, and the
	// caller should retry it soon.
	Renewed bool
}

// heartbeatLockWait bounds how long Heartbeat waits for a lease's row lock
// after JobHeartbeat found it locked: long enough for any chunk writer
// batch to commit, short enough that a lock held for longer (an open
// transaction elsewhere) only delays that lease until the caller's retry.
const heartbeatLockWait = 500 * time.Millisecond

// Heartbeat extends the given leases by ttl and returns those still held. A
// lease missing from the result is lost. One statement renews every lease
// whose row is not locked, without waiting (see JobHeartbeat); a second
// renews the locked ones, waiting for their locks for at most
// heartbeatLockWait (and, when one lock outlasts that, renews the others
// apart: heartbeatEach). A lease still locked after that comes back with
// Renewed false, for the caller to retry soon.
//
// If the second statement fails otherwise (the database went away, the
// deadline passed), Heartbeat returns the first statement's results with
// the error: they are complete as to which leases are held and which were
// asked to cancel, and the busy leases have Renewed false. The caller
// must not take that for a healthy beat.
func (s *Store) Heartbeat(ctx context.Context, owner string, ttl time.Duration, leases []Lease) ([]HeartbeatResult, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	ctx, cancel := s.hot(ctx)
	defer cancel()
	p := dbsqlc.JobHeartbeatParams{Owner: owner, LeaseSeconds: ttl.Seconds()}
	p.Ids, p.Attempts = lockOrder(leases)
	rows, err := s.q.JobHeartbeat(ctx, s.pool, p)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	out := make([]HeartbeatResult, len(rows))
	var busy []Lease
	for i, r := range rows {
		out[i] = HeartbeatResult{Lease: Lease{JobID: r.ID, Attempt: int(r.Attempt)}, CancelRequested: r.CancelRequested, Renewed: r.Renewed}
		if !r.Renewed {
			busy = append(busy, out[i].Lease)
		}
	}
	if len(busy) == 0 {
		return out, nil
	}
	renewed, err := s.heartbeatWait(ctx, owner, ttl, busy)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeLockNotAvailable && len(busy) > 1 {
		// One row's lock outlasted the wait and rolled back the renewal
		// of every busy lease, most of them held only for a moment by
		// a writer batch. Renew them apart, so that one row locked for
		// long (an operator's open transaction) costs only its own
		// renewal, beat after beat.
		renewed, err = s.heartbeatEach(ctx, owner, ttl, busy), nil
	}
	if errors.As(err, &pgErr) && pgErr.Code == codeLockNotAvailable {
		// A lock held past the wait, by another transaction: the
		// database is fine. The others are renewed; this one stays
		// unrenewed until the retry.
		return out, nil
	}
	if err != nil {
		return out, err
	}
	for i := range out {
		if renewed[out[i].Lease] {
			out[i].Renewed = true
		}
	}
	return out, nil
}

// codeLockNotAvailable is PostgreSQL's lock_not_available SQLSTATE, which
// a lock wait past lock_timeout fails with.
const codeLockNotAvailable = "55P03"

// heartbeatEach renews busy leases after heartbeatWait gave up on one of
// them: first without waiting, every one whose lock has gone since, then
// the rest one by one, each in its own transaction with its own bounded
// wait, while ctx leaves time for one. It returns the leases renewed.
func (s *Store) heartbeatEach(ctx context.Context, owner string, ttl time.Duration, busy []Lease) map[Lease]bool {
	renewed := map[Lease]bool{}
	p := dbsqlc.JobHeartbeatParams{Owner: owner, LeaseSeconds: ttl.Seconds()}
	p.Ids, p.Attempts = lockOrder(busy)
	rows, err := s.q.JobHeartbeat(ctx, s.pool, p)
	if err != nil {
		return renewed
	}
	for _, r := range rows {
		if r.Renewed {
			renewed[Lease{JobID: r.ID, Attempt: int(r.Attempt)}] = true
		}
	}
	for _, l := range busy {
		if renewed[l] {
			continue
		}
		if d, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(d) < heartbeatLockWait {
			// Stop before the deadline cuts a wait short: that would
			// cancel the query and cost the pool its connection.
			break
		}
		one, err := s.heartbeatWait(ctx, owner, ttl, []Lease{l})
		if err == nil && one[l] {
			renewed[l] = true
		}
	}
	return renewed
}

// heartbeatWait renews leases whose rows were locked, waiting for the locks
// under lock_timeout (a server-side bound: the connection stays usable).
func (s *Store) heartbeatWait(ctx context.Context, owner string, ttl time.Duration, leases []Lease) (map[Lease]bool, error) {
	renewed := map[Lease]bool{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.SetLockTimeout(ctx, tx, strconv.FormatInt(heartbeatLockWait.Milliseconds(), 10)); err != nil {
			return err
		}
		p := dbsqlc.JobHeartbeatWaitParams{Owner: owner, LeaseSeconds: ttl.Seconds()}
		p.Ids, p.Attempts = lockOrder(leases)
		rows, err := s.q.JobHeartbeatWait(ctx, tx, p)
		if err != nil {
			return err
		}
		for _, r := range rows {
			renewed[Lease{JobID: r.ID, Attempt: int(r.Attempt)}] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat locked leases: %w", err)
	}
	return renewed, nil
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
// running job to stop (it then writes the "cancelled" finish chunk). The
// request is recorded in the audit trail as ctx's Actor's (see
// WithActor), whatever the job's status.
func (s *Store) RequestCancel(ctx context.Context, tenant string, id uuid.UUID) (CancelOutcome, error) {
	var out CancelOutcome
	a := ActorFrom(ctx)
	if a.Name == "" {
		a.Name = "tenant:" + tenant
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n, err := s.q.JobEventCancelRequested(ctx, tx, dbsqlc.JobEventCancelRequestedParams{
			ID: &id, Tenant: &tenant, Actor: &a.Name, Reason: strPtr(a.Via),
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if _, err := s.q.JobLockQueued(ctx, tx, dbsqlc.JobLockQueuedParams{ID: id, Tenant: tenant}); err == nil {
			if err := s.setAudit(ctx, tx, a.Name, ""); err != nil {
				return err
			}
			if _, err := s.q.ChunkAppendLocked(ctx, tx, dbsqlc.ChunkAppendLockedParams{
				JobID: id, StreamType: "content", Data: `{"finish_reason":"cancelled"}`,
			}); err != nil {
				return err
			}
			if err := s.q.JobCancelQueued(ctx, tx, id); err != nil {
				return err
			}
			out = CancelDone
			return s.notifyIDs(ctx, tx, ChannelChunks, []uuid.UUID{id})
		} else if !errors.Is(err, pgx.ErrNoRows) {
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
// readers have already seen. All in one transaction, recorded in the audit
// trail as lease_expired events of ctx's Actor (the rescuing worker).
//
// ttl is the lease TTL: right after a database restart no lease counts as
// expired until the database has been up for ttl, so live workers renew
// their leases before anyone takes their jobs (see JobExpiredLock).
//
// Every decision is made under the job's row lock, by statements that
// start after it was taken: whether the job has chunks, and the seq of its
// error chunk (JobRequeue, ChunkAppendLocked).
func (s *Store) RescueExpired(ctx context.Context, max int, ttl time.Duration) (Rescued, error) {
	ctx, cancel := s.hot(ctx)
	defer cancel()
	midStream, _ := json.Marshal(map[string]string{"message": "the worker running this job stopped heartbeating (lease expired)", "type": "lease_expired"})
	var res Rescued
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = Rescued{}
		rows, err := s.q.JobExpiredLock(ctx, tx, dbsqlc.JobExpiredLockParams{Max: int64(max), LeaseSeconds: ttl.Seconds()})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := s.setAudit(ctx, tx, cmp.Or(ActorFrom(ctx).Name, "rescuer"), "lease_expired"); err != nil {
			return err
		}
		for _, r := range rows {
			if r.Attempt < r.MaxAttempts {
				n, err := s.q.JobRequeue(ctx, tx, dbsqlc.JobRequeueParams{ID: r.ID, Attempt: r.Attempt})
				if err != nil {
					return err
				}
				if n > 0 {
					res.Requeued = append(res.Requeued, r.ID)
					continue
				}
				// It has chunks: fail it.
			}
			noOutput, _ := json.Marshal(map[string]string{
				"message": fmt.Sprintf("the job's worker was lost %d times (lease expired); giving up", r.Attempt),
				"type":    "lease_expired",
			})
			// The chunk, chained in SQL under the row lock, says whether the
			// job had output (seq > 0), and so which error it ends with.
			seq, err := s.q.ChunkAppendLocked(ctx, tx, dbsqlc.ChunkAppendLockedParams{
				JobID: r.ID, StreamType: "content", Data: finishError(midStream), DataIfFirst: ptr(finishError(noOutput)),
			})
			if err != nil {
				return err
			}
			e := midStream
			if seq == 0 {
				e = noOutput
			}
			if err := s.q.JobFailExpired(ctx, tx, dbsqlc.JobFailExpiredParams{ID: r.ID, Attempt: r.Attempt, Error: e}); err != nil {
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

// RescueOverdue fails up to max running jobs whose deadline (the claim's
// time plus the claiming worker's maximum runtime, ClaimOptions.MaxRuntime)
// passed more than grace ago, with an error finish chunk of type "timeout"
// after their last chunk. A worker stops its jobs at their deadline itself;
// this is the database's bound for a worker that does not (a model call
// that ignores cancellation, a worker that kept its lease but not its
// clock). One transaction, recorded in the audit trail as failed by ctx's
// Actor (the rescuing worker), reason "timeout". The worker holding such a
// job is told to stop (ChannelCancel); its writes find no lease from then
// on. It returns the jobs failed.
func (s *Store) RescueOverdue(ctx context.Context, max int, grace time.Duration) ([]uuid.UUID, error) {
	ctx, cancel := s.hot(ctx)
	defer cancel()
	var failed []uuid.UUID
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		failed = nil
		rows, err := s.q.JobOverdueLock(ctx, tx, dbsqlc.JobOverdueLockParams{Max: int64(max), GraceSeconds: grace.Seconds()})
		if err != nil || len(rows) == 0 {
			return err
		}
		if err := s.setAudit(ctx, tx, cmp.Or(ActorFrom(ctx).Name, "rescuer"), ""); err != nil {
			return err
		}
		for _, r := range rows {
			e, _ := json.Marshal(map[string]string{
				"message": fmt.Sprintf("the job ran past its maximum runtime (its deadline was %s) and was stopped",
					deref(r.DeadlineAt).UTC().Format(time.RFC3339)),
				"type": ErrorTypeTimeout,
			})
			if _, err := s.q.ChunkAppendLocked(ctx, tx, dbsqlc.ChunkAppendLockedParams{
				JobID: r.ID, StreamType: "content", Data: finishError(e),
			}); err != nil {
				return err
			}
			if err := s.q.JobFailExpired(ctx, tx, dbsqlc.JobFailExpiredParams{ID: r.ID, Attempt: r.Attempt, Error: e}); err != nil {
				return err
			}
			failed = append(failed, r.ID)
		}
		if err := s.notifyIDs(ctx, tx, ChannelCancel, failed); err != nil {
			return err
		}
		return s.notifyIDs(ctx, tx, ChannelChunks, failed)
	})
	if err != nil {
		return nil, fmt.Errorf("rescue overdue jobs: %w", err)
	}
	return failed, nil
}

// ErrorTypeTimeout is the error type of a job stopped at its maximum
// runtime, in its error finish chunk and its error.
const ErrorTypeTimeout = "timeout"

// Turn is one finished job of a room, for rebuilding history.
type Turn struct {
	JobID     uuid.UUID
	Request   Request
	Status    string
	Content   string
	ToolCalls json.RawMessage
}

// lockOrder returns the leases' job ids and attempts sorted by job id: the
// order in which every statement that locks several rows of running jobs
// (JobLeaseHeld, and JobHeartbeat, which never waits) takes its locks, so
// that two of them never wait for each other in a cycle (a deadlock, which
// PostgreSQL breaks only after deadlock_timeout).
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

// finishError is the text of an error finish chunk carrying e.
func finishError(e json.RawMessage) string {
	b, _ := json.Marshal(map[string]any{"finish_reason": "error", "error": e})
	return string(pgJSON(b))
}

func ptr[T any](v T) *T { return &v }
