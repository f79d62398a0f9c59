-- The server's role may only read api_keys (00040), but a submission locks
-- its key's row FOR KEY SHARE so that a revocation in progress either waits
-- for the job (and cancels it) or makes the submission see the key revoked
-- (sql/queries/jobs.sql, JobInsert; 00045). A row lock needs UPDATE on some
-- column, which would let the role change keys; instead this function,
-- run with its owner's rights, takes the lock for the caller's transaction
-- and says whether the key may still submit.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION jobstream_key_usable(p_key uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = p_key AND k.revoked_at IS NULL FOR KEY SHARE)
$$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION jobstream_key_usable(uuid) SET search_path = pg_catalog, %I, pg_temp', current_schema());
    REVOKE EXECUTE ON FUNCTION jobstream_key_usable(uuid) FROM PUBLIC;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        GRANT EXECUTE ON FUNCTION jobstream_key_usable(uuid) TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION jobstream_key_usable(uuid);
