package responsesapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/respevent"
	"github.com/jobstream/jobstream/internal/store"
)

// CreateRequest is the body of POST /v1/responses. Union-typed fields
// (input, tool_choice) stay raw until validated.
type CreateRequest struct {
	Model             *string           `json:"model"`
	Input             json.RawMessage   `json:"input"`
	Instructions      *string           `json:"instructions"`
	Tools             []FunctionTool    `json:"tools"`
	ToolChoice        json.RawMessage   `json:"tool_choice"`
	MaxOutputTokens   *float64          `json:"max_output_tokens"`
	Temperature       *float64          `json:"temperature"`
	TopP              *float64          `json:"top_p"`
	Background        *bool             `json:"background"`
	Stream            *bool             `json:"stream"`
	Metadata          map[string]string `json:"metadata"`
	ParallelToolCalls *bool             `json:"parallel_tool_calls"`
	// Accepted for compatibility; jobstream stores every response, and
	// serves plain text without truncation.
	Store         *bool           `json:"store"`
	User          *string         `json:"user"`
	StreamOptions json.RawMessage `json:"stream_options"`
	Include       []string        `json:"include"`
	Truncation    *string         `json:"truncation"`
	Text          json.RawMessage `json:"text"`
}

// unsupported are Responses API parameters jobstream does not implement:
// naming them is clearer than "unknown field".
var unsupported = map[string]string{
	"previous_response_id":   "send the earlier turns as input items instead",
	"conversation":           "send the earlier turns as input items instead",
	"prompt":                 "send instructions and input instead",
	"reasoning":              "configure reasoning on the engine instead",
	"service_tier":           "",
	"max_tool_calls":         "",
	"top_logprobs":           "",
	"safety_identifier":      "",
	"prompt_cache_key":       "",
	"prompt_cache_retention": "",
	"context_management":     "",
	"moderation":             "",
	"prompt_cache_options":   "",
}

// FunctionTool is a Responses function tool:
// {"type":"function","name":..,"description":..,"parameters":{..},"strict":..}.
type FunctionTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// InputItem is one input item as stored and as GET .../input_items lists
// it: a message, a function call the model made earlier, or a function
// call's output.
type InputItem struct {
	ID        string      `json:"id"`
	Type      string      `json:"type"`
	Status    string      `json:"status"`
	Role      string      `json:"role,omitempty"`
	Content   []InputPart `json:"content,omitempty"`
	CallID    string      `json:"call_id,omitempty"`
	Name      string      `json:"name,omitempty"`
	Arguments *string     `json:"arguments,omitempty"`
	Output    *string     `json:"output,omitempty"`
}

// InputPart is a text part of an input message.
type InputPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// created is a validated create request, ready to store.
type created struct {
	meta   respevent.Meta
	input  []InputItem
	job    store.SubmitParams
	stream bool
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// decodeCreate reads and validates a create request completely: nothing
// is stored for a request that fails here, and every failure is a 4xx
// naming the parameter.
func decodeCreate(w http.ResponseWriter, r *http.Request, cfg httpapi.Config, engines *engine.Registry) (created, error) {
	body, err := readBody(w, r, cfg.MaxBodyBytes)
	if err != nil {
		return created{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return created{}, invalid("", "", "The request body is empty; want a JSON object.")
	}
	var req CreateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return created{}, decodeError(err)
	}
	if dec.More() {
		return created{}, invalid("", "", "The request body must hold a single JSON object.")
	}
	return validate(req, cfg, engines)
}

// readBody reads a JSON request body of at most limit bytes, refusing
// other content types, invalid UTF-8 and NUL characters (PostgreSQL stores
// neither; refusing them here keeps them a 400 rather than a failed
// INSERT).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var ae *httpapi.APIError
	if err := httpapi.JSONContentType(r); errors.As(err, &ae) {
		return nil, newError(ae.Status, "invalid_request_error", "", ae.Code, "%s.", ae.Message)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, newError(http.StatusRequestEntityTooLarge, "invalid_request_error", "", "request_too_large", "The request body is larger than %d bytes.", limit)
	}
	if err != nil {
		return nil, invalid("", "", "Reading the request body failed: %v", err)
	}
	if !utf8.Valid(body) {
		return nil, invalid("", "", "The request body is not valid UTF-8.")
	}
	if bytes.Contains(body, []byte(`\u0000`)) {
		return nil, invalid("", "", "The request contains a NUL character (\\u0000), which cannot be stored.")
	}
	return body, nil
}

func decodeError(err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return invalid("", "", "We could not parse the JSON body of your request: %v (at byte %d).", err, se.Offset)
	case errors.As(err, &te):
		return invalid(te.Field, "invalid_type", "Invalid type for '%s': expected %s, but got a JSON %s.", te.Field, jsonType(te.Type.String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if hint, ok := unsupported[name]; ok {
			msg := fmt.Sprintf("The parameter '%s' is not supported by jobstream.", name)
			if hint != "" {
				msg += " " + strings.ToUpper(hint[:1]) + hint[1:] + "."
			}
			return invalid(name, "unsupported_parameter", "%s", msg)
		}
		return invalid(name, "unknown_parameter", "Unknown parameter: '%s'.", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "", "The request body is truncated JSON.")
	}
	return invalid("", "", "We could not parse the JSON body of your request: %v", err)
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "*"):
		return jsonType(goType[1:])
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case goType == "float64", strings.HasPrefix(goType, "int"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

func validate(req CreateRequest, cfg httpapi.Config, engines *engine.Registry) (created, error) {
	var c created
	if req.Model == nil || *req.Model == "" {
		return c, invalid("model", "missing_required_parameter", "Missing required parameter: 'model' (a jobstream engine id; GET /v1/engines lists them).")
	}
	c.meta.Model = *req.Model
	c.meta.Background = req.Background != nil && *req.Background
	c.stream = req.Stream != nil && *req.Stream
	if req.Store != nil && !*req.Store {
		return c, invalid("store", "unsupported_value", "jobstream stores every response: 'store' must be true or left out.")
	}
	if req.Truncation != nil && *req.Truncation != "disabled" {
		return c, invalid("truncation", "unsupported_value", "Only truncation 'disabled' is supported.")
	}
	if len(req.Text) > 0 && string(req.Text) != "null" {
		var t struct {
			Format *struct {
				Type string `json:"type"`
			} `json:"format"`
		}
		if err := json.Unmarshal(req.Text, &t); err != nil || (t.Format != nil && t.Format.Type != "text") {
			return c, invalid("text.format", "unsupported_value", "Only text.format {\"type\":\"text\"} is supported.")
		}
	}
	if len(req.StreamOptions) > 0 && string(req.StreamOptions) != "null" {
		var so struct {
			IncludeObfuscation *bool `json:"include_obfuscation"`
		}
		dec := json.NewDecoder(bytes.NewReader(req.StreamOptions))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&so); err != nil {
			return c, invalid("stream_options", "invalid_value", "stream_options may only hold include_obfuscation (a boolean): %v", err)
		}
	}
	params := map[string]json.RawMessage{}
	if req.MaxOutputTokens != nil {
		v := *req.MaxOutputTokens
		if v != math.Trunc(v) || v < 1 || v > 1<<31-1 {
			return c, invalid("max_output_tokens", "invalid_value", "Invalid 'max_output_tokens': want an integer of at least 1, got %v.", v)
		}
		n := int64(v)
		c.meta.MaxOutputTokens = &n
		params[engine.ParamMaxCompletionTokens] = mustJSON(n)
	}
	if req.Temperature != nil {
		if v := *req.Temperature; v < 0 || v > 2 {
			return c, invalid("temperature", "decimal_out_of_range", "Invalid 'temperature': want a number between 0 and 2, got %v.", v)
		}
		c.meta.Temperature = req.Temperature
		params[engine.ParamTemperature] = mustJSON(*req.Temperature)
	}
	if req.TopP != nil {
		if v := *req.TopP; v < 0 || v > 1 {
			return c, invalid("top_p", "decimal_out_of_range", "Invalid 'top_p': want a number between 0 and 1, got %v.", v)
		}
		c.meta.TopP = req.TopP
		params[engine.ParamTopP] = mustJSON(*req.TopP)
	}
	c.meta.ParallelToolCalls = req.ParallelToolCalls
	if err := validateMetadata(req.Metadata); err != nil {
		return c, err
	}
	c.meta.Metadata = req.Metadata
	if req.Instructions != nil {
		c.meta.Instructions = req.Instructions
		c.job.Request.System = *req.Instructions
	}

	// Tools, in the Responses shape for the Response object and in the
	// Chat Completions shape every engine takes.
	if req.Tools != nil {
		names := map[string]bool{}
		chat := make([]engine.Tool, 0, len(req.Tools))
		for i, t := range req.Tools {
			p := fmt.Sprintf("tools[%d]", i)
			if t.Type != "function" {
				return c, invalid(p+".type", "unsupported_value", "Tool type '%s' is not supported: jobstream engines take function tools ({\"type\":\"function\",\"name\":..}).", truncate(t.Type, 64))
			}
			if !toolName.MatchString(t.Name) {
				return c, invalid(p+".name", "invalid_value", "Invalid '%s.name': want 1 to 64 letters, digits, '_' or '-', got %q.", p, truncate(t.Name, 80))
			}
			if names[t.Name] {
				return c, invalid(p+".name", "invalid_value", "Duplicate tool name %q.", t.Name)
			}
			names[t.Name] = true
			if len(t.Parameters) > 0 && string(t.Parameters) != "null" {
				var obj map[string]json.RawMessage
				if err := json.Unmarshal(t.Parameters, &obj); err != nil {
					return c, invalid(p+".parameters", "invalid_type", "Invalid '%s.parameters': want a JSON Schema object.", p)
				}
				// Kept raw, so checked as jsonb will read it: numbers
				// numeric cannot hold, lone surrogates, deep nesting.
				if err := store.CheckJSON(p+".parameters", t.Parameters); err != nil {
					return c, checkStorable(err)
				}
			} else {
				req.Tools[i].Parameters = nil
			}
			ct := engine.Tool{Type: "function", Function: engine.ToolFunction{Name: t.Name, Parameters: req.Tools[i].Parameters}}
			if t.Description != nil {
				ct.Function.Description = *t.Description
			}
			chat = append(chat, ct)
		}
		c.meta.Tools = mustJSON(req.Tools)
		params[engine.ParamTools] = mustJSON(chat)
		choice, chatChoice, err := toolChoice(req.ToolChoice, names)
		if err != nil {
			return c, err
		}
		if choice != nil {
			c.meta.ToolChoice = choice
			params[engine.ParamToolChoice] = chatChoice
		}
	} else if len(req.ToolChoice) > 0 && string(req.ToolChoice) != "null" {
		choice, chatChoice, err := toolChoice(req.ToolChoice, nil)
		if err != nil {
			return c, err
		}
		c.meta.ToolChoice = choice
		params[engine.ParamToolChoice] = chatChoice
	}

	msgs, items, err := convertInput(req.Input)
	if err != nil {
		return c, err
	}
	c.input = items
	c.job.Engine = c.meta.Model
	c.job.Request.Messages = mustJSON(msgs)
	c.job.Request.Params = params
	if err := engines.Validate(c.meta.Model, params); err != nil {
		if errors.Is(err, engine.ErrUnknownEngine) {
			return c, invalid("model", "model_not_found", "The model '%s' does not exist: it must be a jobstream engine id (GET /v1/engines lists them).", truncate(c.meta.Model, 80))
		}
		return c, invalid("", "invalid_value", "%v", err)
	}
	if n := len(c.job.Request.System) + len(c.job.Request.Messages) + len(params[engine.ParamTools]); n > cfg.MaxPromptBytes {
		return c, newError(http.StatusRequestEntityTooLarge, "invalid_request_error", "input", "context_length_exceeded", "The prompt is %d bytes, more than the %d allowed.", n, cfg.MaxPromptBytes)
	}
	// Everything stored must be storable: the job (as Submit checks it)
	// and the response's meta and input items. The checks above name the
	// request's own parameters; these catch whatever they do not.
	if err := c.job.Check(); err != nil {
		return c, checkStorable(err)
	}
	if err := store.CheckJSON("request", mustJSON(c.meta)); err != nil {
		return c, checkStorable(err)
	}
	if err := store.CheckJSON("input", mustJSON(c.input)); err != nil {
		return c, checkStorable(err)
	}
	return c, nil
}

func validateMetadata(m map[string]string) error {
	if len(m) > 16 {
		return invalid("metadata", "invalid_value", "Invalid 'metadata': at most 16 keys, got %d.", len(m))
	}
	for k, v := range m {
		if len(k) > 64 {
			return invalid("metadata", "invalid_value", "Invalid 'metadata': key %q is longer than 64 characters.", truncate(k, 80))
		}
		if len(v) > 512 {
			return invalid("metadata", "invalid_value", "Invalid 'metadata': the value of %q is longer than 512 characters.", truncate(k, 80))
		}
	}
	return nil
}

// toolChoice validates tool_choice: "none", "auto", "required", or
// {"type":"function","name":..} naming one of the tools. It returns the
// value for the Response object and for the engine (Chat Completions
// shape); nil when absent.
func toolChoice(raw json.RawMessage, names map[string]bool) (resp, chat json.RawMessage, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "none", "auto", "required":
			return mustJSON(s), mustJSON(s), nil
		}
		return nil, nil, invalid("tool_choice", "invalid_value", "Invalid 'tool_choice': want \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"name\":..}, got %q.", truncate(s, 64))
	}
	var f struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &f); err != nil || f.Type != "function" {
		return nil, nil, invalid("tool_choice", "invalid_value", "Invalid 'tool_choice': want \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"name\":..}.")
	}
	if !names[f.Name] {
		return nil, nil, invalid("tool_choice.name", "invalid_value", "Invalid 'tool_choice': no function tool named %q in 'tools'.", truncate(f.Name, 80))
	}
	return mustJSON(map[string]string{"type": "function", "name": f.Name}),
		mustJSON(map[string]any{"type": "function", "function": map[string]string{"name": f.Name}}), nil
}

// rawItem is the union of the input item shapes accepted.
type rawItem struct {
	Type      *string         `json:"type"`
	ID        *string         `json:"id"`
	Status    *string         `json:"status"`
	Role      *string         `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    *string         `json:"call_id"`
	Name      *string         `json:"name"`
	Arguments *string         `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// convertInput validates input (a string, or a list of message,
// function_call and function_call_output items) and turns it into the
// chat messages engines take and the input items to store.
func convertInput(raw json.RawMessage) ([]engine.Message, []InputItem, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, invalid("input", "missing_required_parameter", "Missing required parameter: 'input'.")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil, invalid("input", "empty_string", "Invalid 'input': empty string.")
		}
		return []engine.Message{{Role: "user", Content: s}},
			[]InputItem{{Type: "message", Status: "completed", Role: "user", Content: []InputPart{{"input_text", s}}}}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, invalid("input", "invalid_type", "Invalid 'input': want a string or an array of input items.")
	}
	if len(list) == 0 {
		return nil, nil, invalid("input", "empty_array", "Invalid 'input': empty array.")
	}
	var msgs []engine.Message
	items := make([]InputItem, 0, len(list))
	for i, el := range list {
		p := fmt.Sprintf("input[%d]", i)
		// Unknown fields are ignored here: clients send back output items
		// (with annotations, logprobs, ...) as input.
		var it rawItem
		if err := json.Unmarshal(el, &it); err != nil {
			return nil, nil, invalid(p, "invalid_value", "Invalid '%s': %v.", p, strings.TrimPrefix(err.Error(), "json: "))
		}
		typ := "message"
		if it.Type != nil {
			typ = *it.Type
		}
		switch typ {
		case "message":
			if it.Role == nil {
				return nil, nil, invalid(p+".role", "missing_required_parameter", "Missing required parameter: '%s.role'.", p)
			}
			role := *it.Role
			partType := "input_text"
			switch role {
			case "user", "system", "developer":
			case "assistant":
				partType = "output_text"
			default:
				return nil, nil, invalid(p+".role", "invalid_value", "Invalid '%s.role': want user, assistant, system or developer, got %q.", p, truncate(role, 64))
			}
			text, err := contentText(it.Content, p+".content", role == "assistant")
			if err != nil {
				return nil, nil, err
			}
			msgs = append(msgs, engine.Message{Role: role, Content: text})
			items = append(items, InputItem{Type: "message", Status: "completed", Role: role, Content: []InputPart{{partType, text}}})
		case "function_call":
			if it.CallID == nil || *it.CallID == "" || it.Name == nil || *it.Name == "" || it.Arguments == nil {
				return nil, nil, invalid(p, "missing_required_parameter", "Invalid '%s': a function_call item needs call_id, name and arguments.", p)
			}
			call := engine.ToolCall{ID: *it.CallID, Type: "function", Function: engine.FunctionCall{Name: *it.Name, Arguments: *it.Arguments}}
			if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" && (msgs[n-1].Content == "" || len(msgs[n-1].ToolCalls) > 0) {
				msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, call)
			} else {
				msgs = append(msgs, engine.Message{Role: "assistant", ToolCalls: []engine.ToolCall{call}})
			}
			items = append(items, InputItem{Type: "function_call", Status: "completed", CallID: *it.CallID, Name: *it.Name, Arguments: it.Arguments})
		case "function_call_output":
			if it.CallID == nil || *it.CallID == "" {
				return nil, nil, invalid(p+".call_id", "missing_required_parameter", "Missing required parameter: '%s.call_id'.", p)
			}
			out, err := contentText(it.Output, p+".output", false)
			if err != nil {
				return nil, nil, err
			}
			msgs = append(msgs, engine.Message{Role: "tool", ToolCallID: *it.CallID, Content: out})
			items = append(items, InputItem{Type: "function_call_output", Status: "completed", CallID: *it.CallID, Output: &out})
		case "reasoning":
			// An earlier turn's reasoning sent back with its output:
			// engines take none, so it is left out.
		default:
			return nil, nil, invalid(p+".type", "unsupported_value", "Input item type '%s' is not supported: jobstream takes message, function_call and function_call_output items.", truncate(typ, 64))
		}
	}
	return msgs, items, nil
}

// contentText reads message content: a string, or a list of text parts
// (input_text; output_text and refusal in an assistant's message).
func contentText(raw json.RawMessage, param string, assistant bool) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", invalid(param, "missing_required_parameter", "Missing required parameter: '%s'.", param)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "invalid_type", "Invalid '%s': want a string or an array of text parts.", param)
	}
	var b strings.Builder
	for j, part := range parts {
		pp := fmt.Sprintf("%s[%d]", param, j)
		switch {
		case part.Type == "input_text", assistant && part.Type == "output_text":
		default:
			return "", invalid(pp+".type", "unsupported_value", "Content part type '%s' is not supported here: jobstream engines take text (input_text; output_text in assistant messages).", truncate(part.Type, 64))
		}
		if part.Text == nil {
			return "", invalid(pp+".text", "missing_required_parameter", "Missing required parameter: '%s.text'.", pp)
		}
		b.WriteString(*part.Text)
	}
	return b.String(), nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("responsesapi: marshal %T: %v", v, err))
	}
	return b
}
