-- Views for analytics and for people inspecting jobs with psql. See
-- sql/examples.sql for queries over them.

-- +goose Up
-- One row per job with its timings and sizes. ttft_ms is the time from
-- submission to the first stored chunk (time to first token).
CREATE VIEW job_stats AS
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
CREATE VIEW job_transcripts AS
SELECT j.id AS job_id, j.tenant, j.engine, j.status, j.finish_reason,
       t.content, t.thinking, t.tool_calls
FROM jobs j, LATERAL job_transcript(j.id) AS t(content, thinking, tool_calls);

-- +goose Down
DROP VIEW job_transcripts;
DROP VIEW job_stats;
