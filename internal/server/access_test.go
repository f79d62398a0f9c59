package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// accessRecords counts the JobAccessRecord statements of a pool.
type accessRecords struct{ n atomic.Int64 }

func (c *accessRecords) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: JobAccessRecord") {
		c.n.Add(1)
	}
	return ctx
}

func (c *accessRecords) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// accessBundle is the whole HTTP API, as serve builds it, on a database of
// its own, working as the server's role.
type accessBundle struct {
	owner   *pgxpool.Pool
	store   *store.Store
	app     *pgxpool.Pool
	records *accessRecords
	tenant  string
}

func setupAccess(t *testing.T) *accessBundle {
	t.Helper()
	dbURL := testserver.Database(t) // no other test's worker may claim its queued jobs
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	cfg.AfterConnect = store.AfterConnectApp
	records := &accessRecords{}
	cfg.ConnConfig.Tracer = records
	app, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	return &accessBundle{owner: testserver.Pool(t, dbURL, 2), store: store.New(app), app: app, records: records, tenant: testserver.Tenant(t)}
}

// serve starts a node: the API over its own Store (its own access cache)
// on the bundle's database.
func (b *accessBundle) serve(t *testing.T) string {
	t.Helper()
	st := store.New(b.app)
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	api := server.NewAPI(server.APIDeps{
		Store: st, Reader: stream.NewReader(st, nil, 0), Engines: engines, Auth: auth.New(st, auth.Config{}),
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}

// key is an API key and the actor its requests are recorded as.
type key struct {
	access, secret, actor string
}

func (b *accessBundle) key(t *testing.T, tenant string) key {
	t.Helper()
	// Keys are the owner's to create (jobstream keys create).
	k, secret, err := auth.CreateKey(context.Background(), store.New(b.owner), "reader", tenant)
	if err != nil {
		t.Fatal(err)
	}
	return key{access: k.AccessKey, secret: secret, actor: "api_key:" + k.ID.String()}
}

// finishedJob is a completed job of the bundle's tenant with three chunks.
func (b *accessBundle) finishedJob(t *testing.T) uuid.UUID {
	t.Helper()
	l := testserver.RunningJob(t, b.owner, b.tenant, "w")
	chunks := []store.NewChunk{testserver.Content(l, 0, "private "), testserver.Content(l, 1, "words"), testserver.FinishChunk(l, 2, "stop")}
	if _, err := b.store.WriteBatch(context.Background(), "w", chunks, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}
	return l.JobID
}

// client sends requests as one key (Basic), or with its session cookie
// only once logged in.
type keyClient struct {
	t     *testing.T
	base  string
	k     key
	hc    *http.Client
	basic bool
}

func newClient(t *testing.T, base string, k key) *keyClient {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &keyClient{t: t, base: base, k: k, hc: &http.Client{Jar: jar, Transport: tr}, basic: true}
}

// login starts a SEMOSS session; later requests carry its cookie alone.
func (c *keyClient) login() {
	c.t.Helper()
	form := url.Values{"username": {c.k.access}, "password": {c.k.secret}, "disableRedirect": {"true"}}
	c.basic = false
	if status, body := c.do("POST", "/Monolith/api/auth/login", form); status != 200 || !strings.Contains(body, `"success":"true"`) {
		c.t.Fatalf("login: %d %s", status, body)
	}
}

// do sends a GET (form nil) or a form POST and returns the answer.
func (c *keyClient) do(method, path string, form url.Values) (int, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.basic {
		req.SetBasicAuth(c.k.access, c.k.secret)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// accessRecord is one 'accessed' event of a job.
type accessRecord struct {
	Actor, Reason, Request string
}

func accessRecordsOf(t *testing.T, pool *pgxpool.Pool, job uuid.UUID) []accessRecord {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT actor, coalesce(reason, ''), coalesce(detail->>'request', '')
		FROM job_events WHERE job_id = $1 AND event = 'accessed' ORDER BY seq`, job)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (accessRecord, error) {
		var a accessRecord
		return a, r.Scan(&a.Actor, &a.Reason, &a.Request)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPollingRecordsOneAccessPerKey (issue 17, item 10): polling a job's
// chunks many times with one key leaves exactly one 'accessed' event for
// that key (this hour), on every node; after the first poll a node records
// nothing more, so a poller costs no database write. A second key leaves
// its own; another tenant's key gets 404 and leaves none.
func TestPollingRecordsOneAccessPerKey(t *testing.T) {
	t.Parallel()
	b := setupAccess(t)
	node1, node2 := b.serve(t), b.serve(t)
	job := b.finishedJob(t)
	a, second, stranger := b.key(t, b.tenant), b.key(t, b.tenant), b.key(t, "other-"+b.tenant)
	path := "/v1/jobs/" + job.String() + "/chunks"

	poll := func(base string, k key, n, want int) {
		t.Helper()
		c := newClient(t, base, k)
		for range n {
			if status, body := c.do("GET", path, nil); status != want {
				t.Fatalf("GET %s: %d %s, want %d", path, status, body, want)
			}
		}
	}
	poll(node1, a, 10, 200)
	if n := b.records.n.Load(); n != 1 {
		t.Errorf("10 polls by one key cost %d JobAccessRecord statements, want 1", n)
	}
	poll(node2, a, 3, 200) // another node: one statement, which writes nothing
	poll(node1, second, 4, 200)
	poll(node1, stranger, 3, 404)

	got := accessRecordsOf(t, b.owner, job)
	want := []accessRecord{{a.actor, store.AccessChunks, "GET " + path}, {second.actor, store.AccessChunks, "GET " + path}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("accessed events %+v, want %+v (this test assumes it runs within one UTC hour)", got, want)
	}
}

// TestEveryContentReadIsRecorded: each way the API hands out a job's
// content records one 'accessed' event for the key, however many times it
// is called, naming what was read first and the request.
func TestEveryContentReadIsRecorded(t *testing.T) {
	t.Parallel()
	b := setupAccess(t)
	base := b.serve(t)
	k := b.key(t, b.tenant)
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name string
		// session: log in to SEMOSS first (reads without offset keep
		// a read position per session).
		session bool
		// response: the job is a Response (queued).
		response bool
		method   string
		path     func(id uuid.UUID) string
		form     func(id uuid.UUID) url.Values
		reason   string
	}{
		{name: "long-poll", method: "GET", path: func(id uuid.UUID) string { return "/v1/jobs/" + id.String() + "/chunks" }, reason: store.AccessChunks},
		{name: "SSE", method: "GET", path: func(id uuid.UUID) string { return "/v1/jobs/" + id.String() + "/events" }, reason: store.AccessChunks},
		{name: "transcript", method: "GET", path: func(id uuid.UUID) string { return "/v1/jobs/" + id.String() + "/transcript" }, reason: store.AccessTranscript},
		{name: "audit", method: "GET", path: func(id uuid.UUID) string { return "/v1/jobs/" + id.String() + "/audit" }, reason: store.AccessAudit},
		{name: "verify", method: "GET", path: func(id uuid.UUID) string { return "/v1/jobs/" + id.String() + "/verify" }, reason: store.AccessVerify},
		{name: "pixelJobStreaming with offset", method: "POST", path: func(uuid.UUID) string { return "/Monolith/api/engine/pixelJobStreaming" },
			form: func(id uuid.UUID) url.Values { return form("jobId", id.String(), "offset", "0") }, reason: store.AccessChunks},
		{name: "pixelJobStreaming without offset", session: true, method: "POST", path: func(uuid.UUID) string { return "/Monolith/api/engine/pixelJobStreaming" },
			form: func(id uuid.UUID) url.Values { return form("jobId", id.String()) }, reason: store.AccessChunks},
		{name: "SEMOSS partial", session: true, method: "POST", path: func(uuid.UUID) string { return "/Monolith/api/engine/partial" },
			form: func(id uuid.UUID) url.Values { return form("jobId", id.String()) }, reason: store.AccessChunks},
		{name: "SEMOSS result", method: "POST", path: func(uuid.UUID) string { return "/Monolith/api/engine/result" },
			form: func(id uuid.UUID) url.Values { return form("jobId", id.String()) }, reason: store.AccessChunks},
		{name: "GET /v1/responses/{id}", response: true, method: "GET",
			path: func(id uuid.UUID) string { return "/v1/responses/resp_" + strings.ReplaceAll(id.String(), "-", "") }, reason: store.AccessResponse},
		{name: "response input items", response: true, method: "GET",
			path: func(id uuid.UUID) string {
				return "/v1/responses/resp_" + strings.ReplaceAll(id.String(), "-", "") + "/input_items"
			}, reason: store.AccessInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var job uuid.UUID
			if tc.response {
				j, err := b.store.SubmitResponse(context.Background(), store.SubmitParams{Tenant: b.tenant, Engine: "sim", Request: store.Request{Command: "hi"}},
					[]byte(`{}`), []byte(`[{"type":"message","status":"completed","role":"user","content":[{"type":"input_text","text":"hi"}]}]`))
				if err != nil {
					t.Fatal(err)
				}
				job = j.ID
			} else {
				job = b.finishedJob(t)
			}
			c := newClient(t, base, k)
			if tc.session {
				c.login()
			}
			var f url.Values
			if tc.form != nil {
				f = tc.form(job)
			}
			for range 3 {
				if status, body := c.do(tc.method, tc.path(job), f); status != 200 || strings.Contains(body, "Unknown") {
					t.Fatalf("%s %s: %d %s", tc.method, tc.path(job), status, body)
				}
			}
			want := accessRecord{Actor: k.actor, Reason: tc.reason, Request: tc.method + " " + tc.path(job)}
			if got := accessRecordsOf(t, b.owner, job); len(got) != 1 || got[0] != want {
				t.Errorf("accessed events %+v, want [%+v]", got, want)
			}
		})
	}
}
