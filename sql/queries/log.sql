-- Queries of the transparency log (migrations/00050_log.sql,
-- internal/ledger).

-- LogLock takes the log's transaction-level advisory lock if it is free:
-- one sequencer at a time across nodes (jobstream_log_sequence and
-- jobstream_log_checkpoint take it too, so nothing else numbers, hashes or
-- signs meanwhile; appending a leaf takes no lock). now is the
-- transaction's start, the database's clock, which the sequencer's scan of
-- recent seals goes by.
-- name: LogLock :one
SELECT pg_try_advisory_xact_lock(7340520) AS locked, now()::timestamptz AS now;

-- LogAppendJobs appends a job leaf for each ended job without one, after
-- the keyset (end time, id) (after_ended, after_id), in that order, at most
-- max (migrations/00050_log.sql: the function computes each leaf itself
-- and inserts it unnumbered); it returns how many it appended and the
-- keyset of the last job it looked at.
-- name: LogAppendJobs :one
SELECT coalesce(a.appended, 0)::bigint AS appended, coalesce(a.last_ended, 'epoch')::timestamptz AS last_ended,
       coalesce(a.last_id, '00000000-0000-0000-0000-000000000000')::uuid AS last_id
FROM jobstream_log_append_jobs(@after_ended::timestamptz, @after_id::uuid, @max::integer) a;

-- LogSequenceStep numbers the committed unnumbered leaves in insertion
-- order and hashes up to max numbered leaves into the tree, in index order,
-- under the log's lock (jobstream_log_sequence computes every hash).
-- name: LogSequenceStep :one
SELECT coalesce(s.numbered, 0)::bigint AS numbered, coalesce(s.hashed, 0)::bigint AS hashed,
       coalesce(s.tree_size, 0)::bigint AS tree_size
FROM jobstream_log_sequence(@max::integer) s;

-- LogHashCount is the number of stored hashes (tlog.StoredHashCount of
-- the tree's size).
-- name: LogHashCount :one
SELECT coalesce(max(idx) + 1, 0)::bigint AS n FROM log_hashes;

-- LogLeavesFrom returns up to max numbered leaves from index first on, in
-- index order.
-- name: LogLeavesFrom :many
SELECT coalesce(idx, -1)::bigint AS idx, kind, leaf, job_id, at FROM log_leaves
WHERE idx >= @first::bigint
ORDER BY idx
LIMIT @max::integer;

-- LogHashesRead returns the stored hashes of the given indexes.
-- name: LogHashesRead :many
SELECT idx, hash FROM log_hashes WHERE idx = ANY (@idx::bigint[]);

-- LogCheckpointLatest is the checkpoint of the largest tree.
-- name: LogCheckpointLatest :one
SELECT tree_size, root, note, at FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1;

-- LogCheckpointInsert keeps a signed checkpoint, under the log's lock;
-- jobstream_log_checkpoint refuses a size not hashed or not past the last
-- checkpoint, a root that is not the tree's, a note that does not state them.
-- name: LogCheckpointInsert :exec
SELECT jobstream_log_checkpoint(@tree_size::bigint, @root::bytea, @note::text);

-- LogJobLeaf returns the job leaf of a job of tenant (any when NULL).
-- name: LogJobLeaf :one
SELECT coalesce(l.idx, -1)::bigint AS idx, l.kind, l.leaf, l.job_id, l.at FROM log_leaves l
WHERE l.kind = 'job' AND l.job_id = @job_id AND l.idx IS NOT NULL
  AND (sqlc.narg('tenant')::text IS NULL
       OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.job_id AND j.tenant = sqlc.narg('tenant')::text));

-- LogSealedUnlogged returns up to 1,000 jobs that ended before before
-- and have no numbered job leaf: what the audit reports as never logged.
-- name: LogSealedUnlogged :many
SELECT j.id FROM jobs j
WHERE j.status IN ('completed', 'failed', 'cancelled')
  AND coalesce(j.finished_at, j.created_at) < @before::timestamptz
  AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.kind = 'job' AND l.job_id = j.id AND l.idx IS NOT NULL)
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
