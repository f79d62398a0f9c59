package ledger_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/ledger"
)

func (b *bundle) audit(t *testing.T, cp, prev []byte) *ledger.AuditReport {
	t.Helper()
	rep, err := ledger.Audit(b.ctx, b.st, ledger.AuditConfig{VerifierKey: b.verifier, Checkpoint: cp, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// wantFinding fails unless the report names job (nil: the log) with a
// reason containing want.
func wantFinding(t *testing.T, rep *ledger.AuditReport, job *uuid.UUID, want string) {
	t.Helper()
	for _, f := range rep.Findings {
		if (job == nil) == (f.JobID == nil) && (job == nil || *job == *f.JobID) && strings.Contains(f.Reason, want) {
			return
		}
	}
	t.Fatalf("no finding %q about %v in %v", want, job, rep.Findings)
}

// asOwner runs statements as the owner with every trigger off
// (session_replication_role replica), as an attacker with the owner's
// rights would, in one transaction.
func (b *bundle) asOwner(t *testing.T, q string, args ...any) {
	t.Helper()
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(b.ctx)
	if _, err := tx.Exec(b.ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		t.Fatal(err)
	}
	// The simple protocol: several statements, the arguments interpolated.
	if _, err := tx.Exec(b.ctx, q, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if err := tx.Commit(b.ctx); err != nil {
		t.Fatal(err)
	}
}

// rechain replaces a job's chunks and recomputes its chain and seal.
func (b *bundle) rechain(t *testing.T, id uuid.UUID, chunks []dbtest.Chunk) {
	t.Helper()
	b.asOwner(t, `DELETE FROM job_chunks WHERE job_id = $1`, id)
	if err := dbtest.InsertChunks(b.ctx, b.pool, id, chunks); err != nil {
		t.Fatal(err)
	}
}

func TestAuditPassesAnHonestLog(t *testing.T) {
	b := setup(t)
	for range 3 {
		b.job(t, "acme", 2)
	}
	cp1 := b.step(t)
	b.job(t, "beta", 1)
	cp2 := b.step(t)
	rep := b.audit(t, cp2, cp1)
	if !rep.OK() || rep.Jobs != 4 || rep.Checkpoint.Size != 4 {
		t.Fatalf("%+v", rep)
	}
}

// TestAuditRewrittenChunks: an owner rewrites a job's chunks and
// recomputes its chain and seal. verify finds the job intact; audit names
// it.
func TestAuditRewrittenChunks(t *testing.T) {
	b := setup(t)
	id := b.job(t, "acme", 3)
	other := b.job(t, "acme", 3)
	cp := b.step(t)
	b.rechain(t, id, append(dbtest.ContentChunks(2), dbtest.Chunk{StreamType: "finish", Data: `{"finish_reason":"stop"}`}))
	if res, err := b.st.Verify(b.ctx, "", id); err != nil || !res.OK {
		t.Fatalf("the rewrite should pass verify (that is the point): %+v %v", res, err)
	}
	rep := b.audit(t, cp, nil)
	wantFinding(t, rep, &id, "its chunks were rewritten")
	for _, f := range rep.Findings {
		if f.JobID != nil && *f.JobID == other {
			t.Fatalf("an untouched job was named: %v", f)
		}
	}
}

// TestAuditEditedRequest: an owner edits a finished job's request and
// recomputes its request hash, seed, chain and seal.
func TestAuditEditedRequest(t *testing.T) {
	b := setup(t)
	id := b.job(t, "acme", 2)
	cp := b.step(t)
	b.asOwner(t, `UPDATE jobs SET request = '{"prompt": "bye"}',
		request_sha256 = sha256(convert_to('{"prompt": "bye"}', 'UTF8')),
		chain_seed = job_chain_seed_v2(id, tenant, engine, sha256(convert_to('{"prompt": "bye"}', 'UTF8'))) WHERE id = $1`, id)
	b.rechain(t, id, append(dbtest.ContentChunks(2), dbtest.Chunk{StreamType: "finish", Data: `{"finish_reason":"stop"}`}))
	if res, err := b.st.Verify(b.ctx, "", id); err != nil || !res.OK {
		t.Fatalf("the rewrite should pass verify: %+v %v", res, err)
	}
	wantFinding(t, b.audit(t, cp, nil), &id, "its request is not the one logged")
}

// TestAuditDeletedAndRebuilt: an owner deletes a job with its events and
// its leaf, renumbers the leaves after it and rebuilds the tree; the
// server signs the rewritten log. The new checkpoint is not consistent
// with the one the auditor kept, and the old one no longer matches.
func TestAuditDeletedAndRebuilt(t *testing.T) {
	b := setup(t)
	b.job(t, "acme", 1)
	victim := b.job(t, "acme", 1)
	b.job(t, "acme", 1)
	cp1 := b.step(t)
	b.asOwner(t, `
		DELETE FROM job_chunks WHERE job_id = $1;
		DELETE FROM job_events WHERE job_id = $1;
		DELETE FROM jobs WHERE id = $1;
		DELETE FROM log_leaves WHERE job_id = $1;
		UPDATE log_leaves SET idx = idx - 1 WHERE idx > 1;
		DELETE FROM log_hashes;
		DELETE FROM log_checkpoints`, victim)
	b.job(t, "acme", 1)
	b.job(t, "acme", 1)
	cp2 := b.step(t)
	c1, _ := ledger.OpenCheckpoint(cp1, b.verifier)
	c2, err := ledger.OpenCheckpoint(cp2, b.verifier)
	if err != nil || c2.Size != 4 {
		t.Fatalf("%+v %v", c2, err)
	}
	wantFinding(t, b.audit(t, cp2, cp1), nil, "not consistent with the previous checkpoint")
	wantFinding(t, b.audit(t, cp1, nil), nil, "do not hash to the checkpoint's root")
	// The proof the server gives for the old size does not check either.
	p, err := ledger.Consistency(b.ctx, b.st, c1.Size, c2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, c2.Size, c2.Root, c1.Size, c1.Root); err == nil {
		t.Fatal("a consistency proof over a rewritten log checked")
	}
}

// TestAuditForgedCheckpoint: a checkpoint whose root was replaced fails
// its signature.
func TestAuditForgedCheckpoint(t *testing.T) {
	b := setup(t)
	b.job(t, "acme", 1)
	cp := string(b.step(t))
	lines := strings.Split(cp, "\n")
	lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	wantFinding(t, b.audit(t, []byte(strings.Join(lines, "\n")), nil), nil, "signature")
}

// TestAuditJobRemovedOutsideRetention: a job deleted by the owner, its
// leaf left alone, is named as gone without a deleted leaf; a job that
// ended and was never logged is named too.
func TestAuditJobRemovedOutsideRetention(t *testing.T) {
	b := setup(t)
	id := b.job(t, "acme", 1)
	cp := b.step(t)
	b.asOwner(t, `DELETE FROM job_chunks WHERE job_id = $1; DELETE FROM jobs WHERE id = $1`, id)
	wantFinding(t, b.audit(t, cp, nil), &id, "no leaf after its leaf 0 says it was deleted")

	unlogged := b.job(t, "acme", 1)
	wantFinding(t, b.audit(t, cp, nil), &unlogged, "has no leaf")
}

// TestAuditLegitimateRetention: retention deletes an expired job and
// appends its deleted leaf in the same transaction; a held job stays,
// with its hold leaf. The audit passes and counts the deletion.
func TestAuditLegitimateRetention(t *testing.T) {
	b := setup(t)
	old := b.jobAt(t, "acme", time.Now().AddDate(0, 0, -40), 2)
	held := b.jobAt(t, "acme", time.Now().AddDate(0, 0, -40), 2)
	b.job(t, "acme", 2)
	if _, err := b.st.HoldPlaceOperator(b.ctx, held, "litigation", "legal@example"); err != nil {
		t.Fatal(err)
	}
	cp1 := b.step(t)
	days := 30
	if _, err := b.st.RetentionSettingsSet(b.ctx, &days, nil); err != nil {
		t.Fatal(err)
	}
	gone, err := b.st.RetentionDeleteBatch(b.ctx, 100, "test")
	if err != nil || len(gone) != 1 || gone[0].ID != old {
		t.Fatalf("retention deleted %+v, %v", gone, err)
	}
	var kinds string
	if err := b.pool.QueryRow(b.ctx, `SELECT string_agg(kind, ',' ORDER BY idx) FROM log_leaves`).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if kinds != "hold,job,job,job,policy,deleted" {
		t.Fatalf("leaves %s", kinds)
	}
	cp2 := b.step(t)
	rep := b.audit(t, cp2, cp1)
	if !rep.OK() || rep.Deleted != 1 || rep.Jobs != 2 || rep.Held != 1 {
		t.Fatalf("%+v", rep)
	}
}

// TestRetentionLogsUnloggedJob: a job retention removes before the
// sequencer logged it gets its job leaf in the deleting transaction, just
// before its deleted leaf, so the audit can justify its removal.
func TestRetentionLogsUnloggedJob(t *testing.T) {
	b := setup(t)
	old := b.jobAt(t, "acme", time.Now().AddDate(0, 0, -40), 2)
	days := 30
	if _, err := b.st.RetentionSettingsSet(b.ctx, &days, nil); err != nil {
		t.Fatal(err)
	}
	if gone, err := b.st.RetentionDeleteBatch(b.ctx, 100, "test"); err != nil || len(gone) != 1 {
		t.Fatalf("retention deleted %+v, %v", gone, err)
	}
	var kinds string
	if err := b.pool.QueryRow(b.ctx, `SELECT string_agg(kind || ':' || coalesce(job_id::text, ''), ',' ORDER BY idx) FROM log_leaves`).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if want := "policy:,job:" + old.String() + ",deleted:" + old.String(); kinds != want {
		t.Fatalf("leaves %s, want %s", kinds, want)
	}
	rep := b.audit(t, b.step(t), nil)
	if !rep.OK() || rep.Deleted != 1 {
		t.Fatalf("%+v", rep)
	}
}

// TestAuditPartitionDrop: retention drops a whole day partition (its jobs'
// deleted leaves appended as it drops) and then deletes the rows; the
// audit passes, between the two steps and after.
func TestAuditPartitionDrop(t *testing.T) {
	b := setup(t)
	d := time.Now().UTC().AddDate(0, 0, -40)
	d = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	name := "job_chunks_p" + d.Format("20060102")
	b.exec(t, fmt.Sprintf(`CREATE TABLE %s PARTITION OF job_chunks FOR VALUES FROM ('%s') TO ('%s'); SELECT jobstream_revoke_all('%[1]s')`,
		name, idAt(t, d).String()[:14]+"0000-0000-000000000000", idAt(t, d.AddDate(0, 0, 1)).String()[:14]+"0000-0000-000000000000"))
	b.jobAt(t, "acme", d.Add(2*time.Hour), 2)
	b.jobAt(t, "acme", d.Add(3*time.Hour), 1)
	b.step(t)
	days := 30
	if _, err := b.st.RetentionSettingsSet(b.ctx, &days, nil); err != nil {
		t.Fatal(err)
	}
	n, ok, err := b.st.RetentionDropPartition(b.ctx, name, "test")
	if err != nil || !ok || n != 2 {
		t.Fatalf("drop %s: %d %v %v", name, n, ok, err)
	}
	rep := b.audit(t, b.step(t), nil)
	if !rep.OK() || rep.Deleted != 2 {
		t.Fatalf("after the drop: %+v", rep)
	}
	if gone, err := b.st.RetentionDeleteBatch(b.ctx, 100, "test"); err != nil || len(gone) != 2 {
		t.Fatalf("rows: %+v %v", gone, err)
	}
	rep = b.audit(t, ledgerNote(t, b), nil)
	if !rep.OK() || rep.Deleted != 2 {
		t.Fatalf("after the rows: %+v", rep)
	}
}
