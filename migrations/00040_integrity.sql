-- The record's integrity: least privilege, no bypass through PostgreSQL's
-- own rules, every change accounted for (internal/store/doc.go has the
-- whole model; README.md, "Guarantees" and "Retention", the user's view).
--
-- 1. Functions resolve names in a pinned search_path with pg_temp last, so
--    a caller's temporary table cannot stand in for retention_policies,
--    jobs, job_holds or analysts inside them. Analysts (and every other
--    role but the database owner) lose TEMP.
-- 2. Permission to remove the record comes from who removes it, never from
--    a setting: chunks and jobs can be deleted only by the NOLOGIN role
--    jobstream_retention, which owns the function that deletes expired
--    jobs. The setting jobstream.retention means nothing any more.
-- 3. Retention judges by itself: the current time is the database's, the
--    server-wide default and minimum live in retention_settings (changed
--    only by the owner), and nothing deletes at a time the caller chose.
-- 4. The server's role may change only the columns a job's life needs; a
--    job's request, tenant, engine, key and creation time never change, and
--    nothing about a job changes once it has ended. The chain's seed covers
--    the id, tenant, engine and the SHA-256 of the request exactly as
--    stored (jobs.request becomes json, which keeps its text verbatim).
-- 5. Chunks are refused for a job that does not exist or has ended.
-- 6. job_events and the new admin_events get a hash chain, a gap-free seq
--    and at/db_role set by the database. Every change to retention
--    policies and settings, API keys and analysts is an admin event.
--
-- What this cannot stop: the owner (or a superuser) can disable triggers,
-- rewrite rows and recompute every hash. Only a commitment kept outside
-- the database (signed checkpoints) catches that.

-- +goose Up

-- ---------------------------------------------------------------- roles
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_retention') THEN
        BEGIN
            CREATE ROLE jobstream_retention NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL; -- created concurrently by another database's migration
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'cannot create role jobstream_retention (%): migrate as a role with CREATEROLE, or have an administrator run CREATE ROLE jobstream_retention NOLOGIN first', SQLERRM;
        END;
    END IF;
    -- A non-superuser owner must be a member to hand it functions.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'jobstream_retention', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT jobstream_retention TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot grant role jobstream_retention to % (%): see the ownership notice below', current_user, SQLERRM;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        RAISE EXCEPTION 'role jobstream_app is missing: migrate as a role with CREATEROLE';
    END IF;
    -- Nobody but the owner creates objects in the schema (a cluster
    -- upgraded from before PostgreSQL 15 still lets PUBLIC): a lookalike
    -- function there could be picked up by the owner's own.
    BEGIN
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot revoke CREATE on schema % from PUBLIC (%): the schema''s owner should', current_schema(), SQLERRM;
    END;
    -- No role but the owner creates temporary tables in this database: a
    -- temporary table is how a caller shadows a real one. (Database-level
    -- privileges are not copied by CREATE DATABASE ... TEMPLATE; analyst
    -- creation repeats this.)
    BEGIN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot revoke TEMPORARY on % from PUBLIC (%): the database owner should', current_database(), SQLERRM;
    END;
END
$$;
-- +goose StatementEnd

-- ------------------------------------------------- retention settings
-- The server-wide retention rule, one row, changed only by the owner
-- (jobstream retention set --default / --minimum). default_days applies to
-- tenants without a policy of their own; min_days is a floor no policy can
-- go below, nor the default (0: keep forever by default / no minimum).
CREATE TABLE retention_settings (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    default_days integer     NOT NULL DEFAULT 0 CHECK (default_days BETWEEN 0 AND 100000),
    min_days     integer     NOT NULL DEFAULT 0 CHECK (min_days BETWEEN 0 AND 100000),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO retention_settings DEFAULT VALUES;

-- keep_days was only >= 0: 3,000,000 days overflowed every cutoff.
ALTER TABLE retention_policies ADD CONSTRAINT retention_policies_keep_days_range CHECK (keep_days <= 100000);

-- +goose StatementBegin
CREATE FUNCTION retention_policies_minimum() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_min integer := (SELECT min_days FROM retention_settings);
BEGIN
    IF NEW.keep_days <> 0 AND NEW.keep_days < v_min THEN
        RAISE EXCEPTION 'a policy of % days is below the server-wide minimum of % days', NEW.keep_days, v_min
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER retention_policies_minimum BEFORE INSERT OR UPDATE ON retention_policies
    FOR EACH ROW EXECUTE FUNCTION retention_policies_minimum();

-- +goose StatementBegin
CREATE FUNCTION retention_settings_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_below text;
BEGIN
    SELECT string_agg(format('%s (%s days)', tenant, keep_days), ', ' ORDER BY tenant) INTO v_below
    FROM retention_policies WHERE keep_days <> 0 AND keep_days < NEW.min_days;
    IF v_below IS NOT NULL THEN
        RAISE EXCEPTION 'a minimum of % days is above the policies of %', NEW.min_days, v_below
            USING ERRCODE = 'check_violation', HINT = 'Raise or clear those policies first.';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER retention_settings_check BEFORE UPDATE ON retention_settings
    FOR EACH ROW EXECUTE FUNCTION retention_settings_check();

-- ------------------------------------------------------- jobs: the seed
-- jobs.request keeps the exact text the server stored (json, like
-- job_chunks.data); request_sha256, chain_version and chain_seed are set
-- by the database when the job is inserted.
ALTER TABLE jobs ALTER COLUMN request TYPE json USING request::json;
ALTER TABLE jobs
    ADD COLUMN request_sha256 bytea,
    ADD COLUMN chain_version  smallint,
    ADD COLUMN chain_seed     bytea;

-- The chain seed of version 2: it binds the chain to the job's id, tenant,
-- engine and request.
--   seed = sha256(id's 16 bytes || sha256(request text) || tenant || 0x00 || engine)
CREATE FUNCTION job_chain_seed_v2(p_id uuid, p_tenant text, p_engine text, p_request_sha256 bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN sha256(uuid_send(p_id) || p_request_sha256 || convert_to(p_tenant, 'UTF8') || '\x00'::bytea
                  || convert_to(p_engine, 'UTF8'));

-- Jobs stored before this migration keep the version 1 seed (the id alone).
UPDATE jobs SET request_sha256 = sha256(convert_to(request::text, 'UTF8')),
                chain_version = 1,
                chain_seed = job_chain_seed(id);
ALTER TABLE jobs
    ALTER COLUMN request_sha256 SET NOT NULL,
    ALTER COLUMN chain_version SET NOT NULL,
    ALTER COLUMN chain_seed SET NOT NULL,
    ADD CONSTRAINT jobs_chain_version CHECK (chain_version IN (1, 2));

-- +goose StatementBegin
-- jobs_stamp sets what the database decides about a new job, whatever the
-- INSERT said: its request hash, chain version and seed, and (for a job
-- inserted already ended) its seal.
CREATE FUNCTION jobs_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only the owner may store a job of another time (fixtures, imports):
    -- a job the server's role inserts is created now, with an id of now,
    -- so it can neither look old enough for retention at once nor slip
    -- into a day partition while retention drops it.
    IF current_user <> (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'jobs'::regclass) THEN
        NEW.created_at := now();
        IF jobstream_uuid_time(NEW.id) NOT BETWEEN now() - interval '1 hour' AND now() + interval '1 hour' THEN
            RAISE EXCEPTION 'job id % is not a UUIDv7 of now', NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.request_sha256 := sha256(convert_to(NEW.request::text, 'UTF8'));
    NEW.chain_version := 2;
    NEW.chain_seed := job_chain_seed_v2(NEW.id, NEW.tenant, NEW.engine, NEW.request_sha256);
    IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
        NEW.chunk_count := 0;
        NEW.final_hash := NEW.chain_seed;
    ELSE
        NEW.chunk_count := NULL;
        NEW.final_hash := NULL;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_stamp BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_stamp();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION jobs_seal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq  integer;
    last_hash bytea;
BEGIN
    SELECT seq, hash INTO last_seq, last_hash
    FROM job_chunks WHERE job_id = NEW.id ORDER BY seq DESC LIMIT 1;
    NEW.chunk_count := coalesce(last_seq + 1, 0);
    NEW.final_hash := coalesce(last_hash, NEW.chain_seed);
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobs_guard keeps what a job was asked, by whom and with which engine
-- immutable, keeps the seal for jobs_seal alone, and freezes a job once it
-- has ended. It runs before jobs_seal (triggers fire in name order), so a
-- seal set by hand is refused and the real one is computed after.
CREATE FUNCTION jobs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
    -- Every column, those later migrations add included (json has no
    -- equality: compared as jsonb).
    IF OLD.status IN ('completed', 'failed', 'cancelled') AND to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD) THEN
        RAISE EXCEPTION 'job % has ended (%): it never changes again', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_guard BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_guard();

-- ------------------------------------------- deletion: who, not a setting
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION job_chunks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE FUNCTION jobs_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = 'jobstream_retention' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'jobs are removed only by retention (jobstream retention run), not by %', current_user
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_delete_guard BEFORE DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION jobs_delete_guard();
CREATE TRIGGER jobs_truncate_guard BEFORE TRUNCATE ON jobs FOR EACH STATEMENT EXECUTE FUNCTION job_chunks_append_only();

-- Deleting a job (which only retention may) deletes its chunks as the
-- deleting role, so the chunks' guard sees jobstream_retention.
ALTER FUNCTION jobs_delete_chunks() SECURITY INVOKER;

-- +goose StatementBegin
-- job_chunks_check_jobs refuses chunks of a job that does not exist or has
-- ended, once per INSERT statement (the chunk writer's group commit is one
-- statement): a hash anti-join of the batch's job ids against jobs, without
-- the row locks a foreign key takes (migrations/00020_chunks_no_fk.sql).
CREATE FUNCTION job_chunks_check_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_bad uuid;
BEGIN
    SELECT n.job_id INTO v_bad
    FROM (SELECT DISTINCT job_id FROM new_chunks) n
    WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = n.job_id AND j.status IN ('queued', 'running'))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'chunks of job % refused: no such job, or it has ended', v_bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER job_chunks_check_jobs AFTER INSERT ON job_chunks
    REFERENCING NEW TABLE AS new_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION job_chunks_check_jobs();

-- ------------------------------------------------ job_events: a chain
ALTER TABLE job_events ADD COLUMN seq integer, ADD COLUMN hash bytea;

-- The link of one event: its fields, in this order, as UTF-8 text joined
-- by 0x00 (NULL as empty text; at as UTC with microseconds), after the
-- previous event's hash. The first event of a job continues from
-- sha256(job id's 16 bytes || 'events').
CREATE FUNCTION job_event_hash(p_prev bytea, e job_events) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN sha256(coalesce(p_prev, sha256(uuid_send(e.job_id) || convert_to('events', 'UTF8')))
        || convert_to(e.seq::text, 'UTF8') || '\x00'::bytea
        || convert_to(e.event, 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.from_status, ''), 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.to_status, ''), 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.attempt::text, ''), 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.lease_owner, ''), 'UTF8') || '\x00'::bytea
        || convert_to(e.actor, 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.reason, ''), 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.detail::text, ''), 'UTF8') || '\x00'::bytea
        || convert_to(e.tenant, 'UTF8') || '\x00'::bytea
        || convert_to(e.db_role, 'UTF8') || '\x00'::bytea
        || convert_to(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8'));

-- Events recorded before this migration get their chain now, in id order.
-- +goose StatementBegin
DO $$
DECLARE
    r      record;
    v_job  uuid;
    v_seq  integer;
    v_prev bytea;
BEGIN
    ALTER TABLE job_events DISABLE TRIGGER job_events_append_only;
    FOR r IN SELECT id, job_id FROM job_events ORDER BY job_id, id LOOP
        IF v_job IS DISTINCT FROM r.job_id THEN
            v_job := r.job_id; v_seq := 0; v_prev := NULL;
        ELSE
            v_seq := v_seq + 1;
        END IF;
        UPDATE job_events SET seq = v_seq WHERE id = r.id;
        UPDATE job_events e SET hash = job_event_hash(v_prev, e) WHERE e.id = r.id
        RETURNING e.hash INTO v_prev;
    END LOOP;
    ALTER TABLE job_events ENABLE TRIGGER job_events_append_only;
END
$$;
-- +goose StatementEnd
ALTER TABLE job_events ALTER COLUMN seq SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX job_events_job_seq_idx ON job_events (job_id, seq);

-- +goose StatementBegin
-- job_events_stamp sets what the database decides about an event, whatever
-- the INSERT said: when (at), as which role (db_role), its place in the
-- job's chain (seq) and its hash. Events of one job are chained one at a
-- time, under a transaction-level advisory lock per job. Every writer of
-- events locks the job's row first (a status change, the chunk writer's
-- fence, a cancel's FOR NO KEY UPDATE, a hold's FOR KEY SHARE, retention's
-- FOR UPDATE, a read record's foreign key) and only then this lock, so no
-- two transactions wait on each other the other way round. (Not the row
-- itself: an event of a queued job, such as a read record, would then make
-- the claim, FOR ... SKIP LOCKED, skip the oldest job for a younger one.)
-- An event of a job that does not exist is refused.
CREATE FUNCTION job_events_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_seq    integer;
    v_prev   bytea;
    v_tenant text;
BEGIN
    NEW.at := now();
    NEW.db_role := current_user;
    SELECT tenant INTO v_tenant FROM jobs WHERE id = NEW.job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'an event of job %, which does not exist', NEW.job_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM pg_advisory_xact_lock(7340510, hashtext(NEW.job_id::text));
    -- The tenant is the job's, whatever the INSERT said.
    NEW.tenant := v_tenant;
    -- Events that remove or protect the record are written by retention
    -- and the hold functions alone (as jobstream_retention or the tables'
    -- owner); the server's role may write other events, not these: a
    -- forged one would stand in the log for a removal or a hold that never
    -- happened.
    IF NEW.event IN ('retention_deleted', 'hold_placed', 'hold_lifted', 'erased')
       AND current_user NOT IN ('jobstream_retention', 'jobstream_eraser',
                                (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'jobs'::regclass)) THEN
        RAISE EXCEPTION 'event % of job % is written by retention and the hold functions only, not by %', NEW.event, NEW.job_id, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT seq, hash INTO v_seq, v_prev FROM job_events
    WHERE job_id = NEW.job_id ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(v_seq + 1, 0);
    NEW.hash := job_event_hash(v_prev, NEW);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER job_events_stamp BEFORE INSERT ON job_events FOR EACH ROW EXECUTE FUNCTION job_events_stamp();

-- ---------------------------------------------- admin_events: a chain
-- Changes that are not about one job: retention policies and settings,
-- API keys, analysts, exports. One chain over all of them, in seq order.
CREATE TABLE admin_events (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq     bigint      NOT NULL UNIQUE,
    at      timestamptz NOT NULL,
    db_role text        NOT NULL,
    -- policy_set, policy_cleared, retention_settings_set, key_created,
    -- key_revoked, analyst_created, analyst_dropped, export.
    event   text        NOT NULL,
    tenant  text        NOT NULL DEFAULT '',
    -- What changed: a tenant, a key id, a role.
    subject text        NOT NULL DEFAULT '',
    actor   text        NOT NULL,
    detail  jsonb,
    hash    bytea       NOT NULL
);

CREATE FUNCTION admin_event_hash(p_prev bytea, e admin_events) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN sha256(coalesce(p_prev, sha256(convert_to('admin_events', 'UTF8')))
        || convert_to(e.seq::text, 'UTF8') || '\x00'::bytea
        || convert_to(e.event, 'UTF8') || '\x00'::bytea
        || convert_to(e.tenant, 'UTF8') || '\x00'::bytea
        || convert_to(e.subject, 'UTF8') || '\x00'::bytea
        || convert_to(e.actor, 'UTF8') || '\x00'::bytea
        || convert_to(coalesce(e.detail::text, ''), 'UTF8') || '\x00'::bytea
        || convert_to(e.db_role, 'UTF8') || '\x00'::bytea
        || convert_to(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8'));

-- +goose StatementBegin
CREATE FUNCTION admin_events_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_seq  bigint;
    v_prev bytea;
BEGIN
    NEW.at := now();
    NEW.db_role := current_user;
    PERFORM pg_advisory_xact_lock(7340511, 0);
    SELECT seq, hash INTO v_seq, v_prev FROM admin_events ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(v_seq + 1, 0);
    NEW.hash := admin_event_hash(v_prev, NEW);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER admin_events_stamp BEFORE INSERT ON admin_events FOR EACH ROW EXECUTE FUNCTION admin_events_stamp();
CREATE TRIGGER admin_events_append_only BEFORE UPDATE OR DELETE ON admin_events
    FOR EACH ROW EXECUTE FUNCTION job_events_append_only();
CREATE TRIGGER admin_events_append_only_truncate BEFORE TRUNCATE ON admin_events
    FOR EACH STATEMENT EXECUTE FUNCTION job_events_append_only();

-- The actor of an admin change: what the jobstream command named for its
-- transaction (a label; the database's own word is db_role), else the role.
CREATE FUNCTION jobstream_admin_actor() RETURNS text LANGUAGE sql STABLE
    RETURN coalesce(nullif(current_setting('jobstream.actor', true), ''), 'db_role:' || current_user);

-- +goose StatementBegin
CREATE FUNCTION admin_events_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_TABLE_NAME
    WHEN 'retention_policies' THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO admin_events (event, tenant, subject, actor, detail)
            VALUES ('policy_cleared', OLD.tenant, OLD.tenant, jobstream_admin_actor(),
                    jsonb_build_object('keep_days', OLD.keep_days));
        ELSIF TG_OP = 'INSERT' OR NEW.keep_days <> OLD.keep_days THEN
            INSERT INTO admin_events (event, tenant, subject, actor, detail)
            VALUES ('policy_set', NEW.tenant, NEW.tenant, jobstream_admin_actor(),
                    jsonb_build_object('keep_days', NEW.keep_days,
                                       'previous_keep_days', CASE WHEN TG_OP = 'UPDATE' THEN OLD.keep_days END));
        END IF;
    WHEN 'retention_settings' THEN
        IF (NEW.default_days, NEW.min_days) IS DISTINCT FROM (OLD.default_days, OLD.min_days) THEN
            INSERT INTO admin_events (event, actor, detail)
            VALUES ('retention_settings_set', jobstream_admin_actor(),
                    jsonb_build_object('default_days', NEW.default_days, 'min_days', NEW.min_days,
                                       'previous_default_days', OLD.default_days, 'previous_min_days', OLD.min_days));
        END IF;
    WHEN 'api_keys' THEN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO admin_events (event, tenant, subject, actor, detail)
            VALUES ('key_created', NEW.tenant, NEW.id::text, jobstream_admin_actor(),
                    jsonb_build_object('name', NEW.name, 'access_key', NEW.access_key));
        ELSIF TG_OP = 'UPDATE' AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
            INSERT INTO admin_events (event, tenant, subject, actor, detail)
            VALUES ('key_revoked', NEW.tenant, NEW.id::text, jobstream_admin_actor(),
                    jsonb_build_object('name', NEW.name, 'access_key', NEW.access_key));
        END IF;
    WHEN 'analysts' THEN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO admin_events (event, tenant, subject, actor)
            VALUES ('analyst_created', NEW.tenant, NEW.role, jobstream_admin_actor());
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO admin_events (event, tenant, subject, actor)
            VALUES ('analyst_dropped', OLD.tenant, OLD.role, jobstream_admin_actor());
        END IF;
    END CASE;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER admin_events_record AFTER INSERT OR UPDATE OR DELETE ON retention_policies
    FOR EACH ROW EXECUTE FUNCTION admin_events_record();
CREATE TRIGGER admin_events_record AFTER UPDATE ON retention_settings
    FOR EACH ROW EXECUTE FUNCTION admin_events_record();
CREATE TRIGGER admin_events_record AFTER INSERT OR UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION admin_events_record();
CREATE TRIGGER admin_events_record AFTER INSERT OR DELETE ON analysts
    FOR EACH ROW EXECUTE FUNCTION admin_events_record();

-- ---------------------------------------------------------- retention
-- The old functions took the time and the default days from their caller.
-- +goose StatementBegin
DO $$
BEGIN
    DROP FUNCTION jobstream_retention_delete_batch(timestamptz, integer, integer);
    DROP FUNCTION jobstream_retention_drop_partition(text, timestamptz, integer);
    DROP FUNCTION jobstream_retention_record(uuid[], text);
    DROP FUNCTION jobstream_retention_plan(timestamptz, integer);
    DROP FUNCTION jobstream_retention_expired(uuid, text, text, timestamptz, timestamptz, integer);
    DROP FUNCTION jobstream_retention_horizon(timestamptz, integer);
    DROP FUNCTION jobstream_retention_cutoff(text, timestamptz, integer);
END
$$;
-- +goose StatementEnd

-- The days a tenant's finished jobs are kept: its policy, else the server
-- default, never below the server minimum; 0 keeps them forever.
CREATE FUNCTION jobstream_retention_days(p_tenant text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN k = 0 THEN 0 ELSE greatest(k, s.min_days) END
    FROM retention_settings s,
         LATERAL (SELECT coalesce((SELECT keep_days FROM retention_policies WHERE tenant = p_tenant), s.default_days) AS k) p
$$;

-- The moment before which a tenant's jobs have expired at p_now, or NULL
-- when it keeps them forever. Days are at most 100,000 (checked), so the
-- cutoff never leaves timestamptz's range.
CREATE FUNCTION jobstream_retention_cutoff(p_tenant text, p_now timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT p_now - make_interval(days => least(d, 100000))
    FROM (SELECT jobstream_retention_days(p_tenant) AS d) s
    WHERE d > 0
$$;

-- Every job that may have expired at p_now has an id below this bound;
-- NULL when every rule keeps forever. (least() skips a NULL: min() of no
-- rule must stay NULL, or the bound would be a century back, whose uuid
-- wraps past every partition, future ones included.)
CREATE FUNCTION jobstream_retention_horizon(p_now timestamptz) RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN min(k) IS NOT NULL
                THEN jobstream_uuid_at(p_now - make_interval(days => least(min(k), 100000))) END
    FROM (SELECT CASE WHEN p.keep_days = 0 THEN 0 ELSE greatest(p.keep_days, s.min_days) END AS k
            FROM retention_policies p, retention_settings s
          UNION ALL
          SELECT greatest(s.default_days, s.min_days) FROM retention_settings s WHERE s.default_days > 0) t
    WHERE k > 0
$$;

CREATE FUNCTION jobstream_retention_expired(p_id uuid, p_tenant text, p_status text, p_created_at timestamptz,
                                            p_now timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_status IN ('completed', 'failed', 'cancelled')
                    AND p_id < jobstream_uuid_at(c.cutoff)
                    AND p_created_at < c.cutoff, false)
    FROM (SELECT jobstream_retention_cutoff(p_tenant, p_now) AS cutoff) c
$$;

-- What a pass would do at p_now (read-only: any p_now, for a dry run).
CREATE FUNCTION jobstream_retention_plan(p_now timestamptz)
RETURNS TABLE (partition text, lo uuid, hi uuid, jobs bigint, keep bigint)
LANGUAGE sql STABLE AS $$
    SELECT p.name, p.lo, p.hi,
           count(j.id),
           count(j.id) FILTER (WHERE NOT jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, p_now)
                                  OR EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id))
    FROM jobstream_chunk_partitions() p
    LEFT JOIN jobs j ON j.id >= p.lo AND j.id < p.hi
    WHERE p.hi <= jobstream_retention_horizon(p_now)
    GROUP BY p.name, p.lo, p.hi
    ORDER BY p.lo
$$;

-- jobstream_retention_recorded: whether retention recorded removing the
-- job. Only an event retention itself wrote counts: the server's role may
-- insert events, and a forged retention_deleted would otherwise block every
-- hold of the job and, worse, stop the real removal from being recorded.
-- Retention writes as jobstream_retention (the batch) or as the tables'
-- owner (the partition drop, and every pass before this migration).
CREATE OR REPLACE FUNCTION jobstream_retention_recorded(p_id uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM job_events e
                   WHERE e.job_id = p_id AND e.event = 'retention_deleted'
                     AND (e.db_role = 'jobstream_retention'
                          OR e.db_role = (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'jobs'::regclass)))
$$;

-- jobstream_retention_record writes a retention_deleted event for each job
-- not recorded yet: who ran the pass, when it judged, by which rule, and
-- the seal of what it removed.
CREATE FUNCTION jobstream_retention_record(p_ids uuid[], p_how text, p_ran_by text, p_now timestamptz)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, actor, reason, detail)
    SELECT j.id, j.tenant, 'retention_deleted', j.status, NULL, j.attempt, 'retention', p_how,
           jsonb_build_object('ran_by', p_ran_by, 'judged_at', p_now,
                              'keep_days', jobstream_retention_days(j.tenant),
                              'policy', CASE WHEN EXISTS (SELECT 1 FROM retention_policies r WHERE r.tenant = j.tenant)
                                             THEN 'tenant' ELSE 'default' END,
                              'min_days', (SELECT min_days FROM retention_settings),
                              'chunk_count', j.chunk_count, 'final_hash', encode(j.final_hash, 'hex'),
                              'created_at', j.created_at, 'finished_at', j.finished_at)
    FROM jobs j
    WHERE j.id = ANY (p_ids) AND NOT jobstream_retention_recorded(j.id)
$$;

-- +goose StatementBegin
-- jobstream_retention_drop_partition drops a day partition of job_chunks
-- if every job in its range has expired now (the database's clock) and
-- none is held, recording a retention_deleted event for each (p_ran_by:
-- who runs the pass). NULL when it must stay or its lock was not granted
-- within 2 s. Owned by the tables' owner: DROP needs it, and fires no
-- row trigger. The locking is explained in migrations/00008_retention.sql.
CREATE FUNCTION jobstream_retention_drop_partition(p_partition text, p_ran_by text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_now timestamptz := now();
    v_lo  uuid;
    v_hi  uuid;
    v_ids uuid[];
BEGIN
    SELECT lo, hi INTO v_lo, v_hi FROM jobstream_chunk_partitions() WHERE name = p_partition;
    IF NOT FOUND OR v_hi > jobstream_retention_horizon(v_now) THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('lock_timeout', '2s', true);
    SELECT coalesce(array_agg(id), '{}') INTO v_ids
    FROM (SELECT id FROM jobs WHERE id >= v_lo AND id < v_hi ORDER BY id FOR UPDATE) s;
    IF EXISTS (SELECT 1 FROM jobs j WHERE j.id = ANY (v_ids)
                AND (NOT jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, v_now)
                     OR EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id))) THEN
        RETURN NULL;
    END IF;
    PERFORM jobstream_retention_record(v_ids, 'partition ' || p_partition || ' dropped', p_ran_by, v_now);
    EXECUTE format('DROP TABLE %I', p_partition);
    RETURN cardinality(v_ids);
EXCEPTION WHEN lock_not_available THEN
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_retention_delete_batch deletes up to p_limit (at most 1,000)
-- jobs expired now and not held, oldest first, with their chunks, and
-- records a retention_deleted event for each (see 00008 for the locking).
-- Owned by jobstream_retention: the only role whose deletions the
-- append-only guards let through.
CREATE FUNCTION jobstream_retention_delete_batch(p_limit integer, p_ran_by text)
RETURNS TABLE (job_id uuid, tenant text, chunks bigint, recorded boolean)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_now     timestamptz := now();
    v_horizon uuid := jobstream_retention_horizon(v_now);
    v_ids     uuid[];
BEGIN
    IF v_horizon IS NULL THEN
        RETURN;
    END IF;
    SELECT coalesce(array_agg(s.id), '{}') INTO v_ids FROM (
        SELECT j.id FROM jobs j
        WHERE j.id < v_horizon
          AND jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, v_now)
          AND NOT EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id)
        ORDER BY j.id
        LIMIT least(greatest(p_limit, 1), 1000)
        FOR UPDATE SKIP LOCKED) s;
    SELECT coalesce(array_agg(id), '{}') INTO v_ids
    FROM unnest(v_ids) AS u(id)
    WHERE NOT EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = u.id);

    RETURN QUERY
    SELECT j.id, j.tenant,
           (SELECT count(*) FROM job_chunks c WHERE c.job_id = j.id),
           jobstream_retention_recorded(j.id)
    FROM jobs j WHERE j.id = ANY (v_ids)
    ORDER BY j.id;
    PERFORM jobstream_retention_record(v_ids, 'expired', p_ran_by, v_now);
    DELETE FROM jobs j WHERE j.id = ANY (v_ids);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Partitions are made ahead for at most a month from yesterday on: a
-- caller cannot make thousands of tables.
CREATE OR REPLACE FUNCTION jobstream_chunk_partitions_ensure(p_from date, p_days integer)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    d      date;
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    -- CREATE names its schema: the pinned search_path starts at pg_catalog.
    v_schema text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE c.oid = 'job_chunks'::regclass);
    v_name text;
    v_lo   uuid;
    v_hi   uuid;
BEGIN
    IF p_days NOT BETWEEN 1 AND 31 OR p_from NOT BETWEEN v_today - 1 AND v_today + 31 THEN
        RAISE EXCEPTION 'partitions are made for 1 to 31 days from yesterday to a month ahead, not % days from %', p_days, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(7340502);
    PERFORM set_config('lock_timeout', '5s', true);
    FOR i IN 0 .. p_days - 1 LOOP
        d := p_from + i;
        v_name := 'job_chunks_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(quote_ident(v_name)) IS NOT NULL;
        v_lo := jobstream_uuid_at(d::timestamp AT TIME ZONE 'UTC');
        v_hi := jobstream_uuid_at((d + 1)::timestamp AT TIME ZONE 'UTC');
        CONTINUE WHEN EXISTS (SELECT 1 FROM job_chunks_default WHERE job_id >= v_lo AND job_id < v_hi);
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.job_chunks FOR VALUES FROM (%L) TO (%L)',
                       v_schema, v_name, v_schema, v_lo, v_hi);
        PERFORM jobstream_revoke_all(format('%I.%I', v_schema, v_name)::regclass);
        RETURN NEXT v_name;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION jobstream_analyst_create(p_role text, p_tenant text, p_secret text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF p_secret NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the password must be given as a SCRAM-SHA-256 secret';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE jobstream_analyst', p_role, p_secret);
    INSERT INTO analysts (role, tenant) VALUES (p_role, p_tenant);
    -- Analysts create no temporary tables here (see the top of 00040).
    BEGIN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot revoke TEMPORARY on % from PUBLIC: the database owner should', current_database();
    END;
END
$$;
-- +goose StatementEnd

-- ------------------------------------------------------- privileges
-- +goose StatementBegin
DO $$
DECLARE
    s text := current_schema();
BEGIN
    -- Tables created later get nothing by default; each migration grants
    -- the server role what it needs.
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM jobstream_app', s);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM jobstream_app', s);
    GRANT SELECT, INSERT ON jobs, job_chunks, job_events TO jobstream_app;
    GRANT UPDATE (status, finish_reason, error, usage, attempt, max_attempts, lease_owner, lease_expires_at,
                  cancel_requested_at, started_at, finished_at) ON jobs TO jobstream_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO jobstream_app;
    GRANT SELECT, INSERT, UPDATE ON stream_cursors TO jobstream_app;
    GRANT SELECT, INSERT ON pixel_jobs, responses TO jobstream_app;
    GRANT UPDATE (deleted_at) ON responses TO jobstream_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON job_holds TO jobstream_app;
    GRANT SELECT ON api_keys, retention_policies, retention_settings, analysts, goose_db_version TO jobstream_app;

    -- Retention's role: what deleting expired jobs needs, and no more.
    BEGIN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO jobstream_retention', s);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant USAGE on schema % to jobstream_retention (%): the schema''s owner should', s, SQLERRM;
    END;
    GRANT SELECT, DELETE ON jobs, job_chunks TO jobstream_retention;
    -- SELECT ... FOR UPDATE needs UPDATE on some column; retention never
    -- updates (and jobs_guard freezes ended jobs anyway).
    GRANT UPDATE (cancel_requested_at) ON jobs TO jobstream_retention;
    GRANT SELECT ON job_holds, retention_policies, retention_settings, job_events TO jobstream_retention;
    GRANT INSERT ON job_events TO jobstream_retention;


    -- A non-superuser may hand a function only to a role that could have
    -- created it there.
    -- A migrating role that may not (no CREATEROLE, not a member of
    -- jobstream_retention) leaves the function its own: retention's
    -- deletions are then refused, loudly, until an administrator runs the
    -- ALTER FUNCTION below, since no other role may delete chunks.
    BEGIN
        EXECUTE format('GRANT CREATE ON SCHEMA %I TO jobstream_retention', s);
        ALTER FUNCTION jobstream_retention_delete_batch(integer, text) OWNER TO jobstream_retention;
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM jobstream_retention', s);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot hand jobstream_retention_delete_batch to jobstream_retention (%): retention will delete nothing until an administrator runs ALTER FUNCTION %I.jobstream_retention_delete_batch(integer, text) OWNER TO jobstream_retention', SQLERRM, s;
    END;

    -- Who may run what: the removal functions are the server's (and the
    -- owner's); the event writer they share is retention's alone.
    REVOKE EXECUTE ON FUNCTION jobstream_retention_record(uuid[], text, text, timestamptz) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION jobstream_retention_record(uuid[], text, text, timestamptz) TO jobstream_retention;
    REVOKE EXECUTE ON FUNCTION jobstream_retention_drop_partition(text, text) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION jobstream_retention_delete_batch(integer, text) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION jobstream_retention_drop_partition(text, text) TO jobstream_app;
    GRANT EXECUTE ON FUNCTION jobstream_retention_delete_batch(integer, text) TO jobstream_app;
    GRANT EXECUTE ON FUNCTION jobstream_chunk_partitions_ensure(date, integer) TO jobstream_app;
END
$$;
-- +goose StatementEnd

-- -------------------------------------------------- pinned search_path
-- Every function of the schema whose body is parsed when it runs resolves
-- names in pg_catalog, then this schema, then pg_temp, last: a temporary
-- table never stands in for a real one. (Functions with a SQL-standard
-- body were bound when created.) Triggers are pinned too: they run with
-- the caller's search_path otherwise, and jobs_seal, say, would seal a
-- caller's temporary job_chunks. Functions added later pin their own; a
-- test walks pg_proc for any that does not.
-- +goose StatementBegin
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.oid::regprocedure AS fn
               FROM pg_proc p
              WHERE p.pronamespace = current_schema()::regnamespace
                AND p.prokind = 'f' AND p.prosqlbody IS NULL
                AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('sql', 'plpgsql'))
                -- 00007's rebuild, run by migrations alone, creates tables
                -- by unqualified name.
                AND p.proname <> 'jobstream_chunks_rebuild' LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', r.fn, current_schema());
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Back to 00030's rules (the roles stay: they are cluster-wide, and no
-- down migration drops one). Going down reopens every hole this closes.
DROP TRIGGER job_chunks_check_jobs ON job_chunks;
DROP FUNCTION job_chunks_check_jobs();
DROP TRIGGER jobs_delete_guard ON jobs;
DROP TRIGGER jobs_truncate_guard ON jobs;
DROP FUNCTION jobs_delete_guard();
ALTER FUNCTION jobs_delete_chunks() SECURITY DEFINER;
DROP TRIGGER jobs_guard ON jobs;
DROP FUNCTION jobs_guard();
DROP TRIGGER jobs_stamp ON jobs;
DROP FUNCTION jobs_stamp();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION job_chunks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' AND current_setting('jobstream.retention', true) = 'on' THEN
        IF TG_LEVEL = 'ROW' THEN
            RETURN OLD;
        END IF;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = CASE WHEN TG_OP = 'UPDATE' THEN 'Chunks are never changed once written.'
                          ELSE 'Only retention removes chunks (jobstream retention run).' END;
END
$$;
CREATE OR REPLACE FUNCTION jobs_seal() RETURNS trigger LANGUAGE plpgsql AS $$
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

DROP TRIGGER job_events_stamp ON job_events;
DROP FUNCTION job_events_stamp();
DROP INDEX job_events_job_seq_idx;
DROP FUNCTION job_event_hash(bytea, job_events);
ALTER TABLE job_events DROP COLUMN seq, DROP COLUMN hash;

DROP TRIGGER admin_events_record ON retention_policies;
DROP TRIGGER admin_events_record ON retention_settings;
DROP TRIGGER admin_events_record ON api_keys;
DROP TRIGGER admin_events_record ON analysts;
DROP FUNCTION admin_events_record();
DROP FUNCTION jobstream_admin_actor();
DROP TRIGGER admin_events_stamp ON admin_events;
DROP FUNCTION admin_events_stamp();
DROP FUNCTION admin_event_hash(bytea, admin_events);
DROP TABLE admin_events;

DROP FUNCTION jobstream_retention_delete_batch(integer, text);
DROP FUNCTION jobstream_retention_drop_partition(text, text);
DROP FUNCTION jobstream_retention_record(uuid[], text, text, timestamptz);
DROP FUNCTION jobstream_retention_plan(timestamptz);
DROP FUNCTION jobstream_retention_expired(uuid, text, text, timestamptz, timestamptz);
DROP FUNCTION jobstream_retention_horizon(timestamptz);
DROP FUNCTION jobstream_retention_cutoff(text, timestamptz);
DROP FUNCTION jobstream_retention_days(text);
DROP TRIGGER retention_policies_minimum ON retention_policies;
DROP FUNCTION retention_policies_minimum();
DROP TABLE retention_settings;
DROP FUNCTION retention_settings_check();
ALTER TABLE retention_policies DROP CONSTRAINT retention_policies_keep_days_range;

-- +goose StatementBegin
DO $do$
BEGIN
    CREATE FUNCTION jobstream_retention_cutoff(p_tenant text, p_now timestamptz, p_default_days integer)
    RETURNS timestamptz LANGUAGE sql STABLE AS $$
        SELECT p_now - make_interval(days => k)
        FROM (SELECT coalesce((SELECT keep_days FROM retention_policies WHERE tenant = p_tenant), p_default_days) AS k) s
        WHERE k > 0
    $$;
    CREATE FUNCTION jobstream_retention_horizon(p_now timestamptz, p_default_days integer)
    RETURNS uuid LANGUAGE sql STABLE AS $$
        SELECT jobstream_uuid_at(p_now - make_interval(days => min(k)))
        FROM (SELECT keep_days AS k FROM retention_policies WHERE keep_days > 0
              UNION ALL SELECT p_default_days WHERE p_default_days > 0) s
    $$;
    CREATE FUNCTION jobstream_retention_expired(p_id uuid, p_tenant text, p_status text, p_created_at timestamptz,
                                                p_now timestamptz, p_default_days integer)
    RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT coalesce(p_status IN ('completed', 'failed', 'cancelled')
                        AND p_id < jobstream_uuid_at(c.cutoff)
                        AND p_created_at < c.cutoff, false)
        FROM (SELECT jobstream_retention_cutoff(p_tenant, p_now, p_default_days) AS cutoff) c
    $$;
    CREATE FUNCTION jobstream_retention_plan(p_now timestamptz, p_default_days integer)
    RETURNS TABLE (partition text, lo uuid, hi uuid, jobs bigint, keep bigint) LANGUAGE sql STABLE AS $$
        SELECT p.name, p.lo, p.hi, count(j.id),
               count(j.id) FILTER (WHERE NOT jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, p_now, p_default_days)
                                      OR EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id))
        FROM jobstream_chunk_partitions() p
        LEFT JOIN jobs j ON j.id >= p.lo AND j.id < p.hi
        WHERE p.hi <= jobstream_retention_horizon(p_now, p_default_days)
        GROUP BY p.name, p.lo, p.hi
        ORDER BY p.lo
    $$;
    CREATE OR REPLACE FUNCTION jobstream_retention_recorded(p_id uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = p_id AND e.event = 'retention_deleted')
    $$;
    CREATE FUNCTION jobstream_retention_record(p_ids uuid[], p_how text) RETURNS void LANGUAGE sql AS $$
        INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, actor, reason, detail)
        SELECT j.id, j.tenant, 'retention_deleted', j.status, NULL, j.attempt, 'retention', p_how,
               jsonb_build_object('created_at', j.created_at, 'finished_at', j.finished_at)
        FROM jobs j
        WHERE j.id = ANY (p_ids) AND NOT jobstream_retention_recorded(j.id)
    $$;
    CREATE FUNCTION jobstream_retention_drop_partition(p_partition text, p_now timestamptz, p_default_days integer)
    RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
    DECLARE
        v_lo  uuid;
        v_hi  uuid;
        v_ids uuid[];
    BEGIN
        SELECT lo, hi INTO v_lo, v_hi FROM jobstream_chunk_partitions() WHERE name = p_partition;
        IF NOT FOUND OR v_hi > jobstream_retention_horizon(p_now, p_default_days) THEN
            RETURN NULL;
        END IF;
        PERFORM set_config('jobstream.retention', 'on', true);
        PERFORM set_config('lock_timeout', '2s', true);
        SELECT coalesce(array_agg(id), '{}') INTO v_ids
        FROM (SELECT id FROM jobs WHERE id >= v_lo AND id < v_hi ORDER BY id FOR UPDATE) s;
        IF EXISTS (SELECT 1 FROM jobs j WHERE j.id = ANY (v_ids)
                    AND (NOT jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, p_now, p_default_days)
                         OR EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id))) THEN
            RETURN NULL;
        END IF;
        PERFORM jobstream_retention_record(v_ids, 'partition ' || p_partition || ' dropped');
        EXECUTE format('DROP TABLE %I', p_partition);
        RETURN cardinality(v_ids);
    EXCEPTION WHEN lock_not_available THEN
        RETURN NULL;
    END
    $$;
    CREATE FUNCTION jobstream_retention_delete_batch(p_now timestamptz, p_default_days integer, p_limit integer)
    RETURNS TABLE (job_id uuid, tenant text, chunks bigint, recorded boolean)
    LANGUAGE plpgsql SECURITY DEFINER AS $$
    DECLARE
        v_horizon uuid := jobstream_retention_horizon(p_now, p_default_days);
        v_ids     uuid[];
    BEGIN
        IF v_horizon IS NULL THEN
            RETURN;
        END IF;
        PERFORM set_config('jobstream.retention', 'on', true);
        SELECT coalesce(array_agg(s.id), '{}') INTO v_ids FROM (
            SELECT j.id FROM jobs j
            WHERE j.id < v_horizon
              AND jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, p_now, p_default_days)
              AND NOT EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id)
            ORDER BY j.id LIMIT p_limit FOR UPDATE SKIP LOCKED) s;
        SELECT coalesce(array_agg(id), '{}') INTO v_ids
        FROM unnest(v_ids) AS u(id) WHERE NOT EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = u.id);
        RETURN QUERY
        SELECT j.id, j.tenant, (SELECT count(*) FROM job_chunks c WHERE c.job_id = j.id), jobstream_retention_recorded(j.id)
        FROM jobs j WHERE j.id = ANY (v_ids) ORDER BY j.id;
        PERFORM jobstream_retention_record(v_ids, 'expired');
        DELETE FROM jobs j WHERE j.id = ANY (v_ids);
    END
    $$;
    REVOKE EXECUTE ON FUNCTION jobstream_retention_drop_partition(text, timestamptz, integer) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION jobstream_retention_delete_batch(timestamptz, integer, integer) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION jobstream_retention_drop_partition(text, timestamptz, integer) TO jobstream_app;
    GRANT EXECUTE ON FUNCTION jobstream_retention_delete_batch(timestamptz, integer, integer) TO jobstream_app;

    -- 00005's privileges.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO jobstream_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO jobstream_app', current_schema());
    REVOKE UPDATE, DELETE, TRUNCATE ON job_chunks, job_events FROM jobstream_app;
    REVOKE DELETE, TRUNCATE ON jobs FROM jobstream_app;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON goose_db_version FROM jobstream_app;
    REVOKE ALL ON analysts FROM jobstream_app;
    GRANT SELECT ON analysts TO jobstream_app;
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM jobstream_retention', current_schema());
    REVOKE ALL ON jobs, job_chunks, job_holds, retention_policies, job_events FROM jobstream_retention;
END
$do$;
-- +goose StatementEnd

ALTER TABLE jobs DROP CONSTRAINT jobs_chain_version;
ALTER TABLE jobs DROP COLUMN request_sha256, DROP COLUMN chain_version, DROP COLUMN chain_seed;
DROP FUNCTION job_chain_seed_v2(uuid, text, text, bytea);
ALTER TABLE jobs ALTER COLUMN request TYPE jsonb USING request::jsonb;
