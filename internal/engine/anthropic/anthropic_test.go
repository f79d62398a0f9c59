package anthropic

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
	retries  []string // error types, one per retry
	failures []string
}

func (b *testBundle) Retries() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.retries)
}

func (b *testBundle) Failures() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.failures)
}

// setup starts a fake server with responses and an engine for it, with fast
// retries. configure, if not nil, adjusts the config first.
func setup(t *testing.T, configure func(*Config), responses ...enginetest.Response) *testBundle {
	t.Helper()
	b := &testBundle{srv: enginetest.NewAnthropicServer(t, responses...)}
	cfg := Config{
		Model:   "claude-sonnet-4-5",
		BaseURL: b.srv.URL,
		APIKey:  enginetest.APIKey,
		Policy: upstream.Policy{
			RetryBaseDelay: time.Millisecond,
			MaxRetryDelay:  10 * time.Millisecond,
			OnRetry: func(attempt int, err error) {
				var ee *engine.Error
				errors.As(err, &ee)
				b.mu.Lock()
				defer b.mu.Unlock()
				b.retries = append(b.retries, ee.Type)
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

	for _, f := range enginetest.AnthropicFixtures() {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil, f.Responses...)
			got, finish, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
			enginetest.CheckFixture(t, f, b.srv, got, finish, err)

			if n := len(b.Retries()); n != f.Requests-1 {
				t.Errorf("OnRetry fired %d times, want %d", n, f.Requests-1)
			}
			var wantFailures []string
			if f.ErrType != "" {
				wantFailures = []string{f.ErrType}
			}
			if got := b.Failures(); !slices.Equal(got, wantFailures) {
				t.Errorf("OnFailure got %q, want %q", got, wantFailures)
			}
		})
	}
}

func TestStreamRequest(t *testing.T) {
	t.Parallel()

	t.Run("MapsConversationAndParams", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.Headers = map[string]string{"anthropic-beta": "interleaved-thinking-2025-05-14"}
			c.PassthroughParams = []string{"output_config"}
			c.Params = map[string]json.RawMessage{"temperature": json.RawMessage(`0.3`), "top_p": json.RawMessage(`0.9`)}
		}, enginetest.AnthropicTextResponse())
		weather := `{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}},"required":["zeta"]}`
		req := engine.Request{
			Messages: []engine.Message{
				{Role: "system", Content: "Be brief."},
				{Role: "user", Content: "Weather in Paris, and the time?"},
				{Role: "assistant", Content: "Checking.", ToolCalls: []engine.ToolCall{
					{ID: "call_1", Type: "function", Function: engine.FunctionCall{Name: "get_weather", Arguments: `{"zeta":"Paris"}`}},
					{ID: "call_2", Type: "function", Function: engine.FunctionCall{Name: "get_time"}},
				}},
				{Role: "tool", ToolCallID: "call_1", Content: `{"temp":21}`},
				{Role: "tool", ToolCallID: "call_2"},
				{Role: "user", Content: "Thanks. And Rome?"},
			},
			Params: map[string]json.RawMessage{
				"tools": json.RawMessage(`[
					{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":` + weather + `}},
					{"type":"function","function":{"name":"get_time"}}]`),
				"tool_choice":         json.RawMessage(`"required"`),
				"parallel_tool_calls": json.RawMessage(`false`),
				"stop":                json.RawMessage(`"END"`),
				"top_k":               json.RawMessage(`5`),
				"metadata":            json.RawMessage(`{"user_id":"u-1"}`),
				"output_config":       json.RawMessage(`{"effort":"low"}`),
				"top_p":               json.RawMessage(`null`),
				"seed":                json.RawMessage(`7`),
				"response_format":     json.RawMessage(`{"type":"text"}`),
				"sim_tokens":          json.RawMessage(`5`),
			},
		}
		if _, _, err := enginetest.Collect(context.Background(), b.engine, req); err != nil {
			t.Fatalf("Stream: %v", err)
		}
		reqs := b.srv.Requests()
		if len(reqs) != 1 {
			t.Fatalf("got %d requests, want 1", len(reqs))
		}
		r := reqs[0]
		if r.Method != "POST" || r.Path != "/v1/messages" {
			t.Errorf("request = %s %s, want POST /v1/messages", r.Method, r.Path)
		}
		for k, want := range map[string]string{
			"X-Api-Key":         enginetest.APIKey,
			"Anthropic-Version": "2023-06-01",
			"Anthropic-Beta":    "interleaved-thinking-2025-05-14",
			"Authorization":     "",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("header %s = %q, want %q", k, got, want)
			}
		}
		want := `{
			"model": "claude-sonnet-4-5",
			"max_tokens": 4096,
			"stream": true,
			"system": [{"type": "text", "text": "Be brief."}],
			"messages": [
				{"role": "user", "content": [{"type": "text", "text": "Weather in Paris, and the time?"}]},
				{"role": "assistant", "content": [
					{"type": "text", "text": "Checking."},
					{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"zeta": "Paris"}},
					{"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
				]},
				{"role": "user", "content": [
					{"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "{\"temp\":21}"}]},
					{"type": "tool_result", "tool_use_id": "call_2"},
					{"type": "text", "text": "Thanks. And Rome?"}
				]}
			],
			"temperature": 0.3,
			"stop_sequences": ["END"],
			"tools": [
				{"name": "get_weather", "description": "Weather now", "input_schema": ` + weather + `},
				{"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
			],
			"tool_choice": {"type": "any", "disable_parallel_tool_use": true},
			"top_k": 5,
			"metadata": {"user_id": "u-1"},
			"output_config": {"effort": "low"}
		}`
		if got, want := enginetest.Canonical(string(r.RawBody)), enginetest.Canonical(want); got != want {
			t.Errorf("request body:\n got  %s\n want %s", got, want)
		}
		if !strings.Contains(string(r.RawBody), `"properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}}`) {
			t.Errorf("tool schema reordered in %s", r.RawBody)
		}
	})

	t.Run("ToolChoiceAndMaxTokens", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name, params, wantChoice string
			wantMax                  float64
		}{
			{"Auto", `{"tool_choice":"auto","max_new_tokens":100}`, `{"type":"auto"}`, 100},
			{"None", `{"tool_choice":"none","max_tokens":50}`, `{"type":"none"}`, 50},
			{"Function", `{"tool_choice":{"type":"function","function":{"name":"f"}},"max_completion_tokens":7}`, `{"type":"tool","name":"f"}`, 7},
			{"NoParallel", `{"parallel_tool_calls":false}`, `{"type":"auto","disable_parallel_tool_use":true}`, 4096},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, nil, enginetest.AnthropicTextResponse())
				req := userRequest("Hi")
				if err := json.Unmarshal([]byte(tt.params), &req.Params); err != nil {
					t.Fatal(err)
				}
				req.Params["tools"] = json.RawMessage(`[{"type":"function","function":{"name":"f"}}]`)
				if _, _, err := enginetest.Collect(context.Background(), b.engine, req); err != nil {
					t.Fatalf("Stream: %v", err)
				}
				r := b.srv.Requests()[0]
				got, _ := json.Marshal(r.Body["tool_choice"])
				if enginetest.Canonical(string(got)) != enginetest.Canonical(tt.wantChoice) {
					t.Errorf("tool_choice = %s, want %s", got, tt.wantChoice)
				}
				if got := r.Body["max_tokens"]; got != tt.wantMax {
					t.Errorf("max_tokens = %v, want %v", got, tt.wantMax)
				}
			})
		}
	})
}

func TestStreamBaseURL(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name, suffix, wantPath string
	}{
		{"NoPath", "", "/v1/messages"},
		{"Slash", "/", "/v1/messages"},
		{"V1", "/v1", "/v1/messages"},
		{"V1Slash", "/v1/", "/v1/messages"},
		{"Proxy", "/proxy/anthropic", "/proxy/anthropic/v1/messages"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil, enginetest.AnthropicTextResponse())
			cfg := b.engine.cfg
			cfg.BaseURL = b.srv.URL + tt.suffix
			e, err := New(cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(e.CloseIdleConnections)
			if _, _, err := enginetest.Collect(context.Background(), e, userRequest("Hi")); err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if got := b.srv.Requests()[0].Path; got != tt.wantPath {
				t.Errorf("path = %q, want %q", got, tt.wantPath)
			}
		})
	}
}

// TestStreamSplitInsideCharacter proves that a character split across
// network writes reaches the SSE reader in two pieces and is still stored
// whole.
func TestStreamSplitInsideCharacter(t *testing.T) {
	t.Parallel()

	var f enginetest.Fixture
	for _, x := range enginetest.AnthropicFixtures() {
		if x.Name == "ArgumentsSplitInsideCharacter" {
			f = x
		}
	}
	client, split := enginetest.RuneSplitClient()
	b := setup(t, func(c *Config) { c.HTTPClient = client }, enginetest.WaitAfterSplit(f.Responses[0], split))
	got, finish, err := enginetest.Collect(context.Background(), b.engine, userRequest("Weather in Tokyo?"))
	enginetest.CheckFixture(t, f, b.srv, got, finish, err)
	select {
	case <-split:
	default:
		t.Error("no read ended inside a character")
	}
}

func TestStreamCancel(t *testing.T) {
	t.Parallel()

	b := setup(t, nil, enginetest.SSE(
		enginetest.AnthropicMessageStart(`{"input_tokens":5,"output_tokens":1}`),
		enginetest.AnthropicBlockStart(0, `{"type":"text","text":""}`),
		enginetest.AnthropicText(0, "Hel"),
		enginetest.Hold(),
	))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := b.engine.Stream(ctx, userRequest("Hi"), func(engine.Chunk) error {
			once.Do(func() { close(first) })
			return nil
		})
		done <- err
	}()
	<-first
	<-b.srv.Held()
	cancel()
	timeout := time.NewTimer(time.Second)
	defer timeout.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Stream error = %v, want context.Canceled", err)
		}
	case <-timeout.C:
		t.Fatal("Stream did not return within 1 s of cancellation")
	}
	select {
	case <-b.srv.ClientGone():
	case <-timeout.C:
		t.Fatal("upstream request not aborted within 1 s of cancellation")
	}
	if f := b.Failures(); len(f) != 0 {
		t.Errorf("cancellation counted as failure: %q", f)
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	t.Parallel()

	// Pings are bytes too: a stream that only pings is not idle, but here
	// nothing at all arrives after the first text.
	b := setup(t, func(c *Config) {
		c.Policy.IdleTimeout = 250 * time.Millisecond
	}, enginetest.SSE(
		enginetest.AnthropicMessageStart(`{"input_tokens":5,"output_tokens":1}`),
		enginetest.AnthropicBlockStart(0, `{"type":"text","text":""}`),
		enginetest.AnthropicText(0, "Hel"),
		enginetest.Hold(),
	))
	got, _, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
	enginetest.CheckChunks(t, got, []string{`{"stream_type":"content","data":{"content":"Hel"}}`})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Type != upstream.TypeTimeout || ee.Retryable {
		t.Fatalf("Stream error = %#v, want a non-retryable timeout", err)
	}
	if want := "upstream sent no data for 250ms"; ee.Message != want {
		t.Errorf("message = %q, want %q", ee.Message, want)
	}
	<-b.srv.ClientGone()
}

func TestValidate(t *testing.T) {
	t.Parallel()

	e, err := New(Config{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		params  string
		wantErr string
	}{
		{"Empty", `{}`, ""},
		{"Good", `{"max_new_tokens":10,"temperature":0,"stop":["x"],"tool_choice":"required","top_k":3}`, ""},
		{"BadParallel", `{"parallel_tool_calls":"no"}`, "parallel_tool_calls"},
		{"BadToolArguments", `{"messages":[{"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1"}}]}]}`, "arguments"},
		{"BadTemperature", `{"temperature":"warm"}`, "temperature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.params), &p); err != nil {
				t.Fatal(err)
			}
			err := e.Validate(p)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestReason(t *testing.T) {
	t.Parallel()

	for in, want := range map[string]string{
		"end_turn":      "stop",
		"stop_sequence": "stop",
		"max_tokens":    "length",
		"tool_use":      "tool_use",
		"refusal":       "refusal",
		"pause_turn":    "pause_turn",
	} {
		if got := Reason(in); got != want {
			t.Errorf("Reason(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStreamConcurrent streams through one engine from many goroutines, as
// workers do: each call must see only its own response.
func TestStreamConcurrent(t *testing.T) {
	t.Parallel()

	const n = 8
	responses := make([]enginetest.Response, n)
	for i := range responses {
		responses[i] = enginetest.AnthropicTextResponse()
	}
	b := setup(t, nil, responses...)
	f := enginetest.AnthropicFixtures()[0]
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, finish, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
			if err != nil {
				t.Errorf("Stream: %v", err)
			}
			enginetest.CheckChunks(t, got, f.Want)
			if finish != f.Finish {
				t.Errorf("finish = %+v", finish)
			}
		})
	}
	wg.Wait()
}
