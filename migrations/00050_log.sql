-- The transparency log (internal/ledger/README.md has the leaf encoding
-- byte for byte, the tree and the checkpoints; issue 20 the why).
--
-- A leaf per sealed job and per later change to the record (a hold placed
-- or lifted, a job deleted by retention, a policy, key or analyst change),
-- in an RFC 6962 Merkle tree whose signed roots (checkpoints) are kept
-- outside the database. Leaves hold ids and hashes only.
--
-- Who appends what:
--   - job leaves: the sequencer in serve (internal/ledger), as
--     jobstream_app, from the view jobstream_log_job_leaves;
--   - hold, unhold, deleted, policy, key, analyst leaves: the database, in
--     the transaction that records the change (a trigger on job_events and
--     on admin_events), so a deletion is never committed without its leaf.
--     The retention functions of 00040 stay as they are: they write a
--     retention_deleted event in the deleting transaction, and that event's
--     trigger appends the leaf.
--
-- Leaves get their index when inserted (log_leaves_stamp: the next one,
-- gap-free, under the log's advisory lock, held to commit). The tree's
-- stored hashes (golang.org/x/mod/sumdb/tlog) cannot be computed in SQL,
-- so log_hashes trails log_leaves: the sequencer, holding the same lock,
-- hashes the leaves not hashed yet in index order, in one transaction.
-- The tree is the hashed prefix of log_leaves.
--
-- Nothing here is ever updated or deleted (log_append_only), not even by
-- retention: a deleted job's leaf stays, followed by its deleted leaf.

-- +goose Up
CREATE TABLE log_leaves (
    idx    bigint      PRIMARY KEY CHECK (idx >= 0),
    kind   text        NOT NULL CHECK (kind IN ('job', 'hold', 'unhold', 'deleted', 'erased', 'policy', 'key', 'analyst')),
    leaf   bytea       NOT NULL,
    -- The job a job, hold, unhold, deleted or erased leaf is about; no
    -- foreign key, since the leaf outlives the job.
    job_id uuid,
    at     timestamptz NOT NULL
);
-- One job leaf per job: the sequencer's "not yet logged" is an anti-join on it.
CREATE UNIQUE INDEX log_leaves_job_idx ON log_leaves (job_id) WHERE kind = 'job';
CREATE INDEX log_leaves_job_any_idx ON log_leaves (job_id, idx) WHERE job_id IS NOT NULL;

-- The tree's stored hashes, by tlog's stored hash index
-- (tlog.StoredHashIndex): for n hashed leaves there are
-- tlog.StoredHashCount(n) rows, 0 .. count-1.
CREATE TABLE log_hashes (
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea  NOT NULL CHECK (octet_length(hash) = 32)
);

-- Every checkpoint signed, at most one per tree size: the C2SP
-- tlog-checkpoint note exactly as signed.
CREATE TABLE log_checkpoints (
    tree_size bigint      PRIMARY KEY CHECK (tree_size > 0),
    root      bytea       NOT NULL CHECK (octet_length(root) = 32),
    note      text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);

-- Ended jobs by when they ended: the sequencer's scan of recent seals.
CREATE INDEX jobs_ended_idx ON jobs ((coalesce(finished_at, created_at)))
    WHERE status IN ('completed', 'failed', 'cancelled');

-- +goose StatementBegin
CREATE FUNCTION log_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE ON log_leaves FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_hashes_append_only BEFORE UPDATE OR DELETE ON log_hashes FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_hashes_no_truncate BEFORE TRUNCATE ON log_hashes FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_checkpoints_no_truncate BEFORE TRUNCATE ON log_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();

-- +goose StatementBegin
-- log_leaves_stamp gives a new leaf the next index and the time, whatever
-- the INSERT said, under the log's transaction-level advisory lock
-- (7340520), which the sequencer holds while it hashes: indexes are
-- gap-free and every leaf's index is final once it commits. (A row-level
-- BEFORE trigger sees the rows its statement inserted before, so a
-- many-row INSERT numbers its rows in order.)
CREATE FUNCTION log_leaves_stamp() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7340520);
    NEW.idx := coalesce((SELECT max(idx) + 1 FROM log_leaves), 0);
    NEW.at := now();
    IF get_byte(NEW.leaf, 0) <> 1 OR substring(NEW.leaf FROM 6 FOR octet_length(NEW.kind)) <> convert_to(NEW.kind, 'UTF8') THEN
        RAISE EXCEPTION 'leaf % is not a version 1 % leaf', NEW.idx, NEW.kind USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_leaves_stamp BEFORE INSERT ON log_leaves FOR EACH ROW EXECUTE FUNCTION log_leaves_stamp();

-- ------------------------------------------------------- the encoding
-- A leaf, version 1: the byte 0x01, then its fields, each a 4-byte
-- big-endian length and that many bytes, the first the kind (ASCII).
-- Field types: uuid 16 bytes; text UTF-8; integer 8 bytes big-endian
-- two's complement; time microseconds since 1970-01-01T00:00:00Z as an
-- integer; hash 32 bytes; absent (NULL) an empty field.
CREATE FUNCTION jobstream_log_field(b bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN int4send(coalesce(octet_length(b), 0)) || coalesce(b, '\x'::bytea);
CREATE FUNCTION jobstream_log_text(s text) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jobstream_log_field(convert_to(s, 'UTF8'));
CREATE FUNCTION jobstream_log_int(i bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jobstream_log_field(int8send(i));
CREATE FUNCTION jobstream_log_time(t timestamptz) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jobstream_log_field(int8send((extract(epoch FROM t) * 1000000)::bigint));

-- The job leaf of each ended job: what it was asked (request_sha256), by
-- whom, of which engine, how it ended, its seal, and its event chain as
-- far as it goes now (event count and the last event's hash). A view, so
-- that the planner inlines it: the same body as a function cost 200 us a
-- leaf (it was planned again at every call), inlined 30 us. Security
-- invoker, as every view here: whoever reads it sees the jobs its own
-- rights (and row-level security) let it see.
CREATE VIEW jobstream_log_job_leaves WITH (security_invoker = true) AS
SELECT j.id,
       '\x01'::bytea
        || jobstream_log_text('job')
        || jobstream_log_field(uuid_send(j.id))
        || jobstream_log_text(j.tenant)
        || jobstream_log_text(j.engine)
        || jobstream_log_field(j.request_sha256)
        || jobstream_log_int(j.chain_version)
        || jobstream_log_text(j.status)
        || jobstream_log_int(j.chunk_count)
        || jobstream_log_field(j.final_hash)
        || jobstream_log_time(j.created_at)
        || jobstream_log_time(j.finished_at)
        || jobstream_log_int(coalesce(e.seq + 1, 0))
        || jobstream_log_field(e.hash) AS leaf
FROM jobs j
LEFT JOIN LATERAL (SELECT seq, hash FROM job_events WHERE job_id = j.id ORDER BY seq DESC LIMIT 1) e ON true
WHERE j.status IN ('completed', 'failed', 'cancelled');

-- +goose StatementBegin
-- log_job_events appends the leaf of a change recorded in a job's audit
-- trail, in the same transaction: deleted (retention_deleted: the rule it
-- was judged by, when, and the seal of what it removed), hold and unhold
-- (the hold's authority and time; never who held it nor why, which may be
-- personal). Each carries the event's hash, which ties the leaf to the
-- job's event chain. A job deleted before it was logged gets its job leaf
-- first. SECURITY DEFINER: retention (jobstream_retention)
-- and the hold functions insert these events, and only the owner and the
-- sequencer may insert leaves.
CREATE FUNCTION log_job_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.event = 'retention_deleted' THEN
        -- A job removed before the sequencer logged it (retention running
        -- while no sequencer does) is logged now, as it is removed: the
        -- row is still there (the event is written before the DELETE).
        -- The log's lock first, so the sequencer's leaf, if it just made
        -- one, is seen.
        PERFORM pg_advisory_xact_lock(7340520);
        IF NOT EXISTS (SELECT 1 FROM log_leaves WHERE kind = 'job' AND job_id = NEW.job_id) THEN
            INSERT INTO log_leaves (kind, leaf, job_id)
            SELECT 'job', v.leaf, v.id FROM jobstream_log_job_leaves v WHERE v.id = NEW.job_id;
        END IF;
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
-- log_admin_events appends a policy, key or analyst leaf for each admin
-- event (00040): the event's name, tenant, place and hash in the admin
-- chain; its subject and detail (key names, role names) stay out.
CREATE FUNCTION log_admin_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_kind text := CASE
        WHEN NEW.event IN ('policy_set', 'policy_cleared', 'retention_settings_set') THEN 'policy'
        WHEN NEW.event IN ('key_created', 'key_revoked') THEN 'key'
        WHEN NEW.event IN ('analyst_created', 'analyst_dropped') THEN 'analyst' END;
BEGIN
    IF v_kind IS NOT NULL THEN
        INSERT INTO log_leaves (kind, leaf)
        VALUES (v_kind, '\x01'::bytea
            || jobstream_log_text(v_kind)
            || jobstream_log_text(NEW.event)
            || jobstream_log_text(NEW.tenant)
            || jobstream_log_int(NEW.seq)
            || jobstream_log_time(NEW.at)
            || jobstream_log_field(NEW.hash));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_admin_events AFTER INSERT ON admin_events FOR EACH ROW EXECUTE FUNCTION log_admin_events();

-- The server's role sequences (job leaves and hashes) and signs
-- (checkpoints): it inserts and reads, nothing more.
GRANT SELECT, INSERT ON log_leaves, log_hashes, log_checkpoints TO jobstream_app;
GRANT SELECT ON jobstream_log_job_leaves TO jobstream_app;
REVOKE EXECUTE ON FUNCTION log_job_events() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION log_admin_events() FROM PUBLIC;

-- +goose Down
DROP TRIGGER log_admin_events ON admin_events;
DROP FUNCTION log_admin_events();
DROP TRIGGER log_job_events ON job_events;
DROP FUNCTION log_job_events();
DROP VIEW jobstream_log_job_leaves;
DROP TABLE log_checkpoints;
DROP TABLE log_hashes;
DROP TABLE log_leaves;
DROP FUNCTION log_leaves_stamp();
DROP FUNCTION log_append_only();
DROP FUNCTION jobstream_log_time(timestamptz);
DROP FUNCTION jobstream_log_int(bigint);
DROP FUNCTION jobstream_log_text(text);
DROP FUNCTION jobstream_log_field(bytea);
DROP INDEX jobs_ended_idx;
