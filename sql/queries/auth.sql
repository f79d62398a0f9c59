-- Queries on api_keys and sessions (internal/auth).

-- name: KeyInsert :one
INSERT INTO api_keys (id, name, tenant, access_key, secret_hash)
VALUES (@id, @name, @tenant, @access_key, @secret_hash)
RETURNING *;

-- KeyGetByAccess finds a key by its access key (the Basic auth user name),
-- revoked or not: the caller checks revoked_at.
-- name: KeyGetByAccess :one
SELECT * FROM api_keys WHERE access_key = @access_key;

-- name: KeyList :many
SELECT * FROM api_keys ORDER BY created_at, id;

-- KeyLock locks a key given its access key or its id FOR UPDATE until the
-- end of the transaction, before KeyRevoke: a submission in progress
-- holds the key's row FOR KEY SHARE (JobInsert), which the UPDATE alone
-- (FOR NO KEY UPDATE) would not wait for; the revocation must, to see and
-- cancel its job.
-- name: KeyLock :one
SELECT id FROM api_keys WHERE access_key = @ref OR id = sqlc.narg('id') FOR UPDATE;

-- KeyRevoke revokes a key given its access key or its id. Revoking twice
-- keeps the first time.
-- name: KeyRevoke :one
UPDATE api_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE access_key = @ref OR id = sqlc.narg('id')
RETURNING *;

-- name: SessionDeleteForKey :execrows
DELETE FROM sessions WHERE api_key_id = @api_key_id;

-- name: SessionInsert :one
INSERT INTO sessions (id, token_hash, api_key_id, tenant, expires_at)
VALUES (@id, @token_hash, @api_key_id, @tenant, now() + make_interval(secs => sqlc.arg('ttl_seconds')::float8))
RETURNING id, expires_at;

-- SessionTouch finds a live session by its token's hash and slides its
-- expiry. A session of a revoked key is dead. Callers cache the result for
-- a few seconds, so this write happens at most once per cache period per
-- session and node.
-- name: SessionTouch :one
UPDATE sessions s
SET last_seen_at = now(),
    expires_at = greatest(s.expires_at, now() + make_interval(secs => sqlc.arg('ttl_seconds')::float8))
WHERE s.token_hash = @token_hash
  AND s.expires_at > now()
  AND (s.api_key_id IS NULL
       OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = s.api_key_id AND k.revoked_at IS NULL))
RETURNING s.id, s.api_key_id, s.tenant, s.expires_at,
    coalesce((SELECT k.name FROM api_keys k WHERE k.id = s.api_key_id), '')::text AS key_name;

-- name: SessionDelete :exec
DELETE FROM sessions WHERE token_hash = @token_hash;

-- SessionDeleteExpired removes up to max expired sessions (and, by
-- cascade, their stream cursors). Called when sessions are created, so the
-- table's size follows the number of live sessions. Locks only the rows
-- it deletes, skipping those another transaction holds (see
-- SessionTrimForKey: no sweep waits for a session row).
-- name: SessionDeleteExpired :execrows
DELETE FROM sessions
WHERE id IN (
    SELECT l.id FROM sessions l
    WHERE l.id IN (SELECT e.id FROM sessions e WHERE e.expires_at < now() ORDER BY e.expires_at LIMIT @max)
    FOR UPDATE SKIP LOCKED);

-- SessionTrimForKey ends a key's least recently used sessions beyond its
-- newest @keep (and, by cascade, their stream cursors): a client that logs
-- in again and again (GET /config with Basic credentials, every time
-- without the cookie) cannot grow the table without bound. Called after
-- each SessionInsert; uses sessions_api_key_idx.
--
-- Locking: the sweeps (this, SessionTrimAnonymous, SessionDeleteExpired)
-- run after every SessionInsert, many at once when a client logs in from
-- several threads, and pick overlapping rows. A plain DELETE locks its
-- rows in whatever order its plan meets them, so two sweeps each holding a
-- row the other wanted deadlocked (issue 19: 29 of 1,600 concurrent logins
-- failed with 40P01). Each sweep therefore picks its rows without locking,
-- then locks them FOR UPDATE SKIP LOCKED and deletes only what it locked: a
-- row another sweep holds is being deleted by it, and one SessionTouch
-- holds is in use. No sweep waits for a session row, so none can be part
-- of a deadlock. The locking select is a level of its own because a
-- locking clause beside OFFSET would also lock the rows OFFSET skips (the
-- sessions kept). While logins race, a key may briefly keep a few more
-- than @keep; the next login trims them.
-- name: SessionTrimForKey :execrows
DELETE FROM sessions
WHERE id IN (
    SELECT l.id FROM sessions l
    WHERE l.id IN (
        SELECT o.id FROM sessions o
        WHERE o.api_key_id = @api_key_id
        ORDER BY o.last_seen_at DESC, o.id DESC
        OFFSET sqlc.arg('keep')::int)
    FOR UPDATE SKIP LOCKED);

-- SessionTrimAnonymous is SessionTrimForKey for a tenant's anonymous (dev
-- mode) sessions, locking the same way (SKIP LOCKED, never waiting).
-- name: SessionTrimAnonymous :execrows
DELETE FROM sessions
WHERE id IN (
    SELECT l.id FROM sessions l
    WHERE l.id IN (
        SELECT o.id FROM sessions o
        WHERE o.api_key_id IS NULL AND o.tenant = sqlc.arg('tenant')::text
        ORDER BY o.last_seen_at DESC, o.id DESC
        OFFSET sqlc.arg('keep')::int)
    FOR UPDATE SKIP LOCKED);

-- KeyRevokedWithin lists the keys revoked in the last @window_seconds, by
-- the database's clock (the one revocation stamps): the auth layer polls it
-- to end the requests (SSE streams, long-polls) of keys revoked while they
-- were open, and to forget cached lookups of them. Few keys are ever
-- revoked, so this scans a small table.
-- name: KeyRevokedWithin :many
SELECT id, access_key
FROM api_keys
WHERE revoked_at > now() - make_interval(secs => sqlc.arg('window_seconds')::float8);
