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
--     jobstream_app, through jobstream_log_append_jobs, which computes each
--     leaf from the view jobstream_log_job_leaves itself;
--   - hold, unhold, deleted, policy, key, analyst leaves: the database, in
--     the transaction that records the change (a trigger on job_events and
--     on admin_events), so a deletion is never committed without its leaf.
--     The retention functions of 00040 stay as they are: they write a
--     retention_deleted event in the deleting transaction, and that event's
--     trigger appends the leaf.
--
-- Leaves are inserted unnumbered (idx NULL), ordered by seq (an identity).
-- The sequencer, alone under the log's advisory lock (7340520), numbers
-- the committed ones in seq order, gap-free from 0, then hashes the
-- numbered ones not hashed yet into log_hashes (RFC 6962, the stored hash
-- layout of golang.org/x/mod/sumdb/tlog, computed in SQL with sha256()),
-- all in jobstream_log_sequence. So no transaction that appends a leaf
-- (a hold, a key revocation, retention) takes a global lock: they only
-- ever wait on rows. The tree is the hashed prefix of log_leaves by idx.
--
-- The server's role writes none of these tables itself: it calls
-- jobstream_log_append_jobs, jobstream_log_sequence and
-- jobstream_log_checkpoint, which judge what they write (which leaves,
-- which hashes, which tree size and root) from the database's own rows.
--
-- Nothing here is ever updated or deleted (log_append_only), not even by
-- retention: a deleted job's leaf stays, followed by its deleted leaf. The
-- one change allowed is a leaf's idx, once, from NULL (log_leaves_number).

-- +goose Up
CREATE TABLE log_leaves (
    -- Insertion order: the order the sequencer numbers leaves in.
    seq    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The leaf's index in the tree; NULL until the sequencer numbers it.
    idx    bigint      UNIQUE CHECK (idx >= 0),
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
-- The leaves the sequencer has not numbered yet.
CREATE INDEX log_leaves_unnumbered_idx ON log_leaves (seq) WHERE idx IS NULL;

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
CREATE TRIGGER log_leaves_append_only BEFORE DELETE ON log_leaves FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_hashes_append_only BEFORE UPDATE OR DELETE ON log_hashes FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_hashes_no_truncate BEFORE TRUNCATE ON log_hashes FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_checkpoints_no_truncate BEFORE TRUNCATE ON log_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION log_append_only();

-- +goose StatementBegin
-- log_leaves_stamp inserts a leaf unnumbered, at the time, whatever the
-- INSERT said: only the sequencer numbers leaves. It takes no lock, so
-- appending a leaf never orders a transaction against any other.
CREATE FUNCTION log_leaves_stamp() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    NEW.idx := NULL;
    NEW.at := now();
    IF get_byte(NEW.leaf, 0) <> 1 OR substring(NEW.leaf FROM 6 FOR octet_length(NEW.kind)) <> convert_to(NEW.kind, 'UTF8') THEN
        RAISE EXCEPTION 'leaf is not a version 1 % leaf', NEW.kind USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_leaves_stamp BEFORE INSERT ON log_leaves FOR EACH ROW EXECUTE FUNCTION log_leaves_stamp();

-- +goose StatementBegin
-- log_leaves_number allows the one UPDATE of a leaf there is: giving an
-- unnumbered leaf its index, nothing else changed. An index, once given,
-- is final.
CREATE FUNCTION log_leaves_number() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF OLD.idx IS NOT NULL OR NEW.idx IS NULL
       OR (NEW.seq, NEW.kind, NEW.leaf, NEW.job_id, NEW.at) IS DISTINCT FROM (OLD.seq, OLD.kind, OLD.leaf, OLD.job_id, OLD.at) THEN
        RAISE EXCEPTION 'log_leaves is append-only: only an unnumbered leaf''s idx may be set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER log_leaves_number BEFORE UPDATE ON log_leaves FOR EACH ROW EXECUTE FUNCTION log_leaves_number();

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
        -- No lock: if the sequencer is appending this job's leaf, the
        -- unique index makes this wait for it and then do nothing, and
        -- the deleted leaf, inserted after, is numbered after it.
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

-- ------------------------------------------------------- the sequencer
-- The tree's stored hashes are those of golang.org/x/mod/sumdb/tlog
-- (tlog.StoredHashIndex, tlog.StoredHashes, tlog.TreeHash), computed here
-- so that no caller ever supplies a hash: leaf hash SHA-256(0x00 || leaf),
-- node hash SHA-256(0x01 || left || right). TestSequencerHashesMatchTlog
-- holds them to tlog's.

-- +goose StatementBegin
-- jobstream_log_stored_index is tlog.StoredHashIndex(level, n): where the
-- hash of the n-th subtree of 2^level leaves is stored.
CREATE FUNCTION jobstream_log_stored_index(p_level integer, p_n bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n bigint := p_n;
    i bigint := 0;
BEGIN
    FOR l IN 1 .. p_level LOOP
        n := 2 * n + 1;
    END LOOP;
    WHILE n > 0 LOOP
        i := i + n;
        n := n >> 1;
    END LOOP;
    RETURN i + p_level;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_log_tree_size is the tree size whose stored hashes number
-- p_count (tlog.StoredHashCount(n) = 2n - popcount(n)); an error when no
-- size has that many.
CREATE FUNCTION jobstream_log_tree_size(p_count bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n bigint := p_count / 2;
BEGIN
    WHILE 2 * n - bit_count(int8send(n)) < p_count LOOP
        n := n + 1;
    END LOOP;
    IF 2 * n - bit_count(int8send(n)) <> p_count THEN
        RAISE EXCEPTION 'the log has % tree hashes, which no tree size has', p_count USING ERRCODE = 'data_corrupted';
    END IF;
    RETURN n;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_log_tree_hash is tlog.TreeHash(p_size): the root of the tree of
-- the first p_size leaves, from the stored hashes.
CREATE FUNCTION jobstream_log_tree_hash(p_size bigint) RETURNS bytea
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    lo bigint := 0;
    k bigint;
    lvl integer;
    hs bytea[] := '{}';
    h bytea;
BEGIN
    IF p_size IS NULL OR p_size < 1 THEN
        RETURN NULL;
    END IF;
    -- The complete subtrees, left to right, each the largest power of two
    -- that fits in what is left.
    WHILE lo < p_size LOOP
        k := 1;
        lvl := 0;
        WHILE k * 2 <= p_size - lo LOOP
            k := k * 2;
            lvl := lvl + 1;
        END LOOP;
        SELECT x.hash INTO STRICT h FROM log_hashes x WHERE x.idx = jobstream_log_stored_index(lvl, lo >> lvl);
        hs := array_append(hs, h);
        lo := lo + k;
    END LOOP;
    -- Combined right to left.
    h := hs[cardinality(hs)];
    FOR i IN REVERSE cardinality(hs) - 1 .. 1 LOOP
        h := sha256('\x01'::bytea || hs[i] || h);
    END LOOP;
    RETURN h;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_log_append_jobs appends a job leaf for each ended job without
-- one, after the keyset (end time, id) (p_after_ended, p_after_id), in that
-- order, at most p_max (clamped to 1..10,000); it returns how many it
-- appended and the keyset of the last job it looked at (the epoch and the
-- nil id when none). The sequencer's only way to add a leaf: SECURITY
-- DEFINER, and each leaf is the database's own (jobstream_log_job_leaves),
-- never the caller's, so a caller can only log a sealed job early, never
-- forge its leaf. Whether a job has a leaf is probed per job through
-- log_leaves_job_idx (a correlated subquery, so the planner never picks a
-- nested loop over the whole log when its statistics lag); a leaf that
-- retention's trigger is appending meanwhile wins (ON CONFLICT waits for
-- it, then skips).
CREATE FUNCTION jobstream_log_append_jobs(p_after_ended timestamptz, p_after_id uuid, p_max integer)
RETURNS TABLE (appended bigint, last_ended timestamptz, last_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_max integer := least(greatest(coalesce(p_max, 1), 1), 10000);
    v_ended timestamptz := coalesce(p_after_ended, '-infinity');
    v_id uuid := coalesce(p_after_id, '00000000-0000-0000-0000-000000000000');
BEGIN
    RETURN QUERY
    WITH s AS (
        SELECT j.id, coalesce(j.finished_at, j.created_at) AS ended
        FROM jobs j
        WHERE j.status IN ('completed', 'failed', 'cancelled')
          AND (coalesce(j.finished_at, j.created_at), j.id) > (v_ended, v_id)
          AND (SELECT l.seq FROM log_leaves l WHERE l.kind = 'job' AND l.job_id = j.id) IS NULL
        ORDER BY coalesce(j.finished_at, j.created_at), j.id
        LIMIT v_max
    ), ins AS (
        INSERT INTO log_leaves (kind, leaf, job_id)
        SELECT 'job', v.leaf, v.id
        FROM s JOIN jobstream_log_job_leaves v ON v.id = s.id
        ORDER BY s.id
        ON CONFLICT (job_id) WHERE kind = 'job' DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins)::bigint,
           coalesce((SELECT s.ended FROM s ORDER BY s.ended DESC, s.id DESC LIMIT 1), 'epoch')::timestamptz,
           coalesce((SELECT s.id FROM s ORDER BY s.ended DESC, s.id DESC LIMIT 1), '00000000-0000-0000-0000-000000000000')::uuid;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_log_sequence numbers and hashes, under the log's advisory lock
-- (7340520; waited for, and held to commit: the sequencer already holds it
-- by LogLock's try): it gives the committed unnumbered leaves the next
-- indexes in seq order, at most p_max (clamped to 1..10,000), then stores
-- the tree hashes of up to p_max numbered leaves not hashed yet, in index
-- order, each computed here from the leaf itself. It returns how many it
-- numbered and hashed and the tree's size after. SECURITY DEFINER, and it
-- takes nothing from the caller but a batch size: the hashes a caller
-- could jam or forge are never the caller's.
CREATE FUNCTION jobstream_log_sequence(p_max integer)
RETURNS TABLE (numbered bigint, hashed bigint, tree_size bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_max integer := least(greatest(coalesce(p_max, 1), 1), 10000);
    v_next bigint;
    v_count bigint;
    v_size bigint;
    v_hashed bigint := 0;
    v_numbered bigint;
    r record;
    h bytea;
    v_left bytea;
    n bigint;
    lvl integer;
BEGIN
    PERFORM pg_advisory_xact_lock(7340520);
    v_next := coalesce((SELECT max(l.idx) + 1 FROM log_leaves l), 0);
    WITH p AS (
        SELECT l.seq, row_number() OVER (ORDER BY l.seq) AS rn
        FROM log_leaves l WHERE l.idx IS NULL
        ORDER BY l.seq LIMIT v_max
    )
    UPDATE log_leaves l SET idx = v_next + p.rn - 1 FROM p WHERE l.seq = p.seq;
    GET DIAGNOSTICS v_numbered = ROW_COUNT;

    v_count := coalesce((SELECT max(x.idx) + 1 FROM log_hashes x), 0);
    v_size := jobstream_log_tree_size(v_count);
    FOR r IN SELECT l.idx, l.leaf FROM log_leaves l WHERE l.idx >= v_size ORDER BY l.idx LIMIT v_max LOOP
        IF r.idx <> v_size THEN
            RAISE EXCEPTION 'leaf % follows leaf %: the log has a gap', r.idx, v_size - 1 USING ERRCODE = 'data_corrupted';
        END IF;
        -- tlog.StoredHashes: the leaf's hash, then one node hash for each
        -- subtree this leaf completes (each trailing 1 bit of its index).
        h := sha256('\x00'::bytea || r.leaf);
        INSERT INTO log_hashes (idx, hash) VALUES (v_count, h);
        v_count := v_count + 1;
        n := v_size;
        lvl := 0;
        WHILE n & 1 = 1 LOOP
            SELECT x.hash INTO STRICT v_left FROM log_hashes x
            WHERE x.idx = jobstream_log_stored_index(lvl, (v_size >> lvl) - 1);
            h := sha256('\x01'::bytea || v_left || h);
            INSERT INTO log_hashes (idx, hash) VALUES (v_count, h);
            v_count := v_count + 1;
            n := n >> 1;
            lvl := lvl + 1;
        END LOOP;
        v_size := v_size + 1;
        v_hashed := v_hashed + 1;
    END LOOP;
    numbered := v_numbered;
    hashed := v_hashed;
    tree_size := v_size;
    RETURN NEXT;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_log_checkpoint keeps a signed checkpoint, under the log's lock,
-- only for a tree size that is hashed and larger than the last
-- checkpoint's, whose root is that tree's root (computed here), and whose
-- note states that size and root (C2SP tlog-checkpoint: origin, size,
-- base64 root, one a line). The signature cannot be checked here (the
-- database never holds the key): clients check it.
CREATE FUNCTION jobstream_log_checkpoint(p_tree_size bigint, p_root bytea, p_note text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hashed bigint;
    v_last bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7340520);
    v_hashed := jobstream_log_tree_size(coalesce((SELECT max(x.idx) + 1 FROM log_hashes x), 0));
    v_last := coalesce((SELECT max(c.tree_size) FROM log_checkpoints c), 0);
    IF p_tree_size IS NULL OR p_tree_size < 1 OR p_tree_size > v_hashed OR p_tree_size <= v_last THEN
        RAISE EXCEPTION 'checkpoint of % leaves refused: % leaves are hashed and the last checkpoint has %',
            p_tree_size, v_hashed, v_last USING ERRCODE = 'check_violation';
    END IF;
    IF p_root IS DISTINCT FROM jobstream_log_tree_hash(p_tree_size) THEN
        RAISE EXCEPTION 'checkpoint of % leaves refused: its root is not the tree''s', p_tree_size USING ERRCODE = 'check_violation';
    END IF;
    IF p_note IS NULL OR split_part(p_note, E'\n', 2) <> p_tree_size::text OR split_part(p_note, E'\n', 3) <> encode(p_root, 'base64') THEN
        RAISE EXCEPTION 'checkpoint of % leaves refused: its note does not state that size and root', p_tree_size USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO log_checkpoints (tree_size, root, note) VALUES (p_tree_size, p_root, p_note);
END
$$;
-- +goose StatementEnd

-- The server's role reads the log and sequences and signs through the
-- three functions above; it inserts into none of the tables (a forged leaf,
-- hash or checkpoint would block the real one for good).
GRANT SELECT ON log_leaves, log_hashes, log_checkpoints TO jobstream_app;
GRANT SELECT ON jobstream_log_job_leaves TO jobstream_app;
REVOKE EXECUTE ON FUNCTION log_job_events() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION log_admin_events() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION log_leaves_number() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_log_tree_hash(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_log_append_jobs(timestamptz, uuid, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_log_sequence(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_log_checkpoint(bigint, bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobstream_log_append_jobs(timestamptz, uuid, integer) TO jobstream_app;
GRANT EXECUTE ON FUNCTION jobstream_log_sequence(integer) TO jobstream_app;
GRANT EXECUTE ON FUNCTION jobstream_log_checkpoint(bigint, bytea, text) TO jobstream_app;

-- +goose Down
DROP FUNCTION jobstream_log_checkpoint(bigint, bytea, text);
DROP FUNCTION jobstream_log_sequence(integer);
DROP FUNCTION jobstream_log_append_jobs(timestamptz, uuid, integer);
DROP FUNCTION jobstream_log_tree_hash(bigint);
DROP FUNCTION jobstream_log_tree_size(bigint);
DROP FUNCTION jobstream_log_stored_index(integer, bigint);
DROP TRIGGER log_admin_events ON admin_events;
DROP FUNCTION log_admin_events();
DROP TRIGGER log_job_events ON job_events;
DROP FUNCTION log_job_events();
DROP VIEW jobstream_log_job_leaves;
DROP TABLE log_checkpoints;
DROP TABLE log_hashes;
DROP TABLE log_leaves;
DROP FUNCTION log_leaves_stamp();
DROP FUNCTION log_leaves_number();
DROP FUNCTION log_append_only();
DROP FUNCTION jobstream_log_time(timestamptz);
DROP FUNCTION jobstream_log_int(bigint);
DROP FUNCTION jobstream_log_text(text);
DROP FUNCTION jobstream_log_field(bytea);
DROP INDEX jobs_ended_idx;
