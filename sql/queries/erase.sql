-- Erasure (migrations/00051_erase.sql).

-- JobErase erases an ended, unheld job's content, keeping its ids, hashes
-- and seal, as the owner (jobstream erase); jobstream_erase locks the job's
-- row FOR UPDATE and raises P0002 (no such job) or JS409 (held, not ended,
-- already erased, or its chain does not verify).
-- name: JobErase :one
SELECT jobstream_erase(@id::uuid, @reason::text, @actor::text)::timestamptz AS erased_at;
