-- Erasure without losing evidence (issue 20, item 6; internal/ledger/README.md).
--
-- jobstream_erase(job, reason, actor) removes what a finished job holds of
-- a person (its request text, its chunks' data, a Responses API input and
-- echo, a SEMOSS pixel expression) and keeps everything that proves what
-- the record was: the ids, the chunks' seq, stream type and hashes, the
-- request's SHA-256, the chain seed and the seal. It records who erased the
-- job, when and why (jobs.erased_at, erased_by, erase_reason), writes an
-- `erased` event in the job's audit trail, and that event's trigger
-- appends an `erased` leaf to the transparency log in the same
-- transaction, after the job's own leaf (appended then if the sequencer
-- had not yet). verify and audit then report the job as erased, not as
-- tampered with.
--
-- Chunks are append-only and an ended job is frozen: the guards let this
-- one change through for the role jobstream_eraser alone (NOLOGIN), which
-- owns jobstream_erase, exactly as they let retention's deletions through
-- for jobstream_retention. Never for a setting a session may set.
--
-- Refused: a job that is held (erasure does not override a legal hold), a
-- job that has not ended, one already erased, and one whose chain does not
-- verify now (erasing it would destroy the evidence of what was changed).

-- +goose Up

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_eraser') THEN
        BEGIN
            CREATE ROLE jobstream_eraser NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL; -- created concurrently by another database's migration
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'cannot create role jobstream_eraser (%): migrate as a role with CREATEROLE, or have an administrator run CREATE ROLE jobstream_eraser NOLOGIN first', SQLERRM;
        END;
    END IF;
    -- A non-superuser owner must be a member to hand it the function.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'jobstream_eraser', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT jobstream_eraser TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot grant role jobstream_eraser to % (%): see the ownership warning below', current_user, SQLERRM;
        END;
    END IF;
END
$$;
-- +goose StatementEnd

-- Who erased a job, when and why; set by jobstream_erase alone (jobs_guard).
ALTER TABLE jobs
    ADD COLUMN erased_at    timestamptz,
    ADD COLUMN erased_by    text,
    ADD COLUMN erase_reason text,
    ADD CONSTRAINT jobs_erased_all_or_none CHECK ((erased_at IS NULL) = (erased_by IS NULL) AND (erased_at IS NULL) = (erase_reason IS NULL));

-- +goose StatementBegin
-- jobs_guard (00040's) with one more path: jobstream_eraser may replace an
-- ended job's request with {"erased":true} and record erased_at, erased_by
-- and erase_reason, once; nothing else. No one else touches the three
-- erasure columns.
CREATE OR REPLACE FUNCTION jobs_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    -- One test on the hot path (status and lease updates): the rest only
    -- when the request or the erasure columns change.
    IF (NEW.erased_at, NEW.erased_by, NEW.erase_reason) IS DISTINCT FROM (OLD.erased_at, OLD.erased_by, OLD.erase_reason)
       OR NEW.request::text <> OLD.request::text THEN
        IF NOT (current_user = 'jobstream_eraser'
                AND OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL
                AND OLD.status IN ('completed', 'failed', 'cancelled')
                AND NEW.request::text = '{"erased":true}') THEN
            IF (NEW.erased_at, NEW.erased_by, NEW.erase_reason) IS DISTINCT FROM (OLD.erased_at, OLD.erased_by, OLD.erase_reason) THEN
                RAISE EXCEPTION 'job %: only jobstream_erase erases a job, once', OLD.id
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RAISE EXCEPTION 'job %: its id, tenant, key, engine, room, request, creation time and chain seed never change', OLD.id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    IF NEW.id <> OLD.id OR NEW.tenant <> OLD.tenant OR NEW.engine <> OLD.engine
       OR NEW.api_key_id IS DISTINCT FROM OLD.api_key_id OR NEW.room_id IS DISTINCT FROM OLD.room_id
       OR NEW.created_at <> OLD.created_at
       OR NEW.request_sha256 <> OLD.request_sha256 OR NEW.chain_version <> OLD.chain_version
       OR NEW.chain_seed <> OLD.chain_seed THEN
        RAISE EXCEPTION 'job %: its id, tenant, key, engine, room, request, creation time and chain seed never change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.chunk_count IS DISTINCT FROM OLD.chunk_count OR NEW.final_hash IS DISTINCT FROM OLD.final_hash THEN
        RAISE EXCEPTION 'job %: the seal (chunk_count, final_hash) is set by the database when the job ends', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Every other column of an ended job, those later migrations add
    -- included (00040's rule), compared as jsonb (json has no equality).
    IF OLD.status IN ('completed', 'failed', 'cancelled')
       AND (to_jsonb(NEW) - 'request' - 'erased_at' - 'erased_by' - 'erase_reason')
           IS DISTINCT FROM (to_jsonb(OLD) - 'request' - 'erased_at' - 'erased_by' - 'erase_reason') THEN
        RAISE EXCEPTION 'job % has ended (%): it never changes again', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- job_chunks_append_only (00040's) with one more path: jobstream_eraser may
-- replace a chunk's data with {"erased":true}, its seq, stream type, time
-- and hash unchanged.
CREATE OR REPLACE FUNCTION job_chunks_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'jobstream_retention' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND current_user = 'jobstream_eraser'
       AND NEW.job_id = OLD.job_id AND NEW.seq = OLD.seq AND NEW.stream_type = OLD.stream_type
       AND NEW.created_at = OLD.created_at AND NEW.hash = OLD.hash
       AND NEW.data::text = '{"erased":true}' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = CASE WHEN TG_OP = 'UPDATE' THEN 'Chunks are never changed once written (jobstream erase removes their data).'
                          ELSE 'Only retention removes chunks (jobstream retention run).' END;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_erase erases an ended, unheld job's content (see the top of
-- this file) and returns when (the database's clock). Locks the job's row
-- FOR UPDATE first, which a hold (FOR KEY SHARE), a retention pass (FOR
-- UPDATE) and an event's stamp (FOR NO KEY UPDATE) all conflict with: a
-- hold placed concurrently either commits first and is seen here (the
-- check is a later statement), or waits and lands on the erased job.
-- SQLSTATEs: P0002 no such job; JS409 held, not ended, already erased, or
-- its chain does not verify; 22023 an empty reason or actor.
CREATE FUNCTION jobstream_erase(p_job uuid, p_reason text, p_actor text) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_job    jobs;
    v_tip    bytea;
    v_n      integer := 0;
    v_hashes bytea := '\x';
    c        record;
BEGIN
    IF coalesce(p_reason, '') = '' OR coalesce(p_actor, '') = '' THEN
        RAISE EXCEPTION 'an erasure needs a reason and an actor' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_job FROM jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no job %', p_job USING ERRCODE = 'no_data_found';
    END IF;
    IF v_job.erased_at IS NOT NULL THEN
        RAISE EXCEPTION 'job % was already erased by % at %', p_job, v_job.erased_by, v_job.erased_at USING ERRCODE = 'JS409';
    END IF;
    IF v_job.status NOT IN ('completed', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'job % is %: only an ended job is erased (cancel it first)', p_job, v_job.status USING ERRCODE = 'JS409';
    END IF;
    IF EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = p_job) THEN
        RAISE EXCEPTION 'job % is held: lift the hold before erasing it', p_job USING ERRCODE = 'JS409';
    END IF;
    IF jobstream_retention_recorded(p_job) THEN
        RAISE EXCEPTION 'job % is being removed by retention', p_job USING ERRCODE = 'JS409';
    END IF;

    -- The chain must verify now: what is erased can never be checked again.
    IF v_job.chain_seed IS DISTINCT FROM (CASE v_job.chain_version
            WHEN 1 THEN sha256(uuid_send(v_job.id))
            ELSE job_chain_seed_v2(v_job.id, v_job.tenant, v_job.engine, sha256(convert_to(v_job.request::text, 'UTF8'))) END) THEN
        RAISE EXCEPTION 'job %: its request, tenant or engine changed after it was submitted; not erased', p_job USING ERRCODE = 'JS409';
    END IF;
    v_tip := v_job.chain_seed;
    FOR c IN SELECT seq, stream_type, data::text AS data, hash FROM job_chunks WHERE job_id = p_job ORDER BY seq LOOP
        v_tip := sha256(v_tip || convert_to(c.seq::text, 'UTF8') || '\x00'::bytea || convert_to(c.stream_type, 'UTF8')
                        || '\x00'::bytea || convert_to(c.data, 'UTF8'));
        IF c.seq <> v_n OR c.hash IS DISTINCT FROM v_tip THEN
            RAISE EXCEPTION 'job %: its chain breaks at chunk %; not erased', p_job, v_n USING ERRCODE = 'JS409';
        END IF;
        v_hashes := v_hashes || c.hash;
        v_n := v_n + 1;
    END LOOP;
    IF v_n IS DISTINCT FROM v_job.chunk_count OR v_tip IS DISTINCT FROM v_job.final_hash THEN
        RAISE EXCEPTION 'job %: its seal does not match its chain; not erased', p_job USING ERRCODE = 'JS409';
    END IF;

    -- The event first: its trigger appends the job's leaf (if the
    -- sequencer had not) from the row as it still is, then the erased leaf.
    INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, actor, reason, detail)
    VALUES (p_job, v_job.tenant, 'erased', v_job.status, v_job.status, v_job.attempt, p_actor, p_reason,
            jsonb_build_object('request_sha256', encode(v_job.request_sha256, 'hex'),
                               'chunk_count', v_job.chunk_count,
                               'final_hash', encode(v_job.final_hash, 'hex'),
                               'chunk_hashes_sha256', encode(sha256(v_hashes), 'hex')));
    UPDATE job_chunks SET data = '{"erased":true}' WHERE job_id = p_job;
    UPDATE responses SET meta = '{"erased":true}', input = '{"erased":true}', deleted_at = coalesce(deleted_at, now())
    WHERE job_id = p_job;
    UPDATE pixel_jobs SET expression = '' WHERE job_id = p_job;
    UPDATE jobs SET request = '{"erased":true}', erased_at = now(), erased_by = p_actor, erase_reason = p_reason
    WHERE id = p_job;
    RETURN now();
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- log_job_events (00050's) with the erased leaf: the job (its leaf first
-- if not logged yet, as for deleted), its tenant, the request hash and
-- seal it keeps, the SHA-256 of its chunks' hashes in seq order (so a
-- hash changed afterwards is caught though the data is gone), when, and
-- the erased event's hash. Never who erased it nor why (they may be
-- personal; the event, which the leaf's hash covers, has both). Only
-- jobstream_erase may record an erasure: the server's role may insert
-- events, and a forged erased event is refused here.
CREATE OR REPLACE FUNCTION log_job_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.event IN ('retention_deleted', 'erased') THEN
        IF NEW.event = 'erased' AND NEW.db_role <> 'jobstream_eraser' THEN
            RAISE EXCEPTION 'only jobstream_erase records an erasure, not %', NEW.db_role
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- A job removed or erased before the sequencer logged it is logged
        -- now: the row is still there and unchanged (the event is written
        -- before the DELETE or the erasure). No lock (00050): if the
        -- sequencer is appending this job's leaf, the unique index makes
        -- this wait for it and then do nothing, and the leaf inserted
        -- after is numbered after it.
        INSERT INTO log_leaves (kind, leaf, job_id)
        SELECT 'job', v.leaf, v.id FROM jobstream_log_job_leaves v WHERE v.id = NEW.job_id
        ON CONFLICT (job_id) WHERE kind = 'job' DO NOTHING;
    END IF;
    IF NEW.event = 'retention_deleted' THEN
        INSERT INTO log_leaves (kind, leaf, job_id)
        VALUES ('deleted', '\x01'::bytea
            || jobstream_log_text('deleted')
            || jobstream_log_field(uuid_send(NEW.job_id))
            || jobstream_log_text(NEW.tenant)
            || jobstream_log_text(NEW.reason)
            || jobstream_log_text(NEW.detail->>'policy')
            || jobstream_log_int((NEW.detail->>'keep_days')::bigint)
            || jobstream_log_int((NEW.detail->>'min_days')::bigint)
            || jobstream_log_time((NEW.detail->>'judged_at')::timestamptz)
            || jobstream_log_int((NEW.detail->>'chunk_count')::bigint)
            || jobstream_log_field(decode(NEW.detail->>'final_hash', 'hex'))
            || jobstream_log_field(NEW.hash),
            NEW.job_id);
    ELSIF NEW.event = 'erased' THEN
        INSERT INTO log_leaves (kind, leaf, job_id)
        VALUES ('erased', '\x01'::bytea
            || jobstream_log_text('erased')
            || jobstream_log_field(uuid_send(NEW.job_id))
            || jobstream_log_text(NEW.tenant)
            || jobstream_log_field(decode(NEW.detail->>'request_sha256', 'hex'))
            || jobstream_log_int((NEW.detail->>'chunk_count')::bigint)
            || jobstream_log_field(decode(NEW.detail->>'final_hash', 'hex'))
            || jobstream_log_field(decode(NEW.detail->>'chunk_hashes_sha256', 'hex'))
            || jobstream_log_time(NEW.at)
            || jobstream_log_field(NEW.hash),
            NEW.job_id);
    ELSIF NEW.event IN ('hold_placed', 'hold_lifted') THEN
        INSERT INTO log_leaves (kind, leaf, job_id)
        VALUES (CASE NEW.event WHEN 'hold_placed' THEN 'hold' ELSE 'unhold' END, '\x01'::bytea
            || jobstream_log_text(CASE NEW.event WHEN 'hold_placed' THEN 'hold' ELSE 'unhold' END)
            || jobstream_log_field(uuid_send(NEW.job_id))
            || jobstream_log_text(NEW.tenant)
            || jobstream_log_text(NEW.detail->>'authority')
            || jobstream_log_time(NEW.at)
            || jobstream_log_field(NEW.hash),
            NEW.job_id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP TRIGGER log_job_events ON job_events;
CREATE TRIGGER log_job_events AFTER INSERT ON job_events FOR EACH ROW
    WHEN (NEW.event IN ('retention_deleted', 'erased', 'hold_placed', 'hold_lifted'))
    EXECUTE FUNCTION log_job_events();

-- +goose StatementBegin
DO $$
DECLARE
    s text := current_schema();
BEGIN
    -- The eraser's role: what erasing needs, and no more. SELECT ... FOR
    -- UPDATE and an event's stamp (FOR NO KEY UPDATE) need UPDATE on some
    -- column of jobs: it has those it sets.
    BEGIN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO jobstream_eraser', s);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant USAGE on schema % to jobstream_eraser (%): the schema''s owner should', s, SQLERRM;
    END;
    GRANT SELECT, UPDATE (request, erased_at, erased_by, erase_reason) ON jobs TO jobstream_eraser;
    GRANT SELECT, UPDATE (data) ON job_chunks TO jobstream_eraser;
    GRANT SELECT, UPDATE (meta, input, deleted_at) ON responses TO jobstream_eraser;
    GRANT SELECT, UPDATE (expression) ON pixel_jobs TO jobstream_eraser;
    GRANT SELECT ON job_holds TO jobstream_eraser;
    GRANT SELECT, INSERT ON job_events TO jobstream_eraser;

    REVOKE EXECUTE ON FUNCTION jobstream_erase(uuid, text, text) FROM PUBLIC;
    BEGIN
        EXECUTE format('GRANT CREATE ON SCHEMA %I TO jobstream_eraser', s);
        ALTER FUNCTION jobstream_erase(uuid, text, text) OWNER TO jobstream_eraser;
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM jobstream_eraser', s);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot hand jobstream_erase to jobstream_eraser (%): erasure is refused until an administrator runs ALTER FUNCTION %I.jobstream_erase(uuid, text, text) OWNER TO jobstream_eraser', SQLERRM, s;
    END;
    -- The owner (who runs jobstream erase) may execute it; no one else.
    EXECUTE format('GRANT EXECUTE ON FUNCTION jobstream_erase(uuid, text, text) TO %I', current_user);
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Erased jobs stay erased: their content is gone. The columns that say so
-- go, and the guards, the log's trigger and the function return to 00050's.
DROP FUNCTION jobstream_erase(uuid, text, text);
DROP TRIGGER log_job_events ON job_events;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION log_job_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.event = 'retention_deleted' THEN
        INSERT INTO log_leaves (kind, leaf, job_id)
        SELECT 'job', v.leaf, v.id FROM jobstream_log_job_leaves v WHERE v.id = NEW.job_id
        ON CONFLICT (job_id) WHERE kind = 'job' DO NOTHING;
        INSERT INTO log_leaves (kind, leaf, job_id)
        VALUES ('deleted', '\x01'::bytea
            || jobstream_log_text('deleted')
            || jobstream_log_field(uuid_send(NEW.job_id))
            || jobstream_log_text(NEW.tenant)
            || jobstream_log_text(NEW.reason)
            || jobstream_log_text(NEW.detail->>'policy')
            || jobstream_log_int((NEW.detail->>'keep_days')::bigint)
            || jobstream_log_int((NEW.detail->>'min_days')::bigint)
            || jobstream_log_time((NEW.detail->>'judged_at')::timestamptz)
            || jobstream_log_int((NEW.detail->>'chunk_count')::bigint)
            || jobstream_log_field(decode(NEW.detail->>'final_hash', 'hex'))
            || jobstream_log_field(NEW.hash),
            NEW.job_id);
    ELSIF NEW.event IN ('hold_placed', 'hold_lifted') THEN
        INSERT INTO log_leaves (kind, leaf, job_id)
        VALUES (CASE NEW.event WHEN 'hold_placed' THEN 'hold' ELSE 'unhold' END, '\x01'::bytea
            || jobstream_log_text(CASE NEW.event WHEN 'hold_placed' THEN 'hold' ELSE 'unhold' END)
            || jobstream_log_field(uuid_send(NEW.job_id))
            || jobstream_log_text(NEW.tenant)
            || jobstream_log_text(NEW.detail->>'authority')
            || jobstream_log_time(NEW.at)
            || jobstream_log_field(NEW.hash),
            NEW.job_id);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_job_events AFTER INSERT ON job_events FOR EACH ROW
    WHEN (NEW.event IN ('retention_deleted', 'hold_placed', 'hold_lifted'))
    EXECUTE FUNCTION log_job_events();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION job_chunks_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'jobstream_retention' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = CASE WHEN TG_OP = 'UPDATE' THEN 'Chunks are never changed once written.'
                          ELSE 'Only retention removes chunks (jobstream retention run).' END;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION jobs_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.tenant <> OLD.tenant OR NEW.engine <> OLD.engine
       OR NEW.api_key_id IS DISTINCT FROM OLD.api_key_id OR NEW.room_id IS DISTINCT FROM OLD.room_id
       OR NEW.request::text <> OLD.request::text OR NEW.created_at <> OLD.created_at
       OR NEW.request_sha256 <> OLD.request_sha256 OR NEW.chain_version <> OLD.chain_version
       OR NEW.chain_seed <> OLD.chain_seed THEN
        RAISE EXCEPTION 'job %: its id, tenant, key, engine, room, request, creation time and chain seed never change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.chunk_count IS DISTINCT FROM OLD.chunk_count OR NEW.final_hash IS DISTINCT FROM OLD.final_hash THEN
        RAISE EXCEPTION 'job %: the seal (chunk_count, final_hash) is set by the database when the job ends', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status IN ('completed', 'failed', 'cancelled')
       AND (NEW.status, NEW.finish_reason, NEW.error, NEW.usage, NEW.attempt, NEW.max_attempts, NEW.lease_owner,
            NEW.lease_expires_at, NEW.cancel_requested_at, NEW.started_at, NEW.finished_at)
           IS DISTINCT FROM
           (OLD.status, OLD.finish_reason, OLD.error, OLD.usage, OLD.attempt, OLD.max_attempts, OLD.lease_owner,
            OLD.lease_expires_at, OLD.cancel_requested_at, OLD.started_at, OLD.finished_at) THEN
        RAISE EXCEPTION 'job % has ended (%): it never changes again', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

ALTER TABLE jobs DROP CONSTRAINT jobs_erased_all_or_none,
    DROP COLUMN erase_reason, DROP COLUMN erased_by, DROP COLUMN erased_at;
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM jobstream_eraser', current_schema());
    REVOKE ALL ON jobs, job_chunks, responses, pixel_jobs, job_holds, job_events FROM jobstream_eraser;
END
$$;
-- +goose StatementEnd
