package engine

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrEmptyPrompt: a request with no command and no message with content.
var ErrEmptyPrompt = errors.New("the prompt is empty: a job needs a command or messages")

// Roles a Message may have.
var roles = map[string]bool{"system": true, "user": true, "assistant": true, "tool": true, "developer": true}

// DecodeMessages reads a conversation: a list of chat messages, or a plain
// string (one user message). Every message needs a known role.
func DecodeMessages(raw json.RawMessage) ([]Message, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []Message{{Role: "user", Content: s}}, nil
	}
	var msgs []Message
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, errors.New(`want a string or a list of {"role":..,"content":..} messages`)
	}
	for i, m := range msgs {
		if !roles[m.Role] {
			return nil, fmt.Errorf("message %d: unknown role %q (want system, user, assistant, tool or developer)", i, truncate(m.Role, 64))
		}
	}
	return msgs, nil
}

// CheckPrompt checks, at submit time, the prompt a worker will build from
// a request (see worker.buildRequest), so that what would fail the job
// later is refused now: params.full_prompt and params.messages must be
// conversations (DecodeMessages), and so must messages; and the prompt
// must not be empty (no command, and no message with any content).
// Errors name the field.
func CheckPrompt(command string, messages json.RawMessage, params map[string]json.RawMessage) error {
	for _, name := range []string{ParamFullPrompt, ParamMessages} {
		raw, ok := params[name]
		if !ok || string(raw) == "null" {
			continue
		}
		msgs, err := DecodeMessages(raw)
		if err != nil {
			return fmt.Errorf("params.%s: %v", name, err)
		}
		if empty(msgs) {
			return fmt.Errorf("params.%s: %w", name, ErrEmptyPrompt)
		}
		return nil // it is the whole conversation
	}
	var msgs []Message
	if len(messages) > 0 && string(messages) != "null" {
		var err error
		if msgs, err = DecodeMessages(messages); err != nil {
			return fmt.Errorf("messages: %v", err)
		}
	}
	if command == "" && empty(msgs) {
		return ErrEmptyPrompt
	}
	return nil
}

// empty reports whether msgs say nothing: no content, no tool calls.
func empty(msgs []Message) bool {
	for _, m := range msgs {
		if m.Content != "" || len(m.ToolCalls) > 0 {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
