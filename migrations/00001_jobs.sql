-- jobstream's core schema: jobs, their streamed chunks, and an audit trail
-- of state transitions. See README.md ("Data model") for the state machine.

-- +goose Up
CREATE TABLE jobs (
    -- UUIDv7: time-ordered, so "ORDER BY id" is submission order and keyset
    -- pagination needs no extra index.
    id                  uuid        PRIMARY KEY,
    -- Every read is filtered by tenant; a job of another tenant is
    -- indistinguishable from a job that does not exist.
    tenant              text        NOT NULL,
    api_key_id          uuid,
    engine              text        NOT NULL,
    room_id             text,
    -- The request as submitted: {"command":..,"messages":[..],"params":{..}}.
    request             jsonb       NOT NULL,
    status              text        NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    -- Normalised: stop | length | tool_calls | content_filter | cancelled | error.
    -- The provider's own value is on the job's last chunk.
    finish_reason       text,
    error               jsonb,
    usage               jsonb,
    -- attempt is incremented by every claim and doubles as the lease token:
    -- worker writes are fenced on (lease_owner, attempt).
    attempt             integer     NOT NULL DEFAULT 0,
    max_attempts        integer     NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    lease_owner         text,
    lease_expires_at    timestamptz,
    cancel_requested_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    CONSTRAINT jobs_finished_iff_terminal
        CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT jobs_lease_iff_running
        CHECK ((status = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- The claim query's access path: oldest queued first.
CREATE INDEX jobs_queued_idx ON jobs (id) WHERE status = 'queued';
-- The rescuer's access path: running jobs by lease expiry.
CREATE INDEX jobs_running_lease_idx ON jobs (lease_expires_at) WHERE status = 'running';
-- Listing a tenant's jobs newest first (keyset on id).
CREATE INDEX jobs_tenant_id_idx ON jobs (tenant, id DESC);
-- Rebuilding a room's history.
CREATE INDEX jobs_room_idx ON jobs (tenant, room_id, id) WHERE room_id IS NOT NULL;

CREATE TABLE job_chunks (
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- 0, 1, 2, ... gap-free per job: assigned by the single lease holder,
    -- so it is a valid client cursor (a global sequence would not be).
    seq         integer     NOT NULL CHECK (seq >= 0),
    stream_type text        NOT NULL,
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);

-- Audit trail: one row per status transition, written by a trigger so that
-- no code path can skip it.
CREATE TABLE job_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    from_status text,
    to_status   text        NOT NULL,
    attempt     integer     NOT NULL,
    lease_owner text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

-- +goose StatementBegin
CREATE FUNCTION jobs_audit() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER jobs_audit AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_audit();

-- The transcript of a job up to (not including) seq upto: the assembly rule
-- of the README's chunk format in SQL, shared by the API and by analytics.
-- +goose StatementBegin
CREATE FUNCTION job_transcript(p_job_id uuid, p_upto integer DEFAULT 2147483647)
RETURNS TABLE (content text, thinking text, tool_calls jsonb)
LANGUAGE sql STABLE AS $$
    SELECT
        coalesce((SELECT string_agg(c.data->>'content', '' ORDER BY c.seq)
                    FROM job_chunks c
                   WHERE c.job_id = p_job_id AND c.seq < p_upto
                     AND c.stream_type = 'content' AND c.data ? 'content'), ''),
        coalesce((SELECT string_agg(c.data->>'thinking', '' ORDER BY c.seq)
                    FROM job_chunks c
                   WHERE c.job_id = p_job_id AND c.seq < p_upto
                     AND c.stream_type = 'thinking' AND c.data ? 'thinking'), ''),
        coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'index', t.idx, 'id', t.id, 'type', t.type,
                            'function', jsonb_build_object('name', t.name, 'arguments', t.args))
                        ORDER BY t.idx)
                    FROM (SELECT (c.data->>'index')::int AS idx,
                                 max(c.data->>'id') AS id,
                                 coalesce(max(c.data->>'type'), 'function') AS type,
                                 max(c.data->'function'->>'name') AS name,
                                 coalesce(string_agg(c.data->'function'->>'arguments', '' ORDER BY c.seq), '') AS args
                            FROM job_chunks c
                           WHERE c.job_id = p_job_id AND c.seq < p_upto
                             AND c.stream_type = 'tool' AND c.data ? 'index'
                           GROUP BY 1) t), '[]'::jsonb)
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION job_transcript(uuid, integer);
DROP TABLE job_events;
DROP FUNCTION jobs_audit() CASCADE;
DROP TABLE job_chunks;
DROP TABLE jobs;
