package responses

import (
	"encoding/json"
	"fmt"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// event is the part of a Responses stream event the engine reads. Events are
// decoded from their raw JSON rather than through the SDK's unions, so a
// server that sends only the fields that matter is understood the same way.
type event struct {
	Type        string `json:"type"`
	Delta       string `json:"delta"`
	ItemID      string `json:"item_id"`
	OutputIndex *int64 `json:"output_index"`
	Arguments   string `json:"arguments"`
	Item        *struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"item"`
	Response *struct {
		Status            string `json:"status"`
		IncompleteDetails *struct {
			Reason string `json:"reason"`
		} `json:"incomplete_details"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Usage *usage `json:"usage"`
	} `json:"response"`
	// The "error" event's own fields.
	Code    *string `json:"code"`
	Message string  `json:"message"`
}

type usage struct {
	InputTokens        *int64 `json:"input_tokens"`
	OutputTokens       *int64 `json:"output_tokens"`
	InputTokensDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails *struct {
		ReasoningTokens *int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

// call is one function call of the turn.
type call struct {
	index int
	// args is whether an arguments fragment was emitted.
	args bool
}

// turn maps the events of one streamed response to jobstream chunks.
type turn struct {
	emit func(engine.Chunk) error
	// calls are the turn's function calls by item id, and by output index
	// for servers that leave item_id out of argument deltas.
	calls   map[string]*call
	byIndex map[int64]*call
	ncalls  int

	done   bool
	reason string
	usage  engine.Usage
}

// event handles one event's JSON; done is true after a terminal event.
func (t *turn) event(raw string) (done bool, err error) {
	var ev event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		return false, &engine.Error{Type: upstream.TypeUpstream, Message: fmt.Sprintf("undecodable event: %v", err), Retryable: true}
	}
	switch ev.Type {
	case "response.output_text.delta", "response.refusal.delta":
		if ev.Delta != "" {
			return false, t.emit(engine.Content(ev.Delta))
		}
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		if ev.Delta != "" {
			return false, t.emit(engine.Thinking(ev.Delta))
		}
	case "response.output_item.added":
		if ev.Item != nil && ev.Item.Type == "function_call" {
			return false, t.openCall(ev)
		}
	case "response.function_call_arguments.delta":
		if c := t.call(ev); c != nil && ev.Delta != "" {
			c.args = true
			return false, t.emit(engine.ToolArguments(c.index, ev.Delta))
		}
	case "response.function_call_arguments.done":
		// Servers that do not stream arguments send them whole here.
		if c := t.call(ev); c != nil && !c.args && ev.Arguments != "" {
			c.args = true
			return false, t.emit(engine.ToolArguments(c.index, ev.Arguments))
		}
	case "response.output_item.done":
		if ev.Item != nil && ev.Item.Type == "function_call" {
			if c := t.calls[ev.Item.ID]; c != nil && !c.args && ev.Item.Arguments != "" {
				c.args = true
				return false, t.emit(engine.ToolArguments(c.index, ev.Item.Arguments))
			}
		}
	case "response.completed", "response.incomplete":
		t.done = true
		t.reason = "stop"
		if ev.Response != nil {
			if ev.Response.Usage != nil {
				t.usage = ev.Response.Usage.engine()
			}
			if ev.Type == "response.incomplete" {
				t.reason = incompleteReason(ev)
			}
		}
		if t.reason == "stop" && t.ncalls > 0 {
			t.reason = "tool_calls"
		}
		return true, nil
	case "response.failed":
		t.done = true
		code, msg := "", "upstream response failed"
		if ev.Response != nil && ev.Response.Error != nil {
			code, msg = ev.Response.Error.Code, ev.Response.Error.Message
		}
		return true, upstream.StreamError(code, msg)
	case "error":
		t.done = true
		code := ""
		if ev.Code != nil {
			code = *ev.Code
		}
		return true, upstream.StreamError(code, ev.Message)
	}
	return false, nil
}

func (t *turn) openCall(ev event) error {
	if t.calls == nil {
		t.calls, t.byIndex = map[string]*call{}, map[int64]*call{}
	}
	c := &call{index: t.ncalls}
	t.ncalls++
	t.calls[ev.Item.ID] = c
	if ev.OutputIndex != nil {
		t.byIndex[*ev.OutputIndex] = c
	}
	id := ev.Item.CallID
	if id == "" {
		id = ev.Item.ID
	}
	for _, ch := range []engine.Chunk{
		engine.ToolID(c.index, id),
		engine.ToolType(c.index, "function"),
		engine.ToolName(c.index, ev.Item.Name),
	} {
		if err := t.emit(ch); err != nil {
			return err
		}
	}
	if ev.Item.Arguments != "" {
		c.args = true
		return t.emit(engine.ToolArguments(c.index, ev.Item.Arguments))
	}
	return nil
}

func (t *turn) call(ev event) *call {
	if c := t.calls[ev.ItemID]; c != nil {
		return c
	}
	if ev.OutputIndex != nil {
		return t.byIndex[*ev.OutputIndex]
	}
	return nil
}

// incompleteReason maps incomplete_details.reason onto the Chat Completions
// finish reasons jobstream stores: max_output_tokens is "length",
// content_filter stays, anything else is passed through.
func incompleteReason(ev event) string {
	if ev.Response.IncompleteDetails == nil || ev.Response.IncompleteDetails.Reason == "" {
		return "length"
	}
	switch r := ev.Response.IncompleteDetails.Reason; r {
	case "max_output_tokens":
		return "length"
	default:
		return r
	}
}

func (u *usage) engine() engine.Usage {
	out := engine.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens}
	if u.InputTokensDetails != nil {
		out.CacheReadInputTokens = u.InputTokensDetails.CachedTokens
	}
	if u.OutputTokensDetails != nil {
		out.ReasoningTokens = u.OutputTokensDetails.ReasoningTokens
	}
	return out
}

// finish ends the turn: it emits the usage chunk and says how it finished.
func (t *turn) finish() (engine.Finish, error) {
	if !t.done {
		return engine.Finish{}, &engine.Error{
			Type:      upstream.TypeUpstream,
			Message:   "upstream stream ended without response.completed",
			Retryable: true,
		}
	}
	stream := engine.StreamContent
	if t.ncalls > 0 && (t.reason == "tool_calls" || t.reason == "stop") {
		stream = engine.StreamTool
	}
	if err := t.emit(engine.UsageChunk(t.usage)); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: t.reason, Stream: stream}, nil
}
