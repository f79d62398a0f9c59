-- The serving login role (README.md, "Production set-up").
--
-- jobstream_server is the role `serve` logs in as for everything that
-- answers requests: the API's pool, the workers' pool and the LISTEN
-- connection. It is a LOGIN role that is not a superuser, may create
-- neither roles nor databases, does not replicate or bypass row-level
-- security, owns nothing, and is a member of jobstream_app (00005) and of
-- nothing else. It inherits jobstream_app's privileges, so RESET ROLE on a
-- serving connection gives back jobstream_server, which can do no more than
-- jobstream_app: never update or delete chunks or events, never disable a
-- trigger, never SET ROLE to the owner. Before, the pools logged in as the
-- owner (often the superuser postgres) and only SET ROLE jobstream_app, so
-- RESET ROLE gave the superuser back.
--
-- The owner runs `jobstream migrate`; serve runs with a DSN of this role
-- (JOBSTREAM_SERVER_DATABASE_URL). Handed the owner's DSN, serve migrates
-- with it and then logs in as this role itself (internal/server).
--
-- A role is cluster-wide: the first database migrated creates it, the others
-- reuse it (a concurrent CREATE by another database's migration is
-- tolerated), and the down migration never drops it nor its membership,
-- which other databases may rely on. Migrating as a role that may not
-- create roles skips it with a notice: serve then needs
-- JOBSTREAM_SERVER_DATABASE_URL, the DSN of a role set up like this one by
-- whoever administers the server. serve checks whatever role it logs in as
-- (store.RoleInfo.ServingProblems) and refuses to serve as one that could
-- alter the record.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    r pg_roles%ROWTYPE;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        RAISE NOTICE 'role jobstream_app does not exist (see migration 00005), so neither does jobstream_server: serve needs JOBSTREAM_SERVER_DATABASE_URL';
        RETURN;
    END IF;
    -- serve, as the serving role, checks that the schema is at the latest
    -- migration before it serves (store.PendingMigrations). 00005 granted
    -- this already; said here because this is where it is needed.
    GRANT SELECT ON goose_db_version TO jobstream_app;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_server') THEN
        BEGIN
            CREATE ROLE jobstream_server LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL; -- created concurrently by another database's migration
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role jobstream_server (%): serve needs JOBSTREAM_SERVER_DATABASE_URL, the DSN of a login role that is a member of jobstream_app only', SQLERRM;
                RETURN;
        END;
    END IF;
    -- A role of that name made by someone else: give it the attributes it
    -- must have. serve refuses to serve as it otherwise anyway.
    SELECT * INTO r FROM pg_roles WHERE rolname = 'jobstream_server';
    IF r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls
       OR NOT r.rolinherit OR NOT r.rolcanlogin THEN
        BEGIN
            ALTER ROLE jobstream_server LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'role jobstream_server has attributes it must not have, and % may not change them (%): serve will refuse to log in as it', current_user, SQLERRM;
        END;
    END IF;
    IF NOT pg_has_role('jobstream_server', 'jobstream_app', 'MEMBER') THEN
        BEGIN
            GRANT jobstream_app TO jobstream_server;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot grant role jobstream_app to jobstream_server (%): serve needs JOBSTREAM_SERVER_DATABASE_URL', SQLERRM;
        END;
    END IF;
    -- PUBLIC may connect by default; a server that revoked that still lets
    -- the serving role in.
    BEGIN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO jobstream_server', current_database());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant CONNECT on database % to jobstream_server (%)', current_database(), SQLERRM;
    END;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_server_password sets jobstream_server's password, given as a
-- SCRAM-SHA-256 secret computed by the client (store.ServerPassword), so
-- that the password itself never reaches the server or its statement log.
-- It runs as the caller, who must be allowed to alter the role (a superuser
-- or a role with CREATEROLE): serve calls it with the owner's DSN.
CREATE FUNCTION jobstream_server_password(p_secret text) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_secret NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the password must be given as a SCRAM-SHA-256 secret';
    END IF;
    EXECUTE format('ALTER ROLE jobstream_server PASSWORD %L', p_secret);
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION jobstream_server_password(text) FROM PUBLIC;

-- +goose Down
DROP FUNCTION jobstream_server_password(text);
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_server') THEN
        BEGIN
            EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM jobstream_server', current_database());
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot revoke CONNECT on database % from jobstream_server (%)', current_database(), SQLERRM;
        END;
    END IF;
END
$$;
-- +goose StatementEnd
