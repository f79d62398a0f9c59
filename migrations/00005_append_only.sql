-- Append-only chunks and audit trail.
--
-- jobstream_app is the role the server works as (its pools SET ROLE to it
-- after connecting; see store.AfterConnectApp). It may read and insert
-- job_chunks and job_events but never update or delete them, and it cannot
-- delete jobs (which would cascade to their chunks). Tables created by
-- later migrations get the ordinary privileges through the default
-- privileges below; a migration that creates a table which must be
-- append-only revokes UPDATE, DELETE and TRUNCATE from jobstream_app itself.
--
-- A role is cluster-wide: the first database migrated creates it, the
-- others reuse it, and the down migration never drops it. Migrating as a
-- role that may not create roles skips the role (with a notice): the server
-- then works as the connecting role, and only the triggers below guard the
-- tables.
--
-- The triggers stop anyone connected as the owner, too: UPDATE is always
-- rejected, DELETE and TRUNCATE unless the transaction set
-- jobstream.retention to on (retention does, and records an audit event for
-- every job it removes). A superuser can still bypass triggers
-- (session_replication_role = replica); the hash chain catches what they
-- change.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        BEGIN
            CREATE ROLE jobstream_app NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL; -- created concurrently by another database's migration
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role jobstream_app (%): the server will work as %', SQLERRM, current_user;
                RETURN;
        END;
    END IF;
    -- Let the migrating role SET ROLE to it (a superuser may anyway).
    IF NOT pg_has_role(current_user, 'jobstream_app', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT jobstream_app TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot grant role jobstream_app to % (%): the server will work as %', current_user, SQLERRM, current_user;
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO jobstream_app', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO jobstream_app', current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO jobstream_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO jobstream_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO jobstream_app', current_schema());
    REVOKE UPDATE, DELETE, TRUNCATE ON job_chunks, job_events FROM jobstream_app;
    REVOKE DELETE, TRUNCATE ON jobs FROM jobstream_app;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON goose_db_version FROM jobstream_app;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION job_chunks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
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
-- +goose StatementEnd

CREATE TRIGGER job_chunks_append_only BEFORE UPDATE OR DELETE ON job_chunks
    FOR EACH ROW EXECUTE FUNCTION job_chunks_append_only();
CREATE TRIGGER job_chunks_append_only_truncate BEFORE TRUNCATE ON job_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION job_chunks_append_only();

-- The audit trail outlives the chunks and jobs it describes: nothing
-- changes or removes an event.
-- +goose StatementBegin
CREATE FUNCTION job_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'job_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER job_events_append_only BEFORE UPDATE OR DELETE ON job_events
    FOR EACH ROW EXECUTE FUNCTION job_events_append_only();
CREATE TRIGGER job_events_append_only_truncate BEFORE TRUNCATE ON job_events
    FOR EACH STATEMENT EXECUTE FUNCTION job_events_append_only();

-- +goose Down
DROP TRIGGER job_events_append_only_truncate ON job_events;
DROP TRIGGER job_events_append_only ON job_events;
DROP FUNCTION job_events_append_only();
DROP TRIGGER job_chunks_append_only_truncate ON job_chunks;
DROP TRIGGER job_chunks_append_only ON job_chunks;
DROP FUNCTION job_chunks_append_only();
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM jobstream_app', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM jobstream_app', current_schema());
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM jobstream_app', current_schema());
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM jobstream_app', current_schema());
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM jobstream_app', current_schema());
    END IF;
END
$$;
-- +goose StatementEnd
