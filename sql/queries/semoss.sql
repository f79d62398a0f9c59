-- Queries of the SEMOSS surface: pixel job metadata and per-session stream
-- cursors. Like every query a client reaches, they filter by tenant.

-- name: PixelJobInsert :exec
INSERT INTO pixel_jobs (job_id, insight_id, expression, sync)
VALUES (@job_id, @insight_id, @expression, @sync);

-- name: PixelJobGet :one
SELECT p.insight_id, p.expression, p.sync
FROM pixel_jobs p
JOIN jobs j ON j.id = p.job_id
WHERE p.job_id = @job_id AND j.tenant = @tenant;

-- PixelResult is everything /engine/result reports, from one snapshot: the
-- job record, its assembled transcript and its pixel metadata (has_pixel is
-- false for jobs submitted on the native API). run_ms is submission to
-- finish, 0 while the job runs.
-- name: PixelResult :one
SELECT j.id, j.status, j.finish_reason, j.error, j.usage, j.room_id,
       coalesce(round(extract(epoch FROM (j.finished_at - j.created_at)) * 1000), 0)::bigint AS run_ms,
       t.content, t.tool_calls,
       (p.job_id IS NOT NULL)::boolean AS has_pixel,
       coalesce(p.insight_id, '')::text AS insight_id,
       coalesce(p.expression, '')::text AS expression,
       coalesce(p.sync, false)::boolean AS sync
FROM jobs j
CROSS JOIN LATERAL job_transcript(j.id) t
LEFT JOIN pixel_jobs p ON p.job_id = j.id
WHERE j.id = @job_id AND j.tenant = @tenant;

-- CursorGet reads a session's cursor on a job without locking it (zeros
-- when the session has not read the job yet). No rows: unknown job, or
-- another tenant's.
-- name: CursorGet :one
SELECT coalesce(c.next_seq, 0)::integer AS next_seq,
       coalesce(c.partial_seq, 0)::integer AS partial_seq,
       coalesce(c.error_sent, false)::boolean AS error_sent
FROM jobs j
LEFT JOIN stream_cursors c ON c.job_id = j.id AND c.session_id = @session_id
WHERE j.id = @job_id AND j.tenant = @tenant;

-- CursorAdvance is CursorRead's common case, a session that has a cursor
-- on the job, in ONE statement instead of a transaction of four: it locks
-- the cursor (concurrent polls of one session serialise on it, and after
-- waiting the lock returns the cursor as the previous poll left it), reads
-- the job's status and up to @max chunks from the cursor in the statement's
-- one snapshot, and moves the cursor past the first @page_size of them.
-- No rows: no cursor yet (CursorLock / CursorCreate make one), or not the
-- tenant's job. Every row also carries where the cursor stood (from_seq:
-- where to wait from when nothing is new) and whether the job is a
-- synchronous runPixel's (its completed status is named differently), so
-- a poll that finds data makes this one round trip and no other.
-- name: CursorAdvance :many
WITH cur AS (
    SELECT c.job_id, c.session_id, c.next_seq
    FROM stream_cursors c
    JOIN jobs j ON j.id = c.job_id
    WHERE c.job_id = @job_id AND c.session_id = @session_id AND j.tenant = @tenant
    FOR UPDATE OF c
), page AS (
    SELECT j.status, j.finish_reason, j.created_at AS job_created_at,
           cur.next_seq AS from_seq,
           EXISTS (SELECT 1 FROM pixel_jobs p WHERE p.job_id = cur.job_id AND p.sync) AS sync,
           ch.seq, ch.stream_type, ch.data, ch.created_at
    FROM cur
    JOIN jobs j ON j.id = cur.job_id
    LEFT JOIN LATERAL (
        SELECT seq, stream_type, data, created_at
        FROM job_chunks
        WHERE job_id = cur.job_id AND seq >= cur.next_seq
        ORDER BY seq
        LIMIT @max
    ) ch ON true
), moved AS (
    UPDATE stream_cursors s
    SET next_seq = (SELECT max(p.seq) + 1
                    FROM (SELECT seq FROM page WHERE seq IS NOT NULL
                          ORDER BY seq LIMIT @page_size) p),
        updated_at = now()
    FROM cur
    WHERE s.job_id = cur.job_id AND s.session_id = cur.session_id
      AND EXISTS (SELECT 1 FROM page WHERE seq IS NOT NULL)
)
SELECT status, finish_reason,
       coalesce(seq, -1)::integer AS seq,
       coalesce(stream_type, '')::text AS stream_type,
       coalesce(data, 'null'::json)::json AS data,
       coalesce(created_at, job_created_at)::timestamptz AS created_at,
       from_seq, sync
FROM page
ORDER BY seq;

-- CursorLock locks a session's existing cursor on a tenant's job until the
-- end of the transaction, so concurrent polls of one session on one job
-- serialise: each reads from where the previous one committed. Polls of
-- other sessions lock other rows and never wait. No rows: no cursor yet
-- (see CursorCreate), or not the tenant's job.
-- name: CursorLock :one
SELECT c.next_seq, c.partial_seq, c.error_sent
FROM stream_cursors c
JOIN jobs j ON j.id = c.job_id
WHERE c.job_id = @job_id AND c.session_id = @session_id AND j.tenant = @tenant
FOR UPDATE OF c;

-- CursorCreate creates a session's cursor on a tenant's job. The new row is
-- the creating transaction's until it commits: a concurrent CursorCreate of
-- the same cursor waits for it, then inserts nothing, and its caller locks
-- the committed row with CursorLock. No rows: the cursor exists already, or
-- the job is unknown or another tenant's.
-- name: CursorCreate :one
INSERT INTO stream_cursors (job_id, session_id)
SELECT j.id, @session_id FROM jobs j WHERE j.id = @job_id AND j.tenant = @tenant
ON CONFLICT (job_id, session_id) DO NOTHING
RETURNING next_seq, partial_seq, error_sent;

-- CursorUpdate stores a cursor locked (or created) in the same transaction.
-- name: CursorUpdate :exec
UPDATE stream_cursors
SET next_seq = @next_seq, partial_seq = @partial_seq, error_sent = @error_sent, updated_at = now()
WHERE job_id = @job_id AND session_id = @session_id;

-- PartialRead is /engine/partial's read, in ONE statement (one snapshot):
-- the job's status, the seq after its last chunk, all its text, and the
-- text of chunks from from_seq on. string_agg skips the NULL content of
-- non-text chunks.
-- name: PartialRead :one
SELECT j.status,
       (SELECT coalesce(max(c.seq) + 1, 0) FROM job_chunks c WHERE c.job_id = j.id)::integer AS end_seq,
       coalesce((SELECT string_agg(c.data->>'content', '' ORDER BY c.seq)
                   FROM job_chunks c
                  WHERE c.job_id = j.id AND c.stream_type = 'content'), '')::text AS total,
       coalesce((SELECT string_agg(c.data->>'content', '' ORDER BY c.seq)
                   FROM job_chunks c
                  WHERE c.job_id = j.id AND c.stream_type = 'content' AND c.seq >= @from_seq), '')::text AS new_text
FROM jobs j
WHERE j.id = @job_id AND j.tenant = @tenant;

-- RoomHistoryRecent returns the latest max finished turns of a tenant's
-- room before a given job, oldest first, with their assembled transcripts:
-- the conversation history a useHistory job is sent. Transcripts are
-- assembled only for the turns returned. (Uses jobs_room_idx.)
--
-- Turns are left out oldest first once the newest ones hold more than
-- max_bytes of command and output text: a lower bound of what each turn
-- adds to the prompt, so no turn that could fit the caller's budget is
-- left out here (the caller bounds the prompt exactly), and a room of
-- large turns is not sent to the caller whole.
-- name: RoomHistoryRecent :many
SELECT b.id, b.request, b.status, b.content, b.tool_calls
FROM (
    SELECT h.id, h.request, h.status, t.content, t.tool_calls,
           sum(octet_length(t.content) + octet_length(coalesce(h.request->>'command', '')))
               OVER (ORDER BY h.id DESC ROWS UNBOUNDED PRECEDING) AS newer_bytes
    FROM (
        SELECT j.id, j.request, j.status
        FROM jobs j
        WHERE j.tenant = @tenant AND j.room_id = @room_id AND j.id < @before_id
          AND j.status IN ('completed', 'failed', 'cancelled')
        ORDER BY j.id DESC
        LIMIT @max
    ) h
    CROSS JOIN LATERAL job_transcript(h.id) t
) b
WHERE b.newer_bytes <= sqlc.arg('max_bytes')::bigint
ORDER BY b.id;
