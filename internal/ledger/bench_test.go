package ledger_test

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/ledger"
)

// BenchmarkSequence measures the log's cost per job: appending a job leaf
// for an ended job and hashing it into the tree, in the sequencer's
// batches of 1,000, against real PostgreSQL.
//
//	go test -run '^$' -bench Sequence -benchtime 5000x ./internal/ledger/
func BenchmarkSequence(b *testing.B) {
	bb := setup(b)
	// In statements of 1,000: each job's first event takes an advisory
	// lock of its own until commit.
	for i := 0; i < b.N; i += 1000 {
		if _, err := bb.pool.Exec(bb.ctx, `INSERT INTO jobs (id, tenant, engine, request, status, finished_at)
			SELECT gen_random_uuid(), 'acme', 'sim', '{"prompt": "hi"}', 'completed', now() FROM generate_series(1, $1)`, min(1000, b.N-i)); err != nil {
			b.Fatal(err)
		}
	}
	seq := ledger.NewSequencer(bb.st, ledger.Config{})
	b.ResetTimer()
	var n int64
	for {
		s, err := seq.Step(bb.ctx)
		if err != nil {
			b.Fatal(err)
		}
		n += s.Appended
		if !s.More {
			break
		}
	}
	b.StopTimer()
	if n != int64(b.N) {
		b.Fatalf("logged %d jobs of %d", n, b.N)
	}
}

// TestProofSizes: at a million leaves an inclusion proof is 20 hashes
// (ceil(log2 n)) and a consistency proof at most twice that.
func TestProofSizes(t *testing.T) {
	zero := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return make([]tlog.Hash, len(idx)), nil })
	const n = 1_000_000
	maxIncl, maxCons := 0, 0
	for _, i := range []int64{0, 1, n / 2, n - 2, n - 1, 524287, 524288} {
		p, err := tlog.ProveRecord(n, i, zero)
		if err != nil {
			t.Fatal(err)
		}
		maxIncl = max(maxIncl, len(p))
	}
	for _, m := range []int64{1, 2, 3, 999, 524288, 524289, n / 3, n - 1} {
		p, err := tlog.ProveTree(n, m, zero)
		if err != nil {
			t.Fatal(err)
		}
		maxCons = max(maxCons, len(p))
	}
	t.Logf("1M leaves: inclusion proof <= %d hashes (%d bytes), consistency proof <= %d hashes (%d bytes) in the sizes tried", maxIncl, maxIncl*32, maxCons, maxCons*32)
	if maxIncl != 20 || maxCons > 40 {
		t.Fatalf("inclusion %d, consistency %d", maxIncl, maxCons)
	}
}
