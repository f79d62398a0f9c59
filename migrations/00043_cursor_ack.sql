-- pixelJobStreaming's per-session cursor (stream_cursors) no longer moves
-- when a page is handed out, only once the page's answer is known to have
-- been written. next_seq stays the acknowledged position ("delivered");
-- the page last handed out to the session is kept beside it, and the
-- session's next poll acknowledges it only if its answer was written to the
-- connection completely. A page whose answer failed, or that nobody
-- finished writing by its deadline (the server died mid-answer), is sent
-- again. internal/store/cursors.go (CursorPoll) has the protocol.

-- +goose Up
ALTER TABLE stream_cursors
    -- End (exclusive) of the page last handed out: chunks in
    -- [next_seq, sent_upto) went out in one answer that is not
    -- acknowledged yet. Equal to next_seq when nothing is outstanding.
    ADD COLUMN sent_upto integer NOT NULL DEFAULT 0,
    -- The outstanding page's token: each page handed out gets the next
    -- one, so a late report about an older answer changes nothing.
    ADD COLUMN sent_gen bigint NOT NULL DEFAULT 0 CHECK (sent_gen >= 0),
    -- What became of the outstanding page's answer: 'sending' (handed out,
    -- not reported yet), 'written' (written to the connection completely)
    -- or 'failed' (the write failed, or the client reset the connection
    -- with the answer unread).
    ADD COLUMN sent_state text NOT NULL DEFAULT 'written'
        CHECK (sent_state IN ('sending', 'written', 'failed')),
    -- Until when a 'sending' answer may still be written: past it, the
    -- server that was writing it is presumed dead and the page is sent
    -- again.
    ADD COLUMN sent_deadline timestamptz NOT NULL DEFAULT now();

-- Cursors from before: what they handed out counted as delivered.
UPDATE stream_cursors SET sent_upto = next_seq;

ALTER TABLE stream_cursors
    ADD CONSTRAINT stream_cursors_sent_upto_check CHECK (sent_upto >= next_seq);

-- +goose StatementBegin
DO $$
BEGIN
    -- The server's role updates the new columns (jobstream_app may be
    -- missing where the migrating role could not create it; see 00005).
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobstream_app') THEN
        GRANT UPDATE (sent_upto, sent_gen, sent_state, sent_deadline) ON stream_cursors TO jobstream_app;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE stream_cursors
    DROP CONSTRAINT stream_cursors_sent_upto_check,
    DROP COLUMN sent_deadline,
    DROP COLUMN sent_state,
    DROP COLUMN sent_gen,
    DROP COLUMN sent_upto;
