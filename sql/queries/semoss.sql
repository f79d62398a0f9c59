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

-- CursorAdvance is a pixelJobStreaming poll of a session that has a cursor
-- on the job, in ONE statement. It locks the cursor (concurrent polls of one
-- session serialise on it; after waiting for the lock a poll sees the
-- cursor as the previous one left it), settles the page the session was
-- last handed out, reads the job's status and up to @max chunks from the
-- acknowledged position in the statement's one snapshot, and hands out the
-- first @page_size of them as the new outstanding page.
--
-- The outstanding page [next_seq, sent_upto) is settled by its answer's
-- fate (sent_state; @written_gen and @unread_gen are what the polling
-- process knows of it before the database does):
--   'ack'    written completely: next_seq moves to sent_upto;
--   'resend' failed, unread (the client reset the connection with it
--            unread), or still 'sending' past sent_deadline (whoever was
--            writing it died): it is read again from next_seq;
--   'busy'   another poll is still writing it: nothing is read or changed,
--            and the caller waits for that answer's fate and polls again;
--   'none'   nothing outstanding.
-- A page with chunks becomes the new outstanding page: token sent_gen + 1,
-- 'sending' until @send_timeout_ms from now.
-- No rows: no cursor yet (CursorCreate makes one), or not the tenant's job.
-- Every row carries where the page starts (from_seq: where to wait from when
-- nothing is new), the verdict, the previous token and whether the job is a
-- synchronous runPixel's (its completed status is named differently).
-- name: CursorAdvance :many
WITH cur AS (
    SELECT c.job_id, c.session_id, c.next_seq, c.sent_upto, c.sent_gen, c.sent_state, c.sent_deadline
    FROM stream_cursors c
    JOIN jobs j ON j.id = c.job_id
    WHERE c.job_id = @job_id AND c.session_id = @session_id AND j.tenant = @tenant
    FOR UPDATE OF c
), settled AS (
    SELECT cur.*,
           CASE
               WHEN cur.sent_upto = cur.next_seq THEN 'none'
               WHEN cur.sent_state = 'failed' OR cur.sent_gen = @unread_gen::bigint THEN 'resend'
               WHEN cur.sent_state = 'written' OR cur.sent_gen = @written_gen::bigint THEN 'ack'
               WHEN cur.sent_deadline > now() THEN 'busy'
               ELSE 'resend'
           END AS verdict
    FROM cur
), base AS (
    SELECT s.*, CASE WHEN s.verdict = 'ack' THEN s.sent_upto ELSE s.next_seq END AS from_seq
    FROM settled s
), page AS (
    SELECT j.status, j.finish_reason, j.created_at AS job_created_at,
           b.from_seq, b.verdict, b.sent_gen, b.sent_deadline,
           EXISTS (SELECT 1 FROM pixel_jobs p WHERE p.job_id = b.job_id AND p.sync) AS sync,
           ch.seq, ch.stream_type, ch.data, ch.created_at
    FROM base b
    JOIN jobs j ON j.id = b.job_id
    LEFT JOIN LATERAL (
        SELECT seq, stream_type, data, created_at
        FROM job_chunks
        WHERE job_id = b.job_id AND seq >= b.from_seq AND b.verdict <> 'busy'
        ORDER BY seq
        LIMIT @max
    ) ch ON true
), sent AS (
    -- One row: the end of the page handed out, NULL when it is empty.
    SELECT max(p.seq) + 1 AS upto
    FROM (SELECT seq FROM page WHERE seq IS NOT NULL ORDER BY seq LIMIT @page_size) p
), moved AS (
    UPDATE stream_cursors s
    SET next_seq = b.from_seq,
        sent_upto = coalesce(sent.upto, b.from_seq),
        sent_gen = CASE WHEN sent.upto IS NULL THEN s.sent_gen ELSE s.sent_gen + 1 END,
        sent_state = CASE WHEN sent.upto IS NULL THEN s.sent_state ELSE 'sending' END,
        sent_deadline = CASE WHEN sent.upto IS NULL THEN s.sent_deadline
                             ELSE now() + make_interval(secs => @send_timeout::float8) END,
        updated_at = now()
    FROM base b, sent
    WHERE s.job_id = b.job_id AND s.session_id = b.session_id
      AND b.verdict <> 'busy'
      AND (b.verdict <> 'none' OR sent.upto IS NOT NULL)
)
SELECT status, finish_reason,
       coalesce(seq, -1)::integer AS seq,
       coalesce(stream_type, '')::text AS stream_type,
       coalesce(data, 'null'::json)::json AS data,
       coalesce(created_at, job_created_at)::timestamptz AS created_at,
       coalesce(from_seq, 0)::integer AS from_seq, sync, verdict::text AS verdict, sent_gen AS prev_gen,
       sent_deadline AS prev_deadline
FROM page
ORDER BY seq;

-- CursorSent records that the answer carrying the page with token @gen was
-- written to the connection completely: the session's next poll
-- acknowledges it. Nothing happens when the page is no longer the
-- outstanding one (a later poll sent it again), or it failed meanwhile.
-- It locks the cursor row for the update only.
-- name: CursorSent :execrows
UPDATE stream_cursors c
SET sent_state = 'written', updated_at = now()
FROM jobs j
WHERE c.job_id = @job_id AND c.session_id = @session_id AND j.id = c.job_id AND j.tenant = @tenant
  AND c.sent_gen = @gen AND c.sent_state = 'sending' AND c.sent_upto > c.next_seq;

-- CursorUnsent records that the answer carrying the page with token @gen
-- did not reach the client (its write failed, or the client reset the
-- connection with the answer unread): the session's next poll sends the
-- page again. It overrides 'written', which may have been recorded first.
-- It locks the cursor row for the update only.
-- name: CursorUnsent :execrows
UPDATE stream_cursors c
SET sent_state = 'failed', updated_at = now()
FROM jobs j
WHERE c.job_id = @job_id AND c.session_id = @session_id AND j.id = c.job_id AND j.tenant = @tenant
  AND c.sent_gen = @gen AND c.sent_upto > c.next_seq;

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

-- CursorUpdate stores the /engine/partial and /engine/error positions of a
-- cursor locked (or created) in the same transaction. pixelJobStreaming's
-- position moves only in CursorAdvance.
-- name: CursorUpdate :exec
UPDATE stream_cursors
SET partial_seq = @partial_seq, error_sent = @error_sent, updated_at = now()
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
