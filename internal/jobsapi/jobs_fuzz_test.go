package jobsapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/httpapi"
)

// FuzzDecodeCreateJob checks that decoding a job submission never panics
// and that every rejection is a 4xx APIError.
func FuzzDecodeCreateJob(f *testing.F) {
	for _, s := range []string{
		`{"engine":"sim","command":"hi"}`,
		`{"engine":"sim","command":"hi","params":{"max_completion_tokens":5,"tools":[]}}`,
		`{"command":"x","messages":[{"role":"user","content":"a"}]}`,
		`{"command":1}`, `[]`, `{`, ``, `{"a":1}`, `{"command":"x"} {}`, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/jobs", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		var req CreateJobRequest
		err := decodeJSON(w, r, 1<<10, &req)
		if err == nil {
			return
		}
		var ae *httpapi.APIError
		if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 || ae.Message == "" {
			t.Fatalf("decode(%q): %v is not a 4xx APIError with a message", body, err)
		}
	})
}
