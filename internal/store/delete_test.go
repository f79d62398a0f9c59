package store_test

import (
	"context"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestDeleteJobDeletesChunks: job_chunks has no foreign key to jobs (its
// per-row check was most of a group commit, migrations/00020), yet
// deleting jobs (as retention's role, the only one that may) still deletes
// their chunks, and only theirs.
func TestDeleteJobDeletesChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := testserver.Tenant(t)
	gone, kept := runningJob(t, pool, tenant, "w"), runningJob(t, pool, tenant, "w")
	if _, err := s.WriteBatch(ctx, "w", []store.NewChunk{content(gone, 0, "a"), content(gone, 1, "b"), content(kept, 0, "c")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `BEGIN; SET LOCAL ROLE jobstream_retention; DELETE FROM jobs WHERE id = '`+gone.JobID.String()+`'; COMMIT`); err != nil {
		t.Fatal(err)
	}
	if got := chunkSeqs(t, pool, gone.JobID); len(got) != 0 {
		t.Errorf("chunks of the deleted job: %v, want none", got)
	}
	if got := chunkSeqs(t, pool, kept.JobID); len(got) != 1 {
		t.Errorf("chunks of the other job: %v, want [0]", got)
	}
}
