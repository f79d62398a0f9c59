package ledger_test

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/ledger"
)

// TestJobLeafEncoding holds the database's job leaf (jobstream_log_job_leaves)
// and Go's encoding of the same job to the same bytes, and the decoder to
// the job's row.
func TestJobLeafEncoding(t *testing.T) {
	b := setup(t)
	id := b.job(t, "acme", 3)
	b.step(t)
	l, err := b.st.LogJobLeaf(b.ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Index != 0 || l.Kind != ledger.KindJob {
		t.Fatalf("leaf %d %s, want 0 job", l.Index, l.Kind)
	}
	v, err := ledger.Decode(l.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	j := v.(*ledger.Job)
	var (
		reqHash, final, tip []byte
		count, events       int64
	)
	if err := b.pool.QueryRow(b.ctx, `SELECT request_sha256, final_hash, chunk_count,
		(SELECT hash FROM job_events WHERE job_id = $1 ORDER BY seq DESC LIMIT 1), (SELECT count(*) FROM job_events WHERE job_id = $1)
		FROM jobs WHERE id = $1`, id).Scan(&reqHash, &final, &count, &tip, &events); err != nil {
		t.Fatal(err)
	}
	if j.ID != id || j.Tenant != "acme" || j.Engine != "sim" || j.Status != "completed" || j.ChainVersion != 2 ||
		!bytes.Equal(j.RequestSHA256, reqHash) || !bytes.Equal(j.FinalHash, final) || *j.ChunkCount != count ||
		j.EventCount != events || !bytes.Equal(j.EventTip, tip) || j.FinishedAt == nil {
		t.Fatalf("decoded %+v", j)
	}
	if got := j.Encode(); !bytes.Equal(got, l.Leaf) {
		t.Fatalf("Go encodes\n%x\nthe database wrote\n%x", got, l.Leaf)
	}
	// A second step appends nothing: one leaf per job.
	if s, err := b.seq.Step(b.ctx); err != nil || s.Appended != 0 || s.Checkpoint != nil {
		t.Fatalf("second step: %+v %v", s, err)
	}
}

// TestCheckpointAndProofs: the sequencer signs a checkpoint that opens with
// the verifier key, whose root is the RFC 6962 tree of the leaves, and
// whose inclusion and consistency proofs check with tlog alone.
func TestCheckpointAndProofs(t *testing.T) {
	b := setup(t)
	var ids = b.job(t, "acme", 1)
	cp1 := b.step(t)
	if cp1 == nil {
		t.Fatal("no checkpoint")
	}
	c1, err := ledger.OpenCheckpoint(cp1, b.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Size != 1 || c1.Origin != logName {
		t.Fatalf("checkpoint %+v", c1)
	}
	l, _ := b.st.LogJobLeaf(b.ctx, "", ids)
	if c1.Root != tlog.RecordHash(l.Leaf) {
		t.Fatal("a tree of one leaf: the root is the leaf's hash")
	}
	for range 4 {
		b.job(t, "acme", 2)
	}
	cp2 := b.step(t)
	c2, err := ledger.OpenCheckpoint(cp2, b.verifier)
	if err != nil || c2.Size != 5 {
		t.Fatalf("checkpoint %+v %v", c2, err)
	}
	// No growth, no checkpoint.
	if again := b.step(t); again != nil {
		t.Fatalf("signed again at the same size:\n%s", again)
	}
	tp, err := ledger.Consistency(b.ctx, b.st, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, 5, c2.Root, 1, c1.Root); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	leaves, _ := b.st.LogLeavesFrom(b.ctx, 0, 100)
	for _, l := range leaves {
		p, err := ledger.Inclusion(b.ctx, b.st, l.Index, 5)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, 5, c2.Root, l.Index, tlog.RecordHash(l.Leaf)); err != nil {
			t.Fatalf("inclusion of %d: %v", l.Index, err)
		}
	}
	// A replaced root: the signature fails.
	forged := strings.Replace(string(cp2), strings.Split(string(cp2), "\n")[2], strings.Split(string(cp1), "\n")[2], 1)
	if _, err := ledger.OpenCheckpoint([]byte(forged), b.verifier); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("a checkpoint with another root opened: %v", err)
	}
	if _, err := ledger.Consistency(b.ctx, b.st, 3, 6); err == nil {
		t.Fatal("a proof beyond the tree")
	}
}
