package jobsapi_test

import (
	"context"
	"testing"

	"github.com/jobstream/jobstream/internal/testserver"
)

// TestVerifyRoute: GET /v1/jobs/{id}/verify reports a running job intact
// up to its last chunk, a finished one intact, a tampered one with its
// first bad seq, and another tenant's job as not found.
func TestVerifyRoute(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	job := b.fixture(t)
	type verdict struct {
		OK          bool   `json:"ok"`
		Chunks      int    `json:"chunks"`
		FirstBadSeq *int   `json:"first_bad_seq"`
		Reason      string `json:"reason"`
	}
	verify := func(path string) (int, verdict) {
		t.Helper()
		res := b.get(t, path+"/verify")
		var v verdict
		if res.status == 200 {
			res.json(t, &v)
		}
		return res.status, v
	}

	job.write(t, 3)
	if st, v := verify(job.path()); st != 200 || !v.OK || v.Chunks != 3 || v.FirstBadSeq != nil || v.Reason == "" {
		t.Errorf("running job: %d %+v, want ok with 3 chunks", st, v)
	}
	job.finish(t)
	if st, v := verify(job.path()); st != 200 || !v.OK || v.Chunks != 4 || v.Reason != "intact" {
		t.Errorf("finished job: %d %+v, want ok with 4 chunks", st, v)
	}

	ctx := context.Background()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
	if err == nil {
		_, err = conn.Exec(ctx, `UPDATE job_chunks SET data = '{"content":"forged"}' WHERE job_id = $1 AND seq = 1`, job.lease.JobID)
	}
	conn.Conn().Close(ctx) //nolint:errcheck // drop the session with its setting
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	if st, v := verify(job.path()); st != 200 || v.OK || v.FirstBadSeq == nil || *v.FirstBadSeq != 1 || v.Reason != "chunk 1 does not match its hash" {
		t.Errorf("tampered job: %d %+v, want broken at seq 1", st, v)
	}

	// The auditor's attack: the finish chunk deleted and the job re-sealed
	// for the shorter chain, by a superuser bypassing the triggers.
	cut := b.fixture(t)
	cut.write(t, 2)
	cut.finish(t)
	conn, err = b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
	if err == nil {
		_, err = conn.Exec(ctx, `DELETE FROM job_chunks WHERE job_id = $1 AND seq = 2`, cut.lease.JobID)
	}
	if err == nil {
		_, err = conn.Exec(ctx, `UPDATE jobs SET chunk_count = 2,
			final_hash = (SELECT hash FROM job_chunks WHERE job_id = $1 AND seq = 1) WHERE id = $1`, cut.lease.JobID)
	}
	conn.Conn().Close(ctx) //nolint:errcheck // drop the session with its setting
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	want := "the job ended without a finish chunk: chunk 1, the last stored, has no finish_reason"
	if st, v := verify(cut.path()); st != 200 || v.OK || v.FirstBadSeq == nil || *v.FirstBadSeq != 2 || v.Reason != want {
		t.Errorf("re-sealed job without its finish chunk: %d %+v, want broken at seq 2: %s", st, v, want)
	}

	other := testserver.RunningJob(t, b.pool, "another-tenant", fixtureOwner)
	if res := b.get(t, "/v1/jobs/"+other.JobID.String()+"/verify"); res.status != 404 {
		t.Errorf("another tenant's job: %d %s, want 404", res.status, res.body)
	} else if code, _ := res.apiError(t); code != "job_not_found" {
		t.Errorf("another tenant's job: code %q, want job_not_found", code)
	}
	if res := b.get(t, "/v1/jobs/not-a-uuid/verify"); res.status != 400 {
		t.Errorf("malformed id: %d, want 400", res.status)
	}
}
