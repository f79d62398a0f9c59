package engineconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/anthropic"
	"github.com/jobstream/jobstream/internal/engine/enginetest"
	"github.com/jobstream/jobstream/internal/engine/openai"
)

// writeFile writes content to engines.yaml in a fresh directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "engines.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// env is a fake environment.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func ids(r *engine.Registry) []string {
	var out []string
	for _, info := range r.List() {
		out = append(out, info.ID)
	}
	return out
}

func TestLoad(t *testing.T) {
	t.Parallel()

	t.Run("ValidFile", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, `
engines:
  - id: 0b6b7c5e-2f1d-4b7a-9a55-3c1f0e6d8a21
    provider: openai
    model: gpt-4.1-mini
    api_key_env: OPENAI_API_KEY
    options:
      params: {temperature: 0.2, stop: ["END"]}
      timeout: 10m
      idle_timeout: 90s
      max_retries: 0
  - id: claude
    provider: anthropic
    model: claude-sonnet-4-5
    base_url: https://api.anthropic.com/v1
    api_key_env: ANTHROPIC_API_KEY
    options:
      passthrough_params: [output_config]
  - id: local
    provider: openai
    model: llama3.2
    base_url: http://localhost:11434
`)
		r, err := Load(path, env(map[string]string{"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-ant-2"}))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := []engine.Info{
			{ID: "sim", Provider: "sim", Model: "simulator"},
			{ID: "0b6b7c5e-2f1d-4b7a-9a55-3c1f0e6d8a21", Provider: "openai", Model: "gpt-4.1-mini", BaseURL: openai.DefaultBaseURL},
			{ID: "claude", Provider: "anthropic", Model: "claude-sonnet-4-5", BaseURL: "https://api.anthropic.com/v1"},
			{ID: "local", Provider: "openai", Model: "llama3.2", BaseURL: "http://localhost:11434"},
		}
		if got := r.List(); !slices.Equal(got, want) {
			t.Errorf("List =\n %+v\nwant\n %+v", got, want)
		}
		for id, want := range map[string]any{"claude": (*anthropic.Engine)(nil), "local": (*openai.Engine)(nil)} {
			e, err := r.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := typeName(e), typeName(want); got != want {
				t.Errorf("engine %s is %s, want %s", id, got, want)
			}
		}
		if err := r.Validate("local", map[string]json.RawMessage{"temperature": json.RawMessage(`"hot"`)}); err == nil {
			t.Error("Validate accepted temperature \"hot\"")
		}
		if err := r.Validate("nope", nil); !errors.Is(err, engine.ErrUnknownEngine) {
			t.Errorf("Validate(unknown) = %v, want ErrUnknownEngine", err)
		}
	})

	t.Run("EmptyFileHasSim", func(t *testing.T) {
		t.Parallel()
		r, err := Load(writeFile(t, "# nothing yet\n"), nil)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got := ids(r); !slices.Equal(got, []string{"sim"}) {
			t.Errorf("engines = %q, want [sim]", got)
		}
	})

	t.Run("FileCanTakeSimID", func(t *testing.T) {
		t.Parallel()
		r, err := Load(writeFile(t, `
engines:
  - {id: other, provider: sim}
  - {id: sim, provider: openai, model: m, base_url: "http://localhost:8000/v1"}
`), nil)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got := ids(r); !slices.Equal(got, []string{"other", "sim"}) {
			t.Errorf("engines = %q, want [other sim]", got)
		}
		if e, _ := r.Get("sim"); typeName(e) != typeName((*openai.Engine)(nil)) {
			t.Errorf("sim is %s, want the file's openai engine", typeName(e))
		}
	})

	t.Run("MissingFile", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Errorf("Load error = %v, want one naming the file", err)
		}
	})

	t.Run("ExampleFile", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var asked []string
		r, err := Load("engines.example.yaml", func(name string) string {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, name)
			return "test-key-for-" + name
		})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := []string{"sim", "0b6b7c5e-2f1d-4b7a-9a55-3c1f0e6d8a21", "openai-responses-o4-mini", "6f9f3a0c-8d3e-4e0b-bb6e-1a2d5c7e9f40",
			"ollama-llama3", "vllm-qwen3", "azure-gpt4o", "openrouter-deepseek", "sim-fast"}
		if got := ids(r); !slices.Equal(got, want) {
			t.Errorf("engines = %q, want %q", got, want)
		}
		slices.Sort(asked)
		wantEnv := []string{"ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "VLLM_API_KEY"}
		if !slices.Equal(asked, wantEnv) {
			t.Errorf("variables read = %q, want %q", asked, wantEnv)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name    string
		content string
		env     map[string]string
		// want are parts of the error message.
		want []string
		// notWant must not appear in it.
		notWant string
	}{
		{
			name:    "UnknownProvider",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n  - id: g\n    provider: gemini\n    model: m\n",
			want:    []string{"engines.yaml: engine 2 (id \"g\", line 5)", `unknown provider "gemini" (want openai, openai-responses, anthropic or sim)`},
		},
		{
			name:    "MissingID",
			content: "engines:\n  - provider: openai\n    model: m\n",
			want:    []string{"engine 1 (line 2)", "id is required"},
		},
		{
			name:    "DuplicateID",
			content: "engines:\n  - {id: a, provider: sim}\n  - {id: b, provider: sim}\n  - {id: a, provider: sim}\n",
			want:    []string{`engine 3 (id "a", line 4)`, "duplicate id, already used by the engine on line 2"},
		},
		{
			name:    "MissingProviderAndModel",
			content: "engines:\n  - id: a\n  - id: b\n    provider: anthropic\n",
			want:    []string{"provider is required", `engine 2 (id "b", line 3): model is required`},
		},
		{
			name:    "MissingAPIKeyVariable",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    api_key_env: MY_OPENAI_KEY\n",
			want:    []string{`engine 1 (id "a", line 2)`, "environment variable MY_OPENAI_KEY (api_key_env) is not set"},
		},
		{
			name:    "KeyInsteadOfVariableName",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    api_key_env: sk-proj-abcdef123456\n",
			want:    []string{"api_key_env must be the name of an environment variable"},
			notWant: "sk-proj-abcdef123456",
		},
		{
			name:    "UnknownTopLevelKey",
			content: "engines: []\nengnies: []\n",
			want:    []string{"engines file", "engines.yaml", `line 2: unknown key "engnies" at the top level`},
		},
		{
			name:    "UnknownEntryKey",
			content: "engines:\n  - id: a\n    provider: openai\n    modle: m\n",
			want:    []string{`line 4: unknown key "modle" in an engine`},
		},
		{
			name:    "UnknownOptionKey",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    options:\n      retries: 3\n",
			want:    []string{`line 6: unknown key "retries" in options`},
		},
		{
			name:    "DurationWithoutUnit",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    options:\n      idle_timeout: 60\n",
			want:    []string{`line 6: "60" is not a duration; write one with a unit`},
		},
		{
			name:    "CredentialHeader",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    options:\n      headers: {Authorization: Bearer sk-abc}\n",
			want:    []string{"options.headers: Authorization carries credentials"},
			notWant: "sk-abc",
		},
		{
			name:    "CredentialsInBaseURL",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    base_url: https://user:hunter2@proxy.example/v1\n",
			want:    []string{"base_url must not carry credentials"},
		},
		{
			name:    "BadBaseURL",
			content: "engines:\n  - id: a\n    provider: anthropic\n    model: m\n    base_url: api.anthropic.com\n",
			want:    []string{`base_url "api.anthropic.com": want an absolute http or https URL`},
		},
		{
			name:    "OptionForOtherProvider",
			content: "engines:\n  - id: a\n    provider: anthropic\n    model: m\n    options:\n      max_tokens_param: max_tokens\n",
			want:    []string{"options.max_tokens_param applies only to provider openai"},
		},
		{
			name:    "ResponsesOptions",
			content: "engines:\n  - id: a\n    provider: openai-responses\n    model: m\n    options:\n      include_usage: false\n      query: {api-version: x}\n",
			want:    []string{"options.include_usage applies only to provider openai"},
			notWant: "options.query",
		},
		{
			name:    "SimTakesOnlyParams",
			content: "engines:\n  - id: s\n    provider: sim\n    base_url: http://x\n    options:\n      timeout: 1m\n",
			want:    []string{"base_url does not apply to provider sim", "provider sim takes only options.params"},
		},
		{
			name:    "TooManyRetries",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    options:\n      max_retries: 50\n",
			want:    []string{"options.max_retries must be between 0 and 10"},
		},
		{
			name:    "BadDefaultParams",
			content: "engines:\n  - id: a\n    provider: openai\n    model: m\n    options:\n      params: {temperature: hot}\n",
			want:    []string{`engine 1 (id "a", line 2): options.params: param temperature`},
		},
		{
			name:    "BadSimDefaultParams",
			content: "engines:\n  - id: s\n    provider: sim\n    options:\n      params: {sim_tokens_per_second: -1}\n",
			want:    []string{"options.params: param sim_tokens_per_second"},
		},
		{
			name:    "EnginesNotAList",
			content: "engines: {id: a}\n",
			want:    []string{"engines file", "line 1"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeFile(t, tt.content), env(tt.env))
			if err == nil {
				t.Fatal("Load: no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q echoes %q", err, tt.notWant)
			}
		})
	}
}

func TestRead(t *testing.T) {
	t.Parallel()

	// Listing needs no keys.
	f, err := Read(writeFile(t, "engines:\n  - {id: a, provider: openai, model: m, api_key_env: UNSET_KEY}\n"))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := []engine.Info{
		{ID: "sim", Provider: "sim", Model: "simulator"},
		{ID: "a", Provider: "openai", Model: "m", BaseURL: openai.DefaultBaseURL},
	}
	if got := f.Infos(); !slices.Equal(got, want) {
		t.Errorf("Infos = %+v, want %+v", got, want)
	}
	if f.Engines[0].APIKeyEnv != "UNSET_KEY" || f.Engines[0].Line != 2 {
		t.Errorf("entry = %+v", f.Engines[0])
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()

	r := Default()
	if got := ids(r); !slices.Equal(got, []string{"sim"}) {
		t.Errorf("engines = %q, want [sim]", got)
	}
}

// TestSimEntryBoundedByMaxRuntime: a sim entry's default params count
// toward its runtime, so a job adding a slow pace to an entry's long
// first-token delay is refused under the registry's maximum runtime.
func TestSimEntryBoundedByMaxRuntime(t *testing.T) {
	t.Parallel()
	r, err := Load(writeFile(t, "engines:\n  - id: slow\n    provider: sim\n    options:\n      params: {sim_first_token_delay: 3000}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetMaxRuntime(time.Hour)
	p := map[string]json.RawMessage{"sim_tokens": json.RawMessage("1000"), "sim_tokens_per_second": json.RawMessage("1")}
	if err := r.Validate("slow", p); err == nil || !strings.Contains(err.Error(), "maximum runtime") {
		t.Errorf("3,000 s of delay and 999 s of tokens: %v, want refused", err)
	}
	p["sim_tokens"] = json.RawMessage("100")
	if err := r.Validate("slow", p); err != nil {
		t.Errorf("3,099 s: %v, want accepted", err)
	}
}

// TestBuiltEngines streams through engines built from a file, against fake
// servers: the key comes from the named variable, and the hooks fire with
// the engine's id.
func TestBuiltEngines(t *testing.T) {
	t.Parallel()

	oai := enginetest.NewOpenAIServer(t,
		enginetest.ErrorResponse(503, `{"error":{"message":"busy"}}`),
		enginetest.OpenAIText(),
	)
	rsp := enginetest.NewResponsesServer(t, enginetest.ResponsesText())
	ant := enginetest.NewAnthropicServer(t,
		enginetest.ErrorResponse(401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`),
	)
	path := writeFile(t, `
engines:
  - id: gpt
    provider: openai
    model: gpt-4.1
    base_url: `+oai.URL+`/v1
    api_key_env: TEST_OPENAI_KEY
    options:
      retry_base_delay: 1ms
      params: {max_completion_tokens: 99}
  - id: gpt-responses
    provider: openai-responses
    model: gpt-5
    base_url: `+rsp.URL+`/v1
    api_key_env: TEST_OPENAI_KEY
    options:
      params: {max_completion_tokens: 77, store: false}
  - id: claude
    provider: anthropic
    model: claude-sonnet-4-5
    base_url: `+ant.URL+`
    api_key_env: TEST_ANTHROPIC_KEY
  - id: fast
    provider: sim
    options:
      params: {sim_tokens_per_second: 0, sim_tokens: 3}
`)
	var mu sync.Mutex
	var events []string
	r, err := LoadWithHooks(path, env(map[string]string{"TEST_OPENAI_KEY": "sk-from-env", "TEST_ANTHROPIC_KEY": "sk-ant-from-env"}), Hooks{
		OnRetry: func(id string, attempt int, err error) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, "retry "+id)
		},
		OnFailure: func(id, errType string) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, "failure "+id+" "+errType)
		},
	})
	if err != nil {
		t.Fatalf("LoadWithHooks: %v", err)
	}
	t.Cleanup(func() {
		for _, id := range []string{"gpt", "gpt-responses", "claude"} {
			e, _ := r.Get(id)
			e.(interface{ CloseIdleConnections() }).CloseIdleConnections()
		}
	})
	req := engine.Request{Messages: []engine.Message{{Role: "user", Content: "Hi"}}}

	gpt, _ := r.Get("gpt")
	if _, _, err := enginetest.Collect(context.Background(), gpt, req); err != nil {
		t.Fatalf("gpt: %v", err)
	}
	reqs := oai.Requests()
	if len(reqs) != 2 {
		t.Fatalf("openai server got %d requests, want 2", len(reqs))
	}
	if got := reqs[1].Header.Get("Authorization"); got != "Bearer sk-from-env" {
		t.Errorf("Authorization = %q, want the key from TEST_OPENAI_KEY", got)
	}
	if got := reqs[1].Body["max_completion_tokens"]; got != float64(99) {
		t.Errorf("max_completion_tokens = %v, want the default 99", got)
	}

	gptResponses, _ := r.Get("gpt-responses")
	if _, finish, err := enginetest.Collect(context.Background(), gptResponses, req); err != nil || finish.Reason != "stop" {
		t.Fatalf("gpt-responses: finish %+v, err %v", finish, err)
	}
	rreq := rsp.Requests()[0]
	if rreq.Path != "/v1/responses" || rreq.Header.Get("Authorization") != "Bearer sk-from-env" {
		t.Errorf("responses request %s with Authorization %q, want /v1/responses with the key from TEST_OPENAI_KEY", rreq.Path, rreq.Header.Get("Authorization"))
	}
	if got := rreq.Body["max_output_tokens"]; got != float64(77) || rreq.Body["store"] != false {
		t.Errorf("max_output_tokens = %v, store = %v; want the defaults 77 and false", got, rreq.Body["store"])
	}

	claude, _ := r.Get("claude")
	_, _, err = enginetest.Collect(context.Background(), claude, req)
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Type != "auth_error" {
		t.Fatalf("claude error = %v, want auth_error", err)
	}
	if got := ant.Requests()[0].Header.Get("X-Api-Key"); got != "sk-ant-from-env" {
		t.Errorf("x-api-key = %q, want the key from TEST_ANTHROPIC_KEY", got)
	}

	fast, _ := r.Get("fast")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, finish, err := enginetest.Collect(ctx, fast, req)
	if err != nil || len(got) != 4 || finish.Reason != "stop" {
		t.Errorf("sim-fast: %d chunks, finish %+v, err %v; want 3 tokens, usage, stop", len(got), finish, err)
	}

	mu.Lock()
	defer mu.Unlock()
	if want := []string{"retry gpt", "failure claude auth_error"}; !slices.Equal(events, want) {
		t.Errorf("hook events = %q, want %q", events, want)
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
