// Package openai is the engine for OpenAI Chat Completions and every server
// that speaks the same streaming API: OpenAI, Azure OpenAI, vLLM, Ollama,
// llama.cpp server, LM Studio, OpenRouter, Groq, Together, ...
//
// It streams through the official Go SDK (github.com/openai/openai-go/v3) and
// maps each chunk (the chunk format in internal/engine/README.md):
//
//	choices[0].delta.content                    -> content
//	delta.reasoning_content, else delta.reasoning -> thinking
//	delta.refusal                               -> content (so the refusal text is kept)
//	delta.tool_calls[i]                         -> one tool chunk per field present:
//	                                               id, type, function.name, function.arguments
//	choices[0].finish_reason                    -> Finish.Reason, passed through
//	usage (stream_options.include_usage)        -> one usage chunk, after the text
//
// Empty deltas emit nothing. A tool call opened without a "type" (some
// OpenAI-compatible servers omit it) gets a synthesized {"type":"function"}
// chunk right after its id, so every stored call has the same shape as the
// simulator's.
//
// Params: max_completion_tokens (aliases max_new_tokens, max_tokens),
// temperature, top_p, stop, tools, tool_choice map to the request; messages
// and full_prompt supply the conversation when the worker did not; model,
// stream and stream_options belong to the engine and are ignored; sim_* params
// are dropped; every other param is passed through unchanged as a field of the
// request body (seed, response_format, parallel_tool_calls, reasoning_effort,
// vLLM's top_k, ...).
package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// Values of Config.MaxTokensParam.
const (
	MaxTokensParamCompletion = "max_completion_tokens"
	MaxTokensParamLegacy     = "max_tokens"
)

// Config configures an Engine.
type Config struct {
	// Model is the model name sent upstream. Required.
	Model string

	// BaseURL is the API's base, the part before /chat/completions, such as
	// http://localhost:11434/v1. A URL with no path gets /v1 appended (the
	// convention of every OpenAI-compatible server); query parameters in it
	// are sent with every request. Defaults to DefaultBaseURL.
	BaseURL string

	// APIKey is sent as "Authorization: Bearer <key>". Empty sends no
	// credentials (local servers).
	APIKey string

	// APIKeyHeader, if set, is a header that carries the bare key instead of
	// Authorization, such as "api-key" for Azure OpenAI.
	APIKeyHeader string

	// Headers are added to every request.
	Headers map[string]string

	// Query parameters are added to every request, such as api-version for
	// Azure OpenAI.
	Query map[string]string

	// Params are default request params; the request's own params override
	// them.
	Params map[string]json.RawMessage

	// MaxTokensParam is the body field that carries the token limit:
	// "max_completion_tokens" (the default, and the only one OpenAI's
	// reasoning models accept) or "max_tokens" (older servers).
	MaxTokensParam string

	// OmitStreamUsage leaves stream_options.include_usage out of the request,
	// for servers that reject stream_options. Usage is then whatever the
	// server volunteers.
	OmitStreamUsage bool

	// Policy is the retry and timeout policy, with the metrics hooks.
	Policy upstream.Policy

	// HTTPClient defaults to upstream.NewHTTPClient().
	HTTPClient *http.Client
}

// Engine streams from an OpenAI-compatible Chat Completions API. It is safe
// for concurrent use.
type Engine struct {
	cfg    Config
	client *http.Client
	svc    sdk.ChatCompletionService
	caller upstream.Caller
}

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Model == "" {
		return nil, fmt.Errorf("openai engine: model is required")
	}
	switch cfg.MaxTokensParam {
	case "":
		cfg.MaxTokensParam = MaxTokensParamCompletion
	case MaxTokensParamCompletion, MaxTokensParamLegacy:
	default:
		return nil, fmt.Errorf("openai engine: max tokens param must be %q or %q, got %q",
			MaxTokensParamCompletion, MaxTokensParamLegacy, cfg.MaxTokensParam)
	}
	opts, client, err := ClientOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("openai engine: %w", err)
	}
	return &Engine{
		cfg:    cfg,
		client: client,
		// Not sdk.NewClient: it reads OPENAI_API_KEY and OPENAI_BASE_URL
		// from the environment, which would send one provider's key to
		// another provider's server.
		svc:    sdk.NewChatCompletionService(opts...),
		caller: upstream.Caller{Policy: cfg.Policy, Secrets: []string{cfg.APIKey}},
	}, nil
}

// ClientOptions returns the SDK request options for cfg's base URL, query,
// headers and credentials, with retries off (upstream.Caller retries), and
// the HTTP client they use. The OpenAI-compatible engines share it.
func ClientOptions(cfg Config) ([]option.RequestOption, *http.Client, error) {
	base, query, err := BaseURL(cfg.BaseURL)
	if err != nil {
		return nil, nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		client = upstream.NewHTTPClient()
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithHTTPClient(client),
		// Retries are upstream.Caller's alone, so they happen only before
		// the first chunk and are counted.
		option.WithMaxRetries(0),
	}
	for k, vs := range query {
		for _, v := range vs {
			opts = append(opts, option.WithQueryAdd(k, v))
		}
	}
	for k, v := range cfg.Query {
		opts = append(opts, option.WithQuery(k, v))
	}
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}
	if cfg.APIKey != "" {
		if cfg.APIKeyHeader == "" || strings.EqualFold(cfg.APIKeyHeader, "Authorization") {
			opts = append(opts, option.WithHeader("Authorization", "Bearer "+cfg.APIKey))
		} else {
			opts = append(opts, option.WithHeader(cfg.APIKeyHeader, cfg.APIKey))
		}
	}
	// The options are clipped because the SDK appends each call's own
	// options to them: with spare capacity, concurrent calls would write
	// into one array.
	return slices.Clip(opts), client, nil
}

// BaseURL normalises a configured base URL: DefaultBaseURL when empty, /v1
// when it has no path, and its query split off (the SDK drops a base URL's
// query when it joins the endpoint path).
func BaseURL(raw string) (string, url.Values, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("base_url %q: want an absolute http or https URL", raw)
	}
	query := u.Query()
	u.RawQuery, u.Fragment = "", ""
	if strings.Trim(u.Path, "/") == "" {
		u.Path = "/v1"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	u.RawPath = ""
	return u.String(), query, nil
}

// CloseIdleConnections closes the engine's idle upstream connections.
func (e *Engine) CloseIdleConnections() { e.client.CloseIdleConnections() }

// Validate checks params the way Stream would, so that a bad request is
// rejected at submit time (engine.Validator).
func (e *Engine) Validate(params map[string]json.RawMessage) error {
	return upstream.Validate(e.cfg.Params, params, e.newParams)
}

// Stream implements engine.Engine.
func (e *Engine) Stream(ctx context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	return upstream.Stream(ctx, &e.caller, e.cfg.Params, req, e.newParams,
		func(ctx context.Context, at *upstream.Attempt, params sdk.ChatCompletionNewParams) (engine.Finish, error) {
			return e.attempt(ctx, at, params, emit)
		})
}

func (e *Engine) attempt(ctx context.Context, at *upstream.Attempt, params sdk.ChatCompletionNewParams, emit engine.Emit) (engine.Finish, error) {
	stream := e.svc.NewStreaming(ctx, params, option.WithMiddleware(at.Middleware))
	defer stream.Close()
	t := turn{emit: func(c engine.Chunk) error { return at.Emit(emit, c) }}
	for stream.Next() {
		if err := t.chunk(stream.Current()); err != nil {
			return engine.Finish{}, err
		}
	}
	if err := stream.Err(); err != nil {
		if se, ok := StreamError(err); ok {
			return engine.Finish{}, se
		}
		return engine.Finish{}, err
	}
	return t.finish()
}
