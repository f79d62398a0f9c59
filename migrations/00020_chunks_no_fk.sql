-- job_chunks loses its foreign key to jobs. Every statement that writes a
-- chunk already proves its job exists, more strictly than the key did: the
-- chunk writer's fence (JobLeaseHeld) locks the job row FOR SHARE and
-- checks the lease in the same transaction, and the rescuer's and a
-- queued job's cancel insert from the UPDATE of the job row. The key's
-- check was the largest part of a group commit: 442 of 671 ms for a
-- 4,000-row batch of 1,000 jobs (EXPLAIN ANALYZE, "Trigger for constraint
-- job_chunks_job_id_fkey: calls=4000"; see sql/commit_breakdown.sql),
-- one locking lookup per row.
--
-- Deleting a job still deletes its chunks (the key's ON DELETE CASCADE),
-- now by a statement-level trigger: one DELETE per statement, not per row.
-- Like the key's cascade, it runs with the table owner's rights (SECURITY
-- DEFINER), so a role that may delete jobs but not chunks (retention as
-- the app role) deletes a job's chunks with it, as before.

-- +goose Up
ALTER TABLE job_chunks DROP CONSTRAINT job_chunks_job_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION jobs_delete_chunks() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM job_chunks c USING deleted d WHERE c.job_id = d.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER jobs_delete_chunks AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_delete_chunks();

-- +goose Down
DROP TRIGGER jobs_delete_chunks ON jobs;
DROP FUNCTION jobs_delete_chunks();
DELETE FROM job_chunks c WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id);
ALTER TABLE job_chunks ADD CONSTRAINT job_chunks_job_id_fkey
    FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE;
