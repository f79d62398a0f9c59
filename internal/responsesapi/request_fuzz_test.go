package responsesapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// FuzzDecodeCreate: whatever the body, a create request is either valid
// (and then storable: the job as Submit checks it, and the response's
// meta and input items as jsonb takes them) or a 4xx *Error; never a
// panic or a 5xx.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"model":"sim","input":"hi"}`,
		`{"model":"sim","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}]}`,
		`{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"model":"sim","input":"hi","max_output_tokens":5,"temperature":1,"top_p":0.5,"metadata":{"a":"b"},"background":true,"stream":true}`,
		`{"model":"nope"}`, `[]`, `{"input":{}}`, ``,
		// Unstorable values that JSON itself allows.
		`{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object","x":1e999999}}]}`,
		`{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object","x":"\ud800"}}]}`,
		`{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":{"x":` + strings.Repeat("[", store.MaxJSONDepth) + strings.Repeat("]", store.MaxJSONDepth) + `}}]}`,
	} {
		f.Add(s)
	}
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	cfg := httpapi.Config{}.WithDefaults()
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/responses", strings.NewReader(body))
		c, err := decodeCreate(httptest.NewRecorder(), r, cfg, engines)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Message == "" {
				t.Fatalf("body %q: %v (%T), want a 4xx *Error", body, err, err)
			}
			return
		}
		if err := c.job.Check(); err != nil {
			t.Fatalf("body %q: accepted an unstorable job: %v", body, err)
		}
		if err := store.CheckJSON("meta", mustJSON(c.meta)); err != nil {
			t.Fatalf("body %q: accepted unstorable meta: %v", body, err)
		}
		if err := store.CheckJSON("input", mustJSON(c.input)); err != nil {
			t.Fatalf("body %q: accepted unstorable input: %v", body, err)
		}
		if c.job.Engine == "" || len(c.job.Request.Messages) == 0 {
			t.Fatalf("body %q: accepted without engine or messages: %+v", body, c.job)
		}
	})
}
