package jobsapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
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
	// The finished job's verdict was kept: tampering since is found by
	// an explicit re-check.
	if st, v := verify(job.path()); st != 200 || !v.OK {
		t.Errorf("tampered job, cached verdict: %d %+v, want the earlier ok", st, v)
	}
	res := b.get(t, job.path()+"/verify?recheck=true")
	var v verdict
	res.json(t, &v)
	if res.status != 200 || v.OK || v.FirstBadSeq == nil || *v.FirstBadSeq != 1 || v.Reason != "chunk 1 does not match its hash" {
		t.Errorf("tampered job, rechecked: %d %+v, want broken at seq 1", res.status, v)
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

// chunkReads counts the statements that read a job's chunks for verify
// (ChunkChainList), and holds the first hold of them until release is
// closed, telling arrived of each.
type chunkReads struct {
	n       atomic.Int64
	hold    int64
	arrived chan struct{}
	release chan struct{}
}

func (c *chunkReads) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: ChunkChainList ") {
		if c.n.Add(1) <= c.hold {
			c.arrived <- struct{}{}
			<-c.release
		}
	}
	return ctx
}

func (*chunkReads) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// keyAuth lets a request in as the API key its X-Key header names (a
// uuid), of one tenant.
type keyAuth string

func (a keyAuth) Authenticate(r *http.Request) (httpapi.Principal, error) {
	id, err := uuid.Parse(r.Header.Get("X-Key"))
	if err != nil {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	return httpapi.Principal{Tenant: string(a), KeyID: &id}, nil
}

// tracedAPI serves the native API over a pool traced by tr, as keys of one
// tenant.
func tracedAPI(t *testing.T, tr pgx.QueryTracer, cfg httpapi.Config) (*httptest.Server, *store.Store, string) {
	t.Helper()
	pcfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 8
	pcfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	tenant := testserver.Tenant(t)
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{Store: st, Engines: engines(), Auth: keyAuth(tenant), Config: cfg}))
	t.Cleanup(srv.Close)
	return srv, st, tenant
}

// finishedJob writes a finished job of tenant with n chunks.
func finishedJob(t *testing.T, st *store.Store, tenant string, n int) uuid.UUID {
	t.Helper()
	l := testserver.RunningJob(t, st.Pool(), tenant, fixtureOwner)
	var chunks []store.NewChunk
	for i := range n {
		chunks = append(chunks, testserver.Content(l, i, fmt.Sprintf("c%d ", i)))
	}
	chunks = append(chunks, testserver.FinishChunk(l, n, "stop"))
	if _, err := st.WriteBatch(context.Background(), fixtureOwner, chunks,
		[]store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}
	return l.JobID
}

func getAs(t *testing.T, srv *httptest.Server, key uuid.UUID, path string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("X-Key", key.String())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestVerifyCached (issue 18, item 5): a finished job's verdict is read
// from its chunks once; later verifies read only the job's row, until an
// explicit ?recheck=true. A running job is read every time.
func TestVerifyCached(t *testing.T) {
	t.Parallel()
	reads := &chunkReads{}
	srv, st, tenant := tracedAPI(t, reads, httpapi.Config{})
	key := uuid.New()
	done := finishedJob(t, st, tenant, 50)
	type verdict struct {
		OK        bool      `json:"ok"`
		Chunks    int       `json:"chunks"`
		Reason    string    `json:"reason"`
		Cached    bool      `json:"cached"`
		CheckedAt time.Time `json:"checked_at"`
	}
	verify := func(path string) (verdict, int64) {
		t.Helper()
		before := reads.n.Load()
		res := getAs(t, srv, key, path)
		var v verdict
		res.json(t, &v)
		if res.status != http.StatusOK || !v.OK || v.CheckedAt.IsZero() {
			t.Fatalf("GET %s = %d %s", path, res.status, res.body)
		}
		return v, reads.n.Load() - before
	}
	path := "/v1/jobs/" + done.String() + "/verify"
	first, n := verify(path)
	if n != 1 || first.Cached || first.Chunks != 51 {
		t.Errorf("first verify: %+v after %d chunk reads, want computed from 51 chunks, 1 read", first, n)
	}
	for range 3 {
		if v, n := verify(path); n != 0 || !v.Cached || !v.CheckedAt.Equal(first.CheckedAt) || v.Chunks != 51 {
			t.Errorf("verify again: %+v after %d chunk reads, want the cached verdict and none", v, n)
		}
	}
	if v, n := verify(path + "?recheck=true"); n != 1 || v.Cached || !v.CheckedAt.After(first.CheckedAt) {
		t.Errorf("recheck: %+v after %d chunk reads, want recomputed, 1 read", v, n)
	}
	if res := getAs(t, srv, key, path+"?recheck=maybe"); res.status != http.StatusBadRequest {
		t.Errorf("recheck=maybe: %d, want 400", res.status)
	}
	// Erasure keeps the chunk count and final hash: the intact verdict
	// kept for them must not be served for the erased job.
	if _, err := st.Erase(context.Background(), done, "GDPR", "dpo@example"); err != nil {
		t.Fatal(err)
	}
	if v, n := verify(path); n != 1 || v.Cached || !strings.HasPrefix(v.Reason, "erased by dpo@example at ") {
		t.Errorf("after erasure: %+v after %d chunk reads, want recomputed as erased", v, n)
	}
	if v, n := verify(path); n != 0 || !v.Cached || !strings.HasPrefix(v.Reason, "erased by ") {
		t.Errorf("erased again: %+v after %d chunk reads, want the cached erased verdict", v, n)
	}
	// A running job's verdict may change: read every time.
	running := testserver.RunningJob(t, st.Pool(), tenant, fixtureOwner)
	for range 2 {
		if v, n := verify("/v1/jobs/" + running.JobID.String() + "/verify"); n != 1 || v.Cached {
			t.Errorf("running job: %+v after %d chunk reads, want computed each time", v, n)
		}
	}
}

// TestExpensiveReadsLimited (issue 18, item 5): one key gets at most
// MaxExpensiveInFlight concurrent verify, transcript and audit requests;
// the next is a 429 with Retry-After, while another key is served.
func TestExpensiveReadsLimited(t *testing.T) {
	t.Parallel()
	const limit = 2
	reads := &chunkReads{hold: limit, arrived: make(chan struct{}, limit), release: make(chan struct{})}
	srv, st, tenant := tracedAPI(t, reads, httpapi.Config{MaxExpensiveInFlight: limit})
	released := false
	release := func() {
		if !released {
			released = true
			close(reads.release)
		}
	}
	t.Cleanup(release)
	job := finishedJob(t, st, tenant, 20)
	path := "/v1/jobs/" + job.String()
	greedy, other := uuid.New(), uuid.New()

	statuses := make(chan int, limit)
	for range limit {
		go func() { statuses <- getAs(t, srv, greedy, path+"/verify?recheck=true").status }()
	}
	for range limit {
		testserver.Recv(t, reads.arrived, "a verify reading chunks")
	}
	for _, route := range []string{"/verify?recheck=true", "/transcript", "/audit"} {
		res := getAs(t, srv, greedy, path+route)
		if code, _ := res.apiError(t); res.status != http.StatusTooManyRequests || code != "rate_limited" || res.header.Get("Retry-After") == "" {
			t.Errorf("%s while %d run: %d %s (Retry-After %q), want 429 rate_limited with Retry-After", route, limit, res.status, res.body, res.header.Get("Retry-After"))
		}
	}
	if res := getAs(t, srv, other, path+"/verify?recheck=true"); res.status != http.StatusOK {
		t.Errorf("another key's verify: %d %s, want 200", res.status, res.body)
	}
	// Cheap routes are not counted.
	if res := getAs(t, srv, greedy, path); res.status != http.StatusOK {
		t.Errorf("the job itself: %d, want 200", res.status)
	}
	release()
	for range limit {
		if st := testserver.Recv(t, statuses, "a held verify"); st != http.StatusOK {
			t.Errorf("held verify: %d, want 200", st)
		}
	}
	if res := getAs(t, srv, greedy, path+"/transcript"); res.status != http.StatusOK {
		t.Errorf("transcript once the verifies ended: %d, want 200", res.status)
	}
}
