package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/ledger"
)

// asApp runs q in a transaction as jobstream_app, the server's role, and
// rolls it back if it fails.
func (b *bundle) asApp(q string, args ...any) error {
	return pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(b.ctx, "SET LOCAL ROLE jobstream_app"); err != nil {
			return err
		}
		_, err := tx.Exec(b.ctx, q, args...)
		return err
	})
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Errorf("%s: %v, want SQLSTATE %s", what, err, code)
	}
}

// runningJob inserts a running job of tenant with n content chunks and its
// finish chunk, not sealed yet; finish seals it.
func (b *bundle) runningJob(t *testing.T, tenant string, n int) uuid.UUID {
	t.Helper()
	at := time.Now().Add(-time.Second)
	id := idAt(t, at)
	b.exec(t, `INSERT INTO jobs (id, tenant, engine, request, status, created_at, lease_owner, lease_expires_at, attempt)
		VALUES ($1, $2, 'sim', '{"prompt": "hi"}', 'running', $3, 'w1', now() + interval '1 hour', 1)`, id, tenant, at)
	chunks := append(dbtest.ContentChunks(n), dbtest.Chunk{StreamType: "finish", Data: `{"finish_reason":"stop"}`})
	if err := dbtest.InsertChunks(b.ctx, b.pool, id, chunks); err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *bundle) finish(t *testing.T, id uuid.UUID) {
	t.Helper()
	b.exec(t, `UPDATE jobs SET status = 'completed', finish_reason = 'stop', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`, id)
}

// TestLogForgeriesRefused is the review's attack (finding 1), as the
// server's role: a forged job leaf for a running job (which would have
// blocked the real one for good through the unique index), a stray tree
// hash far ahead or at the next index (which wedged the sequencer), and a
// checkpoint of a huge tree (which stopped signing and was served as the
// latest). Each is refused; so are checkpoints through the sequencer's
// function that are not of the hashed tree. The sequencer then logs the
// real leaf and signs, and the audit passes.
func TestLogForgeriesRefused(t *testing.T) {
	b := setup(t)
	b.job(t, "acme", 1)
	b.step(t)
	victim := b.runningJob(t, "acme", 2)

	for name, q := range map[string]string{
		"forged job leaf":          `INSERT INTO log_leaves (kind, leaf, job_id) VALUES ('job', '\x0100000003'::bytea || convert_to('job', 'UTF8') || '\xdeadbeef'::bytea, $1)`,
		"stray hash far ahead":     `INSERT INTO log_hashes VALUES (999999, sha256('x'))`,
		"stray hash at next index": `INSERT INTO log_hashes SELECT coalesce(max(idx) + 1, 0), sha256('x') FROM log_hashes`,
		"huge checkpoint":          `INSERT INTO log_checkpoints VALUES (1000000, sha256('x'), 'forged')`,
		"leaf numbered by hand":    `UPDATE log_leaves SET idx = 99 WHERE idx IS NULL`,
		"tree hash helper":         `SELECT jobstream_log_tree_hash(1)`,
	} {
		var args []any
		if name == "forged job leaf" {
			args = []any{victim}
		}
		wantCode(t, name, b.asApp(q, args...), "42501")
	}
	// Through the sequencer's function: a size not hashed, not past the
	// last checkpoint, a root that is not the tree's, a note that does not
	// state them.
	wantCode(t, "checkpoint of a huge tree", b.asApp(`SELECT jobstream_log_checkpoint(1000000, sha256('x'), 'forged')`), "23514")
	unsigned := ledger.NewSequencer(b.st, ledger.Config{})
	b.job(t, "acme", 1)
	if s, err := unsigned.Step(b.ctx); err != nil || s.Size != 2 || s.Checkpoint != nil {
		t.Fatalf("unsigned step: %+v %v", s, err)
	}
	wantCode(t, "checkpoint not past the last", b.asApp(`SELECT jobstream_log_checkpoint(1, hash, E'o\n1\n' || encode(hash, 'base64') || E'\n') FROM log_hashes WHERE idx = 0`), "23514")
	wantCode(t, "checkpoint with a forged root", b.asApp(`SELECT jobstream_log_checkpoint(2, sha256('x'), E'o\n2\n' || encode(sha256('x'), 'base64') || E'\n')`), "23514")
	var root []byte
	if err := b.pool.QueryRow(b.ctx, `SELECT jobstream_log_tree_hash(2)`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "checkpoint whose note states another size", b.asApp(`SELECT jobstream_log_checkpoint(2, $1, E'o\n3\n' || encode($1, 'base64') || E'\n')`, root), "23514")

	// The owner cannot renumber a numbered leaf either.
	if _, err := b.pool.Exec(b.ctx, `UPDATE log_leaves SET idx = idx + 100 WHERE idx = 0`); err == nil {
		t.Error("owner renumbered a leaf")
	}

	b.finish(t, victim)
	cp := b.step(t)
	c, err := ledger.OpenCheckpoint(cp, b.verifier)
	if err != nil || c.Size != 3 {
		t.Fatalf("checkpoint %+v %v, want size 3", c, err)
	}
	var logged, real []byte
	if err := b.pool.QueryRow(b.ctx, `SELECT l.leaf, v.leaf FROM log_leaves l JOIN jobstream_log_job_leaves v ON v.id = l.job_id WHERE l.kind = 'job' AND l.job_id = $1`, victim).Scan(&logged, &real); err != nil {
		t.Fatal(err)
	}
	if string(logged) != string(real) {
		t.Fatal("the victim's leaf is not its real leaf")
	}
	if rep := b.audit(t, cp, nil); !rep.OK() {
		t.Fatal(rep.Findings)
	}
}

// TestLeafAppendTakesNoLogLock: a transaction that appends a leaf (here an
// admin event's, as a key revocation does) and stays open neither holds
// the log's lock nor blocks the sequencer; the sequencer numbers what has
// committed, and the open leaf gets the next index once it commits. Before,
// every leaf insert held the log's advisory lock to commit (finding 3).
func TestLeafAppendTakesNoLogLock(t *testing.T) {
	b := setup(t)
	b.job(t, "acme", 1)
	open, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(b.ctx)
	if _, err := open.Exec(b.ctx, `INSERT INTO log_leaves (kind, leaf) VALUES ('key', '\x01000000036b6579')`); err != nil {
		t.Fatal(err)
	}
	b.job(t, "acme", 1)
	s, err := b.seq.Step(b.ctx)
	if err != nil || !s.Locked || s.Size != 2 {
		t.Fatalf("step with a leaf pending: %+v %v, want locked, size 2", s, err)
	}
	if err := open.Commit(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.step(t)
	var idx int64
	if err := b.pool.QueryRow(b.ctx, `SELECT idx FROM log_leaves WHERE kind = 'key'`).Scan(&idx); err != nil || idx != 2 {
		t.Fatalf("the key leaf's index %d, %v; want 2", idx, err)
	}
}

// TestSequencerHashesMatchTlog: the tree hashes the database computes
// (jobstream_log_sequence, in batches) are exactly tlog's stored hashes of
// the leaves, and jobstream_log_tree_hash is tlog.TreeHash, at every size.
func TestSequencerHashesMatchTlog(t *testing.T) {
	b := setup(t)
	const n = 37
	b.exec(t, `INSERT INTO log_leaves (kind, leaf)
		SELECT 'key', '\x01000000036b6579'::bytea || int8send(i) FROM generate_series(1, $1) i`, n)
	seq := ledger.NewSequencer(b.st, ledger.Config{Batch: 5})
	for {
		s, err := seq.Step(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !s.More {
			break
		}
	}
	leaves, err := b.st.LogLeavesFrom(b.ctx, 0, 1000)
	if err != nil || len(leaves) != n {
		t.Fatalf("%d leaves, %v", len(leaves), err)
	}
	var want memHashes
	for i, l := range leaves {
		if l.Index != int64(i) {
			t.Fatalf("leaf %d has index %d", i, l.Index)
		}
		hs, err := tlog.StoredHashes(int64(i), l.Leaf, want)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, hs...)
	}
	rows, err := b.pool.Query(b.ctx, `SELECT idx, hash FROM log_hashes ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var i int64
		var h []byte
		err := r.Scan(&i, &h)
		return h, err
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d stored hashes, want %d (%v)", len(got), len(want), err)
	}
	for i := range want {
		if string(got[i]) != string(want[i][:]) {
			t.Fatalf("stored hash %d differs from tlog's", i)
		}
	}
	for size := int64(1); size <= n; size++ {
		wantRoot, err := tlog.TreeHash(size, want)
		if err != nil {
			t.Fatal(err)
		}
		var root []byte
		if err := b.pool.QueryRow(b.ctx, `SELECT jobstream_log_tree_hash($1)`, size).Scan(&root); err != nil {
			t.Fatal(err)
		}
		if string(root) != string(wantRoot[:]) {
			t.Fatalf("tree hash of %d differs from tlog's", size)
		}
	}
}

// memHashes is stored hashes in memory (tlog.HashReader).
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}
