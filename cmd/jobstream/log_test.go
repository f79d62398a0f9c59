package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestLogKeygenAndAudit: keygen writes a private signer key and prints the
// verifier key; a sequencer signing with that key writes checkpoints to a
// directory; audit passes on the honest database and, after an owner
// rewrites a finished job's chunks and recomputes its seal, exits 1
// naming the job.
func TestLogKeygenAndAudit(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 2)
	st := store.New(pool)
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": url}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "log.key")

	res := runCmd(t, env, "log", "keygen", "--out", keyFile, "--name", "test.example/jobstream")
	if res.err != nil || !strings.HasPrefix(res.stdout, "test.example/jobstream+") {
		t.Fatalf("keygen: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	vkey := strings.TrimSpace(res.stdout)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if res := runCmd(t, env, "log", "keygen", "--out", keyFile, "--name", "x"); res.err == nil {
		t.Fatal("keygen overwrote a key")
	}
	signer, err := ledger.LoadSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cpDir := t.TempDir()
	seq := ledger.NewSequencer(st, ledger.Config{Signer: signer, CheckpointInterval: time.Nanosecond, CheckpointDir: cpDir})

	l := testserver.RunningJob(t, pool, "acme", "w1")
	chunks := []store.NewChunk{testserver.Content(l, 0, "a"), testserver.FinishChunk(l, 1, "stop")}
	if _, err := st.WriteBatch(ctx, "w1", chunks, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}
	if s, err := seq.Step(ctx); err != nil || s.Checkpoint == nil {
		t.Fatalf("step %+v %v", s, err)
	}
	cp := filepath.Join(cpDir, "checkpoint")
	if b, err := os.ReadFile(filepath.Join(cpDir, "1.checkpoint")); err != nil || !strings.HasPrefix(string(b), "test.example/jobstream\n1\n") {
		t.Fatalf("checkpoint file: %q %v", b, err)
	}
	if res := runCmd(t, env, "audit", "--verifier-key", vkey, "--checkpoint", cp, "--delay", "0s"); res.err != nil || !strings.Contains(res.stdout, "audit ok") {
		t.Fatalf("audit of an honest log: %v\n%s%s", res.err, res.stdout, res.stderr)
	}

	// The owner rewrites the job's output and recomputes chain and seal.
	if _, err := pool.Exec(ctx, `BEGIN; SET LOCAL session_replication_role = replica;
		UPDATE job_chunks SET data = '{"content":"z"}', hash = job_chunk_hash((SELECT chain_seed FROM jobs WHERE id = job_id), 0, 'content', '{"content":"z"}') WHERE job_id = '`+l.JobID.String()+`' AND seq = 0;
		UPDATE job_chunks c SET hash = job_chunk_hash((SELECT hash FROM job_chunks p WHERE p.job_id = c.job_id AND p.seq = 0), 1, c.stream_type, c.data::text) WHERE job_id = '`+l.JobID.String()+`' AND seq = 1;
		UPDATE jobs SET final_hash = (SELECT hash FROM job_chunks WHERE job_id = id AND seq = 1) WHERE id = '`+l.JobID.String()+`';
		COMMIT`); err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, env, "verify", l.JobID.String()); res.err != nil {
		t.Fatalf("the rewrite should pass verify: %v\n%s", res.err, res.stdout)
	}
	res = runCmd(t, env, "audit", "--verifier-key", vkey, "--checkpoint", cp, "--delay", "0s")
	if res.err == nil || !strings.Contains(res.stdout, l.JobID.String()+" BAD: its seal") {
		t.Fatalf("audit after a rewrite: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "audit", "--verifier-key", vkey); res.err == nil || !strings.Contains(res.err.Error(), "--checkpoint") {
		t.Fatalf("audit without a checkpoint: %v", res.err)
	}
}
