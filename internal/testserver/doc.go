// Package testserver is test-only support for tests that need more than
// dbtest's one database per test package:
//
//   - Database and EmptyDatabase give one test its own database on the test
//     server. Tests that run workers or call store.Claim or
//     store.RescueExpired need one: those act on every job in a database,
//     not one tenant's, so two such tests sharing dbtest's package database
//     would run (or fail, or rescue) each other's jobs.
//   - Build and Start run `jobstream serve` as a real process: the
//     end-to-end tests run two of them on one database, and fault-injection
//     tests can kill them and start others.
//   - LogWatcher finds the bound address in a server's log, the ready
//     signal of `serve --addr 127.0.0.1:0` (no sleeping, no polling).
//   - LeakCheck adds a goroutine-leak check to a package's TestMain.
//   - RunningJob, Content, FinishChunk, StartListener, Tenant and Recv are
//     fixtures shared by the store, stream, worker and HTTP tests.
//
// Nothing here is used by the jobstream binary.
package testserver
