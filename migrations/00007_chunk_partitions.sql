-- job_chunks becomes a table partitioned by RANGE (job_id), one partition
-- per UTC day, so that retention can drop a whole day of chunks instead of
-- deleting millions of rows (README.md, "Retention").
--
-- Job ids are UUIDv7: their first 48 bits are the creation time in Unix
-- milliseconds, and PostgreSQL compares uuids bytewise. So the day
-- [D, D+1) is exactly the uuid range [jobstream_uuid_at(D),
-- jobstream_uuid_at(D+1)): the primary key (job_id, seq) contains the
-- partition key and stays global, and every chunk of a job lives in the
-- partition of the job's creation day. A DEFAULT partition takes ids
-- outside every day created so far, so no insert ever fails for want of a
-- partition; jobstream creates days ahead (jobstream_chunk_partitions_ensure)
-- at start and periodically.
--
-- jobs itself stays one table: it is about 1% of the rows (one per job
-- against one per streamed token), the claim, heartbeat and rescue queries
-- would become appends over every partition, and four tables reference it.
-- Retention deletes expired job rows in bounded batches.
--
-- The rebuild is generic: it copies whatever columns, defaults, checks,
-- indexes, foreign keys, triggers, grants, row-security policies and
-- dependent views job_chunks has when it runs, so columns and triggers
-- added by earlier migrations carry over.
--
-- job_events loses its foreign key to jobs (if an earlier migration has not
-- dropped it already): the audit trail outlives the jobs retention deletes.

-- +goose Up
-- The smallest UUIDv7 of the millisecond p_at falls in: the lower bound of
-- every id generated at or after p_at.
CREATE FUNCTION jobstream_uuid_at(p_at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM p_at) * 1000)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;

-- The creation time a UUIDv7 carries (meaningless for other versions).
CREATE FUNCTION jobstream_uuid_time(p_id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_timestamp(('x' || lpad(substr(replace(p_id::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint / 1000.0)
$$;

-- +goose StatementBegin
-- jobstream_revoke_all revokes every privilege on a table from everyone but
-- its owner. Partitions are reached through job_chunks only: privileges
-- that default privileges give them are revoked, so nobody can read a
-- partition directly past job_chunks' row-level security or delete from
-- it past the parent's grants.
CREATE FUNCTION jobstream_revoke_all(p_table regclass) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = p_table AND a.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', p_table,
            CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION jobstream_revoke_all(regclass) FROM PUBLIC;

-- +goose StatementBegin
-- jobstream_chunks_rebuild rebuilds job_chunks as a partitioned table
-- (p_partitioned, this migration's Up) or as a plain one (its Down), with
-- everything attached to it. It is kept until Down, which needs it too.
CREATE FUNCTION jobstream_chunks_rebuild(p_partitioned boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    r          record;
    v_tbl      oid := 'job_chunks'::regclass;
    v_owner    oid;
    v_comment  text;
    v_rls      boolean;
    v_force    boolean;
    v_restore  text[] := '{}';   -- statements run after the copy, in order
    v_views    text[] := '{}';   -- CREATE VIEW statements, dependencies first
    v_dropview text[] := '{}';   -- DROP VIEW statements, dependents first
    v_s        text;
    d          date;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = v_tbl AND contype = 'f') THEN
        RAISE EXCEPTION 'a foreign key references job_chunks; this migration cannot rebuild it';
    END IF;
    SELECT relowner, relrowsecurity, relforcerowsecurity, obj_description(oid, 'pg_class')
      INTO v_owner, v_rls, v_force, v_comment
      FROM pg_class WHERE oid = v_tbl;

    -- Foreign keys (on a partitioned table, the parent's only).
    FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
              WHERE conrelid = v_tbl AND contype = 'f' AND conparentid = 0 ORDER BY conname LOOP
        v_restore := v_restore || format('ALTER TABLE job_chunks ADD CONSTRAINT %I %s', r.conname, r.def);
    END LOOP;
    -- Triggers, such as an append-only guard: re-created after the copy, so
    -- the copy itself fires none.
    FOR r IN SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger
              WHERE tgrelid = v_tbl AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname LOOP
        v_restore := v_restore || r.def;
    END LOOP;
    -- Grants (PUBLIC is grantee 0).
    FOR r IN SELECT a.privilege_type, a.grantee, a.is_grantable
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = v_tbl AND a.grantee <> v_owner LOOP
        v_restore := v_restore || format('GRANT %s ON job_chunks TO %s%s', r.privilege_type,
            CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END,
            CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    -- Row security and its policies.
    IF v_rls THEN v_restore := v_restore || 'ALTER TABLE job_chunks ENABLE ROW LEVEL SECURITY'::text; END IF;
    IF v_force THEN v_restore := v_restore || 'ALTER TABLE job_chunks FORCE ROW LEVEL SECURITY'::text; END IF;
    FOR r IN SELECT * FROM pg_policies WHERE schemaname = current_schema() AND tablename = 'job_chunks' LOOP
        v_restore := v_restore || format('CREATE POLICY %I ON job_chunks AS %s FOR %s TO %s%s%s',
            r.policyname, r.permissive, r.cmd,
            (SELECT string_agg(CASE WHEN x = 'public' THEN 'PUBLIC' ELSE quote_ident(x) END, ', ') FROM unnest(r.roles) x),
            CASE WHEN r.qual IS NOT NULL THEN ' USING (' || r.qual || ')' ELSE '' END,
            CASE WHEN r.with_check IS NOT NULL THEN ' WITH CHECK (' || r.with_check || ')' ELSE '' END);
    END LOOP;
    IF v_comment IS NOT NULL THEN
        v_restore := v_restore || format('COMMENT ON TABLE job_chunks IS %L', v_comment);
    END IF;

    -- Views that depend on job_chunks, directly or through other views:
    -- they bind to the table itself, so they are dropped and re-created.
    FOR r IN
        WITH RECURSIVE dep(oid, depth) AS (
            SELECT rw.ev_class, 1 FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = v_tbl AND rw.ev_class <> v_tbl
            UNION
            SELECT rw.ev_class, dep.depth + 1 FROM dep
              JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
              JOIN pg_rewrite rw ON rw.oid = d.objid
             WHERE rw.ev_class <> dep.oid AND dep.depth < 20
        )
        SELECT c.oid, c.relkind, c.relname, c.reloptions, c.relacl, c.relowner, max(dep.depth) AS depth
          FROM dep JOIN pg_class c ON c.oid = dep.oid
         GROUP BY c.oid ORDER BY max(dep.depth), c.relname
    LOOP
        IF r.relkind <> 'v' THEN
            RAISE EXCEPTION 'materialized view % depends on job_chunks; this migration cannot rebuild it', r.relname;
        END IF;
        v_views := v_views || format('CREATE VIEW %I%s AS %s', r.relname,
            coalesce(' WITH (' || array_to_string(r.reloptions, ', ') || ')', ''), pg_get_viewdef(r.oid));
        v_dropview := format('DROP VIEW IF EXISTS %I', r.relname) || v_dropview;
        IF obj_description(r.oid, 'pg_class') IS NOT NULL THEN
            v_views := v_views || format('COMMENT ON VIEW %I IS %L', r.relname, obj_description(r.oid, 'pg_class'));
        END IF;
        FOR v_s IN SELECT format('GRANT %s ON %I TO %s', a.privilege_type, r.relname,
                       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
                     FROM aclexplode(r.relacl) a WHERE a.grantee <> r.relowner LOOP
            v_views := v_views || v_s;
        END LOOP;
    END LOOP;
    FOREACH v_s IN ARRAY v_dropview LOOP EXECUTE v_s; END LOOP;

    -- Move the old table and its index names out of the way, so that the
    -- new table's indexes get the original names.
    ALTER TABLE job_chunks RENAME TO job_chunks_old;
    FOR r IN SELECT c.oid::regclass AS idx, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = v_tbl LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', r.idx, left(r.relname, 55) || '_old');
    END LOOP;

    IF p_partitioned THEN
        CREATE TABLE job_chunks (LIKE job_chunks_old INCLUDING ALL) PARTITION BY RANGE (job_id);
        CREATE TABLE job_chunks_default PARTITION OF job_chunks DEFAULT;
        -- A partition for every day that has chunks, and the days ahead
        -- (jobstream_chunk_partitions_ensure is defined below: plpgsql
        -- resolves it at call time, and this runs after it exists).
        FOR d IN SELECT DISTINCT jobstream_uuid_time(job_id)::date FROM job_chunks_old
                  WHERE jobstream_uuid_time(job_id) BETWEEN '2020-01-01' AND now() + interval '1 day' LOOP
            PERFORM jobstream_chunk_partitions_ensure(d, 1);
        END LOOP;
        PERFORM jobstream_chunk_partitions_ensure((now() AT TIME ZONE 'UTC')::date, 8);
    ELSE
        CREATE TABLE job_chunks (LIKE job_chunks_old INCLUDING ALL);
    END IF;
    -- Indexes of the new table are named like the old ones again (through
    -- a temporary name, so that no two names collide on the way).
    FOR r IN SELECT n.indexrelid::regclass AS new_idx, oc.relname AS old_name
               FROM pg_index n JOIN pg_index o ON o.indrelid = v_tbl
                AND o.indisunique = n.indisunique
                AND substring(pg_get_indexdef(o.indexrelid) FROM ' USING .*$') = substring(pg_get_indexdef(n.indexrelid) FROM ' USING .*$')
               JOIN pg_class oc ON oc.oid = o.indexrelid
              WHERE n.indrelid = 'job_chunks'::regclass LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', r.new_idx, r.old_name || 'x');
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS idx, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'job_chunks'::regclass AND right(c.relname, 5) = '_oldx' LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', r.idx, left(r.relname, length(r.relname) - 5));
    END LOOP;

    INSERT INTO job_chunks SELECT * FROM job_chunks_old;
    DROP TABLE job_chunks_old;
    EXECUTE format('ALTER TABLE job_chunks OWNER TO %I', pg_get_userbyid(v_owner));
    -- Default privileges may have granted more on the new table than the
    -- old one had (an append-only table must not gain DELETE): start from
    -- none, then restore the old grants.
    PERFORM jobstream_revoke_all('job_chunks'::regclass);
    IF p_partitioned THEN
        PERFORM jobstream_revoke_all('job_chunks_default'::regclass);
    END IF;
    FOREACH v_s IN ARRAY v_restore LOOP EXECUTE v_s; END LOOP;
    FOREACH v_s IN ARRAY v_views LOOP EXECUTE v_s; END LOOP;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_chunk_partitions_ensure creates the day partitions of
-- job_chunks for p_days UTC days from p_from that do not exist yet, and
-- returns their names. A day whose ids already sit in the DEFAULT partition
-- is skipped (creating it would have to move them; they stay where they
-- are and retention deletes them in batches). Creating a partition locks
-- the DEFAULT partition briefly; lock_timeout keeps that from queueing
-- writers behind a long transaction. SECURITY DEFINER: DDL needs the
-- table's owner, the caller needs only EXECUTE.
CREATE FUNCTION jobstream_chunk_partitions_ensure(p_from date, p_days integer)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    d    date;
    v_name text;
    v_lo uuid;
    v_hi uuid;
BEGIN
    -- One creator at a time across nodes.
    PERFORM pg_advisory_xact_lock(7340502);
    PERFORM set_config('lock_timeout', '5s', true);
    FOR i IN 0 .. p_days - 1 LOOP
        d := p_from + i;
        v_name := 'job_chunks_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(quote_ident(v_name)) IS NOT NULL;
        v_lo := jobstream_uuid_at(d::timestamp AT TIME ZONE 'UTC');
        v_hi := jobstream_uuid_at((d + 1)::timestamp AT TIME ZONE 'UTC');
        CONTINUE WHEN EXISTS (SELECT 1 FROM job_chunks_default WHERE job_id >= v_lo AND job_id < v_hi);
        EXECUTE format('CREATE TABLE %I PARTITION OF job_chunks FOR VALUES FROM (%L) TO (%L)', v_name, v_lo, v_hi);
        PERFORM jobstream_revoke_all(quote_ident(v_name)::regclass);
        RETURN NEXT v_name;
    END LOOP;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION jobstream_chunk_partitions_ensure(date, integer) FROM PUBLIC;

-- jobstream_chunk_partitions lists job_chunks' day partitions with their
-- uuid bounds (the DEFAULT partition has none and is not listed).
CREATE FUNCTION jobstream_chunk_partitions()
RETURNS TABLE (name text, lo uuid, hi uuid)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT c.relname::text, m[1]::uuid, m[2]::uuid
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    $re$FROM \('([0-9a-f-]+)'\) TO \('([0-9a-f-]+)'\)$re$) AS m
    WHERE i.inhparent = 'job_chunks'::regclass
    ORDER BY 2
$$;

SELECT jobstream_chunks_rebuild(true);
REVOKE EXECUTE ON FUNCTION jobstream_chunks_rebuild(boolean) FROM PUBLIC;

-- +goose StatementBegin
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT conname FROM pg_constraint
              WHERE conrelid = 'job_events'::regclass AND contype = 'f'
                AND confrelid = 'jobs'::regclass LOOP
        EXECUTE format('ALTER TABLE job_events DROP CONSTRAINT %I', r.conname);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- job_events keeps no foreign key to jobs: events of deleted jobs stay.
SELECT jobstream_chunks_rebuild(false);
DROP FUNCTION jobstream_chunks_rebuild(boolean);
DROP FUNCTION jobstream_chunk_partitions();
DROP FUNCTION jobstream_chunk_partitions_ensure(date, integer);
DROP FUNCTION jobstream_uuid_time(uuid);
DROP FUNCTION jobstream_uuid_at(timestamptz);
DROP FUNCTION jobstream_revoke_all(regclass);
