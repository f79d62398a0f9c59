-- Who read a job's content (README.md, "Guarantees").
--
-- A read of a job's content through the API (its chunks by long-poll, SSE
-- or SEMOSS polling, its transcript, audit trail, verification, Response
-- object, input items, pixel result) is recorded as a job_events row
-- 'accessed': actor the API key (api_key:<id>, or tenant:<t> in dev mode),
-- reason what was read first, detail the UTC hour and the request. At most
-- one per (job, actor, UTC hour), so a client polling a job every 100 ms
-- leaves one event an hour, not 36,000.
--
-- job_access holds that dedupe, in the database so that it holds across
-- nodes: the server inserts (job, actor, hour) with ON CONFLICT DO NOTHING
-- and writes the event only when the row was new, in one statement
-- (JobAccessRecord in sql/queries/access.sql). The hour is the database's
-- (date_trunc of now() in UTC), never the caller's. A row is worth nothing
-- once its hour has passed but costs little (one per key, job and hour of
-- reading, as many as the events); it goes with its job when retention
-- deletes the job (ON DELETE CASCADE: the cascade runs as this table's
-- owner, so jobstream_retention needs no privilege here).
--
-- Analyst creation and removal, key creation and revocation are admin
-- events already (00040's triggers); exports are recorded by `jobstream
-- export` (admin_events, event 'export').

-- +goose Up
CREATE TABLE job_access (
    job_id uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- api_key:<id>, or tenant:<t> for a dev-mode client.
    actor  text        NOT NULL,
    -- The UTC hour (of the database's clock) of the read.
    hour   timestamptz NOT NULL,
    PRIMARY KEY (job_id, actor, hour)
);
COMMENT ON TABLE job_access IS 'dedupe of the accessed events in job_events: one per job, API key and UTC hour';

-- The server inserts (and RETURNING reads) rows; it never changes or
-- removes one.
GRANT SELECT, INSERT ON job_access TO jobstream_app;

-- +goose Down
-- The 'accessed' events stay in job_events (append-only).
DROP TABLE job_access;
