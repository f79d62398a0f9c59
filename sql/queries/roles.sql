-- Queries on the role a connection logs in as (internal/store/role.go,
-- migrations/00041_server_role.sql).

-- SessionRoleInspect describes session_user, the role the connection
-- logged in as (not current_user, which SET ROLE changes; RESET ROLE goes
-- back to session_user): its attributes, whether it can act as an owner of
-- this database or of anything in it, directly or through a role it can
-- SET ROLE to (pg_has_role MEMBER), and every other role it can become.
-- Ownership is read from pg_shdepend, which records the owner of every
-- object but those of the bootstrap superuser (a superuser anyway).
-- name: SessionRoleInspect :one
SELECT me.rolname::text AS role,
       me.rolsuper AS superuser,
       me.rolcreaterole AS createrole,
       me.rolcreatedb AS createdb,
       me.rolreplication AS replication,
       me.rolbypassrls AS bypassrls,
       (to_regclass('jobs') IS NOT NULL)::boolean AS jobs_exists,
       coalesce((SELECT pg_has_role(session_user, c.relowner, 'MEMBER')
                 FROM pg_class c WHERE c.oid = to_regclass('jobs')), false)::boolean AS owns_jobs,
       pg_has_role(session_user, (SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'MEMBER')::boolean AS owns_database,
       EXISTS (SELECT 1 FROM pg_shdepend s
               WHERE s.deptype = 'o' AND s.refclassid = 'pg_authid'::regclass
                 AND s.dbid IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                 AND pg_has_role(session_user, s.refobjid, 'MEMBER'))::boolean AS owns_objects,
       EXISTS (SELECT 1 FROM pg_roles a
               WHERE a.rolname = 'jobstream_app' AND pg_has_role(session_user, a.oid, 'MEMBER'))::boolean AS app_member,
       ARRAY(SELECT o.rolname::text FROM pg_roles o
             WHERE o.oid <> me.oid AND o.rolname <> 'jobstream_app' AND pg_has_role(session_user, o.oid, 'MEMBER')
             ORDER BY o.rolname)::text[] AS other_roles
FROM pg_roles me
WHERE me.rolname = session_user;

-- ServerPasswordSet sets jobstream_server's password; @secret is a
-- SCRAM-SHA-256 secret, so the password never reaches the server.
-- name: ServerPasswordSet :exec
SELECT jobstream_server_password(@secret::text);
