-- Who may lift a legal hold (internal/retention/README.md).
--
-- A hold records who placed it (held_by: the person, or the API key) and
-- with what authority: 'operator' (jobstream hold, run with the database
-- owner's connection: the legal department) or 'tenant' (POST
-- /v1/jobs/{id}/hold with the tenant's own key). A tenant may place holds
-- and lift its own, never an operator's: a hold binds the custodian whose
-- data it keeps.
--
-- The server's role, jobstream_app, may only read job_holds. It changes
-- holds through jobstream_hold_place_tenant and jobstream_hold_lift_tenant
-- (SECURITY DEFINER), which act with tenant authority only. The operator
-- functions are executable by the owner alone (and superusers). Authority
-- is decided by which function the caller may execute, never by an
-- argument: the shared bodies (jobstream_hold_place, jobstream_hold_lift)
-- are not SECURITY DEFINER and nobody but the owner may execute them, so
-- called directly by anyone else they could not write job_holds anyway.
--
-- Every change to job_holds is recorded in job_events (hold_placed,
-- hold_lifted) by triggers on the table, so also a change made with plain
-- SQL by the owner: the functions name the actor of their own statement
-- (jobstream.hold_actor, set and cleared around it: a label, never a
-- permission); any other change is recorded with actor db_role:<role> and
-- detail.direct true. TRUNCATE, which fires no row trigger, is refused.

-- +goose Up
ALTER TABLE job_holds ADD COLUMN authority text;
-- Holds placed before: the CLI's (held_by cli) were the operator's.
UPDATE job_holds SET authority = CASE WHEN held_by = 'cli' THEN 'operator' ELSE 'tenant' END;
ALTER TABLE job_holds
    ALTER COLUMN authority SET NOT NULL,
    ADD CONSTRAINT job_holds_authority_check CHECK (authority IN ('operator', 'tenant'));
COMMENT ON COLUMN job_holds.held_by IS 'who placed the hold: api_key:<id> (a tenant''s key), or the person who ran jobstream hold (--actor, default user@host; cli for holds placed before 00042)';
COMMENT ON COLUMN job_holds.authority IS 'operator (jobstream hold) or tenant (POST /v1/jobs/{id}/hold): a tenant cannot lift an operator''s hold';

-- +goose StatementBegin
-- job_holds_audit records every hold placed, changed or lifted in the
-- job's audit trail. The hold's reason is the event's reason; its
-- authority, holder and time are in detail (for a change, with the hold as
-- it was in detail.previous).
CREATE FUNCTION job_holds_audit() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_actor  text := nullif(current_setting('jobstream.hold_actor', true), '');
    v_direct jsonb := CASE WHEN v_actor IS NULL THEN '{"direct": true}' ELSE '{}' END;
BEGIN
    v_actor := coalesce(v_actor, 'db_role:' || current_user);
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.job_id IS DISTINCT FROM NEW.job_id) THEN
        INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason, detail)
        SELECT j.id, j.tenant, 'hold_lifted', j.status, NULL, j.attempt, j.lease_owner, v_actor, OLD.reason,
               jsonb_build_object('authority', OLD.authority, 'held_by', OLD.held_by, 'held_at', OLD.held_at) || v_direct
        FROM jobs j WHERE j.id = OLD.job_id;
    END IF;
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        INSERT INTO job_events (job_id, tenant, event, from_status, to_status, attempt, lease_owner, actor, reason, detail)
        SELECT j.id, j.tenant, 'hold_placed', j.status, NULL, j.attempt, j.lease_owner, v_actor, NEW.reason,
               jsonb_build_object('authority', NEW.authority, 'held_by', NEW.held_by, 'held_at', NEW.held_at)
               || CASE WHEN TG_OP = 'UPDATE' AND OLD.job_id = NEW.job_id
                       THEN jsonb_build_object('previous', jsonb_build_object('authority', OLD.authority,
                                'held_by', OLD.held_by, 'held_at', OLD.held_at, 'reason', OLD.reason))
                       ELSE '{}' END
               || v_direct
        FROM jobs j WHERE j.id = NEW.job_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER job_holds_audit AFTER INSERT OR UPDATE OR DELETE ON job_holds
    FOR EACH ROW EXECUTE FUNCTION job_holds_audit();

-- +goose StatementBegin
CREATE FUNCTION job_holds_no_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE job_holds is not allowed: it would lift holds without recording them'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Lift holds one by one (jobstream unhold), or DELETE them: each is recorded in job_events.';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER job_holds_no_truncate BEFORE TRUNCATE ON job_holds
    FOR EACH STATEMENT EXECUTE FUNCTION job_holds_no_truncate();

-- +goose StatementBegin
-- jobstream_hold_place places a hold on job p_job (of tenant p_tenant; any
-- tenant's when NULL) with authority p_authority, or renews the hold there
-- is: a non-empty reason replaces its reason; an operator's hold over a
-- tenant's takes it over (holder, time, authority), so the tenant can no
-- longer lift it; a tenant's over an operator's changes nothing. It
-- returns the hold, no row when there is no such job. Not SECURITY
-- DEFINER, and executable by the owner alone: only the wrappers below
-- reach it, each with its own authority.
--
-- Locks, in this order (as jobstream_hold_lift): FOR KEY SHARE on the
-- job, then the hold's row (the INSERT's conflict). A retention pass locks
-- its jobs FOR UPDATE before it checks holds
-- (jobstream_retention_drop_partition, jobstream_retention_delete_batch),
-- so this hold either commits before that check and the pass keeps the
-- job, or waits for the pass and then, in a later statement (a newer
-- snapshot), finds the job gone or its retention event, and is refused
-- (SQLSTATE JS409).
CREATE FUNCTION jobstream_hold_place(p_job uuid, p_tenant text, p_reason text, p_actor text, p_authority text)
RETURNS SETOF job_holds
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hold job_holds;
BEGIN
    IF coalesce(p_actor, '') = '' THEN
        RAISE EXCEPTION 'a hold needs an actor' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM 1 FROM jobs j WHERE j.id = p_job AND (p_tenant IS NULL OR j.tenant = p_tenant) FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF jobstream_retention_recorded(p_job) THEN
        RAISE EXCEPTION 'job % is being removed by retention and can no longer be held', p_job
            USING ERRCODE = 'JS409';
    END IF;
    PERFORM set_config('jobstream.hold_actor', p_actor, true);
    INSERT INTO job_holds AS h (job_id, reason, held_by, authority)
    VALUES (p_job, coalesce(p_reason, ''), p_actor, p_authority)
    ON CONFLICT (job_id) DO UPDATE
    SET reason    = CASE WHEN EXCLUDED.reason <> '' THEN EXCLUDED.reason ELSE h.reason END,
        held_by   = CASE WHEN h.authority = EXCLUDED.authority THEN h.held_by ELSE EXCLUDED.held_by END,
        held_at   = CASE WHEN h.authority = EXCLUDED.authority THEN h.held_at ELSE now() END,
        authority = EXCLUDED.authority
    WHERE h.authority = 'tenant' OR EXCLUDED.authority = 'operator'
    RETURNING h.* INTO v_hold;
    PERFORM set_config('jobstream.hold_actor', '', true);
    IF v_hold.job_id IS NULL THEN
        -- A tenant's request on an operator's hold: the hold stays as it is
        -- (the conflict locked its row).
        SELECT * INTO STRICT v_hold FROM job_holds h WHERE h.job_id = p_job;
    END IF;
    RETURN NEXT v_hold;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- jobstream_hold_lift lifts the hold on job p_job (of tenant p_tenant; any
-- tenant's when NULL) with authority p_authority and returns it; no row when
-- the job is not held. A tenant lifting an operator's hold gets SQLSTATE
-- JS403, its detail the operator's holder. Locks as jobstream_hold_place:
-- the job FOR KEY SHARE, then the hold FOR UPDATE, so an operator taking
-- the hold over concurrently is seen (the row is read again after the
-- wait). Not SECURITY DEFINER, executable by the owner alone.
CREATE FUNCTION jobstream_hold_lift(p_job uuid, p_tenant text, p_actor text, p_authority text)
RETURNS SETOF job_holds
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hold job_holds;
BEGIN
    IF coalesce(p_actor, '') = '' THEN
        RAISE EXCEPTION 'lifting a hold needs an actor' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM 1 FROM jobs j WHERE j.id = p_job AND (p_tenant IS NULL OR j.tenant = p_tenant) FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF jobstream_retention_recorded(p_job) THEN
        RAISE EXCEPTION 'job % is being removed by retention', p_job USING ERRCODE = 'JS409';
    END IF;
    SELECT * INTO v_hold FROM job_holds h WHERE h.job_id = p_job FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_hold.authority = 'operator' AND p_authority <> 'operator' THEN
        RAISE EXCEPTION 'held by an operator (legal hold placed by %); only an operator can lift it', v_hold.held_by
            USING ERRCODE = 'JS403', DETAIL = v_hold.held_by;
    END IF;
    PERFORM set_config('jobstream.hold_actor', p_actor, true);
    DELETE FROM job_holds h WHERE h.job_id = p_job;
    PERFORM set_config('jobstream.hold_actor', '', true);
    RETURN NEXT v_hold;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The tenant's functions, for the server (POST and DELETE
-- /v1/jobs/{id}/hold): tenant authority, on the tenant's own jobs only.
CREATE FUNCTION jobstream_hold_place_tenant(p_job uuid, p_tenant text, p_reason text, p_actor text)
RETURNS SETOF job_holds
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF coalesce(p_tenant, '') = '' THEN
        RAISE EXCEPTION 'a tenant''s hold needs its tenant' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT * FROM jobstream_hold_place(p_job, p_tenant, p_reason, p_actor, 'tenant');
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION jobstream_hold_lift_tenant(p_job uuid, p_tenant text, p_actor text)
RETURNS SETOF job_holds
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF coalesce(p_tenant, '') = '' THEN
        RAISE EXCEPTION 'lifting a tenant''s hold needs its tenant' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT * FROM jobstream_hold_lift(p_job, p_tenant, p_actor, 'tenant');
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The operator's functions, for jobstream hold / unhold: any tenant's job,
-- operator authority. Executable by the owner (and superusers) alone.
CREATE FUNCTION jobstream_hold_place_operator(p_job uuid, p_reason text, p_actor text)
RETURNS SETOF job_holds
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT * FROM jobstream_hold_place(p_job, NULL, p_reason, p_actor, 'operator');
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION jobstream_hold_lift_operator(p_job uuid, p_actor text)
RETURNS SETOF job_holds
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT * FROM jobstream_hold_lift(p_job, NULL, p_actor, 'operator');
END
$$;
-- +goose StatementEnd

REVOKE EXECUTE ON FUNCTION jobstream_hold_place(uuid, text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_hold_lift(uuid, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_hold_place_tenant(uuid, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_hold_lift_tenant(uuid, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_hold_place_operator(uuid, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jobstream_hold_lift_operator(uuid, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION job_holds_audit() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION job_holds_no_truncate() FROM PUBLIC;

-- +goose StatementBegin
-- The server's role reads holds and changes them only through the tenant
-- functions (default privileges had given it INSERT, UPDATE and DELETE).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        REVOKE ALL ON job_holds FROM jobstream_app;
        GRANT SELECT ON job_holds TO jobstream_app;
        GRANT EXECUTE ON FUNCTION jobstream_hold_place_tenant(uuid, text, text, text) TO jobstream_app;
        GRANT EXECUTE ON FUNCTION jobstream_hold_lift_tenant(uuid, text, text) TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION jobstream_hold_lift_operator(uuid, text);
DROP FUNCTION jobstream_hold_place_operator(uuid, text, text);
DROP FUNCTION jobstream_hold_lift_tenant(uuid, text, text);
DROP FUNCTION jobstream_hold_place_tenant(uuid, text, text, text);
DROP FUNCTION jobstream_hold_lift(uuid, text, text, text);
DROP FUNCTION jobstream_hold_place(uuid, text, text, text, text);
DROP TRIGGER job_holds_no_truncate ON job_holds;
DROP FUNCTION job_holds_no_truncate();
DROP TRIGGER job_holds_audit ON job_holds;
DROP FUNCTION job_holds_audit();
COMMENT ON COLUMN job_holds.held_by IS NULL;
ALTER TABLE job_holds DROP COLUMN authority;
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON job_holds TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd
