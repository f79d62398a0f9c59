-- Retention: per-tenant policies, legal holds, and the functions a
-- retention pass runs (README.md, "Retention" and "Legal holds").
--
-- A job expires when it is finished (completed, failed or cancelled), not
-- on hold, and older than its tenant's policy (retention_policies, else the
-- server default the caller passes; 0 days means keep forever). Its age is
-- both its id's UUIDv7 time and its created_at, so an id that is not a
-- UUIDv7 cannot make a new job look old.
--
-- The functions that remove data are SECURITY DEFINER: the server's own
-- role may not delete chunks or jobs, only run these, which set
-- jobstream.retention for their transaction (the append-only triggers let
-- deletions through only then) and record a retention_deleted event for
-- every job they remove. job_events has no foreign key to jobs, so the
-- events outlive the jobs.

-- +goose Up
-- Days a tenant's finished jobs are kept. A tenant without a row gets the
-- server default.
CREATE TABLE retention_policies (
    tenant     text        PRIMARY KEY CHECK (tenant <> ''),
    -- 0 keeps the tenant's jobs forever, whatever the server default.
    keep_days  integer     NOT NULL CHECK (keep_days >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Legal holds: a held job and its chunks are kept past any policy. The
-- foreign key has no ON DELETE action, so even a mistaken DELETE of a held
-- job fails.
CREATE TABLE job_holds (
    job_id  uuid        PRIMARY KEY REFERENCES jobs (id),
    reason  text        NOT NULL DEFAULT '',
    -- Who placed it: api_key:<id> or cli.
    held_by text        NOT NULL,
    held_at timestamptz NOT NULL DEFAULT now()
);

-- The moment before which a tenant's jobs are expired at p_now, or NULL
-- when the tenant keeps them forever.
CREATE FUNCTION jobstream_retention_cutoff(p_tenant text, p_now timestamptz, p_default_days integer)
RETURNS timestamptz
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT p_now - make_interval(days => k)
    FROM (SELECT coalesce((SELECT keep_days FROM retention_policies WHERE tenant = p_tenant), p_default_days) AS k) s
    WHERE k > 0
$$;

-- The smallest uuid bound below which some tenant's jobs may have expired:
-- every expired job has an id below it (NULL when nothing can expire).
CREATE FUNCTION jobstream_retention_horizon(p_now timestamptz, p_default_days integer)
RETURNS uuid
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT jobstream_uuid_at(p_now - make_interval(days => min(k)))
    FROM (SELECT keep_days AS k FROM retention_policies WHERE keep_days > 0
          UNION ALL SELECT p_default_days WHERE p_default_days > 0) s
$$;

-- Whether a job has expired at p_now (its hold is checked by the callers,
-- which lock first).
CREATE FUNCTION jobstream_retention_expired(p_id uuid, p_tenant text, p_status text, p_created_at timestamptz,
                                            p_now timestamptz, p_default_days integer)
RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT coalesce(p_status IN ('completed', 'failed', 'cancelled')
                    AND p_id < jobstream_uuid_at(c.cutoff)
                    AND p_created_at < c.cutoff, false)
    FROM (SELECT jobstream_retention_cutoff(p_tenant, p_now, p_default_days) AS cutoff) c
$$;

-- jobstream_retention_plan lists the day partitions wholly past the
-- retention horizon, each with its number of jobs and of jobs that must be
-- kept (not expired, or held). A partition with keep = 0 can be dropped.
CREATE FUNCTION jobstream_retention_plan(p_now timestamptz, p_default_days integer)
RETURNS TABLE (partition text, lo uuid, hi uuid, jobs bigint, keep bigint)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT p.name, p.lo, p.hi,
           count(j.id),
           count(j.id) FILTER (WHERE NOT jobstream_retention_expired(j.id, j.tenant, j.status, j.created_at, p_now, p_default_days)
                                  OR EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = j.id))
    FROM jobstream_chunk_partitions() p
    LEFT JOIN jobs j ON j.id >= p.lo AND j.id < p.hi
    WHERE p.hi <= jobstream_retention_horizon(p_now, p_default_days)
    GROUP BY p.name, p.lo, p.hi
    ORDER BY p.lo
$$;

-- +goose StatementBegin
-- jobstream_retention_recorded(job_id) says whether retention has recorded
-- removing the job (its chunks may be gone while its row waits for
-- jobstream_retention_delete_batch); a hold is refused from then on.
-- jobstream_retention_record(ids, how) writes that event for each job, once
-- (a job whose partition was dropped is recorded then, not again when its
-- row goes). The event is event retention_deleted, actor retention, in an
-- audit trail with actors (00006); in the older shape, to_status
-- retention_deleted and lease_owner retention.
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'job_events'::regclass AND attname = 'event' AND NOT attisdropped) THEN
        CREATE FUNCTION jobstream_retention_recorded(p_id uuid) RETURNS boolean
        LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
            SELECT EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = p_id AND e.event = 'retention_deleted')
        $$;
        CREATE FUNCTION jobstream_retention_record(p_ids uuid[], p_how text) RETURNS void
        LANGUAGE sql SET search_path FROM CURRENT AS $$
            INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, actor, reason, detail)
            SELECT j.id, j.tenant, 'retention_deleted', j.status, NULL, j.attempt, 'retention', p_how,
                   jsonb_build_object('created_at', j.created_at, 'finished_at', j.finished_at)
            FROM jobs j
            WHERE j.id = ANY (p_ids) AND NOT jobstream_retention_recorded(j.id)
        $$;
    ELSE
        CREATE FUNCTION jobstream_retention_recorded(p_id uuid) RETURNS boolean
        LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
            SELECT EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = p_id AND e.to_status = 'retention_deleted')
        $$;
        CREATE FUNCTION jobstream_retention_record(p_ids uuid[], p_how text) RETURNS void
        LANGUAGE sql SET search_path FROM CURRENT AS $$
            INSERT INTO job_events (job_id, from_status, to_status, attempt, lease_owner)
            SELECT j.id, j.status, 'retention_deleted', j.attempt, 'retention'
            FROM jobs j
            WHERE j.id = ANY (p_ids) AND NOT jobstream_retention_recorded(j.id)
        $$;
    END IF;
END
$do$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_retention_drop_partition drops a day partition of job_chunks
-- if every job in its range has expired and none is held, recording a
-- retention_deleted event for each of those jobs in the same transaction.
-- It returns the number of jobs, or NULL when the partition must stay (or
-- its lock was not granted within lock_timeout, so as not to queue the
-- chunk writer behind a long reader).
--
-- The job rows are locked first (FOR UPDATE): a hold being placed holds
-- FOR KEY SHARE on its job, so either it committed before and the check
-- below sees it, or it waits and then finds the job's retention event and
-- refuses. The job rows themselves are left to
-- jobstream_retention_delete_batch: deleting them here would hold the
-- partition drop's ACCESS EXCLUSIVE lock on job_chunks (which blocks the
-- chunk writer and every reader) while each deletion's cascade probes
-- job_chunks, about 14 microseconds per job. So the drop is the last
-- statement: that lock lasts only until the commit.
CREATE FUNCTION jobstream_retention_drop_partition(p_partition text, p_now timestamptz, p_default_days integer)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
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
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_retention_delete_batch deletes up to p_limit expired, unheld
-- jobs, oldest first, with their chunks (ON DELETE CASCADE), recording a
-- retention_deleted event for each (unless a partition drop recorded it
-- already, in which case recorded is true and the chunks went with the
-- partition). Jobs locked by someone else are skipped (SKIP LOCKED) and
-- found by a later batch.
CREATE FUNCTION jobstream_retention_delete_batch(p_now timestamptz, p_default_days integer, p_limit integer)
RETURNS TABLE (job_id uuid, tenant text, chunks bigint, recorded boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
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
        ORDER BY j.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED) s;
    -- Again in a new statement, so a new snapshot: a hold committed after
    -- the statement above began but before its lock is seen here; a later
    -- one waits for this transaction (and then finds the job gone).
    SELECT coalesce(array_agg(id), '{}') INTO v_ids
    FROM unnest(v_ids) AS u(id)
    WHERE NOT EXISTS (SELECT 1 FROM job_holds h WHERE h.job_id = u.id);

    -- RETURN QUERY adds these rows to the result and carries on.
    RETURN QUERY
    SELECT j.id, j.tenant,
           (SELECT count(*) FROM job_chunks c WHERE c.job_id = j.id),
           jobstream_retention_recorded(j.id)
    FROM jobs j WHERE j.id = ANY (v_ids)
    ORDER BY j.id;
    PERFORM jobstream_retention_record(v_ids, 'expired');
    DELETE FROM jobs j WHERE j.id = ANY (v_ids);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Only the owner, and the server's role where one exists, may run these.
DO $$
BEGIN
    REVOKE EXECUTE ON FUNCTION jobstream_retention_drop_partition(text, timestamptz, integer) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION jobstream_retention_delete_batch(timestamptz, integer, integer) FROM PUBLIC;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        GRANT EXECUTE ON FUNCTION jobstream_retention_drop_partition(text, timestamptz, integer) TO jobstream_app;
        GRANT EXECUTE ON FUNCTION jobstream_retention_delete_batch(timestamptz, integer, integer) TO jobstream_app;
        GRANT EXECUTE ON FUNCTION jobstream_chunk_partitions_ensure(date, integer) TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION jobstream_retention_delete_batch(timestamptz, integer, integer);
DROP FUNCTION jobstream_retention_drop_partition(text, timestamptz, integer);
DROP FUNCTION jobstream_retention_record(uuid[], text);
DROP FUNCTION jobstream_retention_recorded(uuid);
DROP FUNCTION jobstream_retention_plan(timestamptz, integer);
DROP FUNCTION jobstream_retention_expired(uuid, text, text, timestamptz, timestamptz, integer);
DROP FUNCTION jobstream_retention_horizon(timestamptz, integer);
DROP FUNCTION jobstream_retention_cutoff(text, timestamptz, integer);
DROP TABLE job_holds;
DROP TABLE retention_policies;
