-- Reads and exports in the record (migrations/00044_access_events.sql).

-- JobAccessRecord records that @actor read the content of job @job_id of
-- @tenant (@reason: what it read), at most once per (job, actor, UTC hour
-- of the database's clock), across every node: the first read of the hour
-- inserts the job_access row and, from it, the 'accessed' event; any later
-- one conflicts on job_access's primary key and writes nothing. A job that
-- does not exist or is another tenant's writes nothing either. Returns the
-- hour it judged by (the caller keeps it, to spare the statement for the
-- rest of that hour) and whether this call wrote the event.
--
-- Locks: inserting into job_access takes FOR KEY SHARE on the job's row
-- (its foreign key), which no update of a job's life conflicts with; the
-- event's trigger (job_events_stamp) then takes the job's event-chain
-- advisory lock, after the row as every event writer does.
-- name: JobAccessRecord :one
WITH h AS (
    SELECT date_trunc('hour', now(), 'UTC') AS hour
), a AS (
    INSERT INTO job_access (job_id, actor, hour)
    SELECT j.id, @actor::text, h.hour
    FROM jobs j, h
    WHERE j.id = @job_id AND j.tenant = @tenant
    ON CONFLICT DO NOTHING
    RETURNING job_id, actor, hour
), e AS (
    INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason, detail)
    SELECT j.id, j.tenant, 'accessed', j.status, NULL, j.attempt, j.lease_owner, a.actor, @reason::text,
           jsonb_build_object('hour', to_char(a.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
           || CASE WHEN @request::text = '' THEN '{}'::jsonb ELSE jsonb_build_object('request', @request::text) END
    FROM a
    JOIN jobs j ON j.id = a.job_id AND j.tenant = @tenant
    RETURNING id
)
SELECT h.hour::timestamptz AS hour, (SELECT count(*) FROM e)::integer AS recorded
FROM h;

-- ExportRecord records an export of jobs' records (jobstream export) as an
-- admin event: who (the command's jobstream.actor, else the role), which
-- jobs (@detail: the filter) and how many. Only the owner may insert into
-- admin_events.
-- name: ExportRecord :one
INSERT INTO admin_events (event, tenant, subject, actor, detail)
VALUES ('export', @tenant::text, @subject::text, jobstream_admin_actor(), @detail::jsonb)
RETURNING seq;
