package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

type workerBundle struct {
	store  *store.Store
	pool   *pgxpool.Pool
	reader *stream.Reader
	worker *worker.Worker
	// stop shuts the worker down and waits for Run to return.
	stop func()
	// fenced counts rows the writer dropped because a lease was lost.
	fenced *atomic.Int64
}

// setupWorker runs a Worker with the sim engine, woken by a real LISTEN
// connection, on a database of the test's own: a worker claims every
// queued job of its database, whoever's test submitted it.
func setupWorker(t *testing.T, cfg worker.Config) workerBundle {
	t.Helper()
	return setupWorkerWith(t, cfg, nil, nil)
}

// setupWorkerWith is setupWorker with extra engines (id: engine), and
// configure, if set, called on the worker before it runs (test hooks).
func setupWorkerWith(t *testing.T, cfg worker.Config, extra map[string]engine.Engine, configure func(*worker.Worker)) workerBundle {
	t.Helper()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 4)
	s := store.New(pool)
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	for id, e := range extra {
		engines.Register(engine.Info{ID: id, Provider: "test"}, e)
	}
	b := workerBundle{store: s, pool: pool, fenced: &atomic.Int64{}}
	cfg.Writer.OnFlush = func(st worker.FlushStats) { b.fenced.Add(int64(st.Fenced)) }
	b.worker = worker.New(s, engines, cfg)
	if configure != nil {
		configure(b.worker)
	}
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, url, "", hub, map[string]notify.Handler{
		store.ChannelJobs:   b.worker.JobsHandler(),
		store.ChannelCancel: b.worker.CancelHandler(),
	})
	b.reader = stream.NewReader(s, hub, time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.worker.Run(ctx) }()
	stopped := false
	b.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(b.stop)
	return b
}

const tenant = "t"

func (b workerBundle) submit(t *testing.T, eng string, params map[string]any) uuid.UUID {
	t.Helper()
	p := map[string]json.RawMessage{}
	for k, v := range params {
		raw, _ := json.Marshal(v)
		p[k] = raw
	}
	job, err := b.store.Submit(context.Background(), store.SubmitParams{Tenant: tenant, Engine: eng, Request: store.Request{Command: "tell me about soccer", Params: p}})
	if err != nil {
		t.Fatal(err)
	}
	return job.ID
}

// follow long-polls a job from offset 0, calling each for every chunk (if
// set), until the job ends. It returns the chunks and the final snapshot.
func (b workerBundle) follow(t *testing.T, id uuid.UUID, each func(store.Chunk)) ([]store.Chunk, store.Snapshot) {
	t.Helper()
	var all []store.Chunk
	for {
		snap, err := b.reader.Read(context.Background(), stream.Params{Tenant: tenant, JobID: id, From: len(all), Limit: 1000, Wait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Chunks) == 0 && !snap.Terminal() {
			t.Fatalf("a one-minute long-poll expired at offset %d", len(all))
		}
		for _, c := range snap.Chunks {
			if c.Seq != len(all) {
				t.Fatalf("seq %d at offset %d", c.Seq, len(all))
			}
			all = append(all, c)
			if each != nil {
				each(c)
			}
		}
		if snap.Terminal() && !snap.More {
			return all, snap
		}
	}
}

func data(t *testing.T, c store.Chunk) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Data, &m); err != nil {
		t.Fatalf("chunk %d data %s: %v", c.Seq, c.Data, err)
	}
	return m
}

func maxSeq(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id uuid.UUID) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), `SELECT coalesce(max(seq), -1) FROM job_chunks WHERE job_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SubmitStreamComplete", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{})
		id := b.submit(t, sim.ID, map[string]any{"sim_tokens": 30, "sim_tokens_per_second": 0})
		chunks, snap := b.follow(t, id, nil)

		if snap.Status != store.StatusCompleted || snap.FinishReason != "stop" {
			t.Errorf("ended %s/%s, want completed/stop", snap.Status, snap.FinishReason)
		}
		if len(chunks) != 32 {
			t.Fatalf("%d chunks, want 30 content + usage + finish", len(chunks))
		}
		var text strings.Builder
		for _, c := range chunks[:30] {
			if c.StreamType != "content" {
				t.Errorf("chunk %d is %s", c.Seq, c.StreamType)
			}
			text.WriteString(data(t, c)["content"].(string))
		}
		if u := chunks[30]; u.StreamType != "usage" || data(t, u)["output_tokens"] != 30.0 {
			t.Errorf("chunk 30 = %s %s, want usage with 30 output tokens", u.StreamType, u.Data)
		}
		if f := chunks[31]; f.StreamType != "content" || len(data(t, f)) != 1 || data(t, f)["finish_reason"] != "stop" {
			t.Errorf("last chunk = %s %s, want {\"finish_reason\":\"stop\"}", f.StreamType, f.Data)
		}
		tr, err := b.store.Transcript(ctx, tenant, id, store.TranscriptAll)
		if err != nil || tr.Content != text.String() || !strings.HasPrefix(tr.Content, "You asked: tell me about soccer") {
			t.Errorf("transcript %q (%v), streamed %q", tr.Content, err, text.String())
		}
		job, _ := b.store.Get(ctx, tenant, id)
		if job.Attempt != 1 || job.StartedAt == nil || job.FinishedAt == nil || !strings.Contains(string(job.Usage), `"output_tokens": 30`) {
			t.Errorf("job = %+v", job)
		}
		rows, _ := b.pool.Query(ctx, `SELECT coalesce(from_status, '') || '>' || to_status FROM job_events WHERE job_id = $1 ORDER BY id`, id)
		events, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		if strings.Join(events, " ") != ">queued queued>running running>completed" {
			t.Errorf("audit trail = %v", events)
		}
	})

	t.Run("ToolCall", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{})
		tools := []map[string]any{{"type": "function", "function": map[string]any{
			"name": "get_weather", "parameters": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]string{"type": "string"}}},
		}}}
		id := b.submit(t, sim.ID, map[string]any{"tools": tools, "sim_tokens_per_second": 0})
		chunks, snap := b.follow(t, id, nil)
		if snap.Status != store.StatusCompleted || snap.FinishReason != "tool_calls" {
			t.Errorf("ended %s/%s, want completed/tool_calls", snap.Status, snap.FinishReason)
		}
		if last := chunks[len(chunks)-1]; last.StreamType != "tool" || data(t, last)["finish_reason"] != "tool_calls" {
			t.Errorf("last chunk %s %s", last.StreamType, last.Data)
		}
		tr, _ := b.store.Transcript(ctx, tenant, id, store.TranscriptAll)
		var calls []engine.ToolCall
		if err := json.Unmarshal(tr.ToolCalls, &calls); err != nil || len(calls) != 1 || calls[0].Function.Name != "get_weather" || !json.Valid([]byte(calls[0].Function.Arguments)) {
			t.Errorf("tool calls = %s (%v)", tr.ToolCalls, err)
		}
	})

	t.Run("CancelMidStream", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{})
		const tokens = 100_000
		id := b.submit(t, sim.ID, map[string]any{"sim_tokens": tokens, "sim_tokens_per_second": 200})
		cancelled := false
		chunks, snap := b.follow(t, id, func(c store.Chunk) {
			if !cancelled {
				cancelled = true
				out, err := b.store.RequestCancel(ctx, tenant, id)
				if err != nil || out != store.CancelRequested {
					t.Errorf("RequestCancel = %v, %v; want CancelRequested", out, err)
				}
			}
		})
		last := chunks[len(chunks)-1]
		if d := data(t, last); len(d) != 1 || d["finish_reason"] != "cancelled" {
			t.Errorf("last chunk = %s, want {\"finish_reason\":\"cancelled\"}", last.Data)
		}
		if snap.Status != store.StatusCancelled || snap.FinishReason != "cancelled" {
			t.Errorf("ended %s/%s, want cancelled/cancelled", snap.Status, snap.FinishReason)
		}
		if len(chunks) > tokens/10 {
			t.Errorf("%d chunks of %d: the engine did not stop promptly", len(chunks), tokens)
		}
		// The engine really stopped: once the worker has shut down (Run
		// waits for its jobs) nothing follows the cancel chunk, and no
		// write was even attempted for the finished job.
		b.stop()
		if n := maxSeq(t, b.pool, id); n != last.Seq {
			t.Errorf("max seq %d after shutdown, cancel chunk was %d", n, last.Seq)
		}
		if n := b.fenced.Load(); n != 0 {
			t.Errorf("the writer fenced %d jobs' rows: the engine kept emitting after it was cancelled", n)
		}
	})

	for _, theft := range []struct{ name, sql string }{
		{"LostLeaseStopsTheJob/OtherOwner", `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`},
		{"LostLeaseStopsTheJob/NewAttempt", `UPDATE jobs SET attempt = attempt + 1 WHERE id = $1`},
	} {
		t.Run(theft.name, func(t *testing.T) {
			t.Parallel()
			const grace = time.Minute
			b := setupWorker(t, worker.Config{ShutdownGrace: grace})
			const tokens = 100_000
			id := b.submit(t, sim.ID, map[string]any{"sim_tokens": tokens, "sim_tokens_per_second": 200})

			// Wait for the stream to start, then steal the lease. The
			// writer's fence locks the job row FOR SHARE, so once the
			// UPDATE holds it no batch of the old owner is in flight, and
			// none can commit after it: max(seq) read in the same
			// transaction is the old owner's last row.
			snap, err := b.reader.Read(ctx, stream.Params{Tenant: tenant, JobID: id, Limit: 10, Wait: time.Minute})
			if err != nil || len(snap.Chunks) == 0 {
				t.Fatalf("stream did not start: %+v, %v", snap, err)
			}
			var lastBefore int
			err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, theft.sql, id); err != nil {
					return err
				}
				lastBefore = maxSeq(t, tx, id)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			// The job must stop by itself: Run waits up to the grace for
			// running jobs, so returning well before it means the lost
			// lease ended the job.
			start := time.Now()
			b.stop()
			if d := time.Since(start); d >= grace {
				t.Errorf("worker took %s to stop: the job ran on after losing its lease", d)
			}
			if n := maxSeq(t, b.pool, id); n != lastBefore {
				t.Errorf("max seq %d, was %d at the theft: the old owner wrote after losing the lease", n, lastBefore)
			}
			if lastBefore > tokens/10 {
				t.Errorf("%d chunks before the theft", lastBefore)
			}
			job, _ := b.store.Get(ctx, tenant, id)
			if job.Status != store.StatusRunning {
				t.Errorf("status = %s: the old owner ended a job it no longer held", job.Status)
			}
		})
	}

	t.Run("HeartbeatsContinueDuringShutdownGrace", func(t *testing.T) {
		t.Parallel()
		// A lease shorter than the shutdown grace: jobs finishing during
		// the grace must keep their leases, or another node's rescuer
		// fails them mid-stream.
		const ttl = 2 * time.Second
		b := setupWorker(t, worker.Config{LeaseTTL: ttl, HeartbeatInterval: 100 * time.Millisecond, ShutdownGrace: time.Minute})
		const tokens, rate = 400, 100
		id := b.submit(t, sim.ID, map[string]any{"sim_tokens": tokens, "sim_tokens_per_second": rate})
		stopped := make(chan struct{})
		checked := false
		chunks, end := b.follow(t, id, func(c store.Chunk) {
			switch {
			case c.Seq == 0:
				// Shutdown begins: the job may finish during the grace.
				go func() { b.stop(); close(stopped) }()
			case c.Seq == tokens*3/4 && !checked:
				// The chunks are the clock: this one was emitted about
				// 3 s (> ttl) after shutdown began.
				checked = true
				var live bool
				if err := b.pool.QueryRow(ctx, `SELECT lease_expires_at > now() FROM jobs WHERE id = $1`, id).Scan(&live); err != nil {
					t.Error(err)
				}
				if !live {
					t.Error("the lease expired during the shutdown grace: heartbeats stopped while the job was still running")
				}
				if res, err := b.store.RescueExpired(ctx, 10, ttl); err != nil || len(res.Failed)+len(res.Requeued) > 0 {
					t.Errorf("another node's rescuer took the job: %+v, %v", res, err)
				}
			}
		})
		testserver.Recv(t, stopped, "the worker to stop")
		if end.Status != store.StatusCompleted || len(chunks) != tokens+2 {
			t.Errorf("ended %s with %d chunks, want completed with %d", end.Status, len(chunks), tokens+2)
		}
	})

	t.Run("ShutdownFailsRunningJobs", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{ShutdownGrace: time.Millisecond})
		id := b.submit(t, sim.ID, map[string]any{"sim_tokens": 100_000, "sim_tokens_per_second": 200})
		snap, err := b.reader.Read(ctx, stream.Params{Tenant: tenant, JobID: id, Limit: 10, Wait: time.Minute})
		if err != nil || len(snap.Chunks) == 0 {
			t.Fatalf("stream did not start: %+v, %v", snap, err)
		}
		b.stop()
		chunks, end := b.follow(t, id, nil)
		if end.Status != store.StatusFailed || end.FinishReason != "error" {
			t.Errorf("ended %s/%s, want failed/error", end.Status, end.FinishReason)
		}
		last := data(t, chunks[len(chunks)-1])
		if e, _ := last["error"].(map[string]any); last["finish_reason"] != "error" || e["type"] != "shutdown" {
			t.Errorf("last chunk = %v, want an error finish chunk of type shutdown", last)
		}
	})

	t.Run("EngineFailure", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{})
		id := b.submit(t, sim.ID, map[string]any{"sim_tokens": 50, "sim_tokens_per_second": 0, "sim_fail_after": 5})
		chunks, end := b.follow(t, id, nil)
		if end.Status != store.StatusFailed || len(chunks) != 6 {
			t.Fatalf("ended %s with %d chunks, want failed with 5 + error chunk", end.Status, len(chunks))
		}
		last := data(t, chunks[5])
		if e, _ := last["error"].(map[string]any); e["type"] != "sim_error" {
			t.Errorf("error chunk = %v", last)
		}
		job, _ := b.store.Get(ctx, tenant, id)
		if !strings.Contains(string(job.Error), "sim_error") {
			t.Errorf("job error = %s", job.Error)
		}
	})

	t.Run("UnknownEngineFailsTheJob", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{})
		id := b.submit(t, "no-such-engine", nil)
		chunks, end := b.follow(t, id, nil)
		if end.Status != store.StatusFailed || len(chunks) != 1 {
			t.Fatalf("ended %s with %d chunks", end.Status, len(chunks))
		}
		if e, _ := data(t, chunks[0])["error"].(map[string]any); e["type"] != "invalid_request" {
			t.Errorf("error chunk = %s", chunks[0].Data)
		}
	})

	t.Run("CancelBeforeClaim", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t, worker.Config{})
		b.stop() // nothing claims it
		id := b.submit(t, sim.ID, nil)
		out, err := b.store.RequestCancel(ctx, tenant, id)
		if err != nil || out != store.CancelDone {
			t.Fatalf("RequestCancel = %v, %v", out, err)
		}
		chunks, end := b.follow(t, id, nil)
		if end.Status != store.StatusCancelled || len(chunks) != 1 {
			t.Errorf("ended %s with %d chunks", end.Status, len(chunks))
		}
	})
}

// TestChunkCap: a job that would stream on past Config.MaxChunks is
// stopped there and completes with finish_reason "length": its last chunk
// is the finish chunk, at seq MaxChunks-1.
func TestChunkCap(t *testing.T) {
	t.Parallel()
	b := setupWorker(t, worker.Config{MaxChunks: 20})
	id := b.submit(t, sim.ID, map[string]any{"sim_tokens": 500, "sim_tokens_per_second": 0})
	chunks, snap := b.follow(t, id, nil)
	if len(chunks) != 20 || snap.Status != store.StatusCompleted || snap.FinishReason != engine.FinishLength {
		t.Fatalf("%d chunks, status %s (%s); want 20, completed (length)", len(chunks), snap.Status, snap.FinishReason)
	}
	if got := data(t, chunks[19])["finish_reason"]; got != engine.FinishLength {
		t.Fatalf("last chunk %s, want the length finish", chunks[19].Data)
	}
	if worker.DefaultMaxChunks != 100_000 {
		t.Errorf("DefaultMaxChunks = %d; the README documents 100,000", worker.DefaultMaxChunks)
	}
}
