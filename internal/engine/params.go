package engine

import (
	"encoding/json"
	"fmt"
)

// Param names every engine understands. Others pass through to providers.
const (
	ParamMaxCompletionTokens = "max_completion_tokens"
	ParamMaxNewTokens        = "max_new_tokens" // SEMOSS alias of max_completion_tokens
	ParamTemperature         = "temperature"
	ParamTopP                = "top_p"
	ParamStop                = "stop"
	ParamTools               = "tools"
	ParamToolChoice          = "tool_choice"
	ParamMessages            = "messages"
	ParamFullPrompt          = "full_prompt"
	ParamStream              = "stream"
)

// ParamInt reads an integer param. ok is false when the param is absent or
// JSON null; err is set when it is present but not an integer.
func ParamInt(p map[string]json.RawMessage, name string) (v int64, ok bool, err error) {
	raw, present := p[name]
	if !present || string(raw) == "null" {
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, false, fmt.Errorf("param %s: want a number, got %s", name, raw)
	}
	if f != float64(int64(f)) {
		return 0, false, fmt.Errorf("param %s: want an integer, got %s", name, raw)
	}
	return int64(f), true, nil
}

// ParamFloat reads a numeric param, like ParamInt.
func ParamFloat(p map[string]json.RawMessage, name string) (v float64, ok bool, err error) {
	raw, present := p[name]
	if !present || string(raw) == "null" {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("param %s: want a number, got %s", name, raw)
	}
	return v, true, nil
}

// MaxTokens returns max_completion_tokens, or its alias max_new_tokens.
func MaxTokens(p map[string]json.RawMessage) (int64, bool, error) {
	if v, ok, err := ParamInt(p, ParamMaxCompletionTokens); ok || err != nil {
		return v, ok, err
	}
	return ParamInt(p, ParamMaxNewTokens)
}

// Tool is an OpenAI-style tool definition:
// {"type":"function","function":{"name":..,"description":..,"parameters":{..}}}.
type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction is the function part of a Tool.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// Tools decodes the tools param. Absent or null gives nil.
func Tools(p map[string]json.RawMessage) ([]Tool, error) {
	raw, ok := p[ParamTools]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var tools []Tool
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, fmt.Errorf("param tools: want a list of {\"type\":\"function\",\"function\":{...}}: %v", err)
	}
	for i, t := range tools {
		if t.Function.Name == "" {
			return nil, fmt.Errorf("param tools[%d]: function.name is required", i)
		}
	}
	return tools, nil
}
