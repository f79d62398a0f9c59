-- Queries for tamper evidence, the audit trail and export.

-- AppRoleUse makes the connection work as jobstream_app (SET ROLE), the
-- role that may insert chunks but never change or delete them
-- (migrations/00005_append_only.sql), when that role exists and the
-- connecting role may use it; otherwise the connection stays as it is.
-- Returns the role the connection now works as.
-- name: AppRoleUse :one
SELECT (CASE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN current_user::text
             WHEN pg_has_role(session_user, 'jobstream_app', 'MEMBER') THEN set_config('role', 'jobstream_app', false)
             ELSE current_user::text END)::text AS role;

-- JobChainGet returns what verifying a job needs from its row: what its
-- seed is recomputed from (request as its stored text), the seed stored
-- with it, its status and its seal. tenant NULL
-- matches any tenant (the CLI); the API passes the key's.
-- An erased job (migrations/00051_erase.sql) is verified from its stored
-- request_sha256, since its request text is gone.
-- name: JobChainGet :one
SELECT id, tenant, engine, request::text AS request, chain_version, chain_seed, status, chunk_count, final_hash,
       request_sha256, erased_at, erased_by, erase_reason
FROM jobs
WHERE id = @id AND (sqlc.narg('tenant')::text IS NULL OR tenant = sqlc.narg('tenant')::text);

-- ChunkChainList returns a job's chunks in seq order with their text
-- exactly as stored (data::text of a json column is its input verbatim),
-- which is what the chain hashes.
-- name: ChunkChainList :many
SELECT seq, stream_type, data::text AS data, hash, created_at
FROM job_chunks
WHERE job_id = @job_id
ORDER BY seq;

-- JobIDsPage pages through job ids in id order (UUIDv7: creation order)
-- for verify --all and export: jobs created at or after since, of tenant
-- unless it is NULL, after the id after (keyset).
-- name: JobIDsPage :many
SELECT id
FROM jobs
WHERE created_at >= @since::timestamptz
  AND (sqlc.narg('tenant')::text IS NULL OR tenant = sqlc.narg('tenant')::text)
  AND id > @after
ORDER BY id
LIMIT @max;

-- name: JobGetAny :one
SELECT * FROM jobs WHERE id = @id;

-- JobEventList is a job's audit trail, oldest first.
-- name: JobEventList :many
SELECT id, job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason, detail, db_role, at
FROM job_events
WHERE job_id = @job_id
ORDER BY id;

-- JobEventChainList is a job's audit trail in seq order with every field
-- its hash covers, as text (NULL as ''), for verifying its chain.
-- name: JobEventChainList :many
SELECT seq, event, coalesce(from_status, '')::text AS from_status, coalesce(to_status, '')::text AS to_status,
       coalesce(attempt::text, '')::text AS attempt, coalesce(lease_owner, '')::text AS lease_owner,
       actor, coalesce(reason, '')::text AS reason, coalesce(detail::text, '')::text AS detail,
       tenant, db_role, at, hash
FROM job_events
WHERE job_id = @job_id
ORDER BY seq;

-- ChunkOrphans lists the job ids that have chunks but no job row (every
-- write path refuses them since migration 00040; an owner with triggers
-- off could still insert some): verify --all reports them.
-- name: ChunkOrphans :many
SELECT DISTINCT c.job_id
FROM job_chunks c
WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)
ORDER BY c.job_id
LIMIT 1000;

-- JobEventPage is one page of a job's audit trail, oldest first: up to @max
-- events after event @after_id (keyset on job_events_job_idx (job_id, id),
-- so a page costs the same at any depth).
-- name: JobEventPage :many
SELECT id, job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason, detail, db_role, at
FROM job_events
WHERE job_id = @job_id AND id > @after_id
ORDER BY id
LIMIT @max;
