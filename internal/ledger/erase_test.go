package ledger_test

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/ledger"
)

// TestAuditLegitimateErasure: a logged job erased, and one erased before
// the sequencer logged it (its job leaf is appended first, in the erasing
// transaction); the erased leaves carry the request hash, the seal, the
// chunk hashes' SHA-256 and the event's hash; the audit passes and
// reports both erasures by whom and when.
func TestAuditLegitimateErasure(t *testing.T) {
	b := setup(t)
	logged := b.job(t, "acme", 3)
	b.job(t, "acme", 1)
	cp1 := b.step(t)
	unlogged := b.job(t, "acme", 2)
	for _, id := range []any{logged, unlogged} {
		if _, err := b.pool.Exec(b.ctx, `SELECT jobstream_erase($1, 'GDPR Art. 17', 'dpo@example')`, id); err != nil {
			t.Fatal(err)
		}
	}
	var kinds string
	if err := b.pool.QueryRow(b.ctx, `SELECT string_agg(kind, ',' ORDER BY idx) FROM log_leaves`).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if kinds != "job,job,erased,job,erased" {
		t.Fatalf("leaves %s", kinds)
	}

	// The erased leaf, byte for byte what the row and the event kept.
	var leaf, reqHash, finalHash, hashes, eventHash []byte
	var count int64
	if err := b.pool.QueryRow(b.ctx, `SELECT l.leaf, j.request_sha256, j.final_hash, j.chunk_count,
			(SELECT string_agg(hash, ''::bytea ORDER BY seq) FROM job_chunks WHERE job_id = j.id),
			(SELECT hash FROM job_events WHERE job_id = j.id AND event = 'erased')
		FROM log_leaves l JOIN jobs j ON j.id = l.job_id WHERE l.kind = 'erased' AND l.job_id = $1`, logged).
		Scan(&leaf, &reqHash, &finalHash, &count, &hashes, &eventHash); err != nil {
		t.Fatal(err)
	}
	v, err := ledger.Decode(leaf)
	if err != nil {
		t.Fatal(err)
	}
	e := v.(*ledger.Erased)
	sum := sha256.Sum256(hashes)
	if e.ID != logged || e.Tenant != "acme" || !bytes.Equal(e.RequestSHA256, reqHash) || e.ChunkCount != count ||
		!bytes.Equal(e.FinalHash, finalHash) || !bytes.Equal(e.ChunkHashes, sum[:]) || !bytes.Equal(e.EventHash, eventHash) {
		t.Fatalf("erased leaf %+v", e)
	}

	rep := b.audit(t, b.step(t), cp1)
	if !rep.OK() || rep.Jobs != 3 || len(rep.Erasures) != 2 {
		t.Fatalf("%+v", rep)
	}
	for _, f := range rep.Erasures {
		if !strings.HasPrefix(f.Reason, "erased by dpo@example at ") || !strings.HasSuffix(f.Reason, ": GDPR Art. 17") {
			t.Fatalf("erasure reported as %q", f.Reason)
		}
	}
}

// TestAuditErasedJobEditedAfterwards: an owner changes an erased job's
// chunk hash and recomputes what the database holds of it (the erased
// event's kept hashes and the event's hash), so that verify passes; the
// audit still names the job, from the erased leaf. Rewriting the seal too
// is caught against the job leaf.
func TestAuditErasedJobEditedAfterwards(t *testing.T) {
	b := setup(t)
	id := b.job(t, "acme", 3)
	other := b.job(t, "acme", 3)
	for _, j := range []any{id, other} {
		if _, err := b.pool.Exec(b.ctx, `SELECT jobstream_erase($1, 'GDPR', 'dpo@example')`, j); err != nil {
			t.Fatal(err)
		}
	}
	cp := b.step(t)
	if rep := b.audit(t, cp, nil); !rep.OK() {
		t.Fatalf("before the edit: %v", rep.Findings)
	}
	b.asOwner(t, `
		UPDATE job_chunks SET hash = sha256(hash) WHERE job_id = $1 AND seq = 1;
		UPDATE job_events SET detail = jsonb_set(detail, '{chunk_hashes_sha256}',
			to_jsonb(encode(sha256((SELECT string_agg(hash, ''::bytea ORDER BY seq) FROM job_chunks WHERE job_id = $1)), 'hex')))
		WHERE job_id = $1 AND event = 'erased';
		UPDATE job_events e SET hash = job_event_hash((SELECT p.hash FROM job_events p WHERE p.job_id = e.job_id AND p.seq = e.seq - 1), e)
		WHERE job_id = $1 AND event = 'erased'`, id)
	if res, err := b.st.Verify(b.ctx, "", id); err != nil || !res.OK {
		t.Fatalf("the edit should pass verify (that is the point): %+v %v", res, err)
	}
	rep := b.audit(t, cp, nil)
	wantFinding(t, rep, &id, "its chunk hashes are not the ones kept when it was erased")
	for _, f := range rep.Findings {
		if f.JobID != nil && *f.JobID == other {
			t.Fatalf("an untouched erased job was named: %v", f)
		}
	}

	b.asOwner(t, `UPDATE job_chunks SET hash = sha256(hash) WHERE job_id = $1 AND seq = 3;
		UPDATE jobs SET final_hash = (SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 3) WHERE id = $1`, other)
	wantFinding(t, b.audit(t, cp, nil), &other, "its seal (chunk count, final hash) is not the one logged")
}

// TestAuditErasedByHand: an owner erases a logged job by hand, triggers
// off, with no erased event or leaf: the audit names it.
func TestAuditErasedByHand(t *testing.T) {
	b := setup(t)
	id := b.job(t, "acme", 2)
	cp := b.step(t)
	b.asOwner(t, `
		UPDATE job_chunks SET data = '{"erased":true}' WHERE job_id = $1;
		UPDATE jobs SET request = '{"erased":true}', erased_at = now(), erased_by = 'owner', erase_reason = 'x' WHERE id = $1`, id)
	rep := b.audit(t, cp, nil)
	wantFinding(t, rep, &id, "marked erased, but no erased leaf follows its leaf 0")
	wantFinding(t, rep, &id, "its audit trail records no erasure")
}
