package upstream

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/jobstream/jobstream/internal/engine"
)

// ParamMaxTokens is the legacy OpenAI name of the token limit, accepted by
// both providers as a third alias after max_completion_tokens and
// max_new_tokens.
const ParamMaxTokens = "max_tokens"

// MergeParams returns the engine's default params overlaid with the
// request's. A request param set to JSON null removes the default.
func MergeParams(defaults, params map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(defaults)+len(params))
	maps.Copy(out, defaults)
	for k, v := range params {
		if string(v) == "null" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// MaxTokens returns the token limit: max_completion_tokens, max_new_tokens
// or max_tokens, in that order. It must be at least 1.
func MaxTokens(p map[string]json.RawMessage) (int64, bool, error) {
	v, ok, err := engine.MaxTokens(p)
	if !ok && err == nil {
		v, ok, err = engine.ParamInt(p, ParamMaxTokens)
	}
	if err != nil {
		return 0, false, err
	}
	if ok && v < 1 {
		return 0, false, fmt.Errorf("param max_completion_tokens: must be >= 1, got %d", v)
	}
	return v, ok, nil
}

// Stop decodes the stop param: a string or a list of strings.
func Stop(p map[string]json.RawMessage) ([]string, error) {
	raw, ok := p[engine.ParamStop]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("param stop: want a string or a list of strings, got %s", raw)
	}
	return many, nil
}

// ToolChoice is the tool_choice param in OpenAI's shape.
type ToolChoice struct {
	// Mode is "auto", "none" or "required", or "function" when Name is set.
	Mode string
	// Name is the function the model must call, for Mode "function".
	Name string
}

// ParseToolChoice decodes tool_choice: "auto", "none", "required" or
// {"type":"function","function":{"name":..}}. ok is false when absent.
func ParseToolChoice(p map[string]json.RawMessage) (tc ToolChoice, ok bool, err error) {
	raw, present := p[engine.ParamToolChoice]
	if !present || string(raw) == "null" {
		return ToolChoice{}, false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return ToolChoice{Mode: s}, true, nil
		}
		return ToolChoice{}, false, fmt.Errorf(`param tool_choice: want "auto", "none", "required" or {"type":"function","function":{"name":..}}, got %q`, s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return ToolChoice{}, false, fmt.Errorf(`param tool_choice: want "auto", "none", "required" or {"type":"function","function":{"name":..}}, got %s`, raw)
	}
	return ToolChoice{Mode: "function", Name: obj.Function.Name}, true, nil
}

// Messages returns the conversation to send. The worker normally fills
// req.Messages; when it is empty the params are used instead: "messages" (a
// list in OpenAI shape), or "full_prompt" (such a list, or one string taken as
// a single user message).
func Messages(req engine.Request) ([]engine.Message, error) {
	if len(req.Messages) > 0 {
		return req.Messages, nil
	}
	for _, name := range []string{engine.ParamMessages, engine.ParamFullPrompt} {
		raw, ok := req.Params[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if name == engine.ParamFullPrompt && json.Unmarshal(raw, &s) == nil {
			return []engine.Message{{Role: "user", Content: s}}, nil
		}
		var msgs []engine.Message
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, fmt.Errorf("param %s: want a list of {\"role\":..,\"content\":..} messages: %v", name, err)
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
	return nil, fmt.Errorf("no messages to send")
}

// Internal reports whether a param is jobstream's own rather than the
// provider's: the simulator's sim_* params.
func Internal(name string) bool { return strings.HasPrefix(name, "sim_") }
