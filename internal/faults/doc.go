// Package faults is jobstream's fault-injection and abuse suite: tests
// only. They run real `jobstream serve` processes (internal/testserver) and
// break things under them while jobs stream and clients read:
//
//   - a worker killed with SIGKILL: its leases expire and another node's
//     rescuer fails its jobs with an error chunk, or requeues a job that had
//     written nothing (TestWorkerKilled);
//   - SIGTERM: in-flight jobs finish within the grace period or are handed
//     back, long-polls answer, SSE streams end, and clients resume on
//     another node (TestGracefulShutdown);
//   - PostgreSQL backends terminated mid-stream (TestBackendsTerminated),
//     and a private PostgreSQL cluster restarted mid-stream, never the
//     machine's shared server, once for longer than every lease: the live
//     node keeps its jobs (TestPostgresRestart);
//   - leases: a node that re-claims a job while its old attempt winds
//     down (TestReclaimBySameProcess), and a rescuer held by a statement
//     gate while a gone worker's last batch commits
//     (TestRescuerDecidesUnderTheLock);
//   - load and abuse: thousands of idle long-polls, a submission storm,
//     per-key limits, size limits and slowloris (load_test.go);
//   - security: tenant isolation on every route of both APIs, parameterised
//     SQL, CORS, security headers, and what the logs may hold
//     (security_test.go).
//
// Every test checks the same end state: each reader got every committed
// chunk exactly once, in order, and the job ended cleanly (a terminal
// status and a finish chunk).
package faults
