package openai

import (
	"encoding/json"
	"errors"
	"strings"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/respjson"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// turn maps the chunks of one streamed response to jobstream chunks.
type turn struct {
	emit   func(engine.Chunk) error
	reason string
	usage  engine.Usage
	// last is the stream type of the last chunk emitted: a turn whose output
	// ends with a tool call finishes on the tool stream even when a server
	// says "stop" (older Ollama and vLLM do).
	last string

	// Tool-call bookkeeping for servers that omit "index".
	nextIndex int
	lastIndex int
	lastID    string
	typed     map[int]bool
}

func (t *turn) put(c engine.Chunk) error {
	t.last = c.StreamType
	return t.emit(c)
}

func (t *turn) chunk(c sdk.ChatCompletionChunk) error {
	// vLLM reports a failure mid-stream as a chunk of object "error" rather
	// than in an "error" field.
	if c.JSON.Object.Raw() == `"error"` {
		var v struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		_ = json.Unmarshal([]byte(c.RawJSON()), &v)
		return upstream.StreamError(v.Type, v.Message)
	}
	if c.JSON.Usage.Valid() {
		t.usage = usage(c.Usage)
	}
	for _, ch := range c.Choices {
		// Only the first choice is a turn; n > 1 is not supported.
		if ch.Index != 0 {
			continue
		}
		if err := t.delta(ch.Delta); err != nil {
			return err
		}
		if ch.FinishReason != "" {
			t.reason = ch.FinishReason
		}
	}
	return nil
}

func (t *turn) delta(d sdk.ChatCompletionChunkChoiceDelta) error {
	// vLLM (before 0.10) and DeepSeek send reasoning_content; OpenRouter,
	// Ollama and newer vLLM send reasoning. Servers that send both send the
	// same text twice, so the first one present wins.
	thinking := extraString(d.JSON.ExtraFields, "reasoning_content")
	if thinking == "" {
		thinking = extraString(d.JSON.ExtraFields, "reasoning")
	}
	if thinking != "" {
		if err := t.put(engine.Thinking(thinking)); err != nil {
			return err
		}
	}
	if d.Content != "" {
		if err := t.put(engine.Content(d.Content)); err != nil {
			return err
		}
	}
	if d.Refusal != "" {
		if err := t.put(engine.Content(d.Refusal)); err != nil {
			return err
		}
	}
	for _, tc := range d.ToolCalls {
		if err := t.toolCall(tc); err != nil {
			return err
		}
	}
	return nil
}

func (t *turn) toolCall(tc sdk.ChatCompletionChunkChoiceDeltaToolCall) error {
	i := int(tc.Index)
	if !tc.JSON.Index.Valid() {
		// No index: a new id opens the next call, anything else continues
		// the current one.
		i = t.lastIndex
		if tc.ID != "" && tc.ID != t.lastID {
			i = t.nextIndex
		}
	}
	t.lastIndex, t.nextIndex = i, max(t.nextIndex, i+1)
	if tc.ID != "" {
		t.lastID = tc.ID
		if err := t.put(engine.ToolID(i, tc.ID)); err != nil {
			return err
		}
	}
	typ := tc.Type
	if typ == "" && tc.ID != "" && !t.typed[i] {
		typ = "function"
	}
	if typ != "" {
		if t.typed == nil {
			t.typed = map[int]bool{}
		}
		t.typed[i] = true
		if err := t.put(engine.ToolType(i, typ)); err != nil {
			return err
		}
	}
	if tc.Function.Name != "" {
		if err := t.put(engine.ToolName(i, tc.Function.Name)); err != nil {
			return err
		}
	}
	if tc.Function.Arguments != "" {
		if err := t.put(engine.ToolArguments(i, tc.Function.Arguments)); err != nil {
			return err
		}
	}
	return nil
}

// finish ends a stream that closed cleanly: it emits the usage chunk and
// returns how the turn finished.
func (t *turn) finish() (engine.Finish, error) {
	if t.reason == "" {
		return engine.Finish{}, &engine.Error{
			Type:      upstream.TypeUpstream,
			Message:   "upstream stream ended without a finish_reason",
			Retryable: true,
		}
	}
	stream := engine.StreamContent
	if t.reason == "tool_calls" || t.reason == "function_call" || t.last == engine.StreamTool {
		stream = engine.StreamTool
	}
	if err := t.emit(engine.UsageChunk(t.usage)); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: t.reason, Stream: stream}, nil
}

func usage(u sdk.CompletionUsage) engine.Usage {
	var out engine.Usage
	if u.JSON.PromptTokens.Valid() {
		out.InputTokens = &u.PromptTokens
	}
	if u.JSON.CompletionTokens.Valid() {
		out.OutputTokens = &u.CompletionTokens
	}
	if u.JSON.PromptTokensDetails.Valid() && u.PromptTokensDetails.JSON.CachedTokens.Valid() {
		out.CacheReadInputTokens = &u.PromptTokensDetails.CachedTokens
	}
	if u.JSON.CompletionTokensDetails.Valid() && u.CompletionTokensDetails.JSON.ReasoningTokens.Valid() {
		out.ReasoningTokens = &u.CompletionTokensDetails.ReasoningTokens
	}
	return out
}

// extraString returns a string field the SDK does not model, or "".
func extraString(fields map[string]respjson.Field, name string) string {
	f, ok := fields[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal([]byte(f.Raw()), &s) != nil {
		return ""
	}
	return s
}

// streamErrorPrefix is how the SDK reports an {"error":..} chunk.
const streamErrorPrefix = "received error while streaming: "

// StreamError recognises an error the upstream reported inside the stream.
func StreamError(err error) (*engine.Error, bool) {
	rest, ok := strings.CutPrefix(err.Error(), streamErrorPrefix)
	if !ok || errors.Unwrap(err) != nil {
		return nil, false
	}
	var v struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	}
	if json.Unmarshal([]byte(rest), &v) != nil || (v.Message == "" && v.Type == "") {
		// {"error":"text"}: the SDK passes the bare string on.
		return upstream.StreamError("", rest), true
	}
	return upstream.StreamError(v.Type, v.Message), true
}
