-- API keys, sessions, per-session stream cursors and SEMOSS pixel metadata:
-- what the SEMOSS-compatible /Monolith/api surface needs beyond jobs.

-- +goose Up
-- An API key is an access key (public, like a user name) and a secret.
-- Only the secret's SHA-256 is stored: secrets are 32 random bytes, so a
-- fast hash is enough (there is nothing to brute-force; slow password
-- hashes protect low-entropy passwords) and keeps Basic auth, which clients
-- send on every request, cheap.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL CHECK (name <> ''),
    -- Jobs are owned by tenant: a key's tenant defaults to its own id, so
    -- one key cannot see another's jobs unless they are given the same
    -- tenant on purpose (`jobstream keys create --tenant`).
    tenant      text        NOT NULL CHECK (tenant <> ''),
    access_key  text        NOT NULL UNIQUE,
    secret_hash bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Revoked keys fail authentication; they are kept for the audit trail
    -- (jobs.api_key_id points at them).
    revoked_at  timestamptz
);

ALTER TABLE jobs ADD CONSTRAINT jobs_api_key_fk
    FOREIGN KEY (api_key_id) REFERENCES api_keys (id) ON DELETE SET NULL;

-- SEMOSS sessions (the JSESSIONID cookie). Stored here rather than in a
-- node's memory, so any node serves any session: no sticky load balancer.
CREATE TABLE sessions (
    id           uuid        PRIMARY KEY,
    -- SHA-256 of the cookie's random token: a database leak does not
    -- leak usable sessions.
    token_hash   bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    -- NULL for an anonymous session (dev mode only).
    api_key_id   uuid        REFERENCES api_keys (id) ON DELETE CASCADE,
    tenant       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- Sliding: each use pushes it forward by the idle timeout.
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_api_key_idx ON sessions (api_key_id) WHERE api_key_id IS NOT NULL;

-- Server-side read positions of SEMOSS clients, which poll with a job id
-- and no offset: one row per (job, session), so each session receives every
-- chunk exactly once, across restarts and nodes.
CREATE TABLE stream_cursors (
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- pixelJobStreaming: the next chunk seq to hand out.
    next_seq    integer     NOT NULL DEFAULT 0 CHECK (next_seq >= 0),
    -- /engine/partial: chunks before this seq were reported in "new".
    partial_seq integer     NOT NULL DEFAULT 0 CHECK (partial_seq >= 0),
    -- /engine/error: the job's error was reported.
    error_sent  boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, session_id)
);
-- For ON DELETE CASCADE from sessions.
CREATE INDEX stream_cursors_session_idx ON stream_cursors (session_id);

-- What a SEMOSS client submitted a job as: the insight it ran in, the
-- pixel's text (pixelExpression of /engine/result) and whether it came from
-- the synchronous runPixel (whose jobs end "Complete", not
-- "ProgressComplete").
CREATE TABLE pixel_jobs (
    job_id     uuid    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    insight_id text    NOT NULL,
    expression text    NOT NULL,
    sync       boolean NOT NULL
);

-- +goose Down
DROP TABLE pixel_jobs;
DROP TABLE stream_cursors;
DROP TABLE sessions;
ALTER TABLE jobs DROP CONSTRAINT jobs_api_key_fk;
DROP TABLE api_keys;
