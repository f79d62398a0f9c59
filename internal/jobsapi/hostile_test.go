package jobsapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestUnstorableInput: values PostgreSQL's jsonb or text refuse (lone
// surrogate escapes, a NUL in an object key, numbers numeric cannot hold,
// invalid UTF-8) are a 400 naming the field, never a 500, and store
// nothing. The same holds for what would fail the job at run time: an
// empty prompt, an unknown role, a full_prompt that is no conversation.
func TestUnstorableInput(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	for _, tc := range []struct{ name, body, code, field string }{
		{"SurrogateInParam", `{"command":"hi","params":{"stop":"\ud800"}}`, "invalid_request", "params.stop"},
		{"LowSurrogateInParam", `{"command":"hi","params":{"stop":["a","\udc00"]}}`, "invalid_request", "params.stop[1]"},
		{"SurrogateInMessages", `{"messages":[{"role":"user","content":"\ud800x"}]}`, "invalid_request", "messages[0].content"},
		{"NULInNestedKey", `{"command":"hi","params":{"tools":[{"type":"function","function":{"name":"f","parameters":{"\u0000":1}}}]}}`, "invalid_request", "params.tools[0].function.parameters (an object key)"},
		{"NULInParamName", `{"command":"hi","params":{"a\u0000":1}}`, "invalid_request", `params key "a\x00"`},
		{"NumberOutOfRange", `{"command":"hi","params":{"temperature":1e999999}}`, "invalid_request", "params.temperature"},
		{"TinyNumber", `{"command":"hi","params":{"x":1e-20000}}`, "invalid_request", "params.x"},
		{"ZeroScale", `{"command":"hi","params":{"x":0.0e-99999}}`, "invalid_request", "params.x"},
		{"InvalidUTF8InCommand", "{\"command\":\"hi\",\"params\":{\"stop\":\"\xc3\"}}", "invalid_request", "params.stop"},
		{"EmptyPrompt", `{"command":""}`, "invalid_request", "the prompt is empty"},
		{"EmptyMessages", `{"messages":[]}`, "invalid_request", "the prompt is empty"},
		{"EmptyContent", `{"messages":[{"role":"user","content":""}]}`, "invalid_request", "the prompt is empty"},
		{"NullFullPrompt", `{"params":{"full_prompt":null}}`, "invalid_request", "the prompt is empty"},
		{"UnknownRole", `{"messages":[{"role":"wizard","content":"x"}]}`, "invalid_messages", `unknown role "wizard"`},
		{"UnknownRoleInParam", `{"command":"x","params":{"messages":[{"role":"root","content":"x"}]}}`, "invalid_messages", "params.messages"},
		{"FullPromptNumber", `{"command":"x","params":{"full_prompt":7}}`, "invalid_messages", "params.full_prompt"},
		{"FullPromptObject", `{"params":{"full_prompt":{"text":"x"}}}`, "invalid_messages", "params.full_prompt"},
		{"SimTokensAboveCap", `{"command":"x","params":{"sim_tokens":200000,"sim_tokens_per_second":0}}`, "invalid_params", "sim_tokens"},
	} {
		res := b.post(t, "/v1/jobs", tc.body)
		code, msg := res.apiError(t)
		if res.status != http.StatusBadRequest || code != tc.code || !strings.Contains(msg, tc.field) {
			t.Errorf("%s: %d %s %q, want 400 %s naming %s", tc.name, res.status, code, msg, tc.code, tc.field)
		}
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE tenant = $1`, b.tenant).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d jobs stored (%v), want none", n, err)
	}
}

// TestContentTypes: media types match per RFC 9110 (case-insensitive,
// parameters allowed, +json types are JSON), application/jsonx is not
// JSON, and a JSON body must say it is JSON.
func TestContentTypes(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	for ct, want := range map[string]int{
		"application/json":                http.StatusCreated,
		"Application/JSON":                http.StatusCreated,
		"application/json; charset=UTF-8": http.StatusCreated,
		"APPLICATION/JSON;charset=utf-8":  http.StatusCreated,
		"application/vnd.api+json":        http.StatusCreated,
		"application/jsonx":               http.StatusUnsupportedMediaType,
		"application/json-seq":            http.StatusUnsupportedMediaType,
		"text/json":                       http.StatusUnsupportedMediaType,
		"application/json; charset":       http.StatusUnsupportedMediaType,
		"":                                http.StatusUnsupportedMediaType,
	} {
		res := b.do(t, http.MethodPost, "/v1/jobs", ct, []byte(`{"command":"hi"}`))
		if res.status != want {
			t.Errorf("Content-Type %q: %d %s, want %d", ct, res.status, res.body, want)
		}
	}
}

// TestTranscriptUpto: upto=0 is the empty prefix (no chunk), upto=N the
// first N chunks, and no upto the whole job.
func TestTranscriptUpto(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{worker: true})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "count", Params: simParams("sim_tokens", 8, "sim_tokens_per_second", 0)})
	b.pollAll(t, job.ID, nil)
	var whole, zero, two jobsapi.TranscriptResponse
	b.get(t, "/v1/jobs/"+job.ID.String()+"/transcript").json(t, &whole)
	b.get(t, "/v1/jobs/"+job.ID.String()+"/transcript?upto=0").json(t, &zero)
	b.get(t, "/v1/jobs/"+job.ID.String()+"/transcript?upto=2").json(t, &two)
	if whole.Content == "" || whole.Upto != nil {
		t.Errorf("whole transcript %+v", whole)
	}
	if zero.Content != "" || zero.Upto == nil || *zero.Upto != 0 {
		t.Errorf("upto=0: %+v, want the empty prefix", zero)
	}
	if two.Content == "" || len(two.Content) >= len(whole.Content) || !strings.HasPrefix(whole.Content, two.Content) {
		t.Errorf("upto=2: %q, whole %q", two.Content, whole.Content)
	}
}

// TestCSRFNative: with CSRF on, a POST /v1/jobs or cancel authenticated by
// the session cookie alone needs X-CSRF-Token (403 without), like the
// SEMOSS routes; with it, or with Basic credentials, it goes through.
func TestCSRFNative(t *testing.T) {
	t.Parallel()
	st := store.New(dbtest.Pool(t))
	hub := notify.NewHub(store.ParseIDs)
	testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
	a := auth.New(st, auth.Config{CSRF: true})
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{Store: st, Reader: stream.NewReader(st, hub, time.Hour), Engines: engines(), Auth: a}))
	t.Cleanup(srv.Close)
	key, secret, err := auth.CreateKey(context.Background(), st, "csrf", "")
	if err != nil {
		t.Fatal(err)
	}
	// Log in: GET /config with Basic credentials sets the cookie.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/Monolith/api/config", nil)
	req.SetBasicAuth(key.AccessKey, secret)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/Monolith/api/config/fetchCsrf", nil)
	req.AddCookie(cookie)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	token := resp.Header.Get(auth.CSRFHeader)
	if token == "" {
		t.Fatal("no CSRF token")
	}
	post := func(path string, mods ...func(*http.Request)) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(`{"command":"hi"}`))
		req.Header.Set("Content-Type", "application/json")
		for _, m := range mods {
			m(req)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	withToken := func(r *http.Request) { r.Header.Set(auth.CSRFHeader, token) }
	withBasic := func(r *http.Request) { r.SetBasicAuth(key.AccessKey, secret) }
	job, err := st.Submit(context.Background(), store.SubmitParams{Tenant: key.Tenant, Engine: "sim", Request: store.Request{Command: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	cancel := "/v1/jobs/" + job.ID.String() + "/cancel"
	for _, c := range []struct {
		name string
		path string
		mods []func(*http.Request)
		want int
	}{
		{"SubmitCookieOnly", "/v1/jobs", []func(*http.Request){withCookie}, http.StatusForbidden},
		{"CancelCookieOnly", cancel, []func(*http.Request){withCookie}, http.StatusForbidden},
		{"SubmitCookieWrongToken", "/v1/jobs", []func(*http.Request){withCookie, func(r *http.Request) { r.Header.Set(auth.CSRFHeader, "x") }}, http.StatusForbidden},
		{"SubmitCookieToken", "/v1/jobs", []func(*http.Request){withCookie, withToken}, http.StatusCreated},
		{"SubmitBasic", "/v1/jobs", []func(*http.Request){withBasic}, http.StatusCreated},
		{"CancelCookieToken", cancel, []func(*http.Request){withCookie, withToken}, http.StatusOK},
	} {
		if got := post(c.path, c.mods...); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
