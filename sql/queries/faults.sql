-- Queries for surviving faults: handing jobs back at shutdown.

-- JobHandBack returns a job to the queue because its worker is shutting
-- down before the job wrote any chunk (the model had not answered yet), so
-- another node runs it from the start instead of it failing. Fenced on the
-- lease (owner and attempt) and on the job having no chunk, so output a
-- reader may have seen is never replayed. max_attempts grows by one: a
-- hand-back does not count against the job's attempts. attempt itself
-- stays monotonic, since it is the fencing token of every lease.
-- name: JobHandBack :execrows
UPDATE jobs j
SET status = 'queued',
    lease_owner = NULL,
    lease_expires_at = NULL,
    max_attempts = j.max_attempts + 1
WHERE j.id = @id AND j.attempt = @attempt
  AND j.lease_owner = @owner::text AND j.status = 'running'
  AND NOT EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id);
