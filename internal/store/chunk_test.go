package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestWriteBatch(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		store  *store.Store
		pool   *pgxpool.Pool
		tenant string
	}
	setup := func(t *testing.T) testBundle {
		pool := dbtest.Pool(t)
		return testBundle{store: store.New(pool), pool: pool, tenant: testserver.Tenant(t)}
	}
	ctx := context.Background()

	t.Run("CommitsChunksAndFinishTogether", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := runningJob(t, b.pool, b.tenant, "w1")
		held, err := b.store.WriteBatch(ctx, "w1",
			[]store.NewChunk{content(l, 0, "a"), content(l, 1, "b"), finishChunk(l, 2, "stop")},
			[]store.Finish{completed(l)})
		if err != nil {
			t.Fatal(err)
		}
		if !held[l] {
			t.Fatalf("held = %v, want the lease held", held)
		}
		snap, err := b.store.Read(ctx, b.tenant, l.JobID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Status != store.StatusCompleted || snap.FinishReason != "stop" || len(snap.Chunks) != 3 || snap.More {
			t.Fatalf("snapshot = %+v, want completed with 3 chunks", snap)
		}
		job, _ := b.store.Get(ctx, b.tenant, l.JobID)
		if job.FinishedAt == nil || string(job.Usage) != `{"output_tokens": 3}` {
			t.Errorf("job = %+v, want finished_at and usage set", job)
		}
		var owner *string
		_ = b.pool.QueryRow(ctx, `SELECT lease_owner FROM jobs WHERE id = $1`, l.JobID).Scan(&owner)
		if owner != nil {
			t.Errorf("lease_owner = %q after finish, want NULL", *owner)
		}
	})

	t.Run("FencesLostLeases", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mine := runningJob(t, b.pool, b.tenant, "w1")
		stolen := runningJob(t, b.pool, b.tenant, "w1")
		reclaimed := runningJob(t, b.pool, b.tenant, "w1")
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET lease_owner = 'thief' WHERE id = $1`, stolen.JobID); err != nil {
			t.Fatal(err)
		}
		// Same owner, newer attempt: the old attempt's lease is gone too.
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET attempt = attempt + 1 WHERE id = $1`, reclaimed.JobID); err != nil {
			t.Fatal(err)
		}
		held, err := b.store.WriteBatch(ctx, "w1",
			[]store.NewChunk{content(mine, 0, "a"), content(stolen, 0, "b"), content(reclaimed, 0, "c"), finishChunk(stolen, 1, "stop")},
			[]store.Finish{completed(stolen)})
		if err != nil {
			t.Fatal(err)
		}
		want := map[store.Lease]bool{mine: true, stolen: false, reclaimed: false}
		if !reflect.DeepEqual(held, want) {
			t.Errorf("held = %v, want %v", held, want)
		}
		if seqs := chunkSeqs(t, b.pool, mine.JobID); !reflect.DeepEqual(seqs, []int{0}) {
			t.Errorf("held job's chunks = %v, want [0]", seqs)
		}
		for _, l := range []store.Lease{stolen, reclaimed} {
			if seqs := chunkSeqs(t, b.pool, l.JobID); len(seqs) != 0 {
				t.Errorf("lost lease %v wrote chunks %v", l, seqs)
			}
		}
		job, _ := b.store.Get(ctx, b.tenant, stolen.JobID)
		if job.Status != store.StatusRunning {
			t.Errorf("stolen job status = %s: a fenced finish was applied", job.Status)
		}
	})

	t.Run("StaleAttemptOfSameOwnerInOneBatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// The process lost attempt 1 (its lease expired and the job was
		// requeued), then claimed the job again as attempt 2, while the old
		// attempt's rows are still in the writer's buffer: both attempts
		// reach the same batch. Only attempt 2's rows may be written.
		old := runningJob(t, b.pool, b.tenant, "w1")
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET attempt = 2 WHERE id = $1`, old.JobID); err != nil {
			t.Fatal(err)
		}
		cur := store.Lease{JobID: old.JobID, Attempt: 2}
		held, err := b.store.WriteBatch(ctx, "w1",
			[]store.NewChunk{content(old, 0, "stale"), content(old, 1, "stale"), content(cur, 0, "fresh")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if held[old] || !held[cur] {
			t.Errorf("held = %v, want only attempt 2", held)
		}
		snap, _ := b.store.Read(ctx, b.tenant, old.JobID, 0, 10)
		if len(snap.Chunks) != 1 || string(snap.Chunks[0].Data) != `{"content":"fresh"}` {
			t.Errorf("chunks = %+v, want only attempt 2's chunk", snap.Chunks)
		}
	})

	t.Run("RetryIsIdempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := runningJob(t, b.pool, b.tenant, "w1")
		batch := []store.NewChunk{content(l, 0, "a"), content(l, 1, "b")}
		for i := range 2 {
			// The second call is the retry of a commit whose outcome the
			// writer did not learn (connection lost during COMMIT).
			held, err := b.store.WriteBatch(ctx, "w1", batch, nil)
			if err != nil || !held[l] {
				t.Fatalf("call %d: held = %v, err = %v", i, held, err)
			}
		}
		if seqs := chunkSeqs(t, b.pool, l.JobID); !reflect.DeepEqual(seqs, []int{0, 1}) {
			t.Errorf("seqs = %v, want [0 1]", seqs)
		}

		last := []store.NewChunk{content(l, 1, "b"), content(l, 2, "c"), finishChunk(l, 3, "stop")}
		if _, err := b.store.WriteBatch(ctx, "w1", last, []store.Finish{completed(l)}); err != nil {
			t.Fatal(err)
		}
		job1, _ := b.store.Get(ctx, b.tenant, l.JobID)
		// Retrying the finishing batch (its commit landed, but the writer
		// saw an error) writes nothing, and reports the lease held: the
		// job finished under it, it was not lost (issue 19: the fenced
		// metric counted it, and Finish returned ErrLeaseLost). Its rows
		// carry the earlier commit's timestamp, so none is returned.
		held, at, err := b.store.WriteBatchAt(ctx, "w1", last, []store.Finish{completed(l)})
		if err != nil {
			t.Fatal(err)
		}
		if !held[l] {
			t.Errorf("retried finish: lease reported lost, but the job finished under it")
		}
		if !at.IsZero() {
			t.Errorf("retried finish: at = %v, want zero (the rows are an earlier commit's)", at)
		}
		if seqs := chunkSeqs(t, b.pool, l.JobID); !reflect.DeepEqual(seqs, []int{0, 1, 2, 3}) {
			t.Errorf("seqs = %v, want [0 1 2 3]", seqs)
		}
		job2, _ := b.store.Get(ctx, b.tenant, l.JobID)
		if !job2.FinishedAt.Equal(*job1.FinishedAt) || job2.Status != store.StatusCompleted {
			t.Errorf("retry changed the finished job: %+v -> %+v", job1, job2)
		}
		var events int
		_ = b.pool.QueryRow(ctx, `SELECT count(*) FROM job_events WHERE job_id = $1 AND to_status = 'completed'`, l.JobID).Scan(&events)
		if events != 1 {
			t.Errorf("%d completed events, want 1", events)
		}
	})

	// A finish the job did not get is lost, even in the status it
	// would have set: a rescuer failed the job (same attempt, no lease)
	// before the writer's finishing batch, whose last chunk is therefore
	// not stored.
	t.Run("FinishAfterRescueIsLost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		l := runningJob(t, b.pool, b.tenant, "w1")
		if _, err := b.store.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 0, "a")}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, finished_at = now() WHERE id = $1`, l.JobID); err != nil {
			t.Fatal(err)
		}
		failed := store.Finish{Lease: l, Status: store.StatusFailed, FinishReason: "error"}
		held, err := b.store.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 1, "b"), finishChunk(l, 2, "error")}, []store.Finish{failed})
		if err != nil {
			t.Fatal(err)
		}
		if held[l] {
			t.Errorf("finish of a rescued job: lease reported held")
		}
		if seqs := chunkSeqs(t, b.pool, l.JobID); !reflect.DeepEqual(seqs, []int{0}) {
			t.Errorf("seqs = %v, want [0]", seqs)
		}
	})

	// PostgreSQL's jsonb cannot hold U+0000. A model (or an upstream error
	// message) that produces one must not make the whole batch fail, over
	// and over, for every job in it: the character is stored as U+FFFD.
	t.Run("NULCharactersDoNotPoisonTheBatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		nul := runningJob(t, b.pool, b.tenant, "w1")
		other := runningJob(t, b.pool, b.tenant, "w1")
		fail := store.Finish{Lease: nul, Status: store.StatusFailed, FinishReason: "error",
			Error: json.RawMessage(`{"message":"upstream said a\u0000b","type":"upstream_error"}`)}
		rows := []store.NewChunk{
			content(nul, 0, "a\x00b"),
			content(other, 0, "fine"),
			// An escaped backslash before u0000 is text, not a NUL.
			{Lease: nul, Seq: 1, StreamType: "tool", Data: json.RawMessage(`{"index":0,"function":{"arguments":"\\u0000\u0000"}}`)},
			finishChunk(nul, 2, "error"),
		}
		rows[0].Data = json.RawMessage(`{"content":"a\u0000b"}`)
		held, err := b.store.WriteBatch(ctx, "w1", rows, []store.Finish{fail})
		if err != nil || !held[nul] || !held[other] {
			t.Fatalf("WriteBatch = %v, %v", held, err)
		}
		var text, args, msg string
		if err := b.pool.QueryRow(ctx, `SELECT data->>'content' FROM job_chunks WHERE job_id = $1 AND seq = 0`, nul.JobID).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if text != "a\uFFFDb" {
			t.Errorf("content stored as %q, want %q", text, "a\uFFFDb")
		}
		if err := b.pool.QueryRow(ctx, `SELECT data->'function'->>'arguments' FROM job_chunks WHERE job_id = $1 AND seq = 1`, nul.JobID).Scan(&args); err != nil {
			t.Fatal(err)
		}
		if want := "\\u0000\uFFFD"; args != want {
			t.Errorf("arguments stored as %q, want %q", args, want)
		}
		if err := b.pool.QueryRow(ctx, `SELECT error->>'message' FROM jobs WHERE id = $1`, nul.JobID).Scan(&msg); err != nil {
			t.Fatal(err)
		}
		if msg != "upstream said a\uFFFDb" {
			t.Errorf("error message stored as %q", msg)
		}
		if seqs := chunkSeqs(t, b.pool, other.JobID); !reflect.DeepEqual(seqs, []int{0}) {
			t.Errorf("the other job's chunks: %v, want [0]", seqs)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		held, err := b.store.WriteBatch(ctx, "w1", nil, nil)
		if err != nil || len(held) != 0 {
			t.Errorf("WriteBatch(nil) = %v, %v", held, err)
		}
	})

	t.Run("NotifySplitsPayloads", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const jobs = 500
		var chunks []store.NewChunk
		mine := map[uuid.UUID]bool{}
		for range jobs {
			l := runningJob(t, b.pool, b.tenant, "w1")
			mine[l.JobID] = true
			chunks = append(chunks, content(l, 0, "x"))
		}
		conn, err := pgx.Connect(ctx, dbtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "LISTEN "+store.ChannelChunks); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.WriteBatch(ctx, "w1", chunks, nil); err != nil {
			t.Fatal(err)
		}
		// Other tests share the channel: count only payloads naming our
		// jobs. One transaction sent them all.
		seen := map[uuid.UUID]bool{}
		payloads := 0
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for len(seen) < jobs {
			n, err := conn.WaitForNotification(waitCtx)
			if err != nil {
				t.Fatalf("after %d of %d ids: %v", len(seen), jobs, err)
			}
			ids := store.ParseIDs(n.Payload)
			if len(ids) == 0 || !mine[ids[0]] {
				continue
			}
			payloads++
			if len(n.Payload) >= 8000 {
				t.Errorf("payload of %d bytes exceeds PostgreSQL's limit", len(n.Payload))
			}
			for _, id := range ids {
				if !mine[id] {
					t.Errorf("payload mixes in foreign id %s", id)
				}
				if seen[id] {
					t.Errorf("id %s notified twice", id)
				}
				seen[id] = true
			}
		}
		// 213 ids of 36 bytes plus commas fit under 7900 bytes.
		if payloads != 3 {
			t.Errorf("%d payloads for %d ids, want 3", payloads, jobs)
		}
		if store.NotifyCount(jobs) != payloads {
			t.Errorf("NotifyCount(%d) = %d, but %d were sent", jobs, store.NotifyCount(jobs), payloads)
		}
	})
}

func TestParseIDs(t *testing.T) {
	t.Parallel()
	a, b := uuid.New(), uuid.New()
	got := store.ParseIDs(a.String() + ",not-an-id,," + b.String())
	if !reflect.DeepEqual(got, []uuid.UUID{a, b}) {
		t.Errorf("ParseIDs = %v, want [%s %s]", got, a, b)
	}
	if got := store.ParseIDs(""); len(got) != 0 {
		t.Errorf("ParseIDs(\"\") = %v", got)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := testserver.Tenant(t)

	l := runningJob(t, pool, tenant, "w1")
	var chunks []store.NewChunk
	for i := range 5 {
		chunks = append(chunks, content(l, i, string(rune('a'+i))))
	}
	if _, err := s.WriteBatch(ctx, "w1", chunks, nil); err != nil {
		t.Fatal(err)
	}
	seqsOf := func(snap store.Snapshot) []int {
		var out []int
		for _, c := range snap.Chunks {
			out = append(out, c.Seq)
		}
		return out
	}

	t.Run("FromOffset", func(t *testing.T) {
		snap, err := s.Read(ctx, tenant, l.JobID, 3, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(seqsOf(snap), []int{3, 4}) || snap.More || snap.Status != store.StatusRunning {
			t.Errorf("Read(from 3) = %+v", snap)
		}
	})
	t.Run("LimitSetsMore", func(t *testing.T) {
		snap, err := s.Read(ctx, tenant, l.JobID, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(seqsOf(snap), []int{1, 2}) || !snap.More {
			t.Errorf("Read(from 1, limit 2) = %+v, want [1 2] and More", snap)
		}
		snap, _ = s.Read(ctx, tenant, l.JobID, 3, 2)
		if !reflect.DeepEqual(seqsOf(snap), []int{3, 4}) || snap.More {
			t.Errorf("Read(from 3, limit 2) = %+v, want [3 4] and not More", snap)
		}
	})
	t.Run("PastTheEnd", func(t *testing.T) {
		snap, err := s.Read(ctx, tenant, l.JobID, 99, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Chunks) != 0 || snap.Status != store.StatusRunning {
			t.Errorf("Read(from 99) = %+v, want no chunks, running", snap)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if _, err := s.Read(ctx, tenant, uuid.New(), 0, 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("TimestampsInUTCOffsetZone", func(t *testing.T) {
		// The test database runs at UTC-3:30; created_at must still be
		// the same instant.
		snap, _ := s.Read(ctx, tenant, l.JobID, 0, 1)
		if d := time.Since(snap.Chunks[0].CreatedAt); d < 0 || d > time.Hour {
			t.Errorf("chunk created_at %v is %v from now", snap.Chunks[0].CreatedAt, d)
		}
	})
}

func TestTranscript(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := testserver.Tenant(t)

	l := runningJob(t, pool, tenant, "w1")
	raw := []struct{ typ, data string }{
		{"thinking", `{"thinking":"Two cities, "}`},
		{"thinking", `{"thinking":"two calls."}`},
		{"content", `{"content":""}`},
		{"content", `{"content":"Checking "}`},
		{"content", `{"content":"both."}`},
		// Two parallel tool calls, interleaved by index, with argument
		// fragments split mid-string (and one multi-byte character).
		{"tool", `{"index":0,"id":"call_a"}`},
		{"tool", `{"index":1,"id":"call_b"}`},
		{"tool", `{"index":1,"type":"function"}`},
		{"tool", `{"index":0,"type":"function"}`},
		{"tool", `{"index":0,"function":{"name":"get_weather"}}`},
		{"tool", `{"index":1,"function":{"name":"get_time"}}`},
		{"tool", `{"index":1,"function":{"arguments":"{\"tz\":\"Eur"}}`},
		{"tool", `{"index":0,"function":{"arguments":"{\"city\":"}}`},
		{"tool", `{"index":0,"function":{"arguments":"\"Zürich\"}"}}`},
		{"tool", `{"index":1,"function":{"arguments":"ope/Paris\"}"}}`},
		{"usage", `{"input_tokens":10,"output_tokens":20}`},
		{"tool", `{"finish_reason":"tool_calls"}`},
	}
	var chunks []store.NewChunk
	for i, r := range raw {
		chunks = append(chunks, store.NewChunk{Lease: l, Seq: i, StreamType: r.typ, Data: json.RawMessage(r.data)})
	}
	if _, err := s.WriteBatch(ctx, "w1", chunks, nil); err != nil {
		t.Fatal(err)
	}

	type call struct {
		Index    int    `json:"index"`
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	calls := func(t *testing.T, raw json.RawMessage) []call {
		var cs []call
		if err := json.Unmarshal(raw, &cs); err != nil {
			t.Fatalf("tool_calls %s: %v", raw, err)
		}
		return cs
	}

	t.Run("Whole", func(t *testing.T) {
		tr, err := s.Transcript(ctx, tenant, l.JobID, store.TranscriptAll)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Content != "Checking both." || tr.Thinking != "Two cities, two calls." {
			t.Errorf("content %q, thinking %q", tr.Content, tr.Thinking)
		}
		cs := calls(t, tr.ToolCalls)
		if len(cs) != 2 {
			t.Fatalf("tool calls = %s, want 2", tr.ToolCalls)
		}
		want := []struct{ id, name, args string }{
			{"call_a", "get_weather", `{"city":"Zürich"}`},
			{"call_b", "get_time", `{"tz":"Europe/Paris"}`},
		}
		for i, w := range want {
			c := cs[i]
			if c.Index != i || c.ID != w.id || c.Type != "function" || c.Function.Name != w.name || c.Function.Arguments != w.args {
				t.Errorf("call %d = %+v, want %+v", i, c, w)
			}
			if !json.Valid([]byte(c.Function.Arguments)) {
				t.Errorf("call %d arguments %q are not JSON", i, c.Function.Arguments)
			}
		}
	})

	t.Run("Upto", func(t *testing.T) {
		// Chunks before seq 13: call 0's arguments are cut after the first
		// fragment, call 1's after its first.
		tr, err := s.Transcript(ctx, tenant, l.JobID, 13)
		if err != nil {
			t.Fatal(err)
		}
		cs := calls(t, tr.ToolCalls)
		if len(cs) != 2 || cs[0].Function.Arguments != `{"city":` || cs[1].Function.Arguments != `{"tz":"Eur` {
			t.Errorf("tool calls upto 13 = %s", tr.ToolCalls)
		}
		tr, _ = s.Transcript(ctx, tenant, l.JobID, 4)
		if tr.Content != "Checking " || string(tr.ToolCalls) != "[]" {
			t.Errorf("upto 4: content %q, tool calls %s", tr.Content, tr.ToolCalls)
		}
	})

	t.Run("NoChunks", func(t *testing.T) {
		empty := runningJob(t, pool, tenant, "w1")
		tr, err := s.Transcript(ctx, tenant, empty.JobID, store.TranscriptAll)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Content != "" || tr.Thinking != "" || string(tr.ToolCalls) != "[]" {
			t.Errorf("empty transcript = %+v", tr)
		}
	})
}
