// Package engine defines the one streaming interface every model provider
// implements (the built-in simulator, OpenAI-compatible servers, Anthropic),
// and the chunk envelope they produce.
//
// An engine never writes to the database. It emits chunks through a callback
// while the model streams, and returns how the turn finished. The worker owns
// sequence numbers, batching, lease fencing and the terminal write: the final
// chunk (the one with finish_reason) is built by the worker from the returned
// Finish so that it commits in the same transaction as the job's terminal
// status. The envelope is the chunk format in this package's README.md.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jobstream/jobstream/internal/jsonstr"
)

// Stream types of chunks (the chunk format in this package's README.md).
const (
	StreamContent  = "content"
	StreamThinking = "thinking"
	StreamTool     = "tool"
	StreamUsage    = "usage"
)

// Normalised finish reasons kept on the job record for analytics. Providers'
// own reasons are passed through unchanged on the finish chunk itself.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
	FinishCancelled     = "cancelled"
	FinishError         = "error"
)

// Chunk is one piece of streamed model output: {"stream_type":..,"data":{..}}.
type Chunk struct {
	StreamType string          `json:"stream_type"`
	Data       json.RawMessage `json:"data"`
}

// NewChunk builds a chunk whose data is the JSON encoding of v. It panics only
// if v cannot be marshalled, which for the map and struct literals used by
// engines is a programming error.
func NewChunk(streamType string, v any) Chunk {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("engine: marshal %s chunk: %v", streamType, err))
	}
	return Chunk{StreamType: streamType, Data: b}
}

// Content returns a content delta chunk.
func Content(text string) Chunk {
	return Chunk{StreamType: StreamContent, Data: textData(`{"content":`, text, "")}
}

// ContentAt returns a content delta chunk stamped with the time it was
// emitted ("emitted_at_us", Unix microseconds), for latency benchmarks.
func ContentAt(text string, at time.Time) Chunk {
	return Chunk{StreamType: StreamContent, Data: textData(`{"content":`, text, `,"emitted_at_us":`+strconv.FormatInt(at.UnixMicro(), 10))}
}

// Thinking returns a thinking (reasoning) delta chunk.
func Thinking(text string) Chunk {
	return Chunk{StreamType: StreamThinking, Data: textData(`{"thinking":`, text, "")}
}

// textData builds prefix + JSON string of text + suffix + "}" in one
// allocation, without encoding/json: these are built once per token, on the
// hottest path of every engine, where json.Marshal (an interface conversion
// and a buffer per call) was 16% of the server's CPU at 50k tokens/s
// (pprof, jobstream bench --mode sse --streams 1000 --rate 50).
func textData(prefix, text, suffix string) json.RawMessage {
	b := make([]byte, 0, len(prefix)+len(text)+2+len(suffix)+1)
	b = append(b, prefix...)
	b = jsonstr.AppendMarshal(b, text)
	b = append(b, suffix...)
	return append(b, '}')
}

// ToolID, ToolType, ToolName and ToolArguments return the four kinds of tool
// delta chunk, in the order a call streams them.
func ToolID(index int, id string) Chunk {
	return NewChunk(StreamTool, map[string]any{"index": index, "id": id})
}

func ToolType(index int, typ string) Chunk {
	return NewChunk(StreamTool, map[string]any{"index": index, "type": typ})
}

func ToolName(index int, name string) Chunk {
	return NewChunk(StreamTool, map[string]any{"index": index, "function": map[string]string{"name": name}})
}

func ToolArguments(index int, fragment string) Chunk {
	return NewChunk(StreamTool, map[string]any{"index": index, "function": map[string]string{"arguments": fragment}})
}

// Usage is token accounting for one turn. Nil fields are left out of the
// usage chunk.
type Usage struct {
	InputTokens              *int64 `json:"input_tokens,omitempty"`
	OutputTokens             *int64 `json:"output_tokens,omitempty"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens,omitempty"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens,omitempty"`
	ReasoningTokens          *int64 `json:"reasoning_tokens,omitempty"`
}

// UsageChunk returns a usage chunk for u.
func UsageChunk(u Usage) Chunk { return NewChunk(StreamUsage, u) }

// Finish says how a turn ended. Reason is the provider's own value (passed
// through to the finish chunk); Stream is the stream type the finish chunk
// goes on: "tool" when the turn ended with tool calls, else "content".
type Finish struct {
	Reason string
	Stream string
}

// Normalized maps a provider's finish reason onto the job record's small set.
func Normalized(reason string) string {
	switch reason {
	case "stop", "end_turn", "stop_sequence", "pause_turn":
		return FinishStop
	case "length", "max_tokens", "model_context_window_exceeded":
		return FinishLength
	case "tool_calls", "tool_use", "function_call":
		return FinishToolCalls
	case "content_filter", "refusal":
		return FinishContentFilter
	case FinishCancelled:
		return FinishCancelled
	case FinishError:
		return FinishError
	}
	return FinishStop
}

// Message is one turn of chat history in OpenAI Chat Completions shape.
// Content is a string for ordinary turns; ToolCalls carries an assistant's
// calls, and ToolCallID ties a role "tool" message to the call it answers.
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is an assembled tool call (OpenAI shape).
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function part of a ToolCall. Arguments is JSON text.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Request is what a worker hands an engine. Messages is the full
// conversation to send, already including the system prompt (if any), room
// history and the current user command as the last user message. Params
// holds every request parameter (max_completion_tokens, temperature, tools,
// tool_choice, provider-specific pass-through, ...) as raw JSON values.
type Request struct {
	JobID    string
	Messages []Message
	Params   map[string]json.RawMessage
}

// Emit receives each chunk as the model produces it. It returns an error
// when the chunk cannot be accepted (for example the job's lease was lost);
// the engine must then stop and return that error.
type Emit func(Chunk) error

// Engine streams one model turn.
//
// Stream calls emit for every delta in order and returns the Finish when the
// turn ends normally. It must return promptly with ctx.Err() (wrapped or
// not) when ctx is cancelled, aborting any upstream request. Any other error
// fails the job; wrap upstream failures in *Error to give them a type.
type Engine interface {
	Stream(ctx context.Context, req Request, emit Emit) (Finish, error)
}

// Error is a model failure with a type for the error finish chunk
// ({"finish_reason":"error","error":{"message":..,"type":..}}). Message must
// never contain secrets.
type Error struct {
	Type    string // e.g. "upstream_error", "rate_limited", "timeout", "invalid_request"
	Message string
	// Retryable reports whether the call may be retried (only ever before
	// the first chunk was emitted).
	Retryable bool
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Type, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Type, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownEngine is returned by a Registry for an engine id it does not know.
var ErrUnknownEngine = errors.New("unknown engine")

// Registry maps engine ids to engines.
type Registry struct {
	engines map[string]Engine
	infos   map[string]Info
	order   []string
	// maxRuntime is SetMaxRuntime's bound (nanoseconds; 0: none),
	// atomic because servers sharing a registry (tests) set it as they
	// start.
	maxRuntime atomic.Int64
}

// Info describes a configured engine without secrets.
type Info struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	BaseURL  string `json:"base_url,omitempty"`
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{engines: map[string]Engine{}, infos: map[string]Info{}}
}

// Register adds an engine; a later registration of the same id replaces it.
func (r *Registry) Register(info Info, e Engine) {
	if _, ok := r.engines[info.ID]; !ok {
		r.order = append(r.order, info.ID)
	}
	r.engines[info.ID] = e
	r.infos[info.ID] = info
}

// Get returns the engine with the given id, or ErrUnknownEngine.
func (r *Registry) Get(id string) (Engine, error) {
	e, ok := r.engines[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownEngine, id)
	}
	return e, nil
}

// Has reports whether id is registered.
func (r *Registry) Has(id string) bool { _, ok := r.engines[id]; return ok }

// List returns every engine's Info in registration order.
func (r *Registry) List() []Info {
	out := make([]Info, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.infos[id])
	}
	return out
}

// Validator is implemented by engines that can check a request's params at
// submit time, so a bad request is a 400 rather than a failed job.
type Validator interface {
	Validate(params map[string]json.RawMessage) error
}

// MinRuntimer is implemented by engines that know from a request's params
// alone how long its turn takes at least: the simulator, whose pace is a
// param. Validate refuses a request that could not end within the
// registry's maximum runtime (SetMaxRuntime): it would only hold a
// worker's slot until the runtime bound stopped it.
type MinRuntimer interface {
	// MinRuntime is the least time a turn with params takes; params
	// Validate accepts.
	MinRuntime(params map[string]json.RawMessage) time.Duration
}

// SetMaxRuntime sets the longest a job may run (the server's
// --max-runtime), which Validate holds MinRuntimer engines' requests to;
// 0: no bound.
func (r *Registry) SetMaxRuntime(d time.Duration) { r.maxRuntime.Store(int64(max(d, 0))) }

// Validate checks params against engine id: ErrUnknownEngine for an id not
// registered, or the engine's own Validator error.
func (r *Registry) Validate(id string, params map[string]json.RawMessage) error {
	e, err := r.Get(id)
	if err != nil {
		return err
	}
	if v, ok := e.(Validator); ok {
		if err := v.Validate(params); err != nil {
			return err
		}
	}
	if m, ok := e.(MinRuntimer); ok {
		if bound := time.Duration(r.maxRuntime.Load()); bound > 0 {
			if d := m.MinRuntime(params); d > bound {
				return fmt.Errorf("params: engine %s would run for at least %s with these params, longer than the %s a job may run (the server's maximum runtime)", id, d.Round(time.Second), bound)
			}
		}
	}
	return nil
}
