package openai

import (
	"context"
	"encoding/json"
	"errors"
	"net"
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
	b := &testBundle{srv: enginetest.NewOpenAIServer(t, responses...)}
	cfg := Config{
		Model:   "gpt-4.1",
		BaseURL: b.srv.URL + "/v1",
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

	for _, f := range enginetest.OpenAIFixtures() {
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

	t.Run("MapsMessagesAndParams", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.Headers = map[string]string{"HTTP-Referer": "https://jobstream.example"}
			c.Params = map[string]json.RawMessage{
				"temperature": json.RawMessage(`0.2`),
				"top_p":       json.RawMessage(`0.5`),
				"seed":        json.RawMessage(`1`),
			}
		}, enginetest.OpenAIText())
		tools := `[{"type":"function","function":{"name":"get_weather","description":"Weather now","strict":true,"parameters":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}},"required":["zeta"]}}}]`
		req := engine.Request{
			Messages: []engine.Message{
				{Role: "system", Content: "Be brief."},
				{Role: "user", Content: "Weather in Paris?", Name: "ana"},
				{Role: "assistant", ToolCalls: []engine.ToolCall{{ID: "call_1", Type: "function", Function: engine.FunctionCall{Name: "get_weather", Arguments: `{"zeta":"Paris"}`}}}},
				{Role: "tool", ToolCallID: "call_1", Content: `{"temp":21}`},
			},
			Params: map[string]json.RawMessage{
				"max_new_tokens":      json.RawMessage(`256`),
				"temperature":         json.RawMessage(`0.7`),
				"seed":                json.RawMessage(`null`),
				"stop":                json.RawMessage(`["\n\n","END"]`),
				"tools":               json.RawMessage(tools),
				"tool_choice":         json.RawMessage(`{"type":"function","function":{"name":"get_weather"}}`),
				"response_format":     json.RawMessage(`{"type":"text"}`),
				"parallel_tool_calls": json.RawMessage(`false`),
				"sim_tokens":          json.RawMessage(`5`),
				"model":               json.RawMessage(`"other-model"`),
				"stream":              json.RawMessage(`false`),
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
		if r.Method != "POST" || r.Path != "/v1/chat/completions" {
			t.Errorf("request = %s %s, want POST /v1/chat/completions", r.Method, r.Path)
		}
		if got, want := r.Header.Get("Authorization"), "Bearer "+enginetest.APIKey; got != want {
			t.Errorf("Authorization = %q, want %q", got, want)
		}
		if got := r.Header.Get("HTTP-Referer"); got != "https://jobstream.example" {
			t.Errorf("HTTP-Referer = %q", got)
		}
		want := `{
			"model": "gpt-4.1",
			"stream": true,
			"stream_options": {"include_usage": true},
			"messages": [
				{"role": "system", "content": "Be brief."},
				{"role": "user", "content": "Weather in Paris?", "name": "ana"},
				{"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"zeta\":\"Paris\"}"}}]},
				{"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"}
			],
			"max_completion_tokens": 256,
			"temperature": 0.7,
			"top_p": 0.5,
			"stop": ["\n\n", "END"],
			"tools": ` + tools + `,
			"tool_choice": {"type": "function", "function": {"name": "get_weather"}},
			"response_format": {"type": "text"},
			"parallel_tool_calls": false
		}`
		if got, want := enginetest.Canonical(string(r.RawBody)), enginetest.Canonical(want); got != want {
			t.Errorf("request body:\n got  %s\n want %s", got, want)
		}
		// Tools go out byte for byte: the schema keeps its key order.
		if !strings.Contains(string(r.RawBody), `"properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}}`) {
			t.Errorf("tool schema reordered in %s", r.RawBody)
		}
	})

	t.Run("MaxTokensLegacyField", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.MaxTokensParam = MaxTokensParamLegacy
			c.OmitStreamUsage = true
			c.APIKey = ""
		}, enginetest.OpenAIText())
		req := userRequest("Hi")
		req.Params = map[string]json.RawMessage{"max_completion_tokens": json.RawMessage(`64`), "stop": json.RawMessage(`"END"`)}
		if _, _, err := enginetest.Collect(context.Background(), b.engine, req); err != nil {
			t.Fatalf("Stream: %v", err)
		}
		r := b.srv.Requests()[0]
		if got := r.Body["max_tokens"]; got != float64(64) {
			t.Errorf("max_tokens = %v, want 64", got)
		}
		for _, k := range []string{"max_completion_tokens", "stream_options"} {
			if _, ok := r.Body[k]; ok {
				t.Errorf("body has %s: %s", k, r.RawBody)
			}
		}
		if got := r.Body["stop"]; got != "END" {
			t.Errorf("stop = %v, want END", got)
		}
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("Authorization = %q, want none without a key", got)
		}
	})

	t.Run("MessagesFromFullPrompt", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil, enginetest.OpenAIText())
		req := engine.Request{Params: map[string]json.RawMessage{"full_prompt": json.RawMessage(`"Tell me a joke"`)}}
		if _, _, err := enginetest.Collect(context.Background(), b.engine, req); err != nil {
			t.Fatalf("Stream: %v", err)
		}
		r := b.srv.Requests()[0]
		got, _ := json.Marshal(r.Body["messages"])
		if want := `[{"content":"Tell me a joke","role":"user"}]`; string(got) != want {
			t.Errorf("messages = %s, want %s", got, want)
		}
		if _, ok := r.Body["full_prompt"]; ok {
			t.Errorf("full_prompt passed through: %s", r.RawBody)
		}
	})

	t.Run("APIKeyHeaderAndQueryForAzure", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			c.APIKeyHeader = "api-key"
		}, enginetest.OpenAIText())
		cfg := b.engine.cfg
		cfg.BaseURL = b.srv.URL + "/openai/deployments/gpt-4o?api-version=2024-10-21"
		e, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(e.CloseIdleConnections)
		if _, _, err := enginetest.Collect(context.Background(), e, userRequest("Hi")); err != nil {
			t.Fatalf("Stream: %v", err)
		}
		r := b.srv.Requests()[0]
		if r.Path != "/openai/deployments/gpt-4o/chat/completions" {
			t.Errorf("path = %q", r.Path)
		}
		if got := r.Query.Get("api-version"); got != "2024-10-21" {
			t.Errorf("api-version = %q", got)
		}
		if got := r.Header.Get("api-key"); got != enginetest.APIKey {
			t.Errorf("api-key = %q, want the key", got)
		}
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("Authorization = %q, want none", got)
		}
	})
}

func TestStreamBaseURL(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name, suffix, wantPath string
	}{
		{"NoPath", "", "/v1/chat/completions"},
		{"Slash", "/", "/v1/chat/completions"},
		{"V1", "/v1", "/v1/chat/completions"},
		{"V1Slash", "/v1/", "/v1/chat/completions"},
		{"OpenRouter", "/api/v1", "/api/v1/chat/completions"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil, enginetest.OpenAIText())
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

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, raw := range []string{"localhost:11434", "ftp://x/v1", "http://"} {
			if _, err := New(Config{Model: "m", BaseURL: raw}); err == nil {
				t.Errorf("New with base URL %q: no error", raw)
			}
		}
	})
}

// TestStreamSplitInsideCharacter proves that a character split across
// network writes reaches the SSE reader in two pieces and is still stored
// whole: the server sends the second half only after the client has read a
// buffer ending inside the character.
func TestStreamSplitInsideCharacter(t *testing.T) {
	t.Parallel()

	f := fixture(t, "ArgumentsSplitInsideCharacter")
	client, split := enginetest.RuneSplitClient()
	b := setup(t, func(c *Config) { c.HTTPClient = client }, enginetest.WaitAfterSplit(f.Responses[0], split))
	got, finish, err := enginetest.Collect(context.Background(), b.engine, userRequest("Weather in Tokyo?"))
	enginetest.CheckFixture(t, f, b.srv, got, finish, err)
	select {
	case <-split:
	default:
		t.Error("no read ended inside a character")
	}
	var args strings.Builder
	for _, c := range got {
		var v struct {
			Data struct {
				Function struct {
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"data"`
		}
		_ = json.Unmarshal([]byte(c), &v)
		args.WriteString(v.Data.Function.Arguments)
	}
	if want := `{"city": "東京", "sky": "🌧"}`; args.String() != want {
		t.Errorf("arguments = %q, want %q", args.String(), want)
	}
}

func TestStreamCancel(t *testing.T) {
	t.Parallel()

	b := setup(t, nil, enginetest.SSE(
		enginetest.OpenAIDelta(`{"role":"assistant","content":"Hel"}`),
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

	t.Run("AfterFirstChunk", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) { c.Policy.IdleTimeout = 250 * time.Millisecond }, enginetest.SSE(
			enginetest.OpenAIDelta(`{"role":"assistant","content":"Hel"}`),
			enginetest.Hold(),
		))
		got, _, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
		enginetest.CheckChunks(t, got, []string{`{"stream_type":"content","data":{"content":"Hel"}}`})
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Type != upstream.TypeTimeout || ee.Retryable {
			t.Fatalf("Stream error = %#v, want a non-retryable timeout", err)
		}
		<-b.srv.ClientGone()
		if n := len(b.srv.Requests()); n != 1 {
			t.Errorf("got %d requests, want 1", n)
		}
		if f := b.Failures(); !slices.Equal(f, []string{upstream.TypeTimeout}) {
			t.Errorf("failures = %q", f)
		}
	})

	t.Run("BeforeFirstChunkIsRetried", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) { c.Policy.IdleTimeout = 250 * time.Millisecond },
			enginetest.SSE(enginetest.Hold()),
			enginetest.OpenAIText(),
		)
		_, finish, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		if finish.Reason != "stop" {
			t.Errorf("finish = %+v", finish)
		}
		if r := b.Retries(); !slices.Equal(r, []string{upstream.TypeTimeout}) {
			t.Errorf("retries = %q, want one timeout", r)
		}
	})
}

func TestStreamFailures(t *testing.T) {
	t.Parallel()

	t.Run("RetriesExhausted", func(t *testing.T) {
		t.Parallel()
		body := `{"error":{"message":"Bad gateway","type":"server_error"}}`
		b := setup(t, nil,
			enginetest.ErrorResponse(502, body),
			enginetest.ErrorResponse(502, body),
			enginetest.ErrorResponse(502, body),
		)
		_, _, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
		var ee *engine.Error
		if !errors.As(err, &ee) {
			t.Fatalf("Stream error = %v, want *engine.Error", err)
		}
		if ee.Type != upstream.TypeUpstream || !ee.Retryable {
			t.Errorf("error = %+v, want a retryable upstream_error", ee)
		}
		if want := "upstream returned 502 Bad Gateway: Bad gateway (after 3 attempts)"; ee.Message != want {
			t.Errorf("message = %q, want %q", ee.Message, want)
		}
		if r := b.Retries(); len(r) != 2 {
			t.Errorf("retries = %q, want 2", r)
		}
		if f := b.Failures(); !slices.Equal(f, []string{upstream.TypeUpstream}) {
			t.Errorf("failures = %q", f)
		}
	})

	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		b := setup(t, func(c *Config) { c.BaseURL = "http://" + addr + "/v1" })
		_, _, err = enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Type != upstream.TypeConnection {
			t.Fatalf("Stream error = %v, want connection_error", err)
		}
		if r := b.Retries(); !slices.Equal(r, []string{upstream.TypeConnection, upstream.TypeConnection}) {
			t.Errorf("retries = %q, want two connection errors", r)
		}
	})

	t.Run("NoRetries", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) { c.Policy.MaxRetries = -1 },
			enginetest.ErrorResponse(429, `{"error":{"message":"slow down"}}`, "Retry-After", "0"))
		_, _, err := enginetest.Collect(context.Background(), b.engine, userRequest("Hi"))
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Type != upstream.TypeRateLimited || !ee.Retryable {
			t.Fatalf("Stream error = %v, want a retryable rate_limited", err)
		}
		if n := len(b.srv.Requests()); n != 1 {
			t.Errorf("got %d requests, want 1", n)
		}
	})

	t.Run("EmitErrorStopsTheStream", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil, enginetest.OpenAIText())
		errLease := errors.New("lease lost")
		_, err := b.engine.Stream(context.Background(), userRequest("Hi"), func(engine.Chunk) error { return errLease })
		if err != errLease {
			t.Errorf("Stream error = %v, want the emit error itself", err)
		}
		if f := b.Failures(); len(f) != 0 {
			t.Errorf("emit error counted as upstream failure: %q", f)
		}
	})

	t.Run("InvalidParamsSendNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		req := userRequest("Hi")
		req.Params = map[string]json.RawMessage{"temperature": json.RawMessage(`"hot"`)}
		_, _, err := enginetest.Collect(context.Background(), b.engine, req)
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Type != upstream.TypeInvalidRequest || !strings.Contains(ee.Message, "temperature") {
			t.Fatalf("Stream error = %v, want invalid_request about temperature", err)
		}
		if n := len(b.srv.Requests()); n != 0 {
			t.Errorf("got %d requests, want none", n)
		}
	})
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
		{"Good", `{"max_new_tokens":10,"temperature":0,"stop":"x","tool_choice":"auto","tools":[{"type":"function","function":{"name":"f"}}],"seed":3}`, ""},
		{"BadMaxTokens", `{"max_completion_tokens":0}`, "max_completion_tokens"},
		{"FractionalMaxTokens", `{"max_new_tokens":1.5}`, "max_new_tokens"},
		{"BadStop", `{"stop":3}`, "stop"},
		{"BadTools", `{"tools":[{"type":"function","function":{}}]}`, "tools[0]"},
		{"BadToolChoice", `{"tool_choice":"sometimes"}`, "tool_choice"},
		{"BadMessages", `{"messages":[{"role":"wizard","content":"x"}]}`, "unknown role"},
		{"ToolMessageWithoutID", `{"messages":[{"role":"tool","content":"x"}]}`, "tool_call_id"},
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

func fixture(t *testing.T, name string) enginetest.Fixture {
	t.Helper()
	for _, f := range enginetest.OpenAIFixtures() {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no fixture %q", name)
	return enginetest.Fixture{}
}

// TestStreamConcurrent streams through one engine from many goroutines, as
// workers do: each call must see only its own response.
func TestStreamConcurrent(t *testing.T) {
	t.Parallel()

	const n = 8
	responses := make([]enginetest.Response, n)
	for i := range responses {
		responses[i] = enginetest.OpenAIText()
	}
	b := setup(t, nil, responses...)
	f := fixture(t, "Text")
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
