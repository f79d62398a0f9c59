-- Analytics views and read-only analyst roles confined to one tenant by
-- row-level security (README.md, "Analysts" and "Inspecting with psql").
-- sql/analytics.sql holds the same views for reading and for psql.
--
-- An analyst is a LOGIN role, member of jobstream_analyst, mapped to one
-- tenant in the analysts table (jobstream analyst create). The policies
-- look the tenant up by current_user in that table: there is no session
-- variable a client could set to see another tenant. A member of
-- jobstream_analyst without a row sees nothing. Every other role sees
-- every row as before (the server's, and whoever else was granted access);
-- the owner and superusers bypass row-level security anyway. Views are
-- security_invoker, so they apply the caller's row-level security rather
-- than their owner's.
--
-- jobstream_analyst is cluster-wide, like every role; an analyst of one
-- database has no row in another database's analysts table, so sees
-- nothing there.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_analyst') THEN
        BEGIN
            CREATE ROLE jobstream_analyst NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by another database's migration
        END;
    END IF;
END
$$;
-- +goose StatementEnd

CREATE TABLE analysts (
    role       text        PRIMARY KEY,
    tenant     text        NOT NULL CHECK (tenant <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The tenant whose rows the current role may see, if it is an analyst;
-- NULL for an analyst without a mapping (sees nothing). It runs as the
-- caller: an analyst reads its own row of analysts (policy own_row).
CREATE FUNCTION jobstream_analyst_tenant() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT tenant FROM analysts WHERE role = current_user::text
$$;

-- Whether row-level security confines the current role to one tenant. A
-- scalar subquery in the policies, so it runs once per statement.
CREATE FUNCTION jobstream_is_analyst() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT pg_has_role('jobstream_analyst', 'MEMBER')
$$;

-- Tables with a tenant column.
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON jobs
    USING ((SELECT NOT jobstream_is_analyst()) OR tenant = (SELECT jobstream_analyst_tenant()));
ALTER TABLE retention_policies ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON retention_policies
    USING ((SELECT NOT jobstream_is_analyst()) OR tenant = (SELECT jobstream_analyst_tenant()));
ALTER TABLE analysts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_row ON analysts
    USING ((SELECT NOT jobstream_is_analyst()) OR role = current_user::text);

-- Tables of a job's rows: visible with their job (jobs' policy applies
-- inside the EXISTS). For analysts that is an index probe of jobs per row:
-- see README.md for what it costs. job_events, when it has a tenant column
-- (00006), is filtered on it, so an analyst still sees the events of the
-- tenant's jobs that retention removed.
-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['job_chunks', 'job_events', 'pixel_jobs', 'stream_cursors', 'job_holds'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = t::regclass AND attname = 'tenant' AND NOT attisdropped) THEN
            EXECUTE format('CREATE POLICY tenant_rows ON %I USING ((SELECT NOT jobstream_is_analyst()) '
                           'OR tenant = (SELECT jobstream_analyst_tenant()))', t);
        ELSE
            EXECUTE format('CREATE POLICY tenant_rows ON %I USING ((SELECT NOT jobstream_is_analyst()) '
                           'OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = %I.job_id))', t, t);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- Views. job_stats and job_transcripts exist (00003); they now apply the
-- caller's row-level security.
ALTER VIEW job_stats SET (security_invoker = true);
ALTER VIEW job_transcripts SET (security_invoker = true);

-- One row per job: time to first token (the first chunk of output), time
-- generating, duration and output tokens per second of generation.
CREATE VIEW job_timings WITH (security_invoker = true) AS
SELECT j.id AS job_id,
       j.tenant,
       j.engine,
       j.status,
       j.created_at,
       round(extract(epoch FROM (f.first_at - j.created_at)) * 1000)::bigint  AS ttft_ms,
       round(extract(epoch FROM (j.finished_at - f.first_at)) * 1000)::bigint AS generation_ms,
       round(extract(epoch FROM (j.finished_at - j.created_at)) * 1000)::bigint AS duration_ms,
       (j.usage->>'output_tokens')::bigint                                    AS output_tokens,
       round(((j.usage->>'output_tokens')::numeric
              / nullif(extract(epoch FROM (j.finished_at - f.first_at)), 0)), 1) AS tokens_per_s
FROM jobs j
LEFT JOIN LATERAL (
    -- The primary key (job_id, seq) finds it without reading the job's
    -- other chunks.
    SELECT c.created_at AS first_at FROM job_chunks c
    WHERE c.job_id = j.id ORDER BY c.seq LIMIT 1
) f ON true;

-- How jobs ended, per tenant and engine.
CREATE VIEW finish_reasons WITH (security_invoker = true) AS
SELECT tenant, engine, status, coalesce(finish_reason, '') AS finish_reason, count(*) AS jobs
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY 1, 2, 3, 4;

-- Tool calls by function name: the chunk that opens a call names its
-- function (the README's chunk format).
CREATE VIEW tool_usage WITH (security_invoker = true) AS
SELECT j.tenant, j.engine, c.data->'function'->>'name' AS function,
       count(*) AS calls, count(DISTINCT c.job_id) AS jobs
FROM job_chunks c
JOIN jobs j ON j.id = c.job_id
WHERE c.stream_type = 'tool' AND c.data->'function'->>'name' <> ''
GROUP BY 1, 2, 3;

-- Token usage per tenant, engine and UTC day of submission.
CREATE VIEW token_usage_daily WITH (security_invoker = true) AS
SELECT tenant, engine, (created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS jobs,
       coalesce(sum((usage->>'input_tokens')::bigint), 0)  AS input_tokens,
       coalesce(sum((usage->>'output_tokens')::bigint), 0) AS output_tokens
FROM jobs
GROUP BY 1, 2, 3;

-- tool_usage reads tool chunks only: a partial index keeps it from reading
-- every chunk (tool chunks are a small share, so the index costs the
-- writer little).
CREATE INDEX job_chunks_tool_idx ON job_chunks (job_id, seq) WHERE stream_type = 'tool';

GRANT SELECT ON jobs, job_chunks, job_events, pixel_jobs, stream_cursors, job_holds, retention_policies, analysts,
    job_stats, job_transcripts, job_timings, finish_reasons, tool_usage, token_usage_daily
    TO jobstream_analyst;
-- +goose StatementBegin
DO $$
BEGIN
    -- The schema may not be public; analysts need to find the tables.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO jobstream_analyst', current_schema());
    -- Default privileges of the server's role (00005) must not let it
    -- change the analyst mapping. It may read it: the policies can
    -- evaluate jobstream_analyst_tenant() for any role, the server's
    -- included, which would otherwise fail its queries with "permission
    -- denied for table analysts".
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        REVOKE ALL ON analysts FROM jobstream_app;
        GRANT SELECT ON analysts TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_analyst_create creates a LOGIN role for an analyst of
-- p_tenant: read-only (member of jobstream_analyst), and mapped to the
-- tenant. p_secret is a SCRAM-SHA-256 secret computed by the client, so the
-- password itself never reaches the server or its statement log.
CREATE FUNCTION jobstream_analyst_create(p_role text, p_tenant text, p_secret text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF p_secret NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the password must be given as a SCRAM-SHA-256 secret';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE jobstream_analyst', p_role, p_secret);
    INSERT INTO analysts (role, tenant) VALUES (p_role, p_tenant);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_analyst_drop drops an analyst's role and mapping.
CREATE FUNCTION jobstream_analyst_drop(p_role text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM analysts WHERE role = p_role;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP ROLE IF EXISTS %I', p_role);
    RETURN true;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION jobstream_analyst_create(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_analyst_drop(text) FROM PUBLIC;

-- +goose Down
DROP FUNCTION jobstream_analyst_drop(text);
DROP FUNCTION jobstream_analyst_create(text, text, text);
REVOKE ALL ON jobs, job_chunks, job_events, pixel_jobs, stream_cursors, job_holds, retention_policies, analysts,
    job_stats, job_transcripts FROM jobstream_analyst;
DROP INDEX job_chunks_tool_idx;
DROP VIEW token_usage_daily;
DROP VIEW tool_usage;
DROP VIEW finish_reasons;
DROP VIEW job_timings;
ALTER VIEW job_transcripts RESET (security_invoker);
ALTER VIEW job_stats RESET (security_invoker);
-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['jobs', 'job_chunks', 'job_events', 'pixel_jobs', 'stream_cursors', 'job_holds', 'retention_policies'] LOOP
        EXECUTE format('DROP POLICY tenant_rows ON %I', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM jobstream_analyst', current_schema());
END
$$;
-- +goose StatementEnd
DROP TABLE analysts;
DROP FUNCTION jobstream_is_analyst();
DROP FUNCTION jobstream_analyst_tenant();
