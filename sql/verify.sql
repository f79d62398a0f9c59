-- Verify jobstream's hash chain with psql alone, without trusting the
-- jobstream binary or any function it installed. The functions below are
-- created in pg_temp: they vanish when the session ends, and creating them
-- needs TEMPORARY on the database and SELECT on jobs, job_chunks and
-- job_events. Since migration 00040 only the database's owner has
-- TEMPORARY; run this as the owner, or as an auditor's role the owner
-- granted it (GRANT TEMPORARY ON DATABASE .. TO auditor). Run, in ONE psql
-- session:
--
--   psql "$DSN" -f sql/verify.sql -c "SELECT * FROM pg_temp.jobstream_verify_job('JOB_ID')"
--   psql "$DSN" -f sql/verify.sql -c "SELECT * FROM pg_temp.jobstream_verify_all(now() - interval '7 days')"
--
-- The chain, for each job (all text as UTF-8, || is concatenation):
--
--   h(-1) = the job's seed:
--           chain_version 2: sha256(the job id's 16 bytes || sha256(request
--                            as stored) || tenant || 0x00 || engine)
--           chain_version 1 (jobs stored before migration 00040):
--                            sha256(the job id's 16 bytes)
--   h(n)  = sha256(h(n-1) || seq as decimal text || 0x00 || stream_type
--                  || 0x00 || data as stored)
--
-- The seed is recomputed from the job's columns, never taken from
-- jobs.chain_seed; a stored seed that differs means the request, tenant or
-- engine was changed after submission.
-- Each chunk stores h(seq) in job_chunks.hash; a finished job stores its
-- chunk_count and final_hash = h(chunk_count - 1) in jobs. A job verifies
-- when its chunks are seq 0, 1, 2, ... with no gap, each stored hash equals
-- the recomputed one, and, once the job has ended, the chunk count and the
-- final hash match and the last chunk is a finish chunk: its data is a JSON
-- object whose member finish_reason is a string. jobstream appends that
-- chunk in the transaction that gives a job any terminal status
-- (completed, failed, cancelled), so a job whose tail was deleted and
-- re-sealed (chunk_count and final_hash rewritten for the shorter chain)
-- still fails. A running job verifies up to its last committed chunk.
-- The result's reason is word for word what `jobstream verify` reports.
--
-- An erased job (jobstream erase, migrations/00051_erase.sql: jobs.erased_at
-- is set) keeps its ids, hashes and seal, but its request and its chunks'
-- data are {"erased":true}: its links cannot be recomputed. Its seed is
-- recomputed from the stored request_sha256 instead, and it verifies when
-- its request and every chunk are erased, its chunks are seq 0, 1, 2, ...
-- with no gap, the chunk count and the last stored hash are its seal, and
-- sha256 of its stored chunk hashes concatenated in seq order is the one
-- its last `erased` event kept (detail.chunk_hashes_sha256). It is then ok,
-- with the reason 'erased by WHO at TIME: WHY'.

CREATE OR REPLACE FUNCTION pg_temp.jobstream_verify_job(
    p_job_id uuid,
    OUT ok boolean, OUT chunks integer, OUT first_bad_seq integer, OUT reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    j      record;
    c      record;
    tip    bytea;
    n      integer := 0;
    broken boolean := false;
    last   text;
    e      record;
    eh     bytea;
    en     integer := 0;
    gap    integer;
    unerased integer;
    kept   bytea;
BEGIN
    ok := false;
    SELECT id, status IN ('completed', 'failed', 'cancelled') AS terminal, chunk_count, final_hash,
           chain_seed, erased_at, erased_by, erase_reason, request::text = '{"erased":true}' AS request_erased,
           CASE chain_version
               WHEN 1 THEN sha256(uuid_send(id))
               WHEN 2 THEN sha256(uuid_send(id)
                                  || CASE WHEN erased_at IS NULL THEN sha256(convert_to(request::text, 'UTF8')) ELSE request_sha256 END
                                  || convert_to(tenant, 'UTF8') || '\x00'::bytea || convert_to(engine, 'UTF8'))
           END AS seed
    INTO j FROM jobs WHERE id = p_job_id;
    IF NOT FOUND THEN
        chunks := 0;
        reason := 'no such job';
        RETURN;
    END IF;
    tip := j.seed;
    IF j.chain_seed IS DISTINCT FROM j.seed THEN
        broken := true;
        reason := 'the job''s request, tenant or engine changed after it was submitted (its chain seed does not match)';
    END IF;
    IF j.erased_at IS NOT NULL THEN
        FOR c IN SELECT seq, data::text AS data, hash FROM job_chunks WHERE job_id = p_job_id ORDER BY seq LOOP
            IF gap IS NULL AND c.seq <> n THEN
                gap := n;
            END IF;
            IF unerased IS NULL AND c.data <> '{"erased":true}' THEN
                unerased := c.seq;
            END IF;
            tip := c.hash;
            n := n + 1;
        END LOOP;
        chunks := n;
        SELECT CASE WHEN ev.detail->>'chunk_hashes_sha256' ~ '^[0-9a-fA-F]{64}$' THEN decode(ev.detail->>'chunk_hashes_sha256', 'hex') END
        INTO kept FROM job_events ev WHERE ev.job_id = p_job_id AND ev.event = 'erased' ORDER BY ev.seq DESC LIMIT 1;
        IF broken THEN
            RETURN;
        ELSIF NOT j.request_erased THEN
            reason := 'the job is marked erased, but its request still holds data';
        ELSIF gap IS NOT NULL THEN
            first_bad_seq := gap;
            reason := format('chunk %s is missing', gap);
        ELSIF unerased IS NOT NULL THEN
            first_bad_seq := unerased;
            reason := format('the job is marked erased, but chunk %s still holds data', unerased);
        ELSIF NOT j.terminal OR j.chunk_count IS NULL OR j.final_hash IS NULL THEN
            reason := 'the job ended without a recorded final hash';
        ELSIF n < j.chunk_count THEN
            first_bad_seq := n;
            reason := format('truncated: %s of the job''s %s chunks are stored', n, j.chunk_count);
        ELSIF n > j.chunk_count THEN
            first_bad_seq := j.chunk_count;
            reason := format('%s chunks stored, but the job ended with %s', n, j.chunk_count);
        ELSIF j.final_hash IS DISTINCT FROM tip THEN
            reason := 'the final hash does not match the chain';
        ELSIF kept IS NULL THEN
            reason := 'the job is marked erased, but its audit trail records no erasure';
        ELSIF kept IS DISTINCT FROM (SELECT sha256(coalesce(string_agg(hash, '\x'::bytea ORDER BY seq), '\x'))
                                    FROM job_chunks WHERE job_id = p_job_id) THEN
            reason := 'the chunk hashes are not the ones kept when the job was erased';
        ELSE
            ok := true;
            reason := format('erased by %s at %s: %s', j.erased_by,
                             to_char(j.erased_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), j.erase_reason);
        END IF;
    ELSE
        FOR c IN SELECT seq, stream_type, data::text AS data, hash
                 FROM job_chunks WHERE job_id = p_job_id ORDER BY seq
        LOOP
            IF NOT broken THEN
                IF c.seq <> n THEN
                    broken := true;
                    first_bad_seq := n;
                    reason := format('chunk %s is missing', n);
                ELSE
                    tip := sha256(tip || convert_to(c.seq::text, 'UTF8') || '\x00'::bytea
                                  || convert_to(c.stream_type, 'UTF8') || '\x00'::bytea
                                  || convert_to(c.data, 'UTF8'));
                    IF c.hash IS DISTINCT FROM tip THEN
                        broken := true;
                        first_bad_seq := c.seq;
                        reason := format('chunk %s does not match its hash', c.seq);
                    END IF;
                END IF;
            END IF;
            n := n + 1;
            last := c.data;
        END LOOP;
        chunks := n;
        IF broken THEN
            RETURN;
        END IF;
        IF NOT j.terminal THEN
            ok := true;
            reason := 'intact up to the last committed chunk (the job has not finished)';
        ELSIF j.chunk_count IS NULL OR j.final_hash IS NULL THEN
            reason := 'the job ended without a recorded final hash';
        ELSIF n < j.chunk_count THEN
            first_bad_seq := n;
            reason := format('truncated: %s of the job''s %s chunks are stored', n, j.chunk_count);
        ELSIF n > j.chunk_count THEN
            first_bad_seq := j.chunk_count;
            reason := format('%s chunks stored, but the job ended with %s', n, j.chunk_count);
        ELSIF j.final_hash IS DISTINCT FROM tip THEN
            reason := 'the final hash does not match the chain';
        ELSIF n = 0 THEN
            first_bad_seq := 0;
            reason := 'the job ended without a finish chunk: no chunk is stored';
        ELSIF json_typeof(last::json -> 'finish_reason') IS DISTINCT FROM 'string' THEN
            -- -> reads the last of repeated members, as jobstream verify does.
            first_bad_seq := n;
            reason := format('the job ended without a finish chunk: chunk %s, the last stored, has no finish_reason', n - 1);
        ELSE
            ok := true;
            reason := 'intact';
        END IF;
    END IF;
    IF NOT ok THEN
        RETURN;
    END IF;
    -- The job's audit trail (job_events) has a chain of its own: seq 0, 1,
    -- ... from sha256(the job id's 16 bytes || 'events'), each link over
    -- the event's fields as text joined by 0x00 (NULL as ''), at in UTC.
    eh := sha256(uuid_send(p_job_id) || convert_to('events', 'UTF8'));
    FOR e IN SELECT * FROM job_events WHERE job_id = p_job_id ORDER BY seq LOOP
        IF e.seq <> en THEN
            ok := false;
            reason := format('the audit trail is broken: event %s is missing', en);
            RETURN;
        END IF;
        eh := sha256(eh || convert_to(e.seq::text, 'UTF8')
            || '\x00'::bytea || convert_to(e.event, 'UTF8')
            || '\x00'::bytea || convert_to(coalesce(e.from_status, ''), 'UTF8')
            || '\x00'::bytea || convert_to(coalesce(e.to_status, ''), 'UTF8')
            || '\x00'::bytea || convert_to(coalesce(e.attempt::text, ''), 'UTF8')
            || '\x00'::bytea || convert_to(coalesce(e.lease_owner, ''), 'UTF8')
            || '\x00'::bytea || convert_to(e.actor, 'UTF8')
            || '\x00'::bytea || convert_to(coalesce(e.reason, ''), 'UTF8')
            || '\x00'::bytea || convert_to(coalesce(e.detail::text, ''), 'UTF8')
            || '\x00'::bytea || convert_to(e.tenant, 'UTF8')
            || '\x00'::bytea || convert_to(e.db_role, 'UTF8')
            || '\x00'::bytea || convert_to(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8'));
        IF e.hash IS DISTINCT FROM eh THEN
            ok := false;
            reason := format('the audit trail is broken: event %s does not match its hash', en);
            RETURN;
        END IF;
        en := en + 1;
    END LOOP;
END
$$;

-- Every job created at or after p_since that does not verify.
CREATE OR REPLACE FUNCTION pg_temp.jobstream_verify_all(p_since timestamptz DEFAULT '-infinity')
RETURNS TABLE (job_id uuid, ok boolean, chunks integer, first_bad_seq integer, reason text)
LANGUAGE sql STABLE AS $$
    SELECT j.id, v.ok, v.chunks, v.first_bad_seq, v.reason
    FROM jobs j, LATERAL pg_temp.jobstream_verify_job(j.id) v
    WHERE j.created_at >= p_since AND NOT v.ok
    UNION ALL
    -- Chunks that no job accounts for.
    SELECT c.job_id, false, count(*)::integer, NULL::integer, 'chunks stored for a job that does not exist'
    FROM job_chunks c
    WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)
    GROUP BY c.job_id
    ORDER BY 1
$$;
