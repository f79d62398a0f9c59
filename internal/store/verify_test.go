package store_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/jsonstr"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// auditor is a psql-like session that loaded sql/verify.sql: its pg_temp
// functions exist only on this one connection, which may also bypass
// triggers as a superuser would.
type auditor struct{ conn *pgxpool.Conn }

func newAuditor(t testing.TB, pool *pgxpool.Pool) auditor {
	t.Helper()
	script, err := os.ReadFile("../../sql/verify.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	// The simple protocol runs the script's statements as psql -f would.
	if _, err := conn.Conn().PgConn().Exec(context.Background(), string(script)).ReadAll(); err != nil {
		t.Fatalf("load sql/verify.sql: %v", err)
	}
	return auditor{conn: conn}
}

// verify is sql/verify.sql's verdict, as chain.Result.
func (a auditor) verify(t testing.TB, id uuid.UUID) chain.Result {
	t.Helper()
	var (
		r   chain.Result
		bad *int32
	)
	err := a.conn.QueryRow(context.Background(), `SELECT ok, chunks, first_bad_seq, reason FROM pg_temp.jobstream_verify_job($1)`, id).
		Scan(&r.OK, &r.Chunks, &bad, &r.Reason)
	if err != nil {
		t.Fatalf("pg_temp.jobstream_verify_job: %v", err)
	}
	if bad != nil {
		n := int(*bad)
		r.FirstBadSeq = &n
	}
	return r
}

// tamper runs sql as a superuser who disables triggers.
func (a auditor) tamper(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	defer a.conn.Exec(ctx, `RESET session_replication_role`) //nolint:errcheck
	if _, err := a.conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("tamper %q: %v", sql, err)
	}
}

// completedJob writes a job of five chunks (seq 0-4, the last the finish
// chunk) and completes it.
func completedJob(t *testing.T, s *store.Store, pool *pgxpool.Pool, tenant string) uuid.UUID {
	t.Helper()
	l := runningJob(t, pool, tenant, "w1")
	ctx := context.Background()
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 0, "a"), content(l, 1, "b"), content(l, 2, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 3, "d"), finishChunk(l, 4, "stop")}, []store.Finish{completed(l)}); err != nil {
		t.Fatal(err)
	}
	return l.JobID
}

func intPtr(n int) *int { return &n }

// TestVerifyCatchesTampering: each way a superuser who bypasses the
// triggers can change a finished job's record is caught, identically, by
// jobstream's Go verification and by the psql-only sql/verify.sql.
func TestVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()

	cases := []struct {
		name  string
		sql   string
		chunk string // data of an inserted chunk, when the case inserts one
		want  chain.Result
	}{
		{name: "Intact", want: chain.Result{OK: true, Chunks: 5, Reason: chain.ReasonIntact}},
		{
			name: "EditedChunk",
			sql:  `UPDATE job_chunks SET data = '{"content":"B"}' WHERE job_id = $1 AND seq = 1`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(1), Reason: "chunk 1 does not match its hash"},
		},
		{
			name: "EditedStreamType",
			sql:  `UPDATE job_chunks SET stream_type = 'thinking' WHERE job_id = $1 AND seq = 2`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(2), Reason: "chunk 2 does not match its hash"},
		},
		{
			name: "EditedChunkAndItsHash",
			sql: `UPDATE job_chunks SET data = '{"content":"B"}',
			             hash = job_chunk_hash((SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 0), 1, 'content', '{"content":"B"}')
			      WHERE job_id = $1 AND seq = 1`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(2), Reason: "chunk 2 does not match its hash"},
		},
		{
			name: "DeletedMiddleChunk",
			sql:  `DELETE FROM job_chunks WHERE job_id = $1 AND seq = 2`,
			want: chain.Result{Chunks: 4, FirstBadSeq: intPtr(2), Reason: "chunk 2 is missing"},
		},
		{
			name: "DeletedTailWithFinishChunk",
			sql:  `DELETE FROM job_chunks WHERE job_id = $1 AND seq >= 3`,
			want: chain.Result{Chunks: 3, FirstBadSeq: intPtr(3), Reason: "truncated: 3 of the job's 5 chunks are stored"},
		},
		{
			name: "InsertedChunkAtTheEnd",
			// With a correct chain hash: only the recorded count catches it.
			sql: `INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
			      SELECT $1, 5, 'content', '{"content":"more"}',
			             job_chunk_hash((SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 4), 5, 'content', '{"content":"more"}')`,
			want: chain.Result{Chunks: 6, FirstBadSeq: intPtr(5), Reason: "6 chunks stored, but the job ended with 5"},
		},
		{
			name: "InsertedChunkInTheMiddle",
			sql: `WITH moved AS (UPDATE job_chunks SET seq = seq + 100 WHERE job_id = $1 AND seq >= 2 RETURNING 1)
			      SELECT count(*) FROM moved;
			      UPDATE job_chunks SET seq = seq - 99 WHERE job_id = $1 AND seq >= 100;
			      INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
			      SELECT $1, 2, 'content', '{"content":"X"}',
			             job_chunk_hash((SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 1), 2, 'content', '{"content":"X"}')`,
			want: chain.Result{Chunks: 6, FirstBadSeq: intPtr(3), Reason: "chunk 3 does not match its hash"},
		},
		{
			name: "SwappedChunks",
			sql: `UPDATE job_chunks SET seq = 100 WHERE job_id = $1 AND seq = 1;
			      UPDATE job_chunks SET seq = 1 WHERE job_id = $1 AND seq = 2;
			      UPDATE job_chunks SET seq = 2 WHERE job_id = $1 AND seq = 100`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(1), Reason: "chunk 1 does not match its hash"},
		},
		{
			name: "SwappedChunkContents",
			sql: `UPDATE job_chunks c SET data = o.data
			      FROM job_chunks o
			      WHERE c.job_id = $1 AND o.job_id = $1 AND ((c.seq, o.seq) IN ((1, 2), (2, 1)))`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(1), Reason: "chunk 1 does not match its hash"},
		},
		{
			name: "EditedFinalHash",
			sql:  `UPDATE jobs SET final_hash = sha256('forged') WHERE id = $1`,
			want: chain.Result{Chunks: 5, Reason: chain.ReasonFinalHash},
		},
		{
			name: "EditedChunkCount",
			sql:  `UPDATE jobs SET chunk_count = 3 WHERE id = $1`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(3), Reason: "5 chunks stored, but the job ended with 3"},
		},
		{
			// The auditor's attack (issue 17): the finish chunk deleted and
			// the job re-sealed for the shorter chain, so that count and
			// final hash match. Only the finish chunk rule catches it.
			name: "DeletedFinishChunkAndResealed",
			sql: `DELETE FROM job_chunks WHERE job_id = $1 AND seq = 4;
			      UPDATE jobs SET chunk_count = 4,
			                      final_hash = (SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 3)
			      WHERE id = $1`,
			want: chain.Result{Chunks: 4, FirstBadSeq: intPtr(4),
				Reason: "the job ended without a finish chunk: chunk 3, the last stored, has no finish_reason"},
		},
		{
			name: "DeletedEveryChunkAndResealed",
			sql: `DELETE FROM job_chunks WHERE job_id = $1;
			      UPDATE jobs SET chunk_count = 0, final_hash = chain_seed WHERE id = $1`,
			want: chain.Result{Chunks: 0, FirstBadSeq: intPtr(0), Reason: chain.ReasonNoChunks},
		},
		{
			// The finish chunk rewritten as content, its hash and the seal
			// recomputed: the chain is consistent, but the job has no end.
			name: "FinishChunkRewrittenAndResealed",
			sql: `UPDATE job_chunks SET data = '{"content":"e"}',
			             hash = job_chunk_hash((SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 3), 4, 'content', '{"content":"e"}')
			      WHERE job_id = $1 AND seq = 4;
			      UPDATE jobs SET final_hash = (SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 4) WHERE id = $1`,
			want: chain.Result{Chunks: 5, FirstBadSeq: intPtr(5),
				Reason: "the job ended without a finish chunk: chunk 4, the last stored, has no finish_reason"},
		},
		{
			name: "RemovedSeal",
			sql:  `UPDATE jobs SET final_hash = NULL WHERE id = $1`,
			want: chain.Result{Chunks: 5, Reason: chain.ReasonNoFinalHash},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := completedJob(t, s, pool, tenant)
			a := newAuditor(t, pool)
			if tc.sql != "" {
				// Multi-statement cases run as a script (simple protocol).
				if _, err := a.conn.Exec(context.Background(), `SET session_replication_role = replica`); err != nil {
					t.Fatal(err)
				}
				script := replaceParam(tc.sql, id)
				if _, err := a.conn.Conn().PgConn().Exec(context.Background(), script).ReadAll(); err != nil {
					t.Fatalf("tamper: %v", err)
				}
				if _, err := a.conn.Exec(context.Background(), `RESET session_replication_role`); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Verify(context.Background(), tenant, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("jobstream verify = %s, want %s", show(got), show(tc.want))
			}
			if sql := a.verify(t, id); !reflect.DeepEqual(sql, got) {
				t.Errorf("sql/verify.sql = %s, jobstream verify = %s: they disagree", show(sql), show(got))
			}
		})
	}
}

// replaceParam puts id, quoted, where a script says $1.
func replaceParam(sql string, id uuid.UUID) string {
	out := []byte{}
	for i := 0; i < len(sql); i++ {
		if sql[i] == '$' && i+1 < len(sql) && sql[i+1] == '1' {
			out = append(out, "'"+id.String()+"'::uuid"...)
			i++
			continue
		}
		out = append(out, sql[i])
	}
	return string(out)
}

func show(r chain.Result) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// TestVerifyRunningJob: a job still running verifies up to its last
// committed chunk, and a chunk removed from it is caught.
func TestVerifyRunningJob(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()
	ctx := context.Background()
	l := runningJob(t, pool, tenant, "w1")
	a := newAuditor(t, pool)

	got, err := s.Verify(ctx, tenant, l.JobID)
	if want := (chain.Result{OK: true, Chunks: 0, Reason: chain.ReasonIntactRunning}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("no chunks yet: Verify = %s, %v; want %s", show(got), err, show(want))
	}
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 0, "a"), content(l, 1, "b"), content(l, 2, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.Verify(ctx, tenant, l.JobID)
	if want := (chain.Result{OK: true, Chunks: 3, Reason: chain.ReasonIntactRunning}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("three chunks: Verify = %s, %v; want %s", show(got), err, show(want))
	}
	if sql := a.verify(t, l.JobID); !reflect.DeepEqual(sql, got) {
		t.Errorf("sql/verify.sql = %s, jobstream verify = %s", show(sql), show(got))
	}
	a.tamper(t, `DELETE FROM job_chunks WHERE job_id = $1 AND seq = 0`, l.JobID)
	got, _ = s.Verify(ctx, tenant, l.JobID)
	if want := (chain.Result{Chunks: 2, FirstBadSeq: intPtr(0), Reason: "chunk 0 is missing"}); !reflect.DeepEqual(got, want) {
		t.Errorf("first chunk deleted: Verify = %s, want %s", show(got), show(want))
	}
	if sql := a.verify(t, l.JobID); !reflect.DeepEqual(sql, got) {
		t.Errorf("sql/verify.sql = %s, jobstream verify = %s", show(sql), show(got))
	}
	if _, err := s.Verify(ctx, "other-tenant", l.JobID); err != store.ErrNotFound {
		t.Errorf("another tenant's Verify = %v, want ErrNotFound", err)
	}
}

// TestVerifySQLPaths: the chunks jobstream writes in SQL rather than from
// the worker's memory (cancelling a queued job, the rescuer failing a job
// whose worker died) chain and seal like the others.
func TestVerifySQLPaths(t *testing.T) {
	t.Parallel()
	// A database of its own: RescueExpired acts on every job in it.
	pool := testserver.Pool(t, testserver.Database(t), 3)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()
	ctx := context.Background()
	a := newAuditor(t, pool)

	job := mustSubmit(t, s, store.SubmitParams{Tenant: tenant})
	if _, err := s.RequestCancel(ctx, tenant, job.ID); err != nil {
		t.Fatal(err)
	}
	want := chain.Result{OK: true, Chunks: 1, Reason: chain.ReasonIntact}
	if got, err := s.Verify(ctx, tenant, job.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cancelled queued job: Verify = %s, %v; want %s", show(got), err, show(want))
	}
	if got := a.verify(t, job.ID); !reflect.DeepEqual(got, want) {
		t.Errorf("cancelled queued job: sql/verify.sql = %s, want %s", show(got), show(want))
	}

	l := runningJob(t, pool, tenant, "dead-worker")
	if _, err := s.WriteBatch(ctx, "dead-worker", []store.NewChunk{content(l, 0, "a"), content(l, 1, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, l.JobID); err != nil {
		t.Fatal(err)
	}
	if res, err := s.RescueExpired(ctx, 100, time.Second); err != nil || len(res.Failed) != 1 {
		t.Fatalf("RescueExpired = %+v, %v; want the job failed", res, err)
	}
	want = chain.Result{OK: true, Chunks: 3, Reason: chain.ReasonIntact}
	if got, err := s.Verify(ctx, tenant, l.JobID); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("rescued job: Verify = %s, %v; want %s", show(got), err, show(want))
	}
	if got := a.verify(t, l.JobID); !reflect.DeepEqual(got, want) {
		t.Errorf("rescued job: sql/verify.sql = %s, want %s", show(got), show(want))
	}
}

// FuzzChainAgreesWithSQL: for arbitrary chunk data, NUL and non-ASCII
// included, the hash the worker computes in Go is the one PostgreSQL
// recomputes over the stored text, with the installed job_chunk_hash and
// with sql/verify.sql, and the stored text is the text Go hashed.
func FuzzChainAgreesWithSQL(f *testing.F) {
	for _, s := range []string{"", "hello", "a\x00b", "\x00", `\u0000`, "héllo ☃ 😀", "\xff\xfe", "\u2028\u2029", "<>&'\"\\", "\t\n\r"} {
		f.Add(s, "content", []byte(`{"content":"x"}`))
	}
	f.Add("x", "tool", []byte(`{ "b" : 1.50e+2, "a":[true ,null], "a": "dup" }`))
	f.Add("x", "usage", []byte(`{"k":"\u0000 and \\u0000 and \ud83d\ude00"}`))
	pool := dbtest.Pool(f)
	s := store.New(pool)
	a := newAuditor(f, pool)
	f.Fuzz(func(t *testing.T, text, streamType string, raw []byte) {
		if !utf8.ValidString(streamType) || len(streamType) == 0 || len(streamType) > 50 {
			t.Skip()
		}
		for _, b := range streamType {
			if b == 0 {
				t.Skip() // not text PostgreSQL can store
			}
		}
		marshalled, _ := json.Marshal(map[string]string{"content": text})
		engineStyle := append(jsonstr.Append([]byte(`{"content":`), text), '}')
		datas := [][]byte{marshalled, engineStyle}
		if json.Valid(raw) && utf8.Valid(raw) {
			datas = append(datas, raw)
		}
		ctx := context.Background()
		l := runningJob(t, pool, "fuzz", "w1")
		tip := chain.SeedV2(l.JobID, "fuzz", "sim", []byte(`{"command":"fixture"}`))
		var chunks []store.NewChunk
		var want [][]byte
		for i, d := range datas {
			c := store.NewChunk{Lease: l, Seq: i, StreamType: streamType, Data: d}
			h := c.ChainHash(tip)
			c.Hash, tip = h[:], h
			chunks = append(chunks, c)
			want = append(want, h[:])
		}
		if _, err := s.WriteBatch(ctx, "w1", chunks, nil); err != nil {
			if len(datas) == 3 {
				t.Skip() // raw JSON Go accepts and PostgreSQL's json does not (a lone surrogate escape, say)
			}
			t.Fatal(err)
		}
		rows, err := pool.Query(ctx, `
			SELECT seq, data::text, hash,
			       job_chunk_hash(coalesce(lag(hash) OVER (ORDER BY seq), (SELECT chain_seed FROM jobs WHERE id = job_id)), seq, stream_type, data::text)
			FROM job_chunks WHERE job_id = $1 ORDER BY seq`, l.JobID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				seq          int
				stored       string
				hash, sqlRec []byte
			)
			if err := rows.Scan(&seq, &stored, &hash, &sqlRec); err != nil {
				t.Fatal(err)
			}
			if hashed := chunks[seq].Data; stored != string(store.StoredText(hashed)) {
				t.Errorf("seq %d: stored text %q, Go hashed %q", seq, stored, store.StoredText(hashed))
			}
			if string(hash) != string(want[seq]) || string(sqlRec) != string(want[seq]) {
				t.Errorf("seq %d: Go hash %x, stored %x, job_chunk_hash %x", seq, want[seq], hash, sqlRec)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		got, err := s.Verify(ctx, "fuzz", l.JobID)
		if err != nil || !got.OK {
			t.Errorf("Verify = %s, %v", show(got), err)
		}
		if sql := a.verify(t, l.JobID); !reflect.DeepEqual(sql, got) {
			t.Errorf("sql/verify.sql = %s, jobstream verify = %s", show(sql), show(got))
		}
	})
}

// TestClaimContinuesTheChain: a claim of a job that already has chunks
// continues its chain from the last stored hash, so the new attempt's
// chunks verify.
func TestClaimContinuesTheChain(t *testing.T) {
	t.Parallel()
	pool := testserver.Pool(t, testserver.Database(t), 2)
	s := store.New(pool)
	ctx := context.Background()
	l := runningJob(t, pool, "t", "w1")
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 0, "a"), content(l, 1, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`, l.JobID); err != nil {
		t.Fatal(err)
	}
	claims, err := s.Claim(ctx, "w2", 1, time.Hour)
	if err != nil || len(claims) != 1 {
		t.Fatalf("Claim = %v, %v", claims, err)
	}
	c := claims[0]
	var last []byte
	if err := pool.QueryRow(ctx, `SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 1`, l.JobID).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if c.NextSeq != 2 || string(c.ChainTip[:]) != string(last) {
		t.Fatalf("claim continues at seq %d from %x, want seq 2 from %x", c.NextSeq, c.ChainTip, last)
	}
	next := content(c.Lease, 2, "c")
	h := next.ChainHash(c.ChainTip)
	next.Hash = h[:]
	if _, err := s.WriteBatch(ctx, "w2", []store.NewChunk{next}, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Verify(ctx, "t", l.JobID); err != nil || !res.OK || res.Chunks != 3 {
		t.Errorf("Verify = %s, %v; want intact with 3 chunks", show(res), err)
	}
}

// TestFinishChunkRule: a finished job, whatever its terminal status, is
// intact only when its last chunk is a finish chunk (its data an object
// whose member finish_reason is a string, the last one when repeated, the
// name matched exactly), and jobstream's Go verification and sql/verify.sql
// agree on every shape of that last chunk. A job still running needs none.
func TestFinishChunkRule(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	tenant := "t-" + uuid.NewString()
	ctx := context.Background()

	cases := []struct {
		data   string
		finish bool
	}{
		{`{"finish_reason":"stop"}`, true},
		{`{"finish_reason":""}`, true},
		{`{"finish_reason":"error","error":{"message":"m","type":"t"}}`, true},
		{` { "finish_reason" : "length" } `, true},
		{`{"finish\u005freason":"stop"}`, true},
		{`{"finish_reason":null,"finish_reason":"stop"}`, true},
		{`{"finish_reason":"stop","finish_reason":null}`, false},
		{`{"finish_reason":1}`, false},
		{`{"finish_reason":null}`, false},
		{`{"finish_reason":{"reason":"stop"}}`, false},
		{`{"Finish_Reason":"stop"}`, false},
		{`{"content":"finish_reason"}`, false},
		{`{"x":{"finish_reason":"stop"}}`, false},
		{`["finish_reason","stop"]`, false},
		{`"finish_reason"`, false},
	}
	for _, status := range []string{store.StatusCompleted, store.StatusFailed, store.StatusCancelled, store.StatusRunning} {
		for _, tc := range cases {
			l := runningJob(t, pool, tenant, "w1")
			last := store.NewChunk{Lease: l, Seq: 1, StreamType: "content", Data: json.RawMessage(tc.data)}
			var fins []store.Finish
			if status != store.StatusRunning {
				fins = []store.Finish{{Lease: l, Status: status, FinishReason: "stop"}}
			}
			if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{content(l, 0, "a"), last}, fins); err != nil {
				t.Fatal(err)
			}
			want := chain.Result{OK: true, Chunks: 2, Reason: chain.ReasonIntact}
			switch {
			case status == store.StatusRunning:
				want.Reason = chain.ReasonIntactRunning
			case !tc.finish:
				want = chain.Result{Chunks: 2, FirstBadSeq: intPtr(2),
					Reason: "the job ended without a finish chunk: chunk 1, the last stored, has no finish_reason"}
			}
			got, err := s.Verify(ctx, tenant, l.JobID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s job ending with %s: Verify = %s, want %s", status, tc.data, show(got), show(want))
			}
			if sql := a.verify(t, l.JobID); !reflect.DeepEqual(sql, got) {
				t.Errorf("%s job ending with %s: sql/verify.sql = %s, jobstream verify = %s", status, tc.data, show(sql), show(got))
			}
			if f := chain.IsFinish([]byte(tc.data)); f != tc.finish {
				t.Errorf("IsFinish(%s) = %v, want %v", tc.data, f, tc.finish)
			}
		}
	}
}
