package responses

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/enginetest"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// testBundle is one engine pointed at one fake server, with its hooks
// recorded.
type testBundle struct {
	srv    *enginetest.Server
	engine *Engine

	mu       sync.Mutex
	retries  int
	failures []string
}

func setup(t *testing.T, configure func(*Config), responses ...enginetest.Response) *testBundle {
	t.Helper()
	b := &testBundle{srv: enginetest.NewResponsesServer(t, responses...)}
	cfg := Config{
		Model:   "gpt-5",
		BaseURL: b.srv.URL + "/v1",
		APIKey:  enginetest.APIKey,
		Policy: upstream.Policy{
			RetryBaseDelay: time.Millisecond,
			MaxRetryDelay:  10 * time.Millisecond,
			OnRetry: func(int, error) {
				b.mu.Lock()
				defer b.mu.Unlock()
				b.retries++
			},
			OnFailure: func(errType string) {
				b.mu.Lock()
				defer b.mu.Unlock()
				b.failures = append(b.failures, errType)
			},
		},
	}
	if configure != nil {
		configure(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(e.CloseIdleConnections)
	b.engine = e
	return b
}

func userRequest(text string) engine.Request {
	return engine.Request{JobID: "job-1", Messages: []engine.Message{{Role: "user", Content: text}}}
}

func TestStream(t *testing.T) {
	t.Parallel()

	for _, f := range enginetest.ResponsesFixtures() {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil, f.Responses...)
			got, finish, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
			enginetest.CheckFixture(t, f, b.srv, got, finish, err)

			b.mu.Lock()
			defer b.mu.Unlock()
			if b.retries != f.Requests-1 {
				t.Errorf("OnRetry fired %d times, want %d", b.retries, f.Requests-1)
			}
			var wantFailures []string
			if f.ErrType != "" {
				wantFailures = []string{f.ErrType}
			}
			if !slices.Equal(b.failures, wantFailures) {
				t.Errorf("OnFailure got %q, want %q", b.failures, wantFailures)
			}
		})
	}
}

func TestStreamRequest(t *testing.T) {
	t.Parallel()

	t.Run("MapsConversationAndParams", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.Params = map[string]json.RawMessage{"store": json.RawMessage(`false`), "temperature": json.RawMessage(`0.1`)}
			c.Headers = map[string]string{"X-Team": "search"}
		}, enginetest.ResponsesText())
		req := engine.Request{JobID: "job-1", Messages: []engine.Message{
			{Role: "system", Content: "Be brief."},
			{Role: "user", Content: "Weather in Paris?"},
			{Role: "assistant", ToolCalls: []engine.ToolCall{{ID: "call_1", Type: "function", Function: engine.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
			{Role: "tool", ToolCallID: "call_1", Content: "18C"},
		}, Params: map[string]json.RawMessage{
			"temperature":           json.RawMessage(`0.7`),
			"top_p":                 json.RawMessage(`0.9`),
			"max_completion_tokens": json.RawMessage(`300`),
			"tools":                 json.RawMessage(`[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}]`),
			"tool_choice":           json.RawMessage(`{"type":"function","function":{"name":"get_weather"}}`),
			"reasoning":             json.RawMessage(`{"effort":"low","summary":"auto"}`),
			"sim_tokens":            json.RawMessage(`5`),
		}}
		if _, _, err := enginetest.Collect(context.Background(), b.engine, req); err != nil {
			t.Fatal(err)
		}
		reqs := b.srv.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		r := reqs[0]
		if r.Path != "/v1/responses" {
			t.Errorf("path = %q, want /v1/responses", r.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+enginetest.APIKey {
			t.Errorf("Authorization = %q", got)
		}
		if got := r.Header.Get("X-Team"); got != "search" {
			t.Errorf("X-Team = %q", got)
		}
		want := `{
			"model":"gpt-5","stream":true,"store":false,
			"temperature":0.7,"top_p":0.9,"max_output_tokens":300,
			"reasoning":{"effort":"low","summary":"auto"},
			"input":[
				{"role":"system","content":"Be brief."},
				{"role":"user","content":"Weather in Paris?"},
				{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
				{"type":"function_call_output","call_id":"call_1","output":"18C"}
			],
			"tools":[{"type":"function","name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}],
			"tool_choice":{"type":"function","name":"get_weather"}
		}`
		if got, want := enginetest.Canonical(string(r.RawBody)), enginetest.Canonical(want); got != want {
			t.Errorf("body\n got %s\nwant %s", got, want)
		}
	})

	t.Run("ToolChoiceModes", func(t *testing.T) {
		t.Parallel()
		for _, mode := range []string{"auto", "none", "required"} {
			b := setup(t, nil, enginetest.ResponsesText())
			req := userRequest("Hi")
			req.Params = map[string]json.RawMessage{"tool_choice": json.RawMessage(`"` + mode + `"`)}
			if _, _, err := enginetest.Collect(context.Background(), b.engine, req); err != nil {
				t.Fatal(err)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(b.srv.Requests()[0].RawBody, &body); err != nil {
				t.Fatal(err)
			}
			if got := string(body["tool_choice"]); got != `"`+mode+`"` {
				t.Errorf("tool_choice = %s, want %q", got, mode)
			}
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()

	b := setup(t, nil)
	for _, tc := range []struct {
		name, params, want string
	}{
		{"Stop", `{"stop":["\n"]}`, "no stop sequences"},
		{"ToolType", `{"tools":[{"type":"web_search","function":{"name":"x"}}]}`, `type "web_search" is not supported`},
		{"ToolName", `{"tools":[{"type":"function","function":{}}]}`, "function.name is required"},
		{"Temperature", `{"temperature":"hot"}`, "temperature"},
		{"Role", `{"messages":[{"role":"robot","content":"x"}]}`, `unknown role "robot"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.params), &p); err != nil {
				t.Fatal(err)
			}
			err := b.engine.Validate(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := b.engine.Validate(map[string]json.RawMessage{"store": json.RawMessage(`false`)}); err != nil {
		t.Errorf("Validate(store) = %v", err)
	}
}

func TestStreamCancel(t *testing.T) {
	t.Parallel()

	b := setup(t, nil, enginetest.SSE(
		enginetest.ResponsesEvent(0, "response.created", `"response":{"id":"resp_1","status":"in_progress"}`),
		enginetest.ResponsesEvent(1, "response.output_text.delta", `"item_id":"msg_0","output_index":0,"content_index":0,"delta":"Hi"`),
		enginetest.Hold(),
	))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.engine.Stream(ctx, userRequest("Hi"), func(engine.Chunk) error { return nil })
		done <- err
	}()
	<-b.srv.Held()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v, want context.Canceled", err)
	}
	<-b.srv.ClientGone()
}
