package responses

import (
	"encoding/json"
	"fmt"

	"github.com/openai/openai-go/v3/packages/param"
	sdk "github.com/openai/openai-go/v3/responses"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// consumed are the params newParams maps itself; ignored are the engine's
// own. Neither is passed through.
var (
	consumed = map[string]bool{
		engine.ParamMaxCompletionTokens: true,
		engine.ParamMaxNewTokens:        true,
		upstream.ParamMaxTokens:         true,
		engine.ParamTemperature:         true,
		engine.ParamTopP:                true,
		engine.ParamStop:                true,
		engine.ParamTools:               true,
		engine.ParamToolChoice:          true,
		engine.ParamMessages:            true,
		engine.ParamFullPrompt:          true,
	}
	ignored = map[string]bool{
		engine.ParamStream: true,
		"model":            true,
		"input":            true,
		"instructions":     true,
	}
)

// newParams builds the request body from merged params. msgs may be nil when
// only validating.
func (e *Engine) newParams(p map[string]json.RawMessage, msgs []engine.Message) (sdk.ResponseNewParams, error) {
	out := sdk.ResponseNewParams{Model: e.cfg.Model}
	items, err := input(msgs)
	if err != nil {
		return out, err
	}
	out.Input.OfInputItemList = items
	if v, ok, err := upstream.MaxTokens(p); err != nil {
		return out, err
	} else if ok {
		out.MaxOutputTokens = param.NewOpt(v)
	}
	if v, ok, err := engine.ParamFloat(p, engine.ParamTemperature); err != nil {
		return out, err
	} else if ok {
		out.Temperature = param.NewOpt(v)
	}
	if v, ok, err := engine.ParamFloat(p, engine.ParamTopP); err != nil {
		return out, err
	} else if ok {
		out.TopP = param.NewOpt(v)
	}
	if stop, err := upstream.Stop(p); err != nil {
		return out, err
	} else if len(stop) > 0 {
		return out, fmt.Errorf("param %s: the Responses API has no stop sequences", engine.ParamStop)
	}
	extra := map[string]any{}
	if tools, err := tools(p); err != nil {
		return out, err
	} else if tools != nil {
		extra[engine.ParamTools] = tools
	}
	if tc, ok, err := upstream.ParseToolChoice(p); err != nil {
		return out, err
	} else if ok {
		if tc.Mode == "function" {
			extra[engine.ParamToolChoice] = map[string]string{"type": "function", "name": tc.Name}
		} else {
			extra[engine.ParamToolChoice] = tc.Mode
		}
	}
	for k, v := range p {
		if consumed[k] || ignored[k] || upstream.Internal(k) {
			continue
		}
		extra[k] = v
	}
	if len(extra) > 0 {
		out.SetExtraFields(extra)
	}
	return out, nil
}

// tools converts jobstream's tools param, in the Chat Completions shape
// {"type":"function","function":{"name":..,"parameters":..}}, to the
// Responses shape {"type":"function","name":..,"parameters":..}. Every field
// of the function (strict, ...) is kept, and the schema goes out byte for
// byte.
func tools(p map[string]json.RawMessage) ([]map[string]json.RawMessage, error) {
	if _, err := engine.Tools(p); err != nil {
		return nil, err
	}
	raw, ok := p[engine.ParamTools]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var in []struct {
		Type     string                     `json:"type"`
		Function map[string]json.RawMessage `json:"function"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("param tools: %v", err)
	}
	out := make([]map[string]json.RawMessage, 0, len(in))
	for i, t := range in {
		if t.Type != "" && t.Type != "function" {
			return nil, fmt.Errorf("param tools[%d]: type %q is not supported (want function)", i, t.Type)
		}
		if _, ok := t.Function["type"]; ok {
			return nil, fmt.Errorf("param tools[%d]: function.type is not a function field", i)
		}
		m := make(map[string]json.RawMessage, len(t.Function)+1)
		for k, v := range t.Function {
			m[k] = v
		}
		m["type"] = json.RawMessage(`"function"`)
		out = append(out, m)
	}
	return out, nil
}

// input converts the conversation to Responses input items: system,
// developer, user and assistant text as messages, an assistant's tool calls
// as function_call items, tool results as function_call_output items.
func input(msgs []engine.Message) (sdk.ResponseInputParam, error) {
	out := make(sdk.ResponseInputParam, 0, len(msgs))
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer", "user":
			out = append(out, sdk.ResponseInputItemParamOfMessage(m.Content, sdk.EasyInputMessageRole(m.Role)))
		case "assistant":
			if m.Content != "" || len(m.ToolCalls) == 0 {
				out = append(out, sdk.ResponseInputItemParamOfMessage(m.Content, sdk.EasyInputMessageRoleAssistant))
			}
			for j, tc := range m.ToolCalls {
				if tc.ID == "" || tc.Function.Name == "" {
					return nil, fmt.Errorf("messages[%d].tool_calls[%d]: id and function.name are required", i, j)
				}
				out = append(out, sdk.ResponseInputItemParamOfFunctionCall(tc.Function.Arguments, tc.ID, tc.Function.Name))
			}
		case "tool":
			if m.ToolCallID == "" {
				return nil, fmt.Errorf("messages[%d]: a tool message needs tool_call_id", i)
			}
			item := sdk.ResponseInputItemParamOfFunctionCallOutput(m.Content)
			item.OfFunctionCallOutput.CallID = param.NewOpt(m.ToolCallID)
			out = append(out, item)
		default:
			return nil, fmt.Errorf("messages[%d]: unknown role %q (want system, developer, user, assistant or tool)", i, m.Role)
		}
	}
	return out, nil
}
