package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

// TestEraseKeepsTheEvidence: erasing a finished job removes its request
// and its chunks' data, keeps their hashes and the seal, and both
// verifiers report it, word for word, as erased by whom, when and why.
func TestEraseKeepsTheEvidence(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	ctx := context.Background()
	id := completedJob(t, s, pool, "t-"+uuid.NewString())
	var hashesBefore, sealBefore []byte
	if err := pool.QueryRow(ctx, `SELECT string_agg(hash, ''::bytea ORDER BY seq) FROM job_chunks WHERE job_id = $1`, id).Scan(&hashesBefore); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT final_hash FROM jobs WHERE id = $1`, id).Scan(&sealBefore); err != nil {
		t.Fatal(err)
	}

	sealBeforeErasure, err := s.JobSeal(ctx, "", id)
	if err != nil {
		t.Fatal(err)
	}
	at, err := s.Erase(ctx, id, "GDPR Art. 17 request 42", "dpo@example")
	if err != nil {
		t.Fatal(err)
	}
	// The API keeps a finished job's verdict for its seal: erasure, which
	// keeps the chunk count and final hash, must still be a new seal.
	if seal, err := s.JobSeal(ctx, "", id); err != nil || seal.Same(sealBeforeErasure) {
		t.Fatalf("the seal after erasure is the same as before (%v): a cached verdict would be served", err)
	}
	var request string
	var left int
	var hashesAfter, sealAfter []byte
	if err := pool.QueryRow(ctx, `SELECT request::text, final_hash FROM jobs WHERE id = $1`, id).Scan(&request, &sealAfter); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE data::text <> '{"erased":true}'), string_agg(hash, ''::bytea ORDER BY seq)
		FROM job_chunks WHERE job_id = $1`, id).Scan(&left, &hashesAfter); err != nil {
		t.Fatal(err)
	}
	if request != chain.ErasedText || left != 0 {
		t.Fatalf("after erasure the request is %s and %d chunks keep their data", request, left)
	}
	if string(hashesAfter) != string(hashesBefore) || string(sealAfter) != string(sealBefore) {
		t.Fatal("erasure changed the chunk hashes or the seal")
	}

	want := chain.ReasonErased("dpo@example", at, "GDPR Art. 17 request 42")
	got, err := s.Verify(ctx, "", id)
	if err != nil || !got.OK || got.Reason != want || got.Chunks != 5 {
		t.Fatalf("Verify = %s, %v; want ok, %q", show(got), err, want)
	}
	if sql := a.verify(t, id); show(sql) != show(got) {
		t.Fatalf("sql/verify.sql = %s, jobstream verify = %s", show(sql), show(got))
	}
	var events string
	if err := pool.QueryRow(ctx, `SELECT string_agg(event || ':' || db_role, ',' ORDER BY seq) FROM job_events WHERE job_id = $1 AND event = 'erased'`, id).Scan(&events); err != nil || events != "erased:jobstream_eraser" {
		t.Fatalf("erased events %q, %v", events, err)
	}
	if _, err := s.Erase(ctx, id, "again", "dpo@example"); !errors.Is(err, store.ErrNotErasable) || !strings.Contains(err.Error(), "already erased") {
		t.Fatalf("second erasure: %v, want already erased", err)
	}
}

// TestEraseRefused: a held job, a running job, a job whose chain is
// already broken (erasing it would destroy the evidence) and a missing
// job are not erased, and keep their content.
func TestEraseRefused(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()

	held := completedJob(t, s, pool, tenant)
	if _, err := s.HoldPlaceOperator(ctx, held, "litigation", "legal@example"); err != nil {
		t.Fatal(err)
	}
	running := runningJob(t, pool, tenant, "w1").JobID
	broken := completedJob(t, s, pool, tenant)
	a.tamper(t, `UPDATE job_chunks SET data = '{"content":"forged"}' WHERE job_id = $1 AND seq = 1`, broken)

	for _, tc := range []struct {
		name string
		id   uuid.UUID
		want string
	}{
		{"held", held, "is held"},
		{"running", running, "is running"},
		{"broken", broken, "its chain breaks at chunk 1"},
	} {
		_, err := s.Erase(ctx, tc.id, "GDPR", "dpo@example")
		if !errors.Is(err, store.ErrNotErasable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrNotErasable %q", tc.name, err, tc.want)
		}
		var request string
		var erased bool
		if err := pool.QueryRow(ctx, `SELECT request::text, erased_at IS NOT NULL FROM jobs WHERE id = $1`, tc.id).Scan(&request, &erased); err != nil || erased || request == chain.ErasedText {
			t.Errorf("%s: erased anyway (%s, %v)", tc.name, request, err)
		}
	}
	if _, err := s.Erase(ctx, uuid.Must(uuid.NewV7()), "GDPR", "dpo@example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing job: %v, want ErrNotFound", err)
	}
	// Lifting the hold makes the held job erasable.
	if _, err := s.HoldLiftOperator(ctx, held, "legal@example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase(ctx, held, "GDPR", "dpo@example"); err != nil {
		t.Fatalf("after the hold was lifted: %v", err)
	}
}

// TestEraseIsTheOwnersAlone: the server's role cannot call the erase
// function, nor do its work by hand, nor forge an erased event (which
// would append an erased leaf); the owner, triggers on, cannot erase by
// hand either: the guards let the change through for jobstream_eraser
// alone.
func TestEraseIsTheOwnersAlone(t *testing.T) {
	t.Parallel()
	url := dbtest.Isolated(t)
	owner, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	s := store.New(owner)
	id := completedJob(t, s, owner, "acme")
	app := appPool(t, url)
	ctx := context.Background()
	for _, q := range []string{
		`SELECT jobstream_erase($1, 'x', 'attacker')`,
		`UPDATE jobs SET request = '{"erased":true}', erased_at = now(), erased_by = 'attacker', erase_reason = 'x' WHERE id = $1`,
		`UPDATE job_chunks SET data = '{"erased":true}' WHERE job_id = $1`,
		`INSERT INTO job_events (job_id, tenant, event, actor, detail) VALUES ($1, 'acme', 'erased', 'attacker', '{}')`,
	} {
		if _, err := app.Exec(ctx, q, id); sqlState(err) != "42501" {
			t.Errorf("server role: %s: %v, want permission denied", q, err)
		}
	}
	for _, q := range []string{
		`UPDATE jobs SET request = '{"erased":true}', erased_at = now(), erased_by = 'owner', erase_reason = 'x' WHERE id = $1`,
		`UPDATE jobs SET erased_at = now(), erased_by = 'owner', erase_reason = 'x' WHERE id = $1`,
		`UPDATE job_chunks SET data = '{"erased":true}' WHERE job_id = $1`,
	} {
		if _, err := owner.Exec(ctx, q, id); sqlState(err) != "42501" {
			t.Errorf("owner, triggers on: %s: %v, want refused", q, err)
		}
	}
	var n int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM log_leaves WHERE kind = 'erased'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("erased leaves %d, %v", n, err)
	}
	if res, err := s.Verify(ctx, "", id); err != nil || res.Reason != chain.ReasonIntact {
		t.Fatalf("after the attempts: %s, %v", show(res), err)
	}
}

// TestVerifyCatchesEditsToAnErasedJob: an erased job's hashes are still
// evidence: a changed chunk hash, a chunk given data back, a removed
// chunk are each caught, word for word by both verifiers.
func TestVerifyCatchesEditsToAnErasedJob(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	a := newAuditor(t, pool)
	ctx := context.Background()
	for _, tc := range []struct{ edit, want string }{
		{`UPDATE job_chunks SET hash = sha256(hash) WHERE job_id = $1 AND seq = 2`, chain.ReasonErasedHashes},
		{`UPDATE job_chunks SET data = '{"content":"back"}' WHERE job_id = $1 AND seq = 3`, "the job is marked erased, but chunk 3 still holds data"},
		{`DELETE FROM job_chunks WHERE job_id = $1 AND seq = 1`, "chunk 1 is missing"},
		{`UPDATE jobs SET request = '{"prompt":"x"}' WHERE id = $1`, chain.ReasonErasedRequest},
		{`UPDATE jobs SET engine = 'other' WHERE id = $1`, chain.ReasonSeed},
		{`UPDATE job_events SET detail = '{}' WHERE job_id = $1 AND event = 'erased'`, chain.ReasonErasedNoEvent},
		{`UPDATE job_events SET actor = 'someone else' WHERE job_id = $1 AND event = 'erased'`, "the audit trail is broken"},
	} {
		id := completedJob(t, s, pool, "t-"+uuid.NewString())
		if _, err := s.Erase(ctx, id, "GDPR", "dpo@example"); err != nil {
			t.Fatal(err)
		}
		a.tamper(t, tc.edit, id)
		got, err := s.Verify(ctx, "", id)
		if err != nil || got.OK || !strings.HasPrefix(got.Reason, tc.want) {
			t.Errorf("%s: Verify = %s, %v; want %q", tc.edit, show(got), err, tc.want)
		}
		if sql := a.verify(t, id); show(sql) != show(got) {
			t.Errorf("%s: sql/verify.sql = %s, jobstream verify = %s", tc.edit, show(sql), show(got))
		}
	}
}
