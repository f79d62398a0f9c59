-- Queries of the transparency log (migrations/00050_log.sql,
-- internal/ledger).

-- LogLock takes the log's transaction-level advisory lock if it is free:
-- one sequencer at a time across nodes. The leaves' index trigger
-- (log_leaves_stamp) waits on the same lock, so no leaf is appended while
-- the sequencer hashes. now is the transaction's start, the database's
-- clock, which the sequencer's scan of recent seals goes by.
-- name: LogLock :one
SELECT pg_try_advisory_xact_lock(7340520) AS locked, now()::timestamptz AS now;

-- LogAppendJobs appends a job leaf for each ended job without one, after
-- the keyset (end time, id) (after_ended, after_id), in that order, at most
-- max; it returns how many it appended and the keyset of the last it
-- looked at (the epoch and the nil id when none). Leaves are inserted in the order of the
-- jobs' ids; their index and time come from log_leaves_stamp, under the
-- lock LogLock took. Whether a job has a leaf is probed per job through
-- log_leaves_job_idx (a correlated subquery, so the planner never picks a
-- nested loop over the whole log when its statistics lag), and the unique
-- index makes a second leaf for a job impossible.
-- name: LogAppendJobs :one
WITH s AS (
    SELECT j.id, coalesce(j.finished_at, j.created_at) AS ended
    FROM jobs j
    WHERE j.status IN ('completed', 'failed', 'cancelled')
      AND (coalesce(j.finished_at, j.created_at), j.id) > (@after_ended::timestamptz, @after_id::uuid)
      AND (SELECT l.idx FROM log_leaves l WHERE l.kind = 'job' AND l.job_id = j.id) IS NULL
    ORDER BY coalesce(j.finished_at, j.created_at), j.id
    LIMIT @max::integer
), ins AS (
    INSERT INTO log_leaves (kind, leaf, job_id)
    SELECT 'job', v.leaf, v.id
    FROM s JOIN jobstream_log_job_leaves v ON v.id = s.id
    ORDER BY s.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::bigint AS appended,
       coalesce((SELECT s.ended FROM s ORDER BY s.ended DESC, s.id DESC LIMIT 1), 'epoch')::timestamptz AS last_ended,
       coalesce((SELECT s.id FROM s ORDER BY s.ended DESC, s.id DESC LIMIT 1), '00000000-0000-0000-0000-000000000000')::uuid AS last_id;

-- LogHashCount is the number of stored hashes (tlog.StoredHashCount of
-- the tree's size).
-- name: LogHashCount :one
SELECT coalesce(max(idx) + 1, 0)::bigint AS n FROM log_hashes;

-- LogLeavesFrom returns up to max leaves from index first on, in index
-- order.
-- name: LogLeavesFrom :many
SELECT idx, kind, leaf, job_id, at FROM log_leaves
WHERE idx >= @first::bigint
ORDER BY idx
LIMIT @max::integer;

-- LogHashesRead returns the stored hashes of the given indexes.
-- name: LogHashesRead :many
SELECT idx, hash FROM log_hashes WHERE idx = ANY (@idx::bigint[]);

-- LogHashesInsert stores hashes at their indexes in one statement.
-- name: LogHashesInsert :exec
INSERT INTO log_hashes (idx, hash)
SELECT u.i, u.h FROM unnest(@idx::bigint[], @hashes::bytea[]) AS u(i, h);

-- LogCheckpointLatest is the checkpoint of the largest tree.
-- name: LogCheckpointLatest :one
SELECT tree_size, root, note, at FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1;

-- LogCheckpointInsert keeps a signed checkpoint.
-- name: LogCheckpointInsert :exec
INSERT INTO log_checkpoints (tree_size, root, note) VALUES (@tree_size, @root, @note);

-- LogJobLeaf returns the job leaf of a job of tenant (any when NULL).
-- name: LogJobLeaf :one
SELECT l.idx, l.kind, l.leaf, l.job_id, l.at FROM log_leaves l
WHERE l.kind = 'job' AND l.job_id = @job_id
  AND (sqlc.narg('tenant')::text IS NULL
       OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.job_id AND j.tenant = sqlc.narg('tenant')::text));

-- LogSealedUnlogged returns up to 1,000 jobs that ended before before
-- and have no job leaf: what the audit reports as never logged.
-- name: LogSealedUnlogged :many
SELECT j.id FROM jobs j
WHERE j.status IN ('completed', 'failed', 'cancelled')
  AND coalesce(j.finished_at, j.created_at) < @before::timestamptz
  AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.kind = 'job' AND l.job_id = j.id)
ORDER BY j.id
LIMIT 1000;

-- LogJobsPresent returns which of ids have a job row.
-- name: LogJobsPresent :many
SELECT id FROM jobs WHERE id = ANY (@ids::uuid[]);

-- LogJobRow returns what an audit compares with a job's leaf: the job's
-- row as stored now, its request as its stored text.
-- name: LogJobRow :one
SELECT id, tenant, engine, request::text AS request, chain_version, status, chunk_count, final_hash,
       created_at, finished_at, request_sha256, erased_at
FROM jobs WHERE id = @id;

-- LogChunkHashes returns a job's stored chunk hashes in seq order: an
-- erased job's leaf commits to them (their SHA-256), its data being gone.
-- name: LogChunkHashes :many
SELECT hash FROM job_chunks WHERE job_id = @job_id ORDER BY seq;

-- LogJobEventHash returns the hash of a job's event seq.
-- name: LogJobEventHash :one
SELECT hash FROM job_events WHERE job_id = @job_id AND seq = @seq;
