-- Queries on the jobs table. Every query a client can reach is filtered by
-- tenant: another tenant's job reads as "no rows".

-- JobInsert stores a queued job, unless its API key is revoked (no row):
-- a credential cache may let a request in for a few seconds after the
-- revocation, not its job. The key's row is locked FOR KEY SHARE (as the
-- foreign key's check does; by jobstream_key_usable, migration 00047, as
-- the server's role may not lock api_keys itself), so a revocation in
-- progress (KeyLock, FOR UPDATE) either waits for this job, and cancels
-- it, or makes it see the key revoked.
-- name: JobInsert :one
INSERT INTO jobs (id, tenant, api_key_id, engine, room_id, request, max_attempts)
SELECT @id, @tenant, sqlc.narg('api_key_id')::uuid, @engine, @room_id, @request, @max_attempts
WHERE sqlc.narg('api_key_id')::uuid IS NULL
   OR jobstream_key_usable(sqlc.narg('api_key_id')::uuid)
RETURNING *;

-- name: JobGet :one
SELECT * FROM jobs WHERE id = @id AND tenant = @tenant;

-- JobList pages through a tenant's jobs newest first. Keyset on id (UUIDv7,
-- time-ordered): pass the last id of the previous page as before_id.
-- since and until bound created_at (since inclusive, until exclusive); the
-- scan still walks jobs_tenant_id_idx newest first and filters.
-- name: JobList :many
SELECT * FROM jobs
WHERE tenant = @tenant
  AND (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status'))
  AND (sqlc.narg('engine')::text IS NULL OR engine = sqlc.narg('engine'))
  AND (sqlc.narg('before_id')::uuid IS NULL OR id < sqlc.narg('before_id'))
  AND (sqlc.narg('since')::timestamptz IS NULL OR created_at >= sqlc.narg('since'))
  AND (sqlc.narg('until')::timestamptz IS NULL OR created_at < sqlc.narg('until'))
ORDER BY id DESC
LIMIT @max;

-- JobClaim claims up to max queued jobs for one worker, fairly across
-- tenants:
--
--   - round robin: a tenant's k-th new job counts as its (running + k)-th
--     running job (running: its jobs running now, on every node), and the
--     free slots go in that order, ties to the tenant whose oldest queued
--     job is oldest; within a tenant, oldest job first. So the tenant with
--     the fewest running jobs is served first, and a tenant that submits
--     thousands of jobs gets no more of the batch than one that submits
--     one, as long as both have jobs waiting;
--   - a cap: no tenant gets more than tenant_cap jobs running on this
--     worker (lease_owner = owner); the rest wait queued. NULL: no cap.
--
-- The statement reads no more than it needs at 10,000 queued jobs: the
-- tenants with queued jobs come from a loose index scan of
-- jobs_queued_tenant_idx (one probe per tenant, not a read of every queued
-- job), their running jobs from jobs_running_tenant_idx, and the batch is
-- shared out (quota) before any row is locked. Each tenant's share is
-- then locked oldest first with FOR NO KEY UPDATE SKIP LOCKED, so any number of
-- workers claim concurrently without blocking each other or
-- double-claiming (a row another worker holds is skipped for the tenant's
-- next one); the claim is one short statement, never a transaction held
-- open across a model call. A worker claims one batch at a time, so its
-- cap holds exactly; the round-robin counts of concurrent claims by
-- different workers may each miss the other's batch.
--
-- attempt is incremented and becomes the lease token the worker's writes
-- are fenced on. deadline_at is when this attempt must have ended (now() +
-- the worker's maximum runtime; NULL: no bound), for the rescuer
-- (JobOverdueLock). next_seq is where this attempt's chunks continue (0
-- unless a previous attempt wrote) and prev_hash the chain hash they
-- continue from (the last chunk's, or the job's chain seed).
-- name: JobClaim :many
WITH RECURSIVE queued_tenants AS (
    (SELECT q.tenant, q.id FROM jobs q
     WHERE q.status = 'queued'
     ORDER BY q.tenant, q.id
     LIMIT 1)
    UNION ALL
    SELECT nx.tenant, nx.id
    FROM queued_tenants qt
    CROSS JOIN LATERAL (
        SELECT q.tenant, q.id FROM jobs q
        WHERE q.status = 'queued' AND q.tenant > qt.tenant
        ORDER BY q.tenant, q.id
        LIMIT 1
    ) nx
), load AS MATERIALIZED (
    -- Counted once per tenant (MATERIALIZED: inlined, the counts were
    -- recomputed for every slot), and only as far as they matter, so that a tenant with thousands
    -- of jobs running costs no more than max (or tenant_cap) rows: max for
    -- the order (a tenant running max more jobs than another gets nothing
    -- before it anyway; tenants past max tie, and still share round
    -- robin), tenant_cap for the cap (not counted without one).
    SELECT qt.tenant, qt.id AS oldest,
        (SELECT count(*) FROM (
            SELECT 1 FROM jobs r
            WHERE r.status = 'running' AND r.tenant = qt.tenant
            -- jobs_running_tenant_idx's order: without it the LIMIT
            -- was planned as a walk of every running job's lease.
            ORDER BY r.tenant, r.lease_owner
            LIMIT sqlc.arg('max')::integer) r) AS running,
        CASE WHEN sqlc.narg('tenant_cap')::integer IS NULL THEN 0
        ELSE (SELECT count(*) FROM (
            SELECT 1 FROM jobs r
            WHERE r.status = 'running' AND r.tenant = qt.tenant AND r.lease_owner = @owner::text
            ORDER BY r.tenant, r.lease_owner
            LIMIT sqlc.narg('tenant_cap')::integer) h) END AS here
    FROM queued_tenants qt
), slots AS (
    SELECT l.tenant
    FROM load l
    CROSS JOIN LATERAL generate_series(1, least(sqlc.arg('max')::integer,
        coalesce(sqlc.narg('tenant_cap')::integer, sqlc.arg('max')::integer) - l.here)) AS k
    ORDER BY l.running + k, l.oldest
    LIMIT sqlc.arg('max')::integer
), quota AS (
    SELECT s.tenant, count(*) AS n FROM slots s GROUP BY s.tenant
), next AS (
    SELECT c.id
    FROM quota
    CROSS JOIN LATERAL (
        SELECT q.id FROM jobs q
        WHERE q.status = 'queued' AND q.tenant = quota.tenant
        ORDER BY q.id
        LIMIT quota.n
        -- NO KEY: the claim changes no key, and so does not skip a job
        -- whose row a reader's access record holds FOR KEY SHARE (the
        -- foreign key of job_access): oldest first stays oldest first.
        FOR NO KEY UPDATE SKIP LOCKED
    ) c
)
UPDATE jobs j
SET status = 'running',
    lease_owner = @owner::text,
    lease_expires_at = now() + make_interval(secs => sqlc.arg('lease_seconds')::float8),
    attempt = j.attempt + 1,
    started_at = coalesce(j.started_at, now()),
    deadline_at = now() + make_interval(secs => sqlc.narg('max_runtime_seconds')::float8)
-- = ANY (ARRAY(..)): one primary key probe per claimed job whatever the
-- planner guesses of next's size (a join was planned as a scan of jobs).
WHERE j.id = ANY (ARRAY(SELECT next.id FROM next))
RETURNING j.id, j.tenant, j.engine, j.room_id, j.request, j.attempt, j.cancel_requested_at,
    (SELECT coalesce(max(c.seq) + 1, 0) FROM job_chunks c WHERE c.job_id = j.id)::integer AS next_seq,
    coalesce((SELECT c.hash FROM job_chunks c WHERE c.job_id = j.id ORDER BY c.seq DESC LIMIT 1), j.chain_seed) AS prev_hash;

-- JobHeartbeat extends the leases this process still holds, in one
-- statement per process (not per job). For each lease (id, attempt) held it
-- returns whether it was renewed; a lease missing from the result is lost. cancel_requested
-- tells the worker to stop the job.
--
-- It never waits for a row lock (SKIP LOCKED): one row held by someone
-- else (a rescuer, a cancel request, an operator's open transaction) must
-- not stall the renewal of every other lease in the process, issue 9. A
-- lease whose row was locked comes back with renewed false when the job is
-- still ours in this statement's snapshot; JobHeartbeatWait then renews it
-- with a bounded wait.
-- name: JobHeartbeat :many
WITH req AS (
    SELECT h.id, h.attempt FROM unnest(@ids::uuid[], @attempts::integer[]) AS h(id, attempt)
), locked AS (
    SELECT j.id, j.attempt
    FROM req
    CROSS JOIN LATERAL (
        SELECT jobs.id, jobs.attempt FROM jobs
        WHERE jobs.id = req.id AND jobs.attempt = req.attempt
          AND jobs.lease_owner = @owner::text AND jobs.status = 'running'
        LIMIT 1
        FOR NO KEY UPDATE SKIP LOCKED
    ) j
), renewed AS (
    UPDATE jobs j
    SET lease_expires_at = now() + make_interval(secs => sqlc.arg('lease_seconds')::float8)
    FROM locked
    WHERE j.id = locked.id
    RETURNING j.id, j.attempt, j.cancel_requested_at IS NOT NULL AS cancel_requested
)
SELECT renewed.id, renewed.attempt, renewed.cancel_requested::boolean AS cancel_requested, true AS renewed
FROM renewed
UNION ALL
SELECT busy.id, busy.attempt, busy.cancel_requested_at IS NOT NULL AS cancel_requested, false AS renewed
FROM req
CROSS JOIN LATERAL (
    SELECT jobs.id, jobs.attempt, jobs.cancel_requested_at FROM jobs
    WHERE jobs.id = req.id AND jobs.attempt = req.attempt
      AND jobs.lease_owner = @owner::text AND jobs.status = 'running'
    LIMIT 1
) busy
WHERE NOT EXISTS (SELECT 1 FROM locked WHERE locked.id = req.id AND locked.attempt = req.attempt);

-- JobHeartbeatWait renews the leases JobHeartbeat found locked, waiting
-- for the locks (the chunk writer's fence holds its rows only for the few
-- milliseconds of a batch). The caller bounds the wait with lock_timeout.
-- The rows are locked one at a time in the order of @ids, which callers
-- sort by id; JobLeaseHeld takes its FOR SHARE locks in the same order, so
-- the two never deadlock (in any other order, as a plain UPDATE ... FROM
-- unnest does, a deadlock with a writer batch holding some of the same
-- rows is broken only after deadlock_timeout, 1 s).
-- name: JobHeartbeatWait :many
WITH locked AS (
    SELECT j.id
    FROM unnest(@ids::uuid[], @attempts::integer[]) AS h(id, attempt)
    CROSS JOIN LATERAL (
        SELECT jobs.id FROM jobs
        WHERE jobs.id = h.id AND jobs.attempt = h.attempt
          AND jobs.lease_owner = @owner::text AND jobs.status = 'running'
        LIMIT 1
        FOR NO KEY UPDATE
    ) j
)
UPDATE jobs j
SET lease_expires_at = now() + make_interval(secs => sqlc.arg('lease_seconds')::float8)
FROM locked
WHERE j.id = locked.id
RETURNING j.id, j.attempt;

-- JobLeaseHeld reports which of the given (id, attempt) leases this process
-- holds, locking them FOR SHARE until the end of the transaction: a rescuer
-- (JobExpiredLock, FOR UPDATE SKIP LOCKED) skips the job until the
-- writer's batch commits, so it never requeues or fails a job under a
-- batch, and a writer whose lease was taken finds nothing. FOR SHARE,
-- not FOR KEY SHARE, because the rescuer's UPDATE does not change the key.
-- The locks are taken in the order of @ids, which callers sort by id, as
-- JobHeartbeat does.
-- name: JobLeaseHeld :many
-- The LATERAL ... LIMIT 1 form probes the primary key once per lease
-- whatever the table's statistics say (a plain join was planned as a
-- rescan of the id list per running job right after a bulk load: 93-138 ms
-- per batch at 1,000 jobs against 2.4 ms).
--
-- at is the transaction's timestamp, which is the created_at of every chunk
-- the batch inserts: the writer hands the committed chunks, timestamps
-- included, to readers in the same process (stream.Feed).
SELECT j.id, now()::timestamptz AS at
FROM unnest(@ids::uuid[], @attempts::integer[]) AS h(id, attempt)
CROSS JOIN LATERAL (
    SELECT jobs.id FROM jobs
    WHERE jobs.id = h.id AND jobs.attempt = h.attempt
      AND jobs.lease_owner = @owner::text AND jobs.status = 'running'
    LIMIT 1
    FOR SHARE
) j;

-- JobFinishMany moves jobs to their terminal status, fenced on the lease.
-- It runs in the same transaction as the insert of each job's last chunk.
-- name: JobFinishMany :many
UPDATE jobs j
SET status = f.status,
    finish_reason = f.finish_reason,
    error = f.error::jsonb,
    usage = f.usage::jsonb,
    finished_at = now(),
    lease_owner = NULL,
    lease_expires_at = NULL
FROM unnest(@ids::uuid[], @attempts::integer[], @statuses::text[], @finish_reasons::text[],
            @errors::text[], @usages::text[]) AS f(id, attempt, status, finish_reason, error, usage)
WHERE j.id = f.id AND j.attempt = f.attempt
  AND j.lease_owner = @owner::text AND j.status = 'running'
RETURNING j.id;

-- JobEventCancelRequested records a cancel request in the audit trail,
-- whatever the job's status (so also when it then completes). No row: no
-- such job for this tenant. It locks the job's row (FOR NO KEY UPDATE,
-- which the cancel's update takes anyway) before the event's trigger takes
-- the job's event-chain lock: every path takes the row first, so none
-- deadlocks with the chunk writer, which holds the row FOR SHARE when it
-- writes a finish's event.
-- name: JobEventCancelRequested :execrows
INSERT INTO job_events (job_id, tenant, event, from_status, attempt, lease_owner, actor, reason)
SELECT id, tenant, 'cancel_requested', status, attempt, lease_owner, @actor::text, sqlc.narg('reason')::text
FROM jobs
WHERE id = @id AND tenant = @tenant
FOR NO KEY UPDATE;

-- JobEventsCancelRequestedForKey records, for every queued or running job
-- an API key submitted, a cancel request by actor (who revoked the key),
-- reason key_revoked. Uses jobs_api_key_active_idx. Locks the rows first,
-- in id order, as JobEventCancelRequested does.
-- name: JobEventsCancelRequestedForKey :execrows
INSERT INTO job_events (job_id, tenant, event, from_status, attempt, lease_owner, actor, reason)
SELECT id, tenant, 'cancel_requested', status, attempt, lease_owner, @actor::text, 'key_revoked'
FROM jobs
WHERE api_key_id = @api_key_id AND status IN ('queued', 'running')
ORDER BY id
FOR NO KEY UPDATE;

-- JobLockQueuedForKey locks an API key's queued jobs until the end of the
-- transaction, oldest first, so they can be cancelled (JobCancelQueued):
-- no worker claims them meanwhile (the claim skips locked rows), and a
-- job a claim holds is waited for and then, running, left out.
-- name: JobLockQueuedForKey :many
SELECT id FROM jobs
WHERE api_key_id = @api_key_id AND status = 'queued'
ORDER BY id
FOR UPDATE;

-- JobRequestCancelForKey asks the workers running an API key's jobs to
-- stop them (their heartbeat sees cancel_requested_at; the caller also
-- NOTIFYs them).
-- name: JobRequestCancelForKey :many
UPDATE jobs
SET cancel_requested_at = coalesce(cancel_requested_at, now())
WHERE api_key_id = @api_key_id AND status = 'running'
RETURNING id;

-- AuditSet names the actor (and, when not empty, the event) that the
-- jobs_audit trigger records for the rest of the transaction.
-- name: AuditSet :exec
SELECT set_config('jobstream.actor', @actor::text, true), set_config('jobstream.event', @event::text, true);

-- JobRequestCancel records a cancel request. It never moves a job
-- backwards: a finished job keeps its status, which the caller reports.
-- name: JobRequestCancel :one
UPDATE jobs
SET cancel_requested_at = coalesce(cancel_requested_at, now())
WHERE id = @id AND tenant = @tenant
RETURNING status;

-- JobLockQueued locks a tenant's queued job until the end of the
-- transaction, so it can be cancelled: no worker can claim it meanwhile
-- (the claim skips locked rows). No row: not queued, or not found.
-- name: JobLockQueued :one
SELECT id FROM jobs
WHERE id = @id AND tenant = @tenant AND status = 'queued'
FOR UPDATE;

-- JobCancelQueued cancels a queued job locked by JobLockQueued, after its
-- finish chunk was appended in the same transaction (ChunkAppendLocked).
-- name: JobCancelQueued :exec
UPDATE jobs
SET status = 'cancelled', finish_reason = 'cancelled', finished_at = now(),
    cancel_requested_at = coalesce(cancel_requested_at, now())
WHERE id = @id AND status = 'queued';

-- ChunkAppendLocked appends one chunk after the job's last, with its chain
-- hash computed here, in SQL (job_chunk_hash, migrations/00004_chain.sql):
-- the path for the few chunks not written by a worker (the finish chunk of
-- a cancelled queued job, the rescuer's error chunk). The caller holds the
-- job row's lock (FOR UPDATE), so no other writer appends meanwhile.
-- name: ChunkAppendLocked :one
INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
SELECT @job_id, n.seq, @stream_type::text, n.data::json, job_chunk_hash(n.prev, n.seq, @stream_type::text, n.data)
FROM (
    SELECT coalesce(l.seq + 1, 0) AS seq,
           coalesce(l.hash, (SELECT chain_seed FROM jobs WHERE id = @job_id)) AS prev,
           -- data_if_first, when given, is the chunk of a job without output.
           CASE WHEN l.seq IS NULL THEN coalesce(sqlc.narg('data_if_first')::text, @data::text)
                ELSE @data::text END AS data
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (
        SELECT seq, hash FROM job_chunks WHERE job_id = @job_id ORDER BY seq DESC LIMIT 1
    ) l ON true
) n
RETURNING seq;

-- JobExpiredLock locks running jobs whose lease has expired, so exactly one
-- rescuer handles each (SKIP LOCKED). Also locks out the lost worker's
-- writer, whose fence takes FOR SHARE on the same rows.
--
-- It reads nothing but the rows it locks: whether a job has chunks is
-- decided by JobRequeue and JobFailExpired, statements that start after
-- the lock is held and so see every chunk committed before it. (A chunk
-- count computed here came from this statement's snapshot, taken before
-- the lock: a writer whose lease had just expired could commit chunks in
-- between, and the rescuer then replayed a job readers had seen output of,
-- issue 9.)
--
-- A lease counts as expired only once the database has been up for a
-- whole lease_seconds: after a restart every live worker gets one full TTL
-- to renew before its jobs are taken from it.
-- name: JobExpiredLock :many
SELECT j.id, j.attempt, j.max_attempts
FROM jobs j
WHERE j.status = 'running' AND j.lease_expires_at < now()
  AND pg_postmaster_start_time() < now() - make_interval(secs => sqlc.arg('lease_seconds')::float8)
ORDER BY j.lease_expires_at
LIMIT @max
FOR UPDATE SKIP LOCKED;

-- JobOverdueLock locks running jobs whose deadline (deadline_at, set by
-- the claim from the worker's maximum runtime) passed more than
-- grace_seconds ago, so exactly one rescuer fails each (SKIP LOCKED). Their
-- worker stops them at the deadline itself; the grace lets it, so this
-- finds only a job whose worker kept its lease but not the bound (a model
-- call that ignores cancellation). Like JobExpiredLock it reads only the
-- rows it locks, and it locks out the worker's writer (whose fence takes
-- FOR SHARE on the same rows): once failed, the worker's writes find no
-- lease.
-- name: JobOverdueLock :many
SELECT j.id, j.attempt, j.deadline_at
FROM jobs j
WHERE j.status = 'running'
  AND j.deadline_at < now() - make_interval(secs => sqlc.arg('grace_seconds')::float8)
ORDER BY j.deadline_at
LIMIT @max
FOR UPDATE SKIP LOCKED;

-- JobRequeue hands a job whose worker died before writing anything back to
-- the queue. Run under JobExpiredLock's row lock, its check for chunks
-- sees every chunk ever committed (writers need the same row FOR SHARE):
-- a job with output is never replayed. Zero rows: it has chunks; fail it.
-- name: JobRequeue :execrows
UPDATE jobs j
SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL
WHERE j.id = @id AND j.attempt = @attempt AND j.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id);

-- JobFailExpired fails a job whose worker died, locked by JobExpiredLock,
-- or that ran past its deadline, locked by JobOverdueLock, after its error
-- finish chunk was appended in the same transaction (ChunkAppendLocked,
-- whose seq says whether the job had output and so which error it got).
-- name: JobFailExpired :exec
UPDATE jobs
SET status = 'failed', finish_reason = 'error', finished_at = now(),
    error = @error::jsonb, lease_owner = NULL, lease_expires_at = NULL
WHERE id = @id AND attempt = @attempt AND status = 'running';

-- SetLockTimeout bounds lock waits for the rest of the transaction
-- (timeout like '500ms' or '500', in milliseconds). A lock wait past it
-- fails the statement with lock_not_available, and the connection stays
-- usable, unlike a cancelled context.
-- name: SetLockTimeout :exec
SELECT set_config('lock_timeout', @timeout::text, true);

-- name: Notify :exec
SELECT pg_notify(@channel::text, @payload::text);

-- NotifyMany sends one NOTIFY per payload in one statement: a writer's
-- commit for 1,000 jobs carries five payloads, and a statement each was
-- four round trips more per commit.
-- name: NotifyMany :exec
SELECT pg_notify(@channel::text, p) FROM unnest(@payloads::text[]) AS p;
