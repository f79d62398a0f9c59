-- Queries of the OpenAI Responses surface. Every one is filtered by the
-- job's tenant and skips deleted responses: both read as "no rows".

-- name: ResponseInsert :exec
INSERT INTO responses (job_id, meta, input) VALUES (@job_id, @meta, @input);

-- ResponseGet returns a response's request fields with its job's status.
-- name: ResponseGet :one
SELECT j.status, j.finish_reason, j.created_at, r.meta
FROM responses r
JOIN jobs j ON j.id = r.job_id
WHERE r.job_id = @id AND j.tenant = @tenant AND r.deleted_at IS NULL;

-- name: ResponseInput :one
SELECT r.input
FROM responses r
JOIN jobs j ON j.id = r.job_id
WHERE r.job_id = @id AND j.tenant = @tenant AND r.deleted_at IS NULL;

-- ResponseDelete hides a response. The job and its chunks are not touched
-- (chunks are append-only; retention removes them with the job).
-- name: ResponseDelete :one
UPDATE responses r
SET deleted_at = now()
FROM jobs j
WHERE r.job_id = @id AND j.id = r.job_id AND j.tenant = @tenant AND r.deleted_at IS NULL
RETURNING r.job_id;
