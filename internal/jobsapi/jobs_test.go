package jobsapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

// tenantAuth lets every request in as one tenant: tests in this package
// share a database, and a tenant per test keeps their jobs apart.
type tenantAuth string

func (a tenantAuth) Authenticate(*http.Request) (httpapi.Principal, error) {
	return httpapi.Principal{Tenant: string(a)}, nil
}

type apiBundle struct {
	srv    *httptest.Server
	client *client.Client
	store  *store.Store
	pool   *pgxpool.Pool
	tenant string
	// stopWorker stops the worker (if any) and waits for it.
	stopWorker func()
}

type apiOptions struct {
	// worker runs a worker with a LISTEN connection on a database of the
	// test's own (a worker claims every queued job of its database).
	worker bool
	config httpapi.Config
	// tenant defaults to the test's name.
	tenant string
	// serverRole makes the API's store work as the server's database role
	// (store.AfterConnectApp), as serve does; store and pool stay the
	// owner's, for fixtures.
	serverRole bool
}

func engines() *engine.Registry {
	r := engine.NewRegistry()
	r.Register(sim.Info(), sim.New())
	r.Register(engine.Info{ID: "sim2", Provider: "sim"}, sim.New())
	return r
}

// setupAPI serves server.NewAPI with a real store over httptest.
func setupAPI(t *testing.T, o apiOptions) apiBundle {
	t.Helper()
	b := apiBundle{tenant: cmp.Or(o.tenant, testserver.Tenant(t)), stopWorker: func() {}}
	var hub *notify.Hub
	if o.worker {
		url := testserver.Database(t)
		b.pool = testserver.Pool(t, url, 4)
		b.store = store.New(b.pool)
		w := worker.New(b.store, engines(), worker.Config{})
		hub = notify.NewHub(store.ParseIDs)
		testserver.StartListener(t, url, "", hub, map[string]notify.Handler{
			store.ChannelJobs:   w.JobsHandler(),
			store.ChannelCancel: w.CancelHandler(),
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		b.stopWorker = func() { cancel(); <-done }
		t.Cleanup(b.stopWorker)
	} else {
		b.pool = dbtest.Pool(t)
		b.store = store.New(b.pool)
		hub = notify.NewHub(store.ParseIDs)
		testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	}
	apiStore := b.store
	if o.serverRole {
		cfg, err := pgxpool.ParseConfig(b.pool.Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 2
		cfg.AfterConnect = store.AfterConnectApp
		app, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(app.Close)
		apiStore = store.New(app)
	}
	api := server.NewAPI(server.APIDeps{
		Store:   apiStore,
		Reader:  stream.NewReader(apiStore, hub, time.Hour),
		Engines: engines(),
		Auth:    tenantAuth(b.tenant),
		Config:  o.config,
	})
	b.srv = httptest.NewServer(api)
	t.Cleanup(b.srv.Close)
	b.client = &client.Client{BaseURL: b.srv.URL, HTTP: b.srv.Client()}
	return b
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d %q: %v", r.status, r.body, err)
	}
}

// apiError decodes the API's one error shape.
func (r response) apiError(t *testing.T) (code, message string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%d response %q is not {\"error\":{\"code\":..,\"message\":..}}", r.status, r.body)
	}
	return e.Error.Code, e.Error.Message
}

func (b apiBundle) do(t *testing.T, method, path, contentType string, body []byte, header ...string) response {
	t.Helper()
	// A request that hangs (say, an event stream opened by mistake) fails
	// the test instead of the package.
	ctx, cancel := context.WithTimeout(context.Background(), testserver.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, data}
}

func (b apiBundle) get(t *testing.T, path string, header ...string) response {
	t.Helper()
	return b.do(t, http.MethodGet, path, "", nil, header...)
}

func (b apiBundle) post(t *testing.T, path, body string) response {
	t.Helper()
	return b.do(t, http.MethodPost, path, "application/json", []byte(body))
}

func (b apiBundle) submit(t *testing.T, req jobsapi.CreateJobRequest) jobsapi.Job {
	t.Helper()
	job, err := b.client.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return job
}

func simParams(kv ...any) map[string]json.RawMessage {
	p := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		raw, _ := json.Marshal(kv[i+1])
		p[kv[i].(string)] = raw
	}
	return p
}

// pollAll long-polls a job's chunks from offset 0 until it ends, calling
// each (if set) per chunk, and returns the chunks and the last page.
func (b apiBundle) pollAll(t *testing.T, id uuid.UUID, each func(store.Chunk)) ([]store.Chunk, jobsapi.ChunkPage) {
	t.Helper()
	var all []store.Chunk
	for {
		page, err := b.client.Chunks(context.Background(), id, client.ChunksParams{Offset: len(all), Wait: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Chunks) == 0 && !store.Terminal(page.Status) {
			t.Fatalf("a 20 s long-poll at offset %d expired with nothing", len(all))
		}
		for _, c := range page.Chunks {
			if c.Seq != len(all) {
				t.Fatalf("seq %d at offset %d", c.Seq, len(all))
			}
			all = append(all, c)
			if each != nil {
				each(c)
			}
		}
		if page.NextOffset != len(all) {
			t.Errorf("next_offset %d, want %d", page.NextOffset, len(all))
		}
		if store.Terminal(page.Status) && !page.More {
			return all, page
		}
	}
}

func chunkData(t *testing.T, c store.Chunk) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SubmitStreamComplete", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{worker: true})
		res := b.post(t, "/v1/jobs", `{"engine":"sim","command":"write about soccer","params":{"sim_tokens":25,"sim_tokens_per_second":0}}`)
		if res.status != http.StatusCreated {
			t.Fatalf("POST /v1/jobs = %d %s", res.status, res.body)
		}
		var job jobsapi.Job
		res.json(t, &job)
		if res.header.Get("Location") != "/v1/jobs/"+job.ID.String() || job.Status != store.StatusQueued || job.Engine != "sim" {
			t.Errorf("created %+v, Location %q", job, res.header.Get("Location"))
		}

		polled, last := b.pollAll(t, job.ID, nil)
		if last.Status != store.StatusCompleted || last.FinishReason != "stop" || len(polled) != 27 {
			t.Fatalf("ended %s/%s with %d chunks, want completed/stop with 27", last.Status, last.FinishReason, len(polled))
		}
		var text strings.Builder
		for _, c := range polled[:25] {
			text.WriteString(chunkData(t, c)["content"].(string))
		}

		// SSE replays the same chunks.
		var followed []store.Chunk
		end, err := b.client.Follow(ctx, job.ID, 0, func(c store.Chunk) error { followed = append(followed, c); return nil })
		if err != nil || end.Status != store.StatusCompleted || end.NextOffset != 27 || len(followed) != 27 {
			t.Errorf("Follow = %+v, %d chunks, %v", end, len(followed), err)
		}
		for i := range min(len(followed), len(polled)) {
			if followed[i].Seq != polled[i].Seq || !bytes.Equal(followed[i].Data, polled[i].Data) {
				t.Errorf("SSE chunk %d = %s, long-poll gave %s", i, followed[i].Data, polled[i].Data)
			}
		}

		tr, err := b.client.Transcript(ctx, job.ID)
		if err != nil || tr.Content != text.String() || tr.Status != store.StatusCompleted || string(tr.ToolCalls) != "[]" {
			t.Errorf("transcript = %+v, %v; want the streamed text", tr, err)
		}
		got, err := b.client.Get(ctx, job.ID)
		if err != nil || got.Status != store.StatusCompleted || got.FinishedAt == nil || got.Attempt != 1 || len(got.Error) != 0 {
			t.Errorf("GET job = %+v, %v", got, err)
		}
		if bytes.Contains(b.get(t, "/v1/jobs/"+job.ID.String()).body, []byte(`"error"`)) {
			t.Error("a completed job's JSON carries an error field")
		}
	})

	t.Run("CancelMidStream", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{worker: true})
		const tokens = 100_000
		job := b.submit(t, jobsapi.CreateJobRequest{Engine: "sim", Command: "go on", Params: simParams("sim_tokens", tokens, "sim_tokens_per_second", 200)})
		cancelled := false
		chunks, last := b.pollAll(t, job.ID, func(store.Chunk) {
			if cancelled {
				return
			}
			cancelled = true
			res := b.post(t, "/v1/jobs/"+job.ID.String()+"/cancel", "")
			var j jobsapi.Job
			res.json(t, &j)
			if res.status != http.StatusAccepted || j.CancelRequestedAt == nil {
				t.Errorf("cancel of a running job = %d %s, want 202 with cancel_requested_at", res.status, res.body)
			}
		})
		if last.Status != store.StatusCancelled || last.FinishReason != "cancelled" {
			t.Errorf("ended %s/%s, want cancelled", last.Status, last.FinishReason)
		}
		end := chunks[len(chunks)-1]
		if d := chunkData(t, end); len(d) != 1 || d["finish_reason"] != "cancelled" {
			t.Errorf("last chunk = %s, want {\"finish_reason\":\"cancelled\"}", end.Data)
		}
		if len(chunks) > tokens/10 {
			t.Errorf("%d chunks of %d: the engine did not stop", len(chunks), tokens)
		}
		// The engine really stopped: after the worker shut down (it waits
		// for its jobs), nothing follows the cancel chunk.
		b.stopWorker()
		page, err := b.client.Chunks(ctx, job.ID, client.ChunksParams{Offset: end.Seq + 1})
		if err != nil || len(page.Chunks) != 0 {
			t.Errorf("chunks after the cancel chunk: %+v, %v", page.Chunks, err)
		}
		res := b.post(t, "/v1/jobs/"+job.ID.String()+"/cancel", "")
		if code, _ := res.apiError(t); res.status != http.StatusConflict || code != "job_finished" {
			t.Errorf("cancel of a cancelled job = %d %s, want 409 job_finished", res.status, res.body)
		}
	})

	t.Run("CancelQueued", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{}) // no worker: the job stays queued
		job := b.submit(t, jobsapi.CreateJobRequest{Command: "hi"})
		got, err := b.client.Cancel(ctx, job.ID)
		if err != nil || got.Status != store.StatusCancelled || got.FinishReason != "cancelled" {
			t.Fatalf("cancel = %+v, %v", got, err)
		}
		chunks, last := b.pollAll(t, job.ID, nil)
		if len(chunks) != 1 || last.Status != store.StatusCancelled {
			t.Errorf("after cancel: %d chunks, %s", len(chunks), last.Status)
		}
		_, err = b.client.Cancel(ctx, job.ID)
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
			t.Errorf("second cancel: %v, want 409", err)
		}
	})

	t.Run("ListPagesWithFilters", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{})
		var ids []uuid.UUID // oldest first
		for i := range 7 {
			eng := "sim"
			if i%2 == 1 {
				eng = "sim2"
			}
			ids = append(ids, b.submit(t, jobsapi.CreateJobRequest{Engine: eng, Command: fmt.Sprint(i)}).ID)
		}
		if _, err := b.client.Cancel(ctx, ids[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := b.client.Cancel(ctx, ids[5]); err != nil {
			t.Fatal(err)
		}
		list := func(query string) (all []uuid.UUID, pages int) {
			before := ""
			for {
				res := b.get(t, "/v1/jobs?limit=3"+query+before)
				if res.status != http.StatusOK {
					t.Fatalf("GET /v1/jobs = %d %s", res.status, res.body)
				}
				var page jobsapi.JobList
				res.json(t, &page)
				pages++
				for _, j := range page.Jobs {
					all = append(all, j.ID)
				}
				if page.NextBefore == nil {
					if len(page.Jobs) > 3 {
						t.Errorf("page of %d jobs with limit 3", len(page.Jobs))
					}
					return all, pages
				}
				if len(page.Jobs) != 3 || *page.NextBefore != page.Jobs[2].ID {
					t.Errorf("page %d: %d jobs, next_before %s", pages, len(page.Jobs), page.NextBefore)
				}
				before = "&before=" + page.NextBefore.String()
				if pages > 10 {
					t.Fatal("too many pages")
				}
			}
		}
		want := func(idx ...int) []uuid.UUID {
			var out []uuid.UUID
			for _, i := range idx {
				out = append(out, ids[i])
			}
			return out
		}
		for _, tc := range []struct {
			query string
			want  []uuid.UUID
			pages int
		}{
			{"", want(6, 5, 4, 3, 2, 1, 0), 3},
			{"&engine=sim2", want(5, 3, 1), 1},
			{"&status=cancelled", want(5, 2), 1},
			{"&status=queued&engine=sim", want(6, 4, 0), 1},
			{"&engine=nope", nil, 1},
		} {
			got, pages := list(tc.query)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || pages != tc.pages {
				t.Errorf("list %q = %v in %d pages, want %v in %d (newest first)", tc.query, got, pages, tc.want, tc.pages)
			}
		}
		// Exactly a page's worth: the last page is not followed by an
		// empty one.
		res := b.get(t, "/v1/jobs?limit=7")
		var page jobsapi.JobList
		res.json(t, &page)
		if len(page.Jobs) != 7 || page.NextBefore != nil {
			t.Errorf("limit=7 of 7 jobs: %d jobs, next_before %v", len(page.Jobs), page.NextBefore)
		}
	})

	t.Run("TenantsAreIsolated", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{})
		other := setupAPI(t, apiOptions{tenant: testserver.Tenant(t) + "-other"}) // same database
		job := other.submit(t, jobsapi.CreateJobRequest{Command: "secret"})
		for _, path := range []string{"", "/chunks", "/events", "/transcript"} {
			res := b.get(t, "/v1/jobs/"+job.ID.String()+path)
			if code, _ := res.apiError(t); res.status != http.StatusNotFound || code != "job_not_found" {
				t.Errorf("GET another tenant's job%s = %d %s, want 404", path, res.status, res.body)
			}
		}
		res := b.post(t, "/v1/jobs/"+job.ID.String()+"/cancel", "")
		if res.status != http.StatusNotFound {
			t.Errorf("cancel another tenant's job = %d", res.status)
		}
		var page jobsapi.JobList
		b.get(t, "/v1/jobs").json(t, &page)
		if len(page.Jobs) != 0 {
			t.Errorf("list shows another tenant's jobs: %+v", page.Jobs)
		}
	})

	t.Run("EnginesAndHealth", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{})
		var engs struct{ Engines []engine.Info }
		b.get(t, "/v1/engines").json(t, &engs)
		if len(engs.Engines) != 2 || engs.Engines[0].ID != "sim" {
			t.Errorf("engines = %+v", engs)
		}
		if res := b.get(t, "/healthz"); res.status != http.StatusOK {
			t.Errorf("healthz = %d", res.status)
		}
		if res := b.get(t, "/readyz"); res.status != http.StatusOK {
			t.Errorf("readyz = %d", res.status)
		}
	})

	// Issue 18, item 13: every tenant may list the engines, so the
	// listing shows ids, provider and model only: not the base URL, whose
	// host is internal and whose query string may carry a key.
	t.Run("EnginesHideBaseURLs", func(t *testing.T) {
		t.Parallel()
		reg := engines()
		reg.Register(engine.Info{ID: "vllm", Provider: "openai", Model: "qwen3",
			BaseURL: "http://vllm.internal.corp:8000/v1?api-key=s3cret-in-query"}, sim.New())
		api := server.NewAPI(server.APIDeps{Store: store.New(dbtest.Pool(t)), Engines: reg, Auth: tenantAuth(testserver.Tenant(t))})
		srv := httptest.NewServer(api)
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL + "/v1/engines")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, leak := range []string{"base_url", "internal.corp", "s3cret", "8000"} {
			if bytes.Contains(body, []byte(leak)) {
				t.Errorf("GET /v1/engines shows %q: %s", leak, body)
			}
		}
		var engs struct{ Engines []map[string]string }
		if err := json.Unmarshal(body, &engs); err != nil || len(engs.Engines) != 3 {
			t.Fatalf("engines = %s (%v)", body, err)
		}
		if e := engs.Engines[2]; len(e) != 3 || e["id"] != "vllm" || e["provider"] != "openai" || e["model"] != "qwen3" {
			t.Errorf("vllm listed as %v, want exactly id, provider and model", e)
		}
	})

	t.Run("NotReady", func(t *testing.T) {
		t.Parallel()
		api := server.NewAPI(server.APIDeps{
			Store: store.New(dbtest.Pool(t)), Engines: engines(), Auth: tenantAuth(testserver.Tenant(t)),
			Ready: func(context.Context) error { return errors.New("LISTEN connection down") },
		})
		srv := httptest.NewServer(api)
		defer srv.Close()
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("LISTEN connection down")) {
			t.Errorf("readyz = %d %s, want 503 with the reason", resp.StatusCode, body)
		}
	})
}

// TestBadInput: every malformed request gets a 4xx in the API's error
// shape, never a 500.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{config: httpapi.Config{MaxBodyBytes: 1024}})
	known := b.submit(t, jobsapi.CreateJobRequest{Command: "hi"}).ID.String()
	unknown := uuid.NewString()

	type request struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		header      []string
		status      int
		code        string
	}
	get := func(name, path string, status int, code string, header ...string) request {
		return request{name: name, method: http.MethodGet, path: path, status: status, code: code, header: header}
	}
	post := func(name, body string, status int, code string) request {
		return request{name: name, method: http.MethodPost, path: "/v1/jobs", contentType: "application/json", body: body, status: status, code: code}
	}
	cases := []request{
		get("MalformedID", "/v1/jobs/not-a-uuid", 400, "invalid_job_id"),
		get("MalformedIDChunks", "/v1/jobs/123/chunks", 400, "invalid_job_id"),
		get("MalformedIDEvents", "/v1/jobs/zz/events", 400, "invalid_job_id"),
		get("MalformedIDTranscript", "/v1/jobs/"+known+"x/transcript", 400, "invalid_job_id"),
		get("BracedID", "/v1/jobs/{"+known+"}", 400, "invalid_job_id"),
		{name: "MalformedIDCancel", method: http.MethodPost, path: "/v1/jobs/nope/cancel", status: 400, code: "invalid_job_id"},
		get("UnknownID", "/v1/jobs/"+unknown, 404, "job_not_found"),
		get("UnknownIDChunks", "/v1/jobs/"+unknown+"/chunks", 404, "job_not_found"),
		get("UnknownIDChunksWaiting", "/v1/jobs/"+unknown+"/chunks?wait=20", 404, "job_not_found"),
		get("UnknownIDEvents", "/v1/jobs/"+unknown+"/events", 404, "job_not_found"),
		get("UnknownIDTranscript", "/v1/jobs/"+unknown+"/transcript", 404, "job_not_found"),
		{name: "UnknownIDCancel", method: http.MethodPost, path: "/v1/jobs/" + unknown + "/cancel", status: 404, code: "job_not_found"},
		get("NegativeOffset", "/v1/jobs/"+known+"/chunks?offset=-1", 400, "invalid_offset"),
		get("TextOffset", "/v1/jobs/"+known+"/chunks?offset=abc", 400, "invalid_offset"),
		get("HugeOffset", "/v1/jobs/"+known+"/chunks?offset=99999999999", 400, "invalid_offset"),
		get("NegativeWait", "/v1/jobs/"+known+"/chunks?wait=-1", 400, "invalid_wait"),
		get("TextWait", "/v1/jobs/"+known+"/chunks?wait=soon", 400, "invalid_wait"),
		get("NaNWait", "/v1/jobs/"+known+"/chunks?wait=NaN", 400, "invalid_wait"),
		get("InfWait", "/v1/jobs/"+known+"/chunks?wait=Inf", 400, "invalid_wait"),
		get("NegativeDurationWait", "/v1/jobs/"+known+"/chunks?wait=-5s", 400, "invalid_wait"),
		get("BadMinWait", "/v1/jobs/"+known+"/chunks?min_wait=x", 400, "invalid_min_wait"),
		get("ZeroLimit", "/v1/jobs/"+known+"/chunks?limit=0", 400, "invalid_limit"),
		get("NegativeLimit", "/v1/jobs/"+known+"/chunks?limit=-3", 400, "invalid_limit"),
		get("TextLimit", "/v1/jobs/"+known+"/chunks?limit=all", 400, "invalid_limit"),
		get("BadUpto", "/v1/jobs/"+known+"/transcript?upto=-1", 400, "invalid_upto"),
		get("BadEventsOffset", "/v1/jobs/"+known+"/events?offset=x", 400, "invalid_offset"),
		get("BadLastEventID", "/v1/jobs/"+known+"/events", 400, "invalid_last_event_id", "Last-Event-ID", "abc"),
		get("NegativeLastEventID", "/v1/jobs/"+known+"/events", 400, "invalid_last_event_id", "Last-Event-ID", "-2"),
		get("HugeLastEventID", "/v1/jobs/"+known+"/events", 400, "invalid_last_event_id", "Last-Event-ID", "2147483647"),
		get("ListBadStatus", "/v1/jobs?status=done", 400, "invalid_status"),
		get("ListBadBefore", "/v1/jobs?before=yesterday", 400, "invalid_before"),
		get("ListBadLimit", "/v1/jobs?limit=0", 400, "invalid_limit"),
		get("ListNULEngine", "/v1/jobs?engine=%00", 400, "invalid_engine"),
		get("ListInvalidUTF8Engine", "/v1/jobs?engine=%ff", 400, "invalid_engine"),
		post("InvalidJSON", `{"command":`, 400, "invalid_json"),
		post("NotJSON", `command=hi`, 400, "invalid_json"),
		post("JSONArray", `["hi"]`, 400, "invalid_json"),
		post("TrailingData", `{"command":"hi"}{"command":"again"}`, 400, "invalid_json"),
		post("EmptyBody", ``, 400, "invalid_json"),
		post("UnknownField", `{"command":"hi","temperature":0.2}`, 400, "invalid_json"),
		post("WrongFieldType", `{"command":42}`, 400, "invalid_json"),
		post("ParamsNotObject", `{"command":"hi","params":[1]}`, 400, "invalid_json"),
		post("Oversized", `{"command":"`+strings.Repeat("x", 2000)+`"}`, 413, "body_too_large"),
		post("UnknownEngine", `{"engine":"gpt-17","command":"hi"}`, 400, "unknown_engine"),
		post("NoCommand", `{"engine":"sim"}`, 400, "invalid_request"),
		post("BadMessages", `{"messages":{"role":"user"}}`, 400, "invalid_messages"),
		post("BadParam", `{"command":"hi","params":{"sim_tokens":-1}}`, 400, "invalid_params"),
		post("BadTools", `{"command":"hi","params":{"tools":[{"type":"function","function":{}}]}}`, 400, "invalid_params"),
		post("LongRoom", `{"command":"hi","room_id":"`+strings.Repeat("r", 300)+`"}`, 400, "invalid_room_id"),
		// PostgreSQL stores neither NUL characters nor invalid UTF-8.
		post("NULInCommand", `{"command":"a\u0000b"}`, 400, "invalid_request"),
		post("NULInRoom", `{"command":"hi","room_id":"r\u0000"}`, 400, "invalid_request"),
		post("NULInParam", `{"command":"hi","params":{"stop":["\u0000"]}}`, 400, "invalid_request"),
		post("NULInMessages", `{"messages":[{"role":"user","content":"\u0000"}]}`, 400, "invalid_request"),
		post("InvalidUTF8InParam", "{\"command\":\"hi\",\"params\":{\"stop\":\"\xff\"}}", 400, "invalid_request"),
		{name: "WrongContentType", method: http.MethodPost, path: "/v1/jobs", contentType: "text/plain", body: `{"command":"hi"}`, status: 415, code: "unsupported_media_type"},
		{name: "FormContentType", method: http.MethodPost, path: "/v1/jobs", contentType: "application/x-www-form-urlencoded", body: `command=hi`, status: 415, code: "unsupported_media_type"},
		{name: "WrongMethod", method: http.MethodDelete, path: "/v1/jobs/" + known, status: 405, code: "method_not_allowed"},
		get("NoRoute", "/v1/nothing", 404, "not_found"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := b.do(t, tc.method, tc.path, tc.contentType, []byte(tc.body), tc.header...)
			code, msg := res.apiError(t)
			if res.status != tc.status || code != tc.code {
				t.Errorf("%s %s = %d %s (%s), want %d %s", tc.method, tc.path, res.status, code, msg, tc.status, tc.code)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	// A valid NUL-free job with odd but legal text is fine.
	t.Run("UnicodeAccepted", func(t *testing.T) {
		t.Parallel()
		res := b.post(t, "/v1/jobs", `{"command":"h\u00e9llo \ud83d\ude00 \\u0000","params":{"stop":["\\u0000"]}}`)
		if res.status != http.StatusCreated {
			t.Errorf("= %d %s, want 201", res.status, res.body)
		}
	})
}

// TestQueuedAge: GET /v1/jobs/{id} of a job still queued (no worker here,
// as when admission control holds new jobs back) says how long it has
// waited; a job that left the queue does not.
func TestQueuedAge(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	job := b.submit(t, jobsapi.CreateJobRequest{Engine: "sim", Command: "wait in line"})
	res := b.get(t, "/v1/jobs/"+job.ID.String())
	var got jobsapi.Job
	res.json(t, &got)
	if got.Status != store.StatusQueued || got.QueuedSeconds == nil || *got.QueuedSeconds < 0 {
		t.Fatalf("GET queued job = %s", res.body)
	}
	if _, err := b.client.Cancel(context.Background(), job.ID); err != nil {
		t.Fatal(err)
	}
	res = b.get(t, "/v1/jobs/"+job.ID.String())
	if bytes.Contains(res.body, []byte(`"queued_seconds"`)) {
		t.Errorf("a cancelled job has a queue age: %s", res.body)
	}
}

// cachedAuth lets every request in as one API key, as a credential cache
// does for a few seconds after the key is revoked.
type cachedAuth struct {
	tenant string
	key    uuid.UUID
}

func (a cachedAuth) Authenticate(*http.Request) (httpapi.Principal, error) {
	return httpapi.Principal{Tenant: a.tenant, KeyID: &a.key}, nil
}

// TestSubmitWithRevokedKey: a request the credential cache still lets in
// after its key was revoked cannot submit a job: 401, nothing stored
// (issue 18, item 14: revocation cancels the key's jobs, so none may
// appear after it).
func TestSubmitWithRevokedKey(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	st := store.New(pool)
	tenant := testserver.Tenant(t)
	key, err := st.KeyCreate(context.Background(), store.NewKey{Name: "k", Tenant: tenant, AccessKey: "ak_" + uuid.NewString(), SecretHash: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.KeyRevoke(context.Background(), key.AccessKey); err != nil {
		t.Fatal(err)
	}
	api := server.NewAPI(server.APIDeps{Store: st, Engines: engines(), Auth: cachedAuth{tenant: tenant, key: key.ID}})
	srv := httptest.NewServer(api)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1/jobs", "application/json", strings.NewReader(`{"command":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte("revoked")) {
		t.Errorf("POST /v1/jobs with a revoked key = %d %s, want 401 saying the key was revoked", resp.StatusCode, body)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE tenant = $1`, tenant).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d jobs stored (%v), want none", n, err)
	}
}
