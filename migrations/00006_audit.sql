-- Audit trail with actors: job_events records every transition of a job
-- (and every cancel request, which need not change its status) with what
-- happened, who did it and when. It outlives the job: no foreign key, so
-- neither retention deleting a job nor anything else removes its events
-- (00005 makes the table append-only).
--
-- Events (event column):
--   created           a client submitted the job        actor api_key:<id> | tenant:<t>
--   claimed           a worker took it                   actor worker:<lease owner>
--   handed_back       its worker shut down before output actor worker:<lease owner>
--   lease_expired     a rescuer took it from a lost worker (to_status queued or failed)
--                                                        actor rescuer:<its worker id>
--   cancel_requested  a client asked to stop it          actor api_key:<id>; reason: how
--                     (StopPixelExecution, or NULL for the native API). Recorded
--                     whatever the job's status, so also when it then completes.
--   completed, failed, cancelled   it ended              actor worker:<lease owner>, or
--                     the cancelling client for a queued job; reason: finish reason,
--                     error type or cancel_requested
--   retention_deleted retention removed it and its chunks (written by retention)
--
-- Writers name the actor (and may override the event) for their
-- transaction with set_config('jobstream.actor' / 'jobstream.event', ..,
-- true); the trigger falls back to what the row says.

-- +goose Up
ALTER TABLE job_events DROP CONSTRAINT job_events_job_id_fkey;
ALTER TABLE job_events
    ALTER COLUMN to_status DROP NOT NULL,
    ALTER COLUMN attempt DROP NOT NULL,
    ADD COLUMN tenant  text,
    ADD COLUMN event   text,
    ADD COLUMN actor   text,
    ADD COLUMN reason  text,
    ADD COLUMN detail  jsonb,
    -- The database role that made the change (jobstream_app for the
    -- server; a person's role for a change made with psql).
    ADD COLUMN db_role text NOT NULL DEFAULT current_user;

ALTER TABLE job_events DISABLE TRIGGER job_events_append_only;
UPDATE job_events e
SET tenant = j.tenant,
    event = CASE WHEN e.from_status IS NULL THEN 'created'
                 WHEN e.to_status = 'running' THEN 'claimed'
                 WHEN e.to_status = 'queued' THEN 'requeued'
                 ELSE e.to_status END,
    actor = CASE WHEN e.lease_owner IS NOT NULL THEN 'worker:' || e.lease_owner ELSE 'unknown' END
FROM jobs j
WHERE j.id = e.job_id;
UPDATE job_events SET tenant = '', event = coalesce(event, to_status, 'unknown'), actor = 'unknown' WHERE tenant IS NULL;
ALTER TABLE job_events ENABLE TRIGGER job_events_append_only;

ALTER TABLE job_events
    ALTER COLUMN tenant SET NOT NULL,
    ALTER COLUMN event SET NOT NULL,
    ALTER COLUMN actor SET NOT NULL;
CREATE INDEX job_events_tenant_at_idx ON job_events (tenant, at);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION jobs_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    set_actor text := nullif(current_setting('jobstream.actor', true), '');
    set_event text := nullif(current_setting('jobstream.event', true), '');
    ev        text;
    why       text;
    who       text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor)
        VALUES (NEW.id, NEW.tenant, 'created', NULL, NEW.status, NEW.attempt, NEW.lease_owner,
                coalesce(set_actor, CASE WHEN NEW.api_key_id IS NOT NULL THEN 'api_key:' || NEW.api_key_id
                                         ELSE 'tenant:' || NEW.tenant END));
        RETURN NULL;
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    ev := coalesce(set_event, CASE NEW.status WHEN 'running' THEN 'claimed'
                                              WHEN 'queued' THEN 'requeued'
                                              ELSE NEW.status END);
    why := CASE WHEN ev = 'lease_expired' THEN 'lease_expired'
                WHEN NEW.status = 'completed' THEN NEW.finish_reason
                WHEN NEW.status = 'failed' THEN coalesce(NEW.error->>'type', NEW.finish_reason)
                WHEN NEW.status = 'cancelled' THEN 'cancel_requested' END;
    who := coalesce(set_actor,
                    CASE WHEN coalesce(NEW.lease_owner, OLD.lease_owner) IS NOT NULL
                         THEN 'worker:' || coalesce(NEW.lease_owner, OLD.lease_owner)
                         ELSE 'db_role:' || current_user END);
    INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason)
    VALUES (NEW.id, NEW.tenant, ev, OLD.status, NEW.status, NEW.attempt,
            coalesce(NEW.lease_owner, OLD.lease_owner), who, why);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION jobs_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_events (job_id, from_status, to_status, attempt, lease_owner)
        VALUES (NEW.id, NULL, NEW.status, NEW.attempt, NEW.lease_owner);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO job_events (job_id, from_status, to_status, attempt, lease_owner)
        VALUES (NEW.id, OLD.status, NEW.status, NEW.attempt, coalesce(NEW.lease_owner, OLD.lease_owner));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP INDEX job_events_tenant_at_idx;
ALTER TABLE job_events DISABLE TRIGGER job_events_append_only;
DELETE FROM job_events WHERE to_status IS NULL OR attempt IS NULL OR job_id NOT IN (SELECT id FROM jobs);
ALTER TABLE job_events ENABLE TRIGGER job_events_append_only;
ALTER TABLE job_events
    DROP COLUMN tenant, DROP COLUMN event, DROP COLUMN actor, DROP COLUMN reason,
    DROP COLUMN detail, DROP COLUMN db_role,
    ALTER COLUMN to_status SET NOT NULL,
    ALTER COLUMN attempt SET NOT NULL;
ALTER TABLE job_events ADD CONSTRAINT job_events_job_id_fkey
    FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE;
