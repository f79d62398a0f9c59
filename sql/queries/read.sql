-- Coalesced reads: one statement for many readers.

-- ChunkReadMany is ChunkRead for many (job, tenant, offset, limit) requests
-- at once: when one NOTIFY wakes the readers of hundreds of jobs, they are
-- served by this one statement instead of one ChunkRead each. It is one
-- statement and therefore one snapshot, so each job's status is read
-- together with its chunks (never a terminal status with a chunk still
-- unseen). Rows come ordered by request index (idx, 1-based, the position
-- in the arrays) then seq. A request whose job has no chunk at or after
-- from_seq gives one row with seq -1 (it still carries the status); an
-- unknown job, or another tenant's, gives no row.
--
-- Both lookups are LATERAL subqueries with a LIMIT, which PostgreSQL cannot
-- flatten into an ordinary join: each request costs one jobs primary-key
-- probe and one (job_id, seq) index range scan whatever the statistics say.
-- As a plain join, the planner (which guesses 10 rows for an unnest of a
-- parameter) was seen choosing a nested loop that rescans the whole unnest
-- for every running job when the jobs table's statistics were stale:
-- O(jobs x requests).
-- name: ChunkReadMany :many
SELECT r.idx::integer AS idx,
       j.status, j.finish_reason,
       coalesce(c.seq, -1)::integer AS seq,
       coalesce(c.stream_type, '')::text AS stream_type,
       coalesce(c.data, 'null'::json)::json AS data,
       coalesce(c.created_at, j.created_at)::timestamptz AS created_at
FROM unnest(@job_ids::uuid[], @tenants::text[], @from_seqs::integer[], @maxes::integer[])
    WITH ORDINALITY AS r(job_id, tenant, from_seq, max, idx)
CROSS JOIN LATERAL (
    SELECT jobs.status, jobs.finish_reason, jobs.created_at
    FROM jobs
    WHERE jobs.id = r.job_id AND jobs.tenant = r.tenant
    LIMIT 1
) j
LEFT JOIN LATERAL (
    SELECT seq, stream_type, data, created_at
    FROM job_chunks
    WHERE job_id = r.job_id AND seq >= r.from_seq
    ORDER BY seq
    LIMIT r.max
) c ON true
ORDER BY r.idx, c.seq;
