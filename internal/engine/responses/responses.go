// Package responses is the engine for an upstream OpenAI Responses API
// (POST /responses with "stream": true): OpenAI itself, and the servers that
// implement the same API (vLLM, Ollama, LM Studio, OpenRouter, Azure
// OpenAI, ...).
//
// It streams through the official Go SDK (github.com/openai/openai-go/v3)
// and maps each event onto jobstream's chunks exactly as the Chat
// Completions engine (internal/engine/openai) maps its deltas, so a stored
// job looks the same whichever API produced it:
//
//	response.output_text.delta, response.refusal.delta -> content
//	response.reasoning_summary_text.delta,
//	response.reasoning_text.delta                     -> thinking
//	response.output_item.added of type function_call  -> tool id, type "function", name
//	                                                     (index = the call's position in the turn)
//	response.function_call_arguments.delta            -> tool arguments fragments
//	                                                     (.done only when no delta came)
//	response.completed                                -> finish "stop", or "tool_calls" on the
//	                                                     tool stream when the turn called tools
//	response.incomplete                               -> finish "length" (max_output_tokens),
//	                                                     "content_filter", or the reason as sent
//	response.completed/incomplete usage               -> one usage chunk, after the text
//	response.failed, error                            -> an upstream error
//
// Params: max_completion_tokens (aliases max_new_tokens, max_tokens) ->
// max_output_tokens, temperature, top_p, tools (jobstream's Chat Completions
// shape, converted to the Responses shape with the schema's bytes kept),
// tool_choice; messages and full_prompt supply the input. stop is rejected:
// the Responses API has none. model, stream, input, instructions belong to
// the engine; sim_* params are dropped; every other param is passed through
// as a field of the request body (store, reasoning, parallel_tool_calls,
// truncation, ...).
package responses

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/openai/openai-go/v3/option"
	sdk "github.com/openai/openai-go/v3/responses"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/openai"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// Config configures an Engine. The fields mean what they mean for the Chat
// Completions engine; BaseURL is the part before /responses.
type Config struct {
	Model        string
	BaseURL      string
	APIKey       string
	APIKeyHeader string
	Headers      map[string]string
	Query        map[string]string
	Params       map[string]json.RawMessage
	Policy       upstream.Policy
	HTTPClient   *http.Client
}

// Engine streams from a Responses API. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	client *http.Client
	svc    sdk.ResponseService
	caller upstream.Caller
}

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Model == "" {
		return nil, fmt.Errorf("openai-responses engine: model is required")
	}
	opts, client, err := openai.ClientOptions(openai.Config{
		BaseURL:      cfg.BaseURL,
		APIKey:       cfg.APIKey,
		APIKeyHeader: cfg.APIKeyHeader,
		Headers:      cfg.Headers,
		Query:        cfg.Query,
		HTTPClient:   cfg.HTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("openai-responses engine: %w", err)
	}
	return &Engine{
		cfg:    cfg,
		client: client,
		// Not a client from the environment: see openai.New.
		svc:    sdk.NewResponseService(opts...),
		caller: upstream.Caller{Policy: cfg.Policy, Secrets: []string{cfg.APIKey}},
	}, nil
}

// CloseIdleConnections closes the engine's idle upstream connections.
func (e *Engine) CloseIdleConnections() { e.client.CloseIdleConnections() }

// Validate checks params the way Stream would (engine.Validator).
func (e *Engine) Validate(params map[string]json.RawMessage) error {
	return upstream.Validate(e.cfg.Params, params, e.newParams)
}

// Stream implements engine.Engine.
func (e *Engine) Stream(ctx context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	return upstream.Stream(ctx, &e.caller, e.cfg.Params, req, e.newParams,
		func(ctx context.Context, at *upstream.Attempt, params sdk.ResponseNewParams) (engine.Finish, error) {
			return e.attempt(ctx, at, params, emit)
		})
}

func (e *Engine) attempt(ctx context.Context, at *upstream.Attempt, params sdk.ResponseNewParams, emit engine.Emit) (engine.Finish, error) {
	stream := e.svc.NewStreaming(ctx, params, option.WithMiddleware(at.Middleware))
	defer stream.Close()
	t := turn{emit: func(c engine.Chunk) error { return at.Emit(emit, c) }}
	for stream.Next() {
		done, err := t.event(stream.Current().RawJSON())
		if err != nil {
			return engine.Finish{}, err
		}
		if done {
			break
		}
	}
	if !t.done {
		if err := stream.Err(); err != nil {
			if se, ok := openai.StreamError(err); ok {
				return engine.Finish{}, se
			}
			return engine.Finish{}, err
		}
	}
	return t.finish()
}
