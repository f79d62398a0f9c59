-- The OpenAI Responses surface (/v1/responses). A response is a job; this
-- table keeps what the Responses API echoes that the job does not hold.
-- Its events are derived from the job's chunks (internal/respevent), so
-- nothing is stored per event.

-- +goose Up
CREATE TABLE responses (
    -- One row per job submitted through /v1/responses. Removed with its job
    -- (retention), never on its own.
    job_id     uuid        PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    -- The Response object's request fields (respevent.Meta): model,
    -- instructions, tools, tool_choice, sampling, metadata, background.
    meta       jsonb       NOT NULL,
    -- The input items as GET /v1/responses/{id}/input_items lists them.
    input      jsonb       NOT NULL,
    -- DELETE /v1/responses/{id} hides a response (every /v1/responses
    -- route answers 404); its job and chunks stay until retention removes
    -- them, since chunks are append-only.
    deleted_at timestamptz
);

-- +goose Down
DROP TABLE responses;
