package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestReclaimBySameProcess: a node loses a job's lease while the job has
// written nothing (the test requeues it, as a rescuer does) and claims the
// job again at once, while its old attempt is still winding down (it
// notices the loss at its next heartbeat). When the old attempt ends it
// must not take the new attempt's heartbeat and cancellation with it: the
// new attempt streams past several lease TTLs and completes (issue 9, 1.1:
// it was failed with lease_expired one TTL later).
func TestReclaimBySameProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := setup(t)
	a := b.serve("--lease-ttl", "2s")
	job := b.submit(a, "re-claimed", "sim_first_token_delay", 1, "sim_tokens", 60, "sim_tokens_per_second", 10)
	b.waitStatus(job.ID, store.StatusRunning)
	if _, err := b.pool.Exec(ctx, `
		WITH q AS (UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL
		           WHERE id = $1 AND status = 'running' AND NOT EXISTS (SELECT 1 FROM job_chunks WHERE job_id = $1)
		           RETURNING id)
		SELECT pg_notify($2, 'requeued') FROM q`, job.ID, store.ChannelJobs); err != nil {
		t.Fatal(err)
	}
	r, err := reader{hc: b.hc, urls: fixed(a.URL)}.sse(ctx, job.ID)
	if err != nil || r.Status != store.StatusCompleted {
		t.Fatalf("ended %s (%v) with %d chunks, want completed", r.Status, err, len(r.Chunks))
	}
	b.exactlyOnce("SSE reader", job.ID, r.Chunks)
	if n := len(r.Chunks); n != 62 {
		t.Errorf("%d chunks, want 60 tokens + usage + finish", n)
	}
	ev := b.events(job.ID)
	if last := ev[len(ev)-1]; last.Attempt != 2 || last.To != store.StatusCompleted {
		t.Errorf("events %+v, want attempt 2 completed", ev)
	}
}

// TestRescuerDecidesUnderTheLock: a node's rescuer meets a job whose
// worker is gone but whose expired lease still let one last batch commit
// (the fence does not look at the expiry). A NowGate holds the rescuer's
// statement after its snapshot, before its row lock, while that batch
// commits. The rescuer must see the chunk and fail the job with an error
// chunk after it, not requeue it for the node to replay (issue 9, 1.2).
func TestRescuerDecidesUnderTheLock(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := testserver.Database(t)
	gate := testserver.NewNowGate(t, db)
	b := setupOn(t, db)
	testserver.Start(t, bin, testserver.Options{DatabaseURL: gate.URL, Args: []string{"--lease-ttl", "2s"}})
	const ghost = "gone-worker"
	l := testserver.RunningJob(t, b.pool, "dev", ghost)

	gate.Close()
	var expired time.Time
	if err := b.pool.QueryRow(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1 RETURNING clock_timestamp()`, l.JobID).Scan(&expired); err != nil {
		t.Fatal(err)
	}
	gate.WaitHeldSince("name: JobExpiredLock", expired)
	held, err := store.New(b.pool).WriteBatch(ctx, ghost, []store.NewChunk{testserver.Content(l, 0, "seen by a reader")}, nil)
	if err != nil || !held[l] {
		t.Fatalf("the gone worker's last batch: held %v, %v", held, err)
	}
	gate.Open()

	eventually(t, time.Minute, "the job to end", func() bool { return store.Terminal(b.status(l.JobID)) })
	chunks := b.stored(l.JobID)
	if st := b.status(l.JobID); st != store.StatusFailed || len(chunks) != 2 || errorType(chunks[1]) != "lease_expired" {
		t.Fatalf("job %s with chunks %v, want failed: the late chunk, then a lease_expired error chunk", st, chunkData(chunks))
	}
	for _, e := range b.events(l.JobID) {
		if e.Attempt > 1 {
			t.Errorf("events %+v: the job was run again after it wrote output", b.events(l.JobID))
			break
		}
	}
}

func chunkData(cs []store.Chunk) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Data)
	}
	return out
}

// outlastTheLease restarts cl under node a's streaming jobs with an outage
// longer than every lease, and checks that a live node keeps its jobs
// while a gone worker's job is rescued (issue 9, 1.4). Run by
// TestPostgresRestart/OutlastsTheLease.
func outlastTheLease(t *testing.T, cl *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := setupOn(t, cl.url)
	a := b.serve("--lease-ttl", "2s")
	const n = 6
	jobs := make([]uuid.UUID, n)
	reads := make([]<-chan readResult, n)
	for i := range jobs {
		jobs[i] = b.submit(a, "outlasting the lease", "sim_tokens", 120, "sim_tokens_per_second", 15).ID
		id := jobs[i]
		reads[i] = goRead(func() (read, error) { return reader{hc: b.hc, urls: fixed(a.URL)}.sse(ctx, id) })
	}
	for _, id := range jobs {
		eventually(t, time.Minute, "the streams to start", func() bool { return len(b.stored(id)) >= 3 })
	}
	// A job whose worker is really gone: its lease runs out during the
	// outage, and no one renews it after.
	gone := testserver.RunningJob(t, b.pool, "dev", "gone-worker")
	var last time.Time
	if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() + interval '1 second' WHERE id = $1`, gone.JobID); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT max(lease_expires_at) FROM jobs WHERE id = ANY($1)`, append(jobs, gone.JobID)).Scan(&last); err != nil {
		t.Fatal(err)
	}
	b.pool.Reset()

	cl.stop(t)
	// The outage outlasts every lease: the latest one read above, plus
	// a heartbeat interval it may have been renewed by since, plus a TTL.
	outage := time.NewTimer(time.Until(last.Add(3 * time.Second)))
	select {
	case <-outage.C:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	cl.start(t)

	for i, c := range reads {
		r := testserver.Recv(t, c, "a reader")
		if r.err != nil || r.Status != store.StatusCompleted {
			last := b.stored(jobs[i])
			t.Errorf("job %d of a live node ended %s (%v), last chunk %s: its lease was taken after the outage", i, r.Status, r.err, last[len(last)-1].Data)
			continue
		}
		b.exactlyOnce("reader", jobs[i], r.Chunks)
	}
	eventually(t, time.Minute, "the gone worker's job to be rescued", func() bool {
		var owner string
		_ = b.pool.QueryRow(ctx, `SELECT coalesce(lease_owner, '') FROM jobs WHERE id = $1`, gone.JobID).Scan(&owner)
		return owner != "gone-worker"
	})
	if err := a.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
