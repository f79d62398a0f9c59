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

// TestEraseCommand: jobstream erase needs --reason, refuses a held job,
// erases a finished one (its request gone, the person recorded), after
// which verify reports it erased and audit passes, printing who erased it;
// a second erasure is refused.
func TestEraseCommand(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 2)
	st := store.New(pool)
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": url}
	skey, vkey, err := ledger.GenerateKey("test.example/jobstream")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "log.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.LoadSigner(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cpDir := t.TempDir()
	seq := ledger.NewSequencer(st, ledger.Config{Signer: signer, CheckpointInterval: time.Nanosecond, CheckpointDir: cpDir})
	job := func() string {
		l := testserver.RunningJob(t, pool, "acme", "w1")
		chunks := []store.NewChunk{testserver.Content(l, 0, "my secret"), testserver.FinishChunk(l, 1, "stop")}
		if _, err := st.WriteBatch(ctx, "w1", chunks, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
			t.Fatal(err)
		}
		return l.JobID.String()
	}
	id, held := job(), job()
	if res := runCmd(t, env, "hold", held, "--reason", "case 7", "--actor", "legal@example"); res.err != nil {
		t.Fatalf("hold: %v\n%s", res.err, res.stderr)
	}
	if _, err := seq.Step(ctx); err != nil {
		t.Fatal(err)
	}

	if res := runCmd(t, env, "erase", id); res.err == nil || !strings.Contains(res.err.Error(), "--reason") {
		t.Fatalf("erase without --reason: %v", res.err)
	}
	if res := runCmd(t, env, "erase", held, "--reason", "GDPR"); res.err == nil || !strings.Contains(res.err.Error(), "is held") {
		t.Fatalf("erase of a held job: %v\n%s", res.err, res.stdout)
	}
	res := runCmd(t, env, "erase", id, "--reason", "GDPR Art. 17 #42", "--actor", "dpo@example")
	if res.err != nil || !strings.HasPrefix(res.stdout, "erased "+id) {
		t.Fatalf("erase: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM job_chunks WHERE job_id = $1 AND data::text LIKE '%secret%'`, id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d chunks still hold the content, %v", n, err)
	}
	if res := runCmd(t, env, "verify", id); res.err != nil || !strings.Contains(res.stdout, id+" ok: 2 chunks, erased by dpo@example at ") {
		t.Fatalf("verify of an erased job: %v\n%s", res.err, res.stdout)
	}
	if _, err := seq.Step(ctx); err != nil {
		t.Fatal(err)
	}
	res = runCmd(t, env, "audit", "--verifier-key", vkey, "--checkpoint", filepath.Join(cpDir, "checkpoint"), "--delay", "0s")
	if res.err != nil || !strings.Contains(res.stdout, id+" ERASED: erased by dpo@example at ") || !strings.Contains(res.stdout, "audit ok") {
		t.Fatalf("audit after an erasure: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "erase", id, "--reason", "again"); res.err == nil || !strings.Contains(res.err.Error(), "already erased") {
		t.Fatalf("second erasure: %v", res.err)
	}
}
