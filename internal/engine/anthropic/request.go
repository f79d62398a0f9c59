package anthropic

import (
	"encoding/json"
	"fmt"

	sdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/upstream"
)

// ParamParallelToolCalls is OpenAI's switch for parallel tool calls; false
// maps to Anthropic's disable_parallel_tool_use.
const ParamParallelToolCalls = "parallel_tool_calls"

// emptySchema is the input_schema of a tool declared without parameters.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// newParams builds the request body from merged params. msgs may be nil when
// only validating.
func (e *Engine) newParams(p map[string]json.RawMessage, msgs []engine.Message) (sdk.MessageNewParams, error) {
	out := sdk.MessageNewParams{Model: sdk.Model(e.cfg.Model), MaxTokens: DefaultMaxTokens}
	var err error
	if out.System, out.Messages, err = messages(msgs); err != nil {
		return out, err
	}
	if v, ok, err := upstream.MaxTokens(p); err != nil {
		return out, err
	} else if ok {
		out.MaxTokens = v
	}
	// SDK v2 no longer models temperature and top_p (newer models reject
	// them); older models still take them, so validated values go out as
	// extra fields, exactly as v1 sent them.
	extra := map[string]any{}
	for _, name := range []string{engine.ParamTemperature, engine.ParamTopP} {
		if v, ok, err := engine.ParamFloat(p, name); err != nil {
			return out, err
		} else if ok {
			extra[name] = v
		}
	}
	if out.StopSequences, err = upstream.Stop(p); err != nil {
		return out, err
	}
	tools, err := engine.Tools(p)
	if err != nil {
		return out, err
	}
	for _, t := range tools {
		schema := t.Function.Parameters
		if len(schema) == 0 || string(schema) == "null" {
			schema = emptySchema
		}
		tp := &sdk.ToolParam{
			Name: t.Function.Name,
			// The JSON Schema goes out byte for byte, key order included.
			InputSchema: param.Override[sdk.ToolInputSchemaParam](schema),
		}
		if t.Function.Description != "" {
			tp.Description = sdk.String(t.Function.Description)
		}
		out.Tools = append(out.Tools, sdk.ToolUnionParam{OfTool: tp})
	}
	tc, hasChoice, err := upstream.ParseToolChoice(p)
	if err != nil {
		return out, err
	}
	parallel := true
	if raw, ok := p[ParamParallelToolCalls]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &parallel); err != nil {
			return out, fmt.Errorf("param %s: want true or false, got %s", ParamParallelToolCalls, raw)
		}
	}
	if hasChoice || (!parallel && len(tools) > 0) {
		out.ToolChoice = toolChoice(tc, !parallel)
	}
	for k, v := range p {
		if e.passthrough[k] {
			extra[k] = v
		}
	}
	if len(extra) > 0 {
		out.SetExtraFields(extra)
	}
	return out, nil
}

func toolChoice(tc upstream.ToolChoice, noParallel bool) sdk.ToolChoiceUnionParam {
	var disable param.Opt[bool]
	if noParallel {
		disable = sdk.Bool(true)
	}
	switch tc.Mode {
	case "none":
		return sdk.ToolChoiceUnionParam{OfNone: &sdk.ToolChoiceNoneParam{}}
	case "required":
		return sdk.ToolChoiceUnionParam{OfAny: &sdk.ToolChoiceAnyParam{DisableParallelToolUse: disable}}
	case "function":
		return sdk.ToolChoiceUnionParam{OfTool: &sdk.ToolChoiceToolParam{Name: tc.Name, DisableParallelToolUse: disable}}
	}
	return sdk.ToolChoiceUnionParam{OfAuto: &sdk.ToolChoiceAutoParam{DisableParallelToolUse: disable}}
}

// messages converts an OpenAI-shaped conversation: system and developer
// messages to system blocks, the rest to alternating user and assistant
// messages.
func messages(msgs []engine.Message) ([]sdk.TextBlockParam, []sdk.MessageParam, error) {
	var system []sdk.TextBlockParam
	var out []sdk.MessageParam
	// add appends blocks to the last message when it has the same role
	// (the API wants user and assistant turns to alternate).
	add := func(user bool, blocks ...sdk.ContentBlockParamUnion) {
		if len(blocks) == 0 {
			return
		}
		if n := len(out); n > 0 {
			if last := out[n-1]; user && last.OfUser != nil {
				last.OfUser.Content = append(last.OfUser.Content, blocks...)
				return
			} else if !user && last.OfAssistant != nil {
				last.OfAssistant.Content = append(last.OfAssistant.Content, blocks...)
				return
			}
		}
		if user {
			out = append(out, sdk.NewUserMessage(blocks...))
		} else {
			out = append(out, sdk.NewAssistantMessage(blocks...))
		}
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer":
			if m.Content != "" {
				system = append(system, sdk.TextBlockParam{Text: m.Content})
			}
		case "user":
			// The API rejects empty text blocks.
			if m.Content != "" {
				add(true, sdk.NewTextBlock(m.Content))
			}
		case "assistant":
			var blocks []sdk.ContentBlockParamUnion
			if m.Content != "" {
				blocks = append(blocks, sdk.NewTextBlock(m.Content))
			}
			for j, tc := range m.ToolCalls {
				if tc.ID == "" || tc.Function.Name == "" {
					return nil, nil, fmt.Errorf("messages[%d].tool_calls[%d]: id and function.name are required", i, j)
				}
				input := json.RawMessage(tc.Function.Arguments)
				if len(input) == 0 {
					input = json.RawMessage(`{}`)
				}
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(input, &obj); err != nil {
					return nil, nil, fmt.Errorf("messages[%d].tool_calls[%d].function.arguments: want a JSON object: %v", i, j, err)
				}
				blocks = append(blocks, sdk.NewToolUseBlock(tc.ID, input, tc.Function.Name))
			}
			add(false, blocks...)
		case "tool":
			if m.ToolCallID == "" {
				return nil, nil, fmt.Errorf("messages[%d]: a tool message needs tool_call_id", i)
			}
			r := sdk.ToolResultBlockParam{ToolUseID: m.ToolCallID}
			if m.Content != "" {
				r.Content = []sdk.ToolResultBlockParamContentUnion{{OfText: &sdk.TextBlockParam{Text: m.Content}}}
			}
			add(true, sdk.ContentBlockParamUnion{OfToolResult: &r})
		default:
			return nil, nil, fmt.Errorf("messages[%d]: unknown role %q (want system, developer, user, assistant or tool)", i, m.Role)
		}
	}
	return system, out, nil
}
