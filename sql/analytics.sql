-- jobstream's analytics views, as migrations/00003_analytics.sql and
-- 00009_analysts.sql install them (a test checks that this file matches the
-- migrated database). Read it to see what each column means; run it with
--   jobstream sql -- -f sql/analytics.sql
-- to re-create the views by hand. All are security_invoker: they show the
-- caller only the rows its row-level security lets it see (an analyst: its
-- tenant's).

-- One row per job with its timings and sizes. ttft_ms is the time from
-- submission to the first stored chunk (time to first token).
CREATE OR REPLACE VIEW job_stats WITH (security_invoker = true) AS
SELECT j.id,
       j.tenant,
       j.engine,
       j.room_id,
       j.status,
       j.finish_reason,
       j.attempt,
       j.created_at,
       j.started_at,
       j.finished_at,
       round(extract(epoch FROM (j.started_at - j.created_at)) * 1000)::bigint  AS queue_ms,
       round(extract(epoch FROM (c.first_at - j.created_at)) * 1000)::bigint    AS ttft_ms,
       round(extract(epoch FROM (j.finished_at - j.started_at)) * 1000)::bigint AS run_ms,
       coalesce(c.chunks, 0)                                                    AS chunks,
       coalesce(c.content_chunks, 0)                                            AS content_chunks,
       coalesce(c.tool_chunks, 0)                                               AS tool_chunks,
       (j.usage->>'input_tokens')::bigint                                       AS input_tokens,
       (j.usage->>'output_tokens')::bigint                                      AS output_tokens
FROM jobs j
LEFT JOIN LATERAL (
    SELECT count(*)                                         AS chunks,
           count(*) FILTER (WHERE stream_type = 'content') AS content_chunks,
           count(*) FILTER (WHERE stream_type = 'tool')    AS tool_chunks,
           min(created_at)                                 AS first_at
    FROM job_chunks
    WHERE job_id = j.id
) c ON true;

-- The assembled output of every job (the README's chunk-format assembly rule, the
-- same SQL function the API's /transcript uses).
CREATE OR REPLACE VIEW job_transcripts WITH (security_invoker = true) AS
SELECT j.id AS job_id, j.tenant, j.engine, j.status, j.finish_reason,
       t.content, t.thinking, t.tool_calls
FROM jobs j, LATERAL job_transcript(j.id) AS t(content, thinking, tool_calls);

-- One row per job: time to first token (the first chunk of output), time
-- generating, duration and output tokens per second of generation.
CREATE OR REPLACE VIEW job_timings WITH (security_invoker = true) AS
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
CREATE OR REPLACE VIEW finish_reasons WITH (security_invoker = true) AS
SELECT tenant, engine, status, coalesce(finish_reason, '') AS finish_reason, count(*) AS jobs
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY 1, 2, 3, 4;

-- Tool calls by function name: the chunk that opens a call names its
-- function (the README's chunk format).
CREATE OR REPLACE VIEW tool_usage WITH (security_invoker = true) AS
SELECT j.tenant, j.engine, c.data->'function'->>'name' AS function,
       count(*) AS calls, count(DISTINCT c.job_id) AS jobs
FROM job_chunks c
JOIN jobs j ON j.id = c.job_id
WHERE c.stream_type = 'tool' AND c.data->'function'->>'name' <> ''
GROUP BY 1, 2, 3;

-- Token usage per tenant, engine and UTC day of submission.
CREATE OR REPLACE VIEW token_usage_daily WITH (security_invoker = true) AS
SELECT tenant, engine, (created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS jobs,
       coalesce(sum((usage->>'input_tokens')::bigint), 0)  AS input_tokens,
       coalesce(sum((usage->>'output_tokens')::bigint), 0) AS output_tokens
FROM jobs
GROUP BY 1, 2, 3;
