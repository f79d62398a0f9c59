-- Where the time of one chunk-writer commit goes: a 4,000-row batch for
-- 1,000 running jobs (4 chunks each), the shape of `jobstream bench --mode
-- sse --streams 1000 --rate 50`, taken apart statement by statement, each
-- timed on its own (psql \timing) with its commit, three rounds each.
--
--   psql -h 127.0.0.1 -U postgres -d jobstream_bench_x -f sql/commit_breakdown.sql
--
-- Run it on a bench database (it adds 1,000 jobs of tenant 'breakdown' and
-- removes them at the end) on an otherwise idle machine; compare the lines
-- with each other, within one run.
\set ON_ERROR_STOP on
\pset footer off
SET track_io_timing = on;
-- Only retention's role removes jobs and chunks (migrations/00040): the
-- owner running this becomes it to clean up.
SET ROLE jobstream_retention;
DELETE FROM jobs WHERE tenant = 'breakdown';
RESET ROLE;
CREATE TEMP TABLE bd_jobs AS
SELECT gen_random_uuid() AS id, n FROM generate_series(1, 1000) n;
INSERT INTO jobs (id, tenant, engine, request, status, attempt, lease_owner, lease_expires_at, started_at)
SELECT id, 'breakdown', 'sim', '{}', 'running', 1, 'bd', now() + interval '1 hour', now() FROM bd_jobs;
ANALYZE jobs;
-- The batch as the writer sends it: four arrays, 4,000 elements.
CREATE TEMP TABLE bd_arr (r int PRIMARY KEY, ids uuid[], seqs int[], types text[], datas text[]);
INSERT INTO bd_arr
SELECT r, array_agg(j.id ORDER BY j.n, k), array_agg(r * 4 + k ORDER BY j.n, k),
       array_agg('content'::text ORDER BY j.n, k),
       array_agg('{"content":" token","emitted_at_us":' || (1764600000000000 + r * 4 + k) || '}' ORDER BY j.n, k)
FROM generate_series(0, 11) r, bd_jobs j, generate_series(0, 3) k GROUP BY r;
CREATE TEMP TABLE bd_ids AS SELECT array_agg(id ORDER BY id) AS ids, array_agg(1 ORDER BY id) AS attempts FROM bd_jobs;
-- job_chunks without its foreign key (same columns, primary key, checks;
-- logged, as job_chunks is), and the same with data as json (kept as text,
-- not parsed into jsonb).
DROP TABLE IF EXISTS bd_nofk, bd_nofk_json;
CREATE TABLE bd_nofk (LIKE job_chunks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE TABLE bd_nofk_json (LIKE job_chunks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
ALTER TABLE bd_nofk_json ALTER COLUMN data TYPE json;
\timing on
\echo '== round 1: the whole transaction (fence, insert, notify, commit)'
BEGIN;
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 0;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
COMMIT;
\echo '-- the insert alone, with its commit'
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 1;
\echo '-- the insert without the foreign key (jsonb)'
INSERT INTO bd_nofk (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 0;
\echo '-- the insert without the foreign key, data json (no jsonb parse)'
INSERT INTO bd_nofk_json (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::json
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 1;
\echo '-- the fence alone: FOR SHARE on 1,000 job rows, with its commit'
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
\echo '-- the heartbeat: 1,000 lease renewals'
WITH locked AS (SELECT j.id FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
  CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
    AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR NO KEY UPDATE) j)
UPDATE jobs j SET lease_expires_at = now() + interval '30 seconds' FROM locked WHERE j.id = locked.id;
\echo '-- an empty notifying commit'
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
\echo '== round 2: the whole transaction (fence, insert, notify, commit)'
BEGIN;
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 2;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
COMMIT;
\echo '-- the insert alone, with its commit'
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 3;
\echo '-- the insert without the foreign key (jsonb)'
INSERT INTO bd_nofk (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 3;
\echo '-- the insert without the foreign key, data json (no jsonb parse)'
INSERT INTO bd_nofk_json (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::json
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 4;
\echo '-- the fence alone: FOR SHARE on 1,000 job rows, with its commit'
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
\echo '-- the heartbeat: 1,000 lease renewals'
WITH locked AS (SELECT j.id FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
  CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
    AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR NO KEY UPDATE) j)
UPDATE jobs j SET lease_expires_at = now() + interval '30 seconds' FROM locked WHERE j.id = locked.id;
\echo '-- an empty notifying commit'
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
\echo '== round 3: the whole transaction (fence, insert, notify, commit)'
BEGIN;
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 4;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
COMMIT;
\echo '-- the insert alone, with its commit'
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 5;
\echo '-- the insert without the foreign key (jsonb)'
INSERT INTO bd_nofk (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 6;
\echo '-- the insert without the foreign key, data json (no jsonb parse)'
INSERT INTO bd_nofk_json (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::json
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 7;
\echo '-- the fence alone: FOR SHARE on 1,000 job rows, with its commit'
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
\echo '-- the heartbeat: 1,000 lease renewals'
WITH locked AS (SELECT j.id FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
  CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
    AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR NO KEY UPDATE) j)
UPDATE jobs j SET lease_expires_at = now() + interval '30 seconds' FROM locked WHERE j.id = locked.id;
\echo '-- an empty notifying commit'
SELECT pg_notify('jobstream_breakdown', string_agg(id::text, ',')) FROM (SELECT id FROM bd_jobs LIMIT 213) x;
\timing off
\echo '== the insert, EXPLAIN (ANALYZE, BUFFERS, WAL)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF)
INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM bd_arr a, unnest(a.ids, a.seqs, a.types, a.datas) AS r(job_id, seq, stream_type, data) WHERE a.r = 6;
ROLLBACK;
\echo '== the fence, EXPLAIN (ANALYZE, BUFFERS, WAL)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF)
SELECT count(*) FROM bd_ids b, unnest(b.ids, b.attempts) AS h(id, attempt)
CROSS JOIN LATERAL (SELECT jobs.id FROM jobs WHERE jobs.id = h.id AND jobs.attempt = h.attempt
  AND jobs.lease_owner = 'bd' AND jobs.status = 'running' LIMIT 1 FOR SHARE) j;
ROLLBACK;
\echo '== autovacuum and dead rows on jobs and job_chunks'
SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, last_autovacuum FROM pg_stat_user_tables WHERE relname IN ('jobs', 'job_chunks');
SET ROLE jobstream_retention;
DELETE FROM jobs WHERE tenant = 'breakdown';
RESET ROLE;
DROP TABLE bd_nofk, bd_nofk_json;
