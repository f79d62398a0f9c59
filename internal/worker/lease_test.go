package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

// attemptEngine runs each call (attempt) of a job under the test's control:
// it reports the call on started, and then waits for ctx to end and, when
// the call's release channel is set, also for that channel: an attempt
// that is slow to wind down.
type attemptEngine struct {
	started chan int
	mu      sync.Mutex
	calls   int
	release map[int]chan struct{}
}

func (e *attemptEngine) Stream(ctx context.Context, _ engine.Request, _ engine.Emit) (engine.Finish, error) {
	e.mu.Lock()
	e.calls++
	n := e.calls
	rel := e.release[n]
	e.mu.Unlock()
	e.started <- n
	<-ctx.Done()
	if rel != nil {
		<-rel
	}
	return engine.Finish{}, context.Cause(ctx)
}

// TestReclaimWhileOldAttemptWindsDown: this process loses a job's lease
// (the job goes back to the queue, as the rescuer does with a job that
// wrote nothing) and claims it again while the old attempt is still
// winding down. When the old attempt ends it must forget only its own
// lease: the new attempt keeps being heartbeated and can be cancelled
// (issue 9: the old attempt deleted the new one's entry, which then got no
// heartbeat and no cancel, and was failed by a rescuer one TTL later).
func TestReclaimWhileOldAttemptWindsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	release1 := make(chan struct{})
	eng := &attemptEngine{started: make(chan int, 2), release: map[int]chan struct{}{1: release1}}
	beats := make(chan []store.HeartbeatResult, 100)
	done := make(chan store.Lease, 2)
	b := setupWorkerWith(t, worker.Config{LeaseTTL: time.Minute, HeartbeatInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, ShutdownGrace: 10 * time.Millisecond},
		map[string]engine.Engine{"attempts": eng}, func(w *worker.Worker) {
			worker.SetAfterHeartbeat(w, func(held []store.HeartbeatResult, err error) {
				if err == nil {
					select {
					case beats <- held:
					default:
					}
				}
			})
			worker.SetJobDone(w, func(l store.Lease) { done <- l })
		})
	defer close(release1)
	id := b.submit(t, "attempts", nil)
	if n := testserver.Recv(t, eng.started, "attempt 1 to start"); n != 1 {
		t.Fatalf("call %d first", n)
	}

	// The lease is taken from this process: the job is queued again.
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	b.worker.Wake()
	if n := testserver.Recv(t, eng.started, "attempt 2 to start"); n != 2 {
		t.Fatalf("call %d second", n)
	}
	attempt2 := store.Lease{JobID: id, Attempt: 2}

	// Attempt 1 (its lease lost, its context cancelled by a heartbeat)
	// now finishes winding down.
	release1 <- struct{}{}
	if l := testserver.Recv(t, done, "attempt 1 to end"); l.Attempt != 1 {
		t.Fatalf("attempt %d ended first", l.Attempt)
	}
	if n := b.worker.Running(); n != 1 {
		t.Fatalf("%d jobs running after attempt 1 ended, want attempt 2", n)
	}

	// Attempt 2 is heartbeated: a beat after attempt 1 ended renews it.
	drain(beats)
	for renewed := false; !renewed; {
		for _, h := range testserver.Recv(t, beats, "a heartbeat renewing attempt 2") {
			renewed = renewed || (h.Lease == attempt2 && h.Renewed)
		}
	}

	// And cancellable.
	if out, err := b.store.RequestCancel(ctx, tenant, id); err != nil || out != store.CancelRequested {
		t.Fatalf("RequestCancel = %v, %v", out, err)
	}
	_, snap := b.follow(t, id, nil)
	if snap.Status != store.StatusCancelled {
		t.Errorf("attempt 2 ended %s, want cancelled", snap.Status)
	}
	if l := testserver.Recv(t, done, "attempt 2 to end"); l != attempt2 {
		t.Errorf("ended %+v, want attempt 2", l)
	}
}

func drain[T any](c chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestHeartbeatPastALockedRow: a row lock held by someone else (here the
// test) on one job does not stop the heartbeat of the others: their leases
// renew while the lock is held, the locked job keeps running (its lease is
// not taken for lost), and its renewal is retried until the lock is gone
// (issue 9: one stuck heartbeat stopped lease renewal for every job in the
// process).
func TestHeartbeatPastALockedRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := &attemptEngine{started: make(chan int, 2)}
	beats := make(chan []store.HeartbeatResult, 100)
	const interval = 3 * time.Second
	b := setupWorkerWith(t, worker.Config{LeaseTTL: time.Minute, HeartbeatInterval: interval, ShutdownGrace: 10 * time.Millisecond},
		map[string]engine.Engine{"hold": eng}, func(w *worker.Worker) {
			worker.SetAfterHeartbeat(w, func(held []store.HeartbeatResult, err error) {
				if err == nil {
					beats <- held
				}
			})
		})
	locked, free := b.submit(t, "hold", nil), b.submit(t, "hold", nil)
	testserver.Recv(t, eng.started, "a job to start")
	testserver.Recv(t, eng.started, "the other job to start")

	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, locked); err != nil {
		t.Fatal(err)
	}
	drain(beats)
	// While the lock is held: the free lease renews, the locked one is
	// held but not renewed, and the retry comes before the next interval.
	var lockedSeen time.Time
	for retries := 0; retries < 2; {
		held := testserver.Recv(t, beats, "a heartbeat while the row is locked")
		got := map[string]bool{}
		for _, h := range held {
			switch h.JobID {
			case free:
				got["free"] = h.Renewed
			case locked:
				got["locked"] = h.Renewed
			}
		}
		if r, ok := got["free"]; !ok || !r {
			t.Fatalf("heartbeat %+v: the free lease was not renewed", held)
		}
		if r, ok := got["locked"]; !ok || r {
			t.Fatalf("heartbeat %+v: want the locked lease held and not renewed", held)
		}
		if !lockedSeen.IsZero() && time.Since(lockedSeen) < interval {
			retries++
		}
		lockedSeen = time.Now()
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for renewed := false; !renewed; {
		for _, h := range testserver.Recv(t, beats, "the locked lease to renew after the lock") {
			renewed = renewed || (h.JobID == locked && h.Renewed)
		}
	}
	if n := b.worker.Running(); n != 2 {
		t.Errorf("%d jobs running, want both: the locked job's lease was taken for lost", n)
	}
}
