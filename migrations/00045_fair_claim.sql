-- Fair claiming and a bound on a job's runtime (issue 18, item 2), and
-- the access path by which revoking a key cancels its jobs (item 14).
--
-- JobClaim (sql/queries/jobs.sql) hands free slots to tenants in round
-- robin (the tenant with the fewest running jobs first, then the oldest
-- job) and holds each tenant to at most a configured number of running
-- jobs per node. It needs, without reading every queued job:
--   - the tenants with queued jobs and each one's oldest queued job: a
--     loose index scan of jobs_queued_tenant_idx, one probe per tenant;
--   - each such tenant's running jobs, in all and on this node:
--     jobs_running_tenant_idx.
--
-- deadline_at is when the running attempt must have ended: set by the claim
-- to now() + the worker's maximum runtime. The worker stops the model call
-- then (a context deadline); the rescuer fails a running job whose deadline
-- passed (a worker that kept heartbeating but whose model call ignored its
-- deadline, or one configured without a bound), under the row lock, with
-- an error finish chunk of type "timeout". NULL: no bound.

-- +goose Up
ALTER TABLE jobs ADD COLUMN deadline_at timestamptz;

CREATE INDEX jobs_queued_tenant_idx ON jobs (tenant, id) WHERE status = 'queued';
CREATE INDEX jobs_running_tenant_idx ON jobs (tenant, lease_owner) WHERE status = 'running';
-- The rescuer's access path to overdue jobs.
CREATE INDEX jobs_running_deadline_idx ON jobs (deadline_at) WHERE status = 'running' AND deadline_at IS NOT NULL;
-- Revoking a key cancels its queued and running jobs (store.KeyRevoke).
CREATE INDEX jobs_api_key_active_idx ON jobs (api_key_id) WHERE status IN ('queued', 'running');

-- +goose StatementBegin
DO $$
BEGIN
    -- The claim sets deadline_at; UPDATE on jobs is column-level for the
    -- server's role (00040), so it gets this column explicitly.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        GRANT UPDATE (deadline_at) ON jobs TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        REVOKE UPDATE (deadline_at) ON jobs FROM jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX jobs_api_key_active_idx;
DROP INDEX jobs_running_deadline_idx;
DROP INDEX jobs_running_tenant_idx;
DROP INDEX jobs_queued_tenant_idx;
ALTER TABLE jobs DROP COLUMN deadline_at;
