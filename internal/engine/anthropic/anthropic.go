// Package anthropic is the engine for Anthropic's Messages API, streamed
// through the official Go SDK (github.com/anthropics/anthropic-sdk-go/v2).
//
// Events map to chunks (the chunk format in internal/engine/README.md):
//
//	content_block_delta text_delta        -> content
//	content_block_delta thinking_delta    -> thinking
//	content_block_start tool_use          -> tool id, type ("function") and name chunks
//	content_block_delta input_json_delta  -> tool arguments fragments
//	message_delta stop_reason             -> Finish.Reason: end_turn and stop_sequence -> "stop",
//	                                         max_tokens -> "length", others (tool_use,
//	                                         refusal, pause_turn, ...) passed through
//	message_start + message_delta usage   -> one usage chunk, after the text
//
// A tool call's index is its position among the turn's tool_use blocks (0,
// 1, ...), not the content block's index. Empty deltas, signature deltas,
// citations and server-side tool blocks emit nothing.
//
// The conversation arrives in OpenAI's shape and is converted: system (and
// developer) messages become the system param; an assistant's tool_calls
// become tool_use blocks; tool messages become tool_result blocks in a user
// message, consecutive ones merged into one; consecutive messages of one role
// are merged.
//
// Params: max_completion_tokens (aliases max_new_tokens, max_tokens; the API
// requires one, so DefaultMaxTokens applies when neither the request nor the
// engine's default params set it), temperature, top_p, stop (as
// stop_sequences), tools (parameters become input_schema), tool_choice
// ("auto", "none", "required" -> any, {"type":"function",..} -> tool) and
// parallel_tool_calls: false (-> disable_parallel_tool_use). The Messages API
// rejects unknown fields, so of the other params only top_k, metadata,
// thinking and service_tier pass through, plus those listed in
// Config.PassthroughParams; the rest are dropped.
package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// DefaultBaseURL is Anthropic's API.
const DefaultBaseURL = "https://api.anthropic.com"

// APIVersion is the anthropic-version header sent with every request.
const APIVersion = "2023-06-01"

// DefaultMaxTokens is the max_tokens sent when no param sets it.
const DefaultMaxTokens = 4096

// PassthroughParams are the params passed to the API unchanged.
var PassthroughParams = []string{"top_k", "metadata", "thinking", "service_tier"}

// Config configures an Engine.
type Config struct {
	// Model is the model name sent upstream. Required.
	Model string

	// BaseURL is the API's base, the part before /v1/messages; a trailing
	// /v1 is accepted too. Defaults to DefaultBaseURL.
	BaseURL string

	// APIKey is sent as the x-api-key header.
	APIKey string

	// Headers are added to every request, such as anthropic-beta.
	Headers map[string]string

	// Params are default request params; the request's own params override
	// them.
	Params map[string]json.RawMessage

	// PassthroughParams names params to pass to the API unchanged besides
	// the built-in PassthroughParams, for API fields newer than this code.
	PassthroughParams []string

	// Policy is the retry and timeout policy, with the metrics hooks.
	Policy upstream.Policy

	// HTTPClient defaults to upstream.NewHTTPClient().
	HTTPClient *http.Client
}

// Engine streams from Anthropic's Messages API. It is safe for concurrent
// use.
type Engine struct {
	cfg         Config
	client      *http.Client
	svc         sdk.MessageService
	caller      upstream.Caller
	passthrough map[string]bool
}

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Model == "" {
		return nil, fmt.Errorf("anthropic engine: model is required")
	}
	base, err := BaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("anthropic engine: %w", err)
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
		// SDK v2 defaults to a newer API version and Bearer auth. The
		// Messages wire format jobstream maps (and that Anthropic-compatible
		// proxies implement) is 2023-06-01 with x-api-key, so both are
		// pinned; an engine's headers may still override the version.
		option.WithHeader("anthropic-version", APIVersion),
	}
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithHeader("x-api-key", cfg.APIKey))
	}
	pass := map[string]bool{}
	for _, name := range PassthroughParams {
		pass[name] = true
	}
	for _, name := range cfg.PassthroughParams {
		pass[name] = true
	}
	return &Engine{
		cfg:    cfg,
		client: client,
		// The options are clipped because the SDK appends each call's own
		// options to them: with spare capacity, concurrent calls would
		// write into one array.
		//
		// Not sdk.NewClient: it reads ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
		// and profile files from the environment.
		svc:         sdk.NewMessageService(slices.Clip(opts)...),
		caller:      upstream.Caller{Policy: cfg.Policy, Secrets: []string{cfg.APIKey}},
		passthrough: pass,
	}, nil
}

// BaseURL normalises a configured base URL: DefaultBaseURL when empty, and
// a trailing /v1 removed (the SDK adds v1/messages).
func BaseURL(raw string) (string, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base_url %q: want an absolute http or https URL", raw)
	}
	u.Fragment = ""
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/v1") + "/"
	u.RawPath = ""
	return u.String(), nil
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
		func(ctx context.Context, at *upstream.Attempt, params sdk.MessageNewParams) (engine.Finish, error) {
			return e.attempt(ctx, at, params, emit)
		})
}

func (e *Engine) attempt(ctx context.Context, at *upstream.Attempt, params sdk.MessageNewParams, emit engine.Emit) (engine.Finish, error) {
	stream := e.svc.NewStreaming(ctx, params, option.WithMiddleware(at.Middleware))
	defer stream.Close()
	t := turn{emit: func(c engine.Chunk) error { return at.Emit(emit, c) }}
	for stream.Next() {
		if err := t.event(stream.Current()); err != nil {
			return engine.Finish{}, err
		}
	}
	if err := stream.Err(); err != nil {
		if se, ok := streamError(err); ok {
			return engine.Finish{}, se
		}
		return engine.Finish{}, err
	}
	return t.finish()
}
