-- Example queries for people inspecting jobstream's data with psql:
--   psql "$DATABASE_URL" -f sql/examples.sql        (or paste one at a time)
-- Tables: jobs, job_chunks (job_id, seq, stream_type, data, created_at),
-- job_events (audit trail of status changes). Views: job_stats,
-- job_transcripts. Function: job_transcript(job_id [, upto_seq]).

-- The latest jobs with their timings.
SELECT id, engine, status, finish_reason, queue_ms, ttft_ms, run_ms, chunks, output_tokens
FROM job_stats
ORDER BY id DESC
LIMIT 20;

-- Every chunk of the newest job, in order.
SELECT seq, stream_type, data, created_at
FROM job_chunks
WHERE job_id = (SELECT id FROM jobs ORDER BY id DESC LIMIT 1)
ORDER BY seq;

-- Its assembled text and tool calls.
SELECT * FROM job_transcript((SELECT id FROM jobs ORDER BY id DESC LIMIT 1));

-- Tokens and time to first token per engine and day.
SELECT engine,
       date_trunc('day', created_at)                             AS day,
       count(*)                                                  AS jobs,
       sum(output_tokens)                                        AS output_tokens,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms)      AS ttft_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ttft_ms)     AS ttft_p95_ms
FROM job_stats
GROUP BY 1, 2
ORDER BY 2 DESC, 1;

-- How jobs ended, per engine.
SELECT engine, status, finish_reason, count(*)
FROM jobs
GROUP BY 1, 2, 3
ORDER BY 1, 4 DESC;

-- Tool calls made, by function name.
SELECT call->'function'->>'name' AS tool, count(*)
FROM job_transcripts, jsonb_array_elements(tool_calls) AS call
GROUP BY 1
ORDER BY 2 DESC;

-- The audit trail of one job's status changes.
SELECT from_status, to_status, attempt, lease_owner, at
FROM job_events
WHERE job_id = (SELECT id FROM jobs ORDER BY id DESC LIMIT 1)
ORDER BY id;

-- Jobs whose worker died (lease expired) and how the rescuer handled them.
SELECT id, status, error->>'message' AS error, attempt
FROM jobs
WHERE error->>'type' = 'lease_expired'
ORDER BY id DESC;
