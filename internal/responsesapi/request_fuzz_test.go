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
)

// FuzzDecodeCreate: whatever the body, a create request is either valid
// (and then storable JSON) or a 4xx *Error; never a panic or a 5xx.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"model":"sim","input":"hi"}`,
		`{"model":"sim","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}]}`,
		`{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"model":"sim","input":"hi","max_output_tokens":5,"temperature":1,"top_p":0.5,"metadata":{"a":"b"},"background":true,"stream":true}`,
		`{"model":"nope"}`, `[]`, `{"input":{}}`, ``,
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
		_ = mustJSON(c.meta)
		_ = mustJSON(c.input)
		if c.job.Engine == "" || len(c.job.Request.Messages) == 0 {
			t.Fatalf("body %q: accepted without engine or messages: %+v", body, c.job)
		}
	})
}
