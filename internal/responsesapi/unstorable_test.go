package responsesapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/responsesapi"
	"github.com/jobstream/jobstream/internal/store"
)

// TestCreateUnstorable: a create request whose values PostgreSQL would
// refuse (a number numeric cannot hold, a lone UTF-16 surrogate, nesting
// deeper than store.MaxJSONDepth) is a 400 in OpenAI's shape naming the
// parameter, as on the other surfaces, not a 500; and nothing is stored.
func TestCreateUnstorable(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noWorker: true})
	deep := strings.Repeat(`{"a":`, store.MaxJSONDepth+1) + "1" + strings.Repeat("}", store.MaxJSONDepth+1)
	for _, tc := range []struct{ name, params, param string }{
		{"HugeNumber", `{"type":"object","x":1e999999}`, "tools[0].parameters.x"},
		{"LoneSurrogate", `{"type":"object","description":"\ud800"}`, "tools[0].parameters.description"},
		{"LoneSurrogateKey", `{"type":"object","\udc00":1}`, "tools[0].parameters"},
		{"Deep", `{"type":"object","x":` + deep + `}`, "tools[0].parameters.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":` + tc.params + `}]}`
			status, out := b.do(t, http.MethodPost, "/v1/responses", b.keyA, body)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", status, out)
			}
			msg, typ, param, _ := openAIError(t, out)
			if typ != "invalid_request_error" || msg == "" {
				t.Fatalf("error %s", out)
			}
			if got := deref(param); !strings.HasPrefix(got, tc.param) {
				t.Fatalf("param %q, want %q...: %s", got, tc.param, out)
			}
		})
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d jobs stored by unstorable requests", n)
	}
}

// TestWriteErrorUnstorable: WriteError answers an unstorable value that
// reaches it (a store call's *store.UnstorableError) with a 400 in
// OpenAI's shape naming the field, not a 500.
func TestWriteErrorUnstorable(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/responses", nil)
	err := &store.UnstorableError{Field: "messages[0].content", Problem: "is not valid UTF-8"}
	responsesapi.WriteError(nil, w, r, err)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
	}
	msg, typ, param, _ := openAIError(t, w.Body.Bytes())
	if typ != "invalid_request_error" || deref(param) != "messages[0].content" || !strings.Contains(msg, "UTF-8") {
		t.Fatalf("error %s", w.Body)
	}
}
