package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// rulesAPI serves the whole route table on a database of the test's own,
// as one tenant, without workers (jobs stay queued).
func rulesAPI(t *testing.T) *httptest.Server {
	t.Helper()
	st := store.New(dbtest.Pool(t))
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{
		Store: st, Reader: stream.NewReader(st, notify.NewHub(store.ParseIDs), 0), Engines: engines,
		Auth: oneTenant("rules-" + uuid.NewString()),
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, srv *httptest.Server, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	} else {
		req.Header.Del("Content-Type")
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestJSONContentTypeRule: every route that reads a JSON body, on every
// surface, applies one Content-Type rule (httpapi.JSONContentType), checked
// here with one table (jobstream issue 18 item 10: /v1/responses accepted
// a missing Content-Type, application/jsonx and application/json;;; and
// refused APPLICATION/JSON, which /v1/jobs accepted).
func TestJSONContentTypeRule(t *testing.T) {
	t.Parallel()
	srv := rulesAPI(t)
	status, body := send(t, srv, http.MethodPost, "/v1/jobs", "application/json", `{"engine":"sim","command":"hold me"}`)
	var job struct{ ID string }
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &job) != nil {
		t.Fatalf("submit: %d %s", status, body)
	}
	routes := []struct{ path, body string }{
		{"/v1/jobs", `{"engine":"sim","command":"hi"}`},
		{"/v1/jobs/" + job.ID + "/hold", `{"reason":"case 7"}`},
		{"/v1/responses", `{"model":"sim","input":"hi","background":true}`},
	}
	for _, tc := range []struct {
		contentType string
		ok          bool
	}{
		{"", false},
		{"application/jsonx", false},
		{"application/json;;;", false},
		{"application/json; charset", false},
		{"text/plain", false},
		{"application/x-www-form-urlencoded", false},
		{"json", false},
		{"application/json", true},
		{"APPLICATION/JSON", true},
		{"Application/Json; Charset=UTF-8", true},
		{"application/merge-patch+json", true},
	} {
		for _, rt := range routes {
			status, body := send(t, srv, http.MethodPost, rt.path, tc.contentType, rt.body)
			switch {
			case tc.ok && (status < 200 || status > 299):
				t.Errorf("POST %s with Content-Type %q: %d %.200s, want it accepted", rt.path, tc.contentType, status, body)
			case !tc.ok && (status != http.StatusUnsupportedMediaType || !strings.Contains(body, "Content-Type must be application/json")):
				t.Errorf("POST %s with Content-Type %q: %d %.200s, want 415 saying so", rt.path, tc.contentType, status, body)
			}
		}
	}
}

// TestMalformedQuery: a query string with a malformed pair is a 400 naming
// the parameter on every surface, in its own error shape, where it was
// silently dropped (jobstream issue 18 item 10: ?status=completed;x listed
// every job).
func TestMalformedQuery(t *testing.T) {
	t.Parallel()
	srv := rulesAPI(t)
	id := uuid.NewString()
	for _, tc := range []struct {
		method, path, param, shape string
	}{
		{"GET", "/v1/jobs?status=completed;x", "status", `"code":"invalid_query"`},
		{"GET", "/v1/jobs?engine=sim&limit=%zz", "limit", `"code":"invalid_query"`},
		{"GET", "/v1/jobs?%zz=1", "%zz", `"code":"invalid_query"`},
		{"GET", "/v1/jobs/" + id + "/chunks?offset=1;wait=5", "offset", `"code":"invalid_query"`},
		{"GET", "/v1/jobs/" + id + "/audit?after=1;limit=1", "after", `"code":"invalid_query"`},
		{"GET", "/v1/responses/resp_" + strings.ReplaceAll(id, "-", "") + "?stream=true;x", "stream", `"type":"invalid_request_error"`},
		{"POST", "/Monolith/api/engine/status?jobId=" + id + ";x", "jobId", `"errorMessage"`},
	} {
		status, body := send(t, srv, tc.method, tc.path, "application/x-www-form-urlencoded", "")
		if status != http.StatusBadRequest || !strings.Contains(body, `\"`+tc.param+`\"`) || !strings.Contains(body, tc.shape) {
			t.Errorf("%s %s: %d %s, want 400 naming %q in the surface's shape (%s)", tc.method, tc.path, status, body, tc.param, tc.shape)
		}
	}
	// Well-formed queries are untouched: %3B is a semicolon in a value.
	if status, body := send(t, srv, "GET", "/v1/jobs?status=completed&engine=a%3Bb", "", ""); status != http.StatusOK {
		t.Errorf("a well-formed query: %d %s", status, body)
	}
}
