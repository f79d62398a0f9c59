-- Tamper evidence: every chunk stores a SHA-256 chained to the previous
-- chunk of its job, and a finished job records its chunk count and final
-- hash, so that an edited, deleted, inserted, reordered or truncated chunk
-- is detected. The definition is chosen so that an auditor can recompute
-- it with psql alone (sql/verify.sql), with PostgreSQL's built-in sha256:
--
--   h(-1) = sha256(the job id's 16 bytes)
--   h(n)  = sha256(h(n-1) || seq as decimal text || 0x00 || stream_type
--                  || 0x00 || data's text), all text as UTF-8
--
-- data's text is exactly what the writer sent: the column becomes json,
-- which stores its input verbatim (jsonb reorders keys and normalises
-- numbers, which Go could not reproduce cheaply). Text never contains a
-- NUL byte, so the separators make the input unambiguous.

-- +goose Up
ALTER TABLE job_chunks ALTER COLUMN data TYPE json USING data::json;
ALTER TABLE job_chunks ADD COLUMN hash bytea;
-- Set, with the terminal status, by the trigger jobs_seal below.
ALTER TABLE jobs ADD COLUMN chunk_count integer, ADD COLUMN final_hash bytea;

-- The chain's seed for a job: h(-1).
CREATE FUNCTION job_chain_seed(job_id uuid) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN sha256(uuid_send(job_id));

-- One link: h(seq) from h(seq-1) = prev.
CREATE FUNCTION job_chunk_hash(prev bytea, seq integer, stream_type text, data text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    RETURN sha256(prev || convert_to(seq::text, 'UTF8') || '\x00'::bytea
                  || convert_to(stream_type, 'UTF8') || '\x00'::bytea || convert_to(data, 'UTF8'));

-- job_chain(job_id, seq, stream_type, data) ORDER BY seq is a job's chain
-- hash; as a window function (PARTITION BY job_id ORDER BY seq) it gives
-- each chunk's h(seq).
CREATE FUNCTION job_chain_step(state bytea, job_id uuid, seq integer, stream_type text, data text) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN job_chunk_hash(coalesce(state, job_chain_seed(job_id)), seq, stream_type, data);
CREATE AGGREGATE job_chain(uuid, integer, text, text) (SFUNC = job_chain_step, STYPE = bytea);

-- Chunks written before this migration get their chain now (their text is
-- jsonb's output, which the json column now keeps verbatim).
UPDATE job_chunks c
SET hash = h.hash
FROM (SELECT job_id, seq,
             job_chain(job_id, seq, stream_type, data::text) OVER (PARTITION BY job_id ORDER BY seq) AS hash
      FROM job_chunks) h
WHERE c.job_id = h.job_id AND c.seq = h.seq;
ALTER TABLE job_chunks ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT job_chunks_hash_len CHECK (length(hash) = 32);

UPDATE jobs j
SET chunk_count = coalesce(l.seq + 1, 0), final_hash = coalesce(l.hash, job_chain_seed(j.id))
FROM jobs j2
LEFT JOIN LATERAL (SELECT seq, hash FROM job_chunks WHERE job_id = j2.id ORDER BY seq DESC LIMIT 1) l ON true
WHERE j.id = j2.id AND j.status IN ('completed', 'failed', 'cancelled');

-- jobs_seal records the chunk count and final hash when a job ends, in the
-- statement that sets its terminal status: whichever path ends a job (the
-- chunk writer, the rescuer, a cancel of a queued job), its last chunk was
-- inserted by an earlier statement of the same transaction.
-- +goose StatementBegin
CREATE FUNCTION jobs_seal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq  integer;
    last_hash bytea;
BEGIN
    SELECT seq, hash INTO last_seq, last_hash
    FROM job_chunks WHERE job_id = NEW.id ORDER BY seq DESC LIMIT 1;
    NEW.chunk_count := coalesce(last_seq + 1, 0);
    NEW.final_hash := coalesce(last_hash, job_chain_seed(NEW.id));
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER jobs_seal BEFORE UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION jobs_seal();

-- job_transcript again, for data as json (no ? operator on json; -> of a
-- missing key is NULL, of a JSON null is 'null').
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION job_transcript(p_job_id uuid, p_upto integer DEFAULT 2147483647)
RETURNS TABLE (content text, thinking text, tool_calls jsonb)
LANGUAGE sql STABLE AS $$
    SELECT
        coalesce((SELECT string_agg(c.data->>'content', '' ORDER BY c.seq)
                    FROM job_chunks c
                   WHERE c.job_id = p_job_id AND c.seq < p_upto
                     AND c.stream_type = 'content'), ''),
        coalesce((SELECT string_agg(c.data->>'thinking', '' ORDER BY c.seq)
                    FROM job_chunks c
                   WHERE c.job_id = p_job_id AND c.seq < p_upto
                     AND c.stream_type = 'thinking'), ''),
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
                             AND c.stream_type = 'tool' AND (c.data->'index') IS NOT NULL
                           GROUP BY 1) t), '[]'::jsonb)
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE job_chunks ALTER COLUMN data TYPE jsonb USING data::jsonb;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION job_transcript(p_job_id uuid, p_upto integer DEFAULT 2147483647)
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
DROP TRIGGER jobs_seal ON jobs;
DROP FUNCTION jobs_seal();
ALTER TABLE jobs DROP COLUMN chunk_count, DROP COLUMN final_hash;
ALTER TABLE job_chunks DROP COLUMN hash;
DROP AGGREGATE job_chain(uuid, integer, text, text);
DROP FUNCTION job_chain_step(bytea, uuid, integer, text, text);
DROP FUNCTION job_chunk_hash(bytea, integer, text, text);
DROP FUNCTION job_chain_seed(uuid);
