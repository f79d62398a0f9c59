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

-- JobChainGet returns what verifying a job needs from its row. tenant NULL
-- matches any tenant (the CLI); the API passes the key's.
-- name: JobChainGet :one
SELECT id, status, chunk_count, final_hash
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

-- JobEventPage is one page of a job's audit trail, oldest first: up to @max
-- events after event @after_id (keyset on job_events_job_idx (job_id, id),
-- so a page costs the same at any depth).
-- name: JobEventPage :many
SELECT id, job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason, detail, db_role, at
FROM job_events
WHERE job_id = @job_id AND id > @after_id
ORDER BY id
LIMIT @max;
