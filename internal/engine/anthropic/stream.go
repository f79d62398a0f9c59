package anthropic

import (
	"encoding/json"
	"errors"
	"strings"

	sdk "github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// turn maps the events of one streamed message to jobstream chunks.
type turn struct {
	emit       func(engine.Chunk) error
	stopReason string
	usage      engine.Usage
	// tools maps a tool_use content block's index to the call's index among
	// the turn's tool calls.
	tools map[int64]int
	// last is the stream type of the last chunk emitted.
	last string
}

func (t *turn) put(c engine.Chunk) error {
	t.last = c.StreamType
	return t.emit(c)
}

func (t *turn) event(ev sdk.MessageStreamEventUnion) error {
	switch ev.Type {
	case "message_start":
		u := ev.Message.Usage
		mergeUsage(&t.usage, engine.Usage{
			InputTokens:              count(u.JSON.InputTokens.Valid(), u.InputTokens),
			OutputTokens:             count(u.JSON.OutputTokens.Valid(), u.OutputTokens),
			CacheReadInputTokens:     count(u.JSON.CacheReadInputTokens.Valid(), u.CacheReadInputTokens),
			CacheCreationInputTokens: count(u.JSON.CacheCreationInputTokens.Valid(), u.CacheCreationInputTokens),
			ReasoningTokens: count(u.JSON.OutputTokensDetails.Valid() && u.OutputTokensDetails.JSON.ThinkingTokens.Valid(),
				u.OutputTokensDetails.ThinkingTokens),
		})
	case "content_block_start":
		b := ev.ContentBlock
		switch b.Type {
		case "tool_use":
			if t.tools == nil {
				t.tools = map[int64]int{}
			}
			i := len(t.tools)
			t.tools[ev.Index] = i
			for _, c := range []engine.Chunk{engine.ToolID(i, b.ID), engine.ToolType(i, "function"), engine.ToolName(i, b.Name)} {
				if err := t.put(c); err != nil {
					return err
				}
			}
		case "text":
			if b.Text != "" {
				return t.put(engine.Content(b.Text))
			}
		case "thinking":
			if b.Thinking != "" {
				return t.put(engine.Thinking(b.Thinking))
			}
		}
	case "content_block_delta":
		d := ev.Delta
		switch d.Type {
		case "text_delta":
			if d.Text != "" {
				return t.put(engine.Content(d.Text))
			}
		case "thinking_delta":
			if d.Thinking != "" {
				return t.put(engine.Thinking(d.Thinking))
			}
		case "input_json_delta":
			// Anthropic opens every tool input with an empty fragment.
			if i, ok := t.tools[ev.Index]; ok && d.PartialJSON != "" {
				return t.put(engine.ToolArguments(i, d.PartialJSON))
			}
		}
	case "message_delta":
		if ev.Delta.StopReason != "" {
			t.stopReason = string(ev.Delta.StopReason)
		}
		u := ev.Usage
		mergeUsage(&t.usage, engine.Usage{
			InputTokens:              count(u.JSON.InputTokens.Valid(), u.InputTokens),
			OutputTokens:             count(u.JSON.OutputTokens.Valid(), u.OutputTokens),
			CacheReadInputTokens:     count(u.JSON.CacheReadInputTokens.Valid(), u.CacheReadInputTokens),
			CacheCreationInputTokens: count(u.JSON.CacheCreationInputTokens.Valid(), u.CacheCreationInputTokens),
			ReasoningTokens: count(u.JSON.OutputTokensDetails.Valid() && u.OutputTokensDetails.JSON.ThinkingTokens.Valid(),
				u.OutputTokensDetails.ThinkingTokens),
		})
	}
	return nil
}

// mergeUsage overwrites dst's counts with those present in src:
// message_delta's counts are cumulative, so they replace message_start's.
func mergeUsage(dst *engine.Usage, src engine.Usage) {
	for _, f := range []struct{ dst, src **int64 }{
		{&dst.InputTokens, &src.InputTokens},
		{&dst.OutputTokens, &src.OutputTokens},
		{&dst.CacheReadInputTokens, &src.CacheReadInputTokens},
		{&dst.CacheCreationInputTokens, &src.CacheCreationInputTokens},
		{&dst.ReasoningTokens, &src.ReasoningTokens},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

// count returns &v when the field was present (not omitted or null).
func count(present bool, v int64) *int64 {
	if !present {
		return nil
	}
	return &v
}

// Reason maps an Anthropic stop_reason onto the finish reason stored on the
// finish chunk: end_turn and stop_sequence are "stop", max_tokens is
// "length", and the rest (tool_use, refusal, pause_turn, ...) pass through.
func Reason(stopReason string) string {
	switch stopReason {
	case "end_turn", "stop_sequence":
		return engine.FinishStop
	case "max_tokens":
		return engine.FinishLength
	}
	return stopReason
}

// finish ends a stream that closed cleanly: it emits the usage chunk and
// returns how the turn finished.
func (t *turn) finish() (engine.Finish, error) {
	if t.stopReason == "" {
		return engine.Finish{}, &engine.Error{
			Type:      upstream.TypeUpstream,
			Message:   "upstream stream ended without a stop_reason",
			Retryable: true,
		}
	}
	stream := engine.StreamContent
	if t.stopReason == "tool_use" || t.last == engine.StreamTool {
		stream = engine.StreamTool
	}
	if err := t.emit(engine.UsageChunk(t.usage)); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: Reason(t.stopReason), Stream: stream}, nil
}

// streamError recognises an "error" event: the SDK reports it as an
// *sdk.Error with the stream's own 200 status, or, without a response to
// hand, as a formatted error.
func streamError(err error) (*engine.Error, bool) {
	var raw string
	var apiErr *sdk.Error
	switch {
	case errors.As(err, &apiErr):
		if apiErr.StatusCode >= 400 {
			return nil, false
		}
		raw = apiErr.RawJSON()
	default:
		rest, ok := strings.CutPrefix(err.Error(), "received error while streaming: ")
		if !ok {
			return nil, false
		}
		raw = rest
	}
	var v struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return upstream.StreamError("", strings.TrimSpace(raw)), true
	}
	return upstream.StreamError(v.Error.Type, v.Error.Message), true
}
