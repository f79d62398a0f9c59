package faults_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/pgsetup"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestBackendsTerminated: while a job streams and readers follow it on two
// nodes, every PostgreSQL backend of both nodes (pools, chunk writers and
// LISTEN connections) is terminated, three times. The chunk writers retry
// with the same seqs, the listeners reconnect and wake their waiters, and
// the job completes: every reader gets every chunk exactly once, in order.
func TestBackendsTerminated(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := testserver.Database(t)
	b := setupOn(t, db)
	apps := []string{"faults-" + randomName(), "faults-" + randomName()}
	nodes := make([]*testserver.Process, len(apps))
	for i, app := range apps {
		nodes[i] = testserver.Start(t, bin, testserver.Options{DatabaseURL: withAppName(t, db, app)})
	}
	a, o := nodes[0], nodes[1]

	job := b.submit(a, "terminated backends", "sim_tokens", 120, "sim_tokens_per_second", 30)
	var progress atomic.Int64
	onA := reader{hc: b.hc, urls: fixed(a.URL), served: func() { progress.Add(1) }}
	reads := map[string]<-chan readResult{
		"SSE on a":       goRead(func() (read, error) { return onA.sse(ctx, job.ID) }),
		"long-poll on a": goRead(func() (read, error) { return onA.poll(ctx, job.ID) }),
		"SSE on o":       goRead(func() (read, error) { return reader{hc: b.hc, urls: fixed(o.URL)}.sse(ctx, job.ID) }),
		"long-poll on o": goRead(func() (read, error) { return reader{hc: b.hc, urls: fixed(o.URL)}.poll(ctx, job.ID) }),
	}

	for round := 1; round <= 3; round++ {
		// Terminate mid-stream, after some chunks of this round, once
		// both nodes are connected again (/readyz: pool and LISTEN).
		want := 10 * round
		eventually(t, time.Minute, fmt.Sprintf("%d chunks", want), func() bool { return len(b.stored(job.ID)) >= want })
		for _, p := range nodes {
			eventually(t, time.Minute, "readyz", func() bool { return b.readyz(p) == 200 })
		}
		rows, err := b.pool.Query(ctx, `
			SELECT application_name, count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = ANY($1) AND pid <> pg_backend_pid()
			GROUP BY application_name`, apps)
		if err != nil {
			t.Fatal(err)
		}
		killed := map[string]int{}
		for rows.Next() {
			var app string
			var n int
			if err := rows.Scan(&app, &n); err != nil {
				t.Fatal(err)
			}
			killed[app] = n
		}
		rows.Close()
		for _, app := range apps {
			if killed[app] < 2 {
				t.Fatalf("round %d: terminated %v backends, want each node's LISTEN connection and pool", round, killed)
			}
		}
	}
	if progress.Load() == 0 {
		t.Error("the readers on a were never served")
	}

	for name, c := range reads {
		r := testserver.Recv(t, c, name)
		if r.err != nil || r.Status != store.StatusCompleted {
			t.Fatalf("%s: ended %s (%v) after %v", name, r.Status, r.err, r.Ends)
		}
		b.exactlyOnce(name, job.ID, r.Chunks)
		if strings.HasPrefix(name, "SSE") && len(r.Ends) != 1 {
			t.Errorf("%s was cut (%v): SSE streams ride out lost connections", name, r.Ends)
		}
	}
	if n := len(b.stored(job.ID)); n != 122 {
		t.Errorf("%d chunks stored, want 120 tokens + usage + finish", n)
	}
	for _, p := range nodes {
		if !strings.Contains(p.Logs(), "listener disconnected; reconnecting") {
			t.Errorf("node %s never lost its LISTEN connection: the test did not terminate it", p.Addr)
		}
		eventually(t, time.Minute, "readyz after the terminations", func() bool { return b.readyz(p) == 200 })
	}
}

// TestPostgresRestart restarts PostgreSQL under streaming jobs: a private
// cluster in a temporary directory (internal/pgsetup), never the machine's
// shared server.
//
//   - KeepsStreaming: the chunk writer keeps what the model streams in
//     memory and retries with backoff, /readyz reports the outage while it
//     lasts, the listener reconnects and wakes every waiter, readers
//     resume, and the job completes with every chunk delivered exactly
//     once, in order.
//   - FailsPastTheBound: with --max-pending-rows 20 the outage outlasts
//     the writer's buffer and --overload-wait; the job fails cleanly, with
//     an "overloaded" error finish chunk right after the chunks committed
//     or buffered.
//   - OutlastsTheLease: the outage outlasts every lease (--lease-ttl 2s).
//     When the database is back, the live node renews its leases before
//     any rescuer takes them, and its jobs complete; the job of a worker
//     that is really gone is rescued.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	cl := privateCluster(t)

	t.Run("KeepsStreaming", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b := setupOn(t, cl.url)
		a := b.serve()
		job := b.submit(a, "across a restart", "sim_tokens", 100, "sim_tokens_per_second", 25)
		sse := goRead(func() (read, error) { return reader{hc: b.hc, urls: fixed(a.URL)}.sse(ctx, job.ID) })
		poll := goRead(func() (read, error) { return reader{hc: b.hc, urls: fixed(a.URL)}.poll(ctx, job.ID) })
		eventually(t, time.Minute, "the stream to start", func() bool { return len(b.stored(job.ID)) >= 10 })
		b.pool.Reset() // its connections die with the server

		cl.stop(t)
		eventually(t, time.Minute, "readyz to report the outage", func() bool { return b.readyz(a) == 503 })
		cl.start(t)
		eventually(t, time.Minute, "readyz to recover", func() bool { return b.readyz(a) == 200 })

		for name, c := range map[string]<-chan readResult{"SSE": sse, "long-poll": poll} {
			r := testserver.Recv(t, c, name)
			if r.err != nil || r.Status != store.StatusCompleted {
				t.Fatalf("%s: ended %s (%v) after %v", name, r.Status, r.err, r.Ends)
			}
			b.exactlyOnce(name, job.ID, r.Chunks)
			t.Logf("%s: %v", name, r.Ends)
			if name == "SSE" && len(r.Ends) != 1 {
				t.Errorf("the SSE stream was cut by the outage (%v): it should ride it out", r.Ends)
			}
		}
		if n := len(b.stored(job.ID)); n != 102 {
			t.Errorf("%d chunks stored, want 100 tokens + usage + finish", n)
		}
		if err := a.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	t.Run("FailsPastTheBound", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b := setupOn(t, cl.url)
		a := b.serve("--max-pending-rows", "20", "--overload-wait", "200ms")
		job := b.submit(a, "overflowing", "sim_tokens", 100_000, "sim_tokens_per_second", 50)
		sse := goRead(func() (read, error) { return reader{hc: b.hc, urls: fixed(a.URL)}.sse(ctx, job.ID) })
		eventually(t, time.Minute, "the stream to start", func() bool { return len(b.stored(job.ID)) >= 5 })
		b.pool.Reset()

		cl.stop(t)
		eventually(t, time.Minute, "the writer's buffer to fill", func() bool {
			return b.metric(a, "jobstream_writer_pending_rows") >= 20
		})
		eventually(t, time.Minute, "the stream to give up waiting for room", func() bool {
			return b.metric(a, `jobstream_writer_append_wait_seconds_count{outcome="gave_up"}`) >= 1
		})
		if n := b.metric(a, "jobstream_writer_pending_rows"); n > 21 {
			t.Errorf("%v rows pending, more than the bound of 20 (+ the job's finish)", n)
		}
		cl.start(t)

		r := testserver.Recv(t, sse, "the SSE reader")
		if r.err != nil || r.Status != store.StatusFailed {
			t.Fatalf("ended %s (%v) after %v, want failed", r.Status, r.err, r.Ends)
		}
		b.exactlyOnce("SSE reader", job.ID, r.Chunks)
		if last := r.Chunks[len(r.Chunks)-1]; errorType(last) != "overloaded" {
			t.Errorf("last chunk %s, want an error finish chunk of type overloaded", last.Data)
		}
		if err := a.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	t.Run("OutlastsTheLease", func(t *testing.T) { outlastTheLease(t, cl) })
}

// cluster is a private PostgreSQL cluster that a test may stop and start.
type cluster struct {
	dir    string
	url    string
	stopFn func(context.Context) error
}

// privateCluster starts a private cluster in a temporary directory with
// internal/pgsetup (which runs it as an unprivileged user when the tests
// run as root), or skips the test when the machine cannot run one.
func privateCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{dir: filepath.Join(t.TempDir(), "pg")}
	res, err := c.resolve()
	if err != nil && strings.Contains(err.Error(), "no PostgreSQL server binaries") {
		t.Skipf("cannot restart PostgreSQL on this machine: %v", err)
	}
	if err != nil {
		t.Fatalf("private cluster: %v", err)
	}
	c.url, c.stopFn = res.URL, res.Stop
	t.Cleanup(func() {
		if err := c.stopFn(context.Background()); err != nil {
			t.Errorf("stop private cluster: %v", err)
		}
	})
	return c
}

func (c *cluster) resolve() (pgsetup.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return pgsetup.ResolvePrivate(ctx, pgsetup.Config{DataDir: c.dir})
}

// stop stops the cluster (pg_ctl stop -m fast: sessions are cut).
func (c *cluster) stop(t *testing.T) {
	t.Helper()
	if err := c.stopFn(context.Background()); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
}

// start starts it again, on the same socket.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	if _, err := c.resolve(); err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
}

// withAppName sets the application_name of a database URL, so that a test
// can find the backends of one server process in pg_stat_activity.
func withAppName(t *testing.T, db, app string) string {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil || u.Scheme == "" {
		return db + " application_name=" + app
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomName() string { return uuid.NewString()[:8] }
