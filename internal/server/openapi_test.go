package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/openapi"
	"github.com/jobstream/jobstream/internal/server"
)

// TestRoutesDocumented walks the real route table (chi.Walk over
// NewAPI's router, with every optional route enabled) and fails for a
// route and method the OpenAPI document lacks, or one it documents that
// is not routed: the document cannot drift from routes.go.
func TestRoutesDocumented(t *testing.T) {
	t.Parallel()
	spec, err := openapi.Parse()
	if err != nil {
		t.Fatal(err)
	}
	api := server.NewAPI(server.APIDeps{Auth: httpapi.DevAuth{}, Metrics: http.NotFoundHandler()})
	var routed []string
	err = chi.Walk(api.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		// chi spells a sub-router's root "/v1/responses/" and a wildcard
		// "/console/*"; the document spells them "/v1/responses" and
		// "/console/{asset}".
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		if p, ok := strings.CutSuffix(route, "/*"); ok {
			route = p + "/{asset}"
		}
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(routed)
	routed = slices.Compact(routed)
	documented := spec.Operations()
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is routed but not in internal/openapi/openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("%s is documented but not routed", d)
		}
	}
	if len(routed) < 35 {
		t.Errorf("walked only %d routes: %v", len(routed), routed)
	}
}

// TestOpenAPISamples sends sample requests of each surface to the real
// route table on a real database, checks each request body against the
// document's request schema and each answer against the schema of its
// route, status and content type: success and error shapes of the native
// API, the Responses API and SEMOSS, health and the document itself.
func TestOpenAPISamples(t *testing.T) {
	t.Parallel()
	spec, err := openapi.Parse()
	if err != nil {
		t.Fatal(err)
	}
	srv := rulesAPI(t)
	form := "application/x-www-form-urlencoded"
	jsonType := "application/json"

	type sample struct {
		method, path, route string
		contentType, body   string
		status              int
	}
	run := func(s sample) string {
		t.Helper()
		if s.body != "" && s.contentType == jsonType {
			schema, err := spec.RequestSchema(s.method, s.route, s.contentType)
			if err != nil {
				t.Fatal(err)
			}
			if err := spec.Check(schema, []byte(s.body)); err != nil {
				t.Errorf("%s %s request: %v", s.method, s.path, err)
			}
		}
		if s.contentType == form {
			schema, err := spec.RequestSchema(s.method, s.route, form)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := url.ParseQuery(s.body)
			if err != nil {
				t.Fatal(err)
			}
			obj := map[string]any{}
			for k := range vals {
				obj[k] = vals.Get(k)
			}
			// Form values are strings; check the field names and
			// required fields only.
			if err := spec.CheckValue(stringsOnly(t, spec, schema), obj); err != nil {
				t.Errorf("%s %s form: %v", s.method, s.path, err)
			}
		}
		status, body := send(t, srv, s.method, s.path, s.contentType, s.body)
		if status != s.status {
			t.Fatalf("%s %s: %d, want %d: %s", s.method, s.path, status, s.status, body)
		}
		schema, err := spec.ResponseSchema(s.method, s.route, status, jsonType)
		if err != nil {
			t.Fatal(err)
		}
		if err := spec.Check(schema, []byte(body)); err != nil {
			t.Errorf("%s %s %d: %v\n%s", s.method, s.path, status, err, body)
		}
		return body
	}

	run(sample{method: "GET", path: "/healthz", route: "/healthz", status: 200})
	run(sample{method: "GET", path: "/openapi.json", route: "/openapi.json", status: 200})

	// The native API.
	body := run(sample{method: "POST", path: "/v1/jobs", route: "/v1/jobs", contentType: jsonType,
		body: `{"engine":"sim","command":"hi","params":{"sim_tokens":3},"room_id":"r1"}`, status: 201})
	var job struct{ ID string }
	if err := json.Unmarshal([]byte(body), &job); err != nil {
		t.Fatal(err)
	}
	run(sample{method: "POST", path: "/v1/jobs", route: "/v1/jobs", contentType: jsonType, body: `{"engine":"nope","command":"hi"}`, status: 400})
	run(sample{method: "GET", path: "/v1/jobs/" + job.ID, route: "/v1/jobs/{id}", status: 200})
	run(sample{method: "GET", path: "/v1/jobs/" + uuid.NewString(), route: "/v1/jobs/{id}", status: 404})
	run(sample{method: "GET", path: "/v1/jobs?limit=5", route: "/v1/jobs", status: 200})
	run(sample{method: "GET", path: "/v1/jobs?status=lost", route: "/v1/jobs", status: 400})
	run(sample{method: "GET", path: "/v1/jobs/" + job.ID + "/chunks", route: "/v1/jobs/{id}/chunks", status: 200})
	run(sample{method: "GET", path: "/v1/jobs/" + job.ID + "/transcript", route: "/v1/jobs/{id}/transcript", status: 200})
	run(sample{method: "GET", path: "/v1/jobs/" + job.ID + "/verify", route: "/v1/jobs/{id}/verify", status: 200})
	run(sample{method: "GET", path: "/v1/jobs/" + job.ID + "/audit", route: "/v1/jobs/{id}/audit", status: 200})
	run(sample{method: "POST", path: "/v1/jobs/" + job.ID + "/hold", route: "/v1/jobs/{id}/hold", contentType: jsonType, body: `{"reason":"litigation"}`, status: 200})
	run(sample{method: "DELETE", path: "/v1/jobs/" + job.ID + "/hold", route: "/v1/jobs/{id}/hold", status: 200})
	run(sample{method: "POST", path: "/v1/jobs/" + job.ID + "/cancel", route: "/v1/jobs/{id}/cancel", status: 200})
	run(sample{method: "GET", path: "/v1/engines", route: "/v1/engines", status: 200})

	// The Responses API: a background create answers at once (no worker
	// runs here, so it stays queued).
	body = run(sample{method: "POST", path: "/v1/responses", route: "/v1/responses", contentType: jsonType,
		body: `{"model":"sim","input":"hi","background":true,"metadata":{"k":"v"},"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}]}`, status: 200})
	var resp struct{ ID string }
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	run(sample{method: "POST", path: "/v1/responses", route: "/v1/responses", contentType: jsonType, body: `{"model":"sim","input":"hi","previous_response_id":"resp_x"}`, status: 400})
	run(sample{method: "GET", path: "/v1/responses/" + resp.ID, route: "/v1/responses/{id}", status: 200})
	run(sample{method: "GET", path: "/v1/responses/resp_nothing", route: "/v1/responses/{id}", status: 404})
	run(sample{method: "GET", path: "/v1/responses/" + resp.ID + "/input_items", route: "/v1/responses/{id}/input_items", status: 200})
	run(sample{method: "DELETE", path: "/v1/responses/" + resp.ID, route: "/v1/responses/{id}", status: 200})

	// SEMOSS.
	run(sample{method: "GET", path: "/Monolith/api/config", route: "/Monolith/api/config", status: 200})
	body = run(sample{method: "POST", path: "/Monolith/api/engine/runPixelAsync", route: "/Monolith/api/engine/runPixelAsync", contentType: form,
		body: url.Values{"insightId": {"new"}, "expression": {`LLM(engine="sim", command="<encode>hi</encode>");`}}.Encode(), status: 200})
	var px struct{ JobID string }
	if err := json.Unmarshal([]byte(body), &px); err != nil {
		t.Fatal(err)
	}
	run(sample{method: "POST", path: "/Monolith/api/engine/pixelJobStreaming", route: "/Monolith/api/engine/pixelJobStreaming", contentType: form,
		body: url.Values{"jobId": {px.JobID}, "offset": {"0"}, "wait": {"0"}}.Encode(), status: 200})
	run(sample{method: "POST", path: "/Monolith/api/engine/status", route: "/Monolith/api/engine/status", contentType: form,
		body: url.Values{"jobId": {px.JobID}}.Encode(), status: 200})
	run(sample{method: "POST", path: "/Monolith/api/engine/result", route: "/Monolith/api/engine/result", contentType: form,
		body: url.Values{"jobId": {uuid.NewString()}}.Encode(), status: 404})
	run(sample{method: "POST", path: "/Monolith/api/engine/runPixel", route: "/Monolith/api/engine/runPixel", contentType: form,
		body: url.Values{"insightId": {"new"}, "expression": {"META | true"}}.Encode(), status: 200})
}

// stringsOnly returns schema (an object schema of the document) with
// every property typed as a string, as form fields are.
func stringsOnly(t *testing.T, spec *openapi.Spec, schema any) any {
	t.Helper()
	m, err := spec.Object(schema)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"type": "object", "required": m["required"], "additionalProperties": false}
	props := map[string]any{}
	for k := range m["properties"].(map[string]any) {
		props[k] = map[string]any{"type": "string"}
	}
	out["properties"] = props
	return out
}

// TestConsoleLinksOpenAPI: the console's page links the document, and the
// link answers it without a key.
func TestConsoleLinksOpenAPI(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{Auth: httpapi.DevAuth{}}))
	t.Cleanup(srv.Close)
	status, page := send(t, srv, http.MethodGet, "/", "", "")
	if status != http.StatusOK || !strings.Contains(page, `href="/openapi.json"`) {
		t.Fatalf("console page: %d, no link to /openapi.json", status)
	}
	status, doc := send(t, srv, http.MethodGet, "/openapi.json", "", "")
	if status != http.StatusOK || doc != string(openapi.Document()) {
		t.Fatalf("GET /openapi.json: %d", status)
	}
}
