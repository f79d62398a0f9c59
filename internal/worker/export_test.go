package worker

import (
	"time"

	"github.com/jobstream/jobstream/internal/store"
)

// LostLeases exposes how many lost leases a Writer remembers, for tests.
func LostLeases(w *Writer) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lost)
}

// SetBeforeWrite makes w call f while each batch is in flight, after the
// batch left the queue and before it is sent to the database.
func SetBeforeWrite(w *Writer, f func()) { w.beforeWrite = f }

// SetWaitStart makes w call f whenever an Append starts waiting for room.
func SetWaitStart(w *Writer, f func()) { w.waitStart = f }

// SetAfterHeartbeat makes w call f after every heartbeat with its result.
func SetAfterHeartbeat(w *Worker, f func(held []store.HeartbeatResult, err error)) {
	w.afterHeartbeat = f
}

// SetJobDone makes w call f once a job's attempt has ended and forgotten
// its lease.
func SetJobDone(w *Worker, f func(store.Lease)) { w.jobDone = f }

// SetHeld makes w call f each time its claim loop holds new jobs back
// because the writer's backlog is above AdmitBacklog. Set it before Run.
func SetHeld(w *Worker, f func(backlog int)) { w.held = f }

// SetClaimed makes w call f with every batch its claim loop claims (empty
// ones included). Set it before Run.
func SetClaimed(w *Worker, f func([]store.Claim)) { w.claimed = f }

// HeartbeatTimeout is w's bound on one heartbeat.
func HeartbeatTimeout(w *Worker) time.Duration { return w.heartbeatTimeout() }
