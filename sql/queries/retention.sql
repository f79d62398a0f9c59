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

-- HoldPlaceTenant places (or renews) a hold with tenant authority on a job
-- of @tenant; no row when the tenant has no such job. Locks the job FOR
-- KEY SHARE, then the hold's row.
--
-- Legal holds are placed and lifted only through the functions of
-- migrations/00042_hold_authority.sql: the server's role may read job_holds
-- but not write it, and may execute only the tenant functions. Each locks
-- the job FOR KEY SHARE, then the hold's row: a retention pass locks its
-- jobs FOR UPDATE before it checks holds, so a hold either commits before
-- that check or waits for the pass and is then refused (SQLSTATE JS409).
-- Triggers on job_holds write the hold_placed / hold_lifted events.
-- name: HoldPlaceTenant :one
SELECT h.job_id::uuid AS job_id, h.reason::text AS reason, h.held_by::text AS held_by,
       h.authority::text AS authority, h.held_at::timestamptz AS held_at
FROM jobstream_hold_place_tenant(@id::uuid, @tenant::text, @reason::text, @actor::text) AS h;

-- HoldLiftTenant lifts a tenant-authority hold on a job of @tenant and
-- returns it; no row when the job is not held. An operator's hold is
-- refused (SQLSTATE JS403, detail: who placed it). Locks the job FOR KEY
-- SHARE, then the hold's row FOR UPDATE.
-- name: HoldLiftTenant :one
SELECT h.job_id::uuid AS job_id, h.reason::text AS reason, h.held_by::text AS held_by,
       h.authority::text AS authority, h.held_at::timestamptz AS held_at
FROM jobstream_hold_lift_tenant(@id::uuid, @tenant::text, @actor::text) AS h;

-- HoldPlaceOperator places (or renews, or takes over from the tenant) a
-- hold with operator authority on any tenant's job; only the owner may.
-- Locks as HoldPlaceTenant.
-- name: HoldPlaceOperator :one
SELECT h.job_id::uuid AS job_id, h.reason::text AS reason, h.held_by::text AS held_by,
       h.authority::text AS authority, h.held_at::timestamptz AS held_at
FROM jobstream_hold_place_operator(@id::uuid, @reason::text, @actor::text) AS h;

-- HoldLiftOperator lifts any hold on any tenant's job and returns it; no
-- row when the job is not held. Only the owner may. Locks as
-- HoldLiftTenant.
-- name: HoldLiftOperator :one
SELECT h.job_id::uuid AS job_id, h.reason::text AS reason, h.held_by::text AS held_by,
       h.authority::text AS authority, h.held_at::timestamptz AS held_at
FROM jobstream_hold_lift_operator(@id::uuid, @actor::text) AS h;

-- name: HoldList :many
SELECT h.job_id, j.tenant, h.reason, h.held_by, h.authority, h.held_at
FROM job_holds h JOIN jobs j ON j.id = h.job_id
WHERE (sqlc.narg('tenant')::text IS NULL OR j.tenant = sqlc.narg('tenant'))
ORDER BY h.job_id;
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
