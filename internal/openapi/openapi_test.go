package openapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/openapi"
)

// TestDocument: the embedded document is JSON, declares OpenAPI 3.1, and
// every $ref in it resolves inside it (a dangling ref would make the
// schema checks in internal/server pass vacuously).
func TestDocument(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); v != "3.1.0" {
		t.Fatalf("openapi: %q, want 3.1.0", v)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := openapi.Resolve(doc, ref); err != nil {
					t.Errorf("%s: %v", path, err)
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[]", e)
			}
		}
	}
	walk("", doc)
}

// TestHandler: GET /openapi.json answers the document as JSON.
func TestHandler(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	openapi.Handler(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Body.String() != string(openapi.Document()) {
		t.Fatal("served bytes differ from the document")
	}
}

// TestCheck: the structural check accepts a conforming body and names
// what is wrong with each kind of non-conforming one, so that the sample
// checks in internal/server cannot pass by checking nothing.
func TestCheck(t *testing.T) {
	t.Parallel()
	spec, err := openapi.Parse()
	if err != nil {
		t.Fatal(err)
	}
	req, err := spec.RequestSchema(http.MethodPost, "/v1/jobs", "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Check(req, []byte(`{"engine":"sim","command":"hi","params":{"sim_tokens":3}}`)); err != nil {
		t.Errorf("valid request: %v", err)
	}
	res, err := spec.ResponseSchema(http.MethodGet, "/v1/responses/{id}", 404, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Check(res, []byte(`{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"not_found"}}`)); err != nil {
		t.Errorf("valid OpenAI error: %v", err)
	}
	for body, want := range map[string]string{
		`{"engine":"sim"}`:                              `required property "command"`,
		`{"engine":1,"command":"hi"}`:                   `$.engine: 1 is not of type string`,
		`{"engine":"sim","command":"hi","x":true}`:      `property "x" is not allowed`,
		`{"engine":"sim","command":"hi","messages":{}}`: `$.messages: {} is not of type array`,
		`[]`: `is not of type object`,
	} {
		err := spec.Check(req, []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	job, err := spec.ResponseSchema(http.MethodGet, "/v1/jobs/{id}", 200, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Check(job, []byte(`{"id":"x","status":"lost","engine":"sim","attempt":0,"created_at":"t"}`)); err == nil || !strings.Contains(err.Error(), "$.status") {
		t.Errorf("status outside the enum: %v", err)
	}
	if _, err := spec.ResponseSchema(http.MethodGet, "/v1/jobs/{id}", 418, "application/json"); err == nil {
		t.Error("an undocumented status has a schema")
	}
}
