// Package store is the only package that talks SQL. It owns jobstream's
// domain types (Job, Chunk, Snapshot), turns pgx errors into sentinel errors
// (ErrNotFound, ErrLeaseLost), and wraps the sqlc-generated queries in
// internal/store/dbsqlc, which never leak past it.
//
// # A job's life
//
//	queued ──claim──▶ running ──finish──▶ completed | failed | cancelled
//	   ▲                 │
//	   └── requeue ──────┘  (hand-back at shutdown, or a rescuer, only while
//	                         the job has no chunk: output a reader may have
//	                         seen is never replayed)
//
// A queued job may also be cancelled directly. Every status change is a
// row of job_events, written by the trigger jobs_audit, so no code path can
// skip it. Once a job has ended, nothing about it changes again (the
// trigger jobs_guard); its id, tenant, key, engine, room, request and
// creation time never change at all. The one exception is erasure
// (Erase, migrations/00051_erase.sql): its request and its chunks' data
// become {"erased":true}, every hash and the seal staying.
//
// # Leases and fencing
//
// Claim (JobClaim) takes queued jobs with FOR UPDATE SKIP LOCKED, sets
// lease_owner and lease_expires_at and increments attempt, which is the
// lease's fencing token. One batched heartbeat per process renews every
// lease it holds. Every write a worker makes is fenced in the same
// transaction: the chunk writer's group commit first locks its jobs' rows
// FOR SHARE where (id, attempt, lease_owner) still match and status is
// running (JobLeaseHeld), then inserts only those jobs' chunks and finishes
// only those jobs; a job missing from the fence has lost its lease and its
// worker stops. A rescuer takes expired leases FOR UPDATE SKIP LOCKED and
// decides under that lock whether the job goes back to the queue (no
// chunks) or fails (with an error finish chunk). seq is assigned by the
// lease holder alone, gap-free from 0, continuing after the last stored
// chunk at each claim.
//
// # The hash chain and the seal
//
// Every chunk stores h(seq) = sha256(h(seq-1) || seq || 0 || stream_type
// || 0 || data as stored), from the job's seed h(-1) (internal/chain has
// the definitions; version 2 seeds bind the chain to the job's id, tenant,
// engine and the SHA-256 of its request text). When a job ends, the
// trigger jobs_seal records chunk_count and final_hash in the statement
// that sets the terminal status, so a truncated tail is detected too. The
// chunk writer computes hashes in Go (chain.Next); the rare chunks written
// in SQL (a cancelled queued job's, the rescuer's) use job_chunk_hash.
// Verify recomputes everything from the stored columns, as sql/verify.sql
// does with psql alone. job_events and admin_events carry chains of their
// own, computed by the database when a row is inserted.
//
// # Who may do what (migrations/00040_integrity.sql)
//
//   - jobstream_app, the server's role: inserts and reads jobs, chunks and
//     events; updates only the columns a job's life needs; never updates or
//     deletes a chunk or an event, deletes no job, changes no policy, key,
//     analyst or hold directly. It runs retention through two SECURITY
//     DEFINER functions that judge by the database's clock and settings.
//   - jobstream_retention (NOLOGIN): owns the function that deletes expired
//     jobs; the append-only guards let deletions through for this role
//     alone, never for a setting a session may set.
//   - jobstream_eraser (NOLOGIN): owns jobstream_erase, which only the
//     owner may execute; the guards let it replace an ended, unheld job's
//     request and chunk data and record the erasure, and nothing else.
//   - the owner (who migrates): everything, including disabling triggers.
//     The chain detects what an owner changes naively; only signed
//     checkpoints kept outside the database catch an owner who recomputes
//     the hashes.
//
// # The transparency log (migrations/00050_log.sql, internal/ledger)
//
// log_leaves, log_hashes and log_checkpoints are append-only for everyone;
// jobstream_app reads them and writes none of them itself: the sequencer
// calls jobstream_log_append_jobs, jobstream_log_sequence and
// jobstream_log_checkpoint (SECURITY DEFINER), which compute the job
// leaves, the indexes and the tree hashes from the database's own rows and
// refuse a checkpoint that is not of the hashed tree. Deletion, hold and
// admin leaves are appended, unnumbered, by triggers in the transaction
// that makes the change, taking no lock; the sequencer numbers them in
// insertion order under the log's advisory lock (LogSequence).
//
// Every function that runs with its owner's rights, or that a row-level
// security policy calls, resolves names in search_path pg_catalog, the
// schema, pg_temp (last), so a caller's temporary table never stands in for
// a real one.
package store
