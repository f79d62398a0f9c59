-- Queries of retention: partitions, policies, legal holds. The removal
-- itself runs in SECURITY DEFINER functions (migrations/00040_integrity.sql),
-- since the server's role may not delete chunks; they judge by the
-- database's clock and its retention_settings, never by what a caller
-- passes.

-- PartitionsEnsure creates the missing day partitions of job_chunks for
-- @days UTC days from @from_day, and returns the names it created.
-- name: PartitionsEnsure :many
SELECT p::text AS name FROM jobstream_chunk_partitions_ensure(@from_day::date, @days::integer) AS p;

-- RetentionPlan lists the day partitions wholly past the retention horizon
-- at @now, with their jobs and the jobs that must be kept (read-only: a
-- dry run may look at any time).
-- name: RetentionPlan :many
SELECT p.partition::text AS partition, p.lo::uuid AS lo, p.hi::uuid AS hi,
       p.jobs::bigint AS jobs, p.keep::bigint AS keep
FROM jobstream_retention_plan(@now::timestamptz) AS p;

-- RetentionRangeChunks counts the chunks of the jobs in [lo, hi): one
-- partition's, by partition pruning.
-- name: RetentionRangeChunks :one
SELECT count(*) FROM job_chunks WHERE job_id >= @lo::uuid AND job_id < @hi::uuid;

-- RetentionDropPartition drops a day partition whose jobs have all expired,
-- judged now, recording their removal and @ran_by; -1 when it must stay.
-- name: RetentionDropPartition :one
SELECT coalesce(jobstream_retention_drop_partition(@partition::text, @ran_by::text), -1)::bigint AS jobs;

-- RetentionDeleteBatch deletes up to @max expired, unheld jobs with their
-- chunks, oldest first, judged now, recording each removal and @ran_by.
-- name: RetentionDeleteBatch :many
SELECT b.job_id::uuid AS job_id, b.tenant::text AS tenant, b.chunks::bigint AS chunks, b.recorded::boolean AS recorded
FROM jobstream_retention_delete_batch(@max::integer, @ran_by::text) AS b;

-- RetentionExpiredList is what RetentionDeleteBatch would delete, oldest
-- first, for a dry run: expired and not held, @max at most, starting
-- after @after_id.
-- name: RetentionExpiredList :many
SELECT j.id, j.tenant,
       (SELECT count(*) FROM job_chunks c WHERE c.job_id = j.id)::bigint AS chunks
FROM jobs j
WHERE j.id < jobstream_retention_horizon(@now::timestamptz)
  AND j.id > @after_id::uuid
  AND jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, @now::timestamptz)
  AND NOT EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id)
ORDER BY j.id
LIMIT @max;

-- RetentionTryLead takes the session advisory lock that makes one node at
-- a time run retention; false when another node holds it.
-- name: RetentionTryLead :one
SELECT pg_try_advisory_lock(7340503);

-- name: RetentionUnlead :exec
SELECT pg_advisory_unlock(7340503);

-- name: PolicySet :one
INSERT INTO retention_policies (tenant, keep_days)
VALUES (@tenant, @keep_days)
ON CONFLICT (tenant) DO UPDATE SET keep_days = EXCLUDED.keep_days, updated_at = now()
RETURNING *;

-- name: PolicyDelete :execrows
DELETE FROM retention_policies WHERE tenant = @tenant;

-- name: PolicyList :many
SELECT * FROM retention_policies ORDER BY tenant;

-- HoldLockJob takes FOR KEY SHARE on the job to be held (of @tenant when
-- given): a retention pass locks its jobs FOR UPDATE before it checks
-- holds, so a hold either commits before that check or waits for the pass
-- and then sees its retention event (HoldInsert).
-- name: HoldLockJob :one
SELECT j.id FROM jobs j
WHERE j.id = @id AND (sqlc.narg('tenant')::text IS NULL OR j.tenant = sqlc.narg('tenant'))
FOR KEY SHARE;

-- HoldInsert places the hold, in a statement after HoldLockJob (a newer
-- snapshot). No row when retention is already removing the job. Holding a
-- held job keeps its first time and holder and updates a given reason.
-- name: HoldInsert :one
INSERT INTO job_holds (job_id, reason, held_by)
SELECT @id, @reason, @held_by
WHERE NOT jobstream_retention_recorded(@id)
ON CONFLICT (job_id) DO UPDATE
SET reason = CASE WHEN EXCLUDED.reason <> '' THEN EXCLUDED.reason ELSE job_holds.reason END
RETURNING *;

-- name: HoldDelete :execrows
DELETE FROM job_holds h
USING jobs j
WHERE h.job_id = @id AND j.id = h.job_id
  AND (sqlc.narg('tenant')::text IS NULL OR j.tenant = sqlc.narg('tenant'));

-- name: HoldList :many
SELECT h.job_id, j.tenant, h.reason, h.held_by, h.held_at
FROM job_holds h JOIN jobs j ON j.id = h.job_id
WHERE (sqlc.narg('tenant')::text IS NULL OR j.tenant = sqlc.narg('tenant'))
ORDER BY h.job_id;

-- JobEventHold records a legal hold placed (event hold_placed, with its
-- reason) or lifted (hold_lifted) in the job's audit trail, in the same
-- transaction as the change to job_holds.
-- name: JobEventHold :exec
INSERT INTO job_events (job_id, tenant, event, from_status, attempt, lease_owner, actor, reason)
SELECT id, tenant, @event::text, status, attempt, lease_owner, @actor::text, sqlc.narg('reason')::text
FROM jobs
WHERE id = @id;

-- RetentionClock is the database's clock, which every deleting pass judges
-- by.
-- name: RetentionClock :one
SELECT now()::timestamptz AS now;

-- name: RetentionSettingsGet :one
SELECT default_days, min_days, updated_at FROM retention_settings;

-- RetentionSettingsSet changes the server-wide default and minimum (NULL
-- keeps one). Only the owner may (the server's role reads it only); the
-- change is an admin event (trigger admin_events_record).
-- name: RetentionSettingsSet :one
UPDATE retention_settings
SET default_days = coalesce(sqlc.narg('default_days')::integer, default_days),
    min_days = coalesce(sqlc.narg('min_days')::integer, min_days)
RETURNING default_days, min_days, updated_at;
