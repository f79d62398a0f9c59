package openai

import (
	"encoding/json"
	"fmt"

	sdk "github.com/openai/openai-go/v3"

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
		"stream_options":   true,
		"model":            true,
	}
)

// newParams builds the request body from merged params. msgs may be nil when
// only validating.
func (e *Engine) newParams(p map[string]json.RawMessage, msgs []engine.Message) (sdk.ChatCompletionNewParams, error) {
	out := sdk.ChatCompletionNewParams{Model: e.cfg.Model}
	var err error
	if out.Messages, err = messages(msgs); err != nil {
		return out, err
	}
	if !e.cfg.OmitStreamUsage {
		out.StreamOptions.IncludeUsage = sdk.Bool(true)
	}
	extra := map[string]any{}
	if v, ok, err := upstream.MaxTokens(p); err != nil {
		return out, err
	} else if ok {
		if e.cfg.MaxTokensParam == MaxTokensParamLegacy {
			out.MaxTokens = sdk.Int(v)
		} else {
			out.MaxCompletionTokens = sdk.Int(v)
		}
	}
	if v, ok, err := engine.ParamFloat(p, engine.ParamTemperature); err != nil {
		return out, err
	} else if ok {
		out.Temperature = sdk.Float(v)
	}
	if v, ok, err := engine.ParamFloat(p, engine.ParamTopP); err != nil {
		return out, err
	} else if ok {
		out.TopP = sdk.Float(v)
	}
	stop, err := upstream.Stop(p)
	if err != nil {
		return out, err
	}
	switch len(stop) {
	case 0:
	case 1:
		out.Stop.OfString = sdk.String(stop[0])
	default:
		out.Stop.OfStringArray = stop
	}
	// Tools and tool_choice are already in OpenAI's shape: once validated
	// they go out byte for byte, so schema key order and fields the SDK does
	// not model (strict, ...) survive.
	tools, err := engine.Tools(p)
	if err != nil {
		return out, err
	}
	if len(tools) > 0 {
		extra[engine.ParamTools] = p[engine.ParamTools]
	}
	if _, ok, err := upstream.ParseToolChoice(p); err != nil {
		return out, err
	} else if ok {
		extra[engine.ParamToolChoice] = p[engine.ParamToolChoice]
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

// messages converts the conversation to the SDK's message params.
func messages(msgs []engine.Message) ([]sdk.ChatCompletionMessageParamUnion, error) {
	out := make([]sdk.ChatCompletionMessageParamUnion, 0, len(msgs))
	for i, m := range msgs {
		switch m.Role {
		case "system":
			out = append(out, sdk.SystemMessage(m.Content))
		case "developer":
			out = append(out, sdk.DeveloperMessage(m.Content))
		case "user":
			u := sdk.ChatCompletionUserMessageParam{}
			u.Content.OfString = sdk.String(m.Content)
			if m.Name != "" {
				u.Name = sdk.String(m.Name)
			}
			out = append(out, sdk.ChatCompletionMessageParamUnion{OfUser: &u})
		case "assistant":
			a := sdk.ChatCompletionAssistantMessageParam{}
			if m.Content != "" || len(m.ToolCalls) == 0 {
				a.Content.OfString = sdk.String(m.Content)
			}
			if m.Name != "" {
				a.Name = sdk.String(m.Name)
			}
			for j, tc := range m.ToolCalls {
				if tc.ID == "" || tc.Function.Name == "" {
					return nil, fmt.Errorf("messages[%d].tool_calls[%d]: id and function.name are required", i, j)
				}
				a.ToolCalls = append(a.ToolCalls, sdk.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &sdk.ChatCompletionMessageFunctionToolCallParam{
						ID: tc.ID,
						Function: sdk.ChatCompletionMessageFunctionToolCallFunctionParam{
							Name:      tc.Function.Name,
							Arguments: tc.Function.Arguments,
						},
					},
				})
			}
			out = append(out, sdk.ChatCompletionMessageParamUnion{OfAssistant: &a})
		case "tool":
			if m.ToolCallID == "" {
				return nil, fmt.Errorf("messages[%d]: a tool message needs tool_call_id", i)
			}
			out = append(out, sdk.ToolMessage(m.Content, m.ToolCallID))
		default:
			return nil, fmt.Errorf("messages[%d]: unknown role %q (want system, developer, user, assistant or tool)", i, m.Role)
		}
	}
	return out, nil
}
