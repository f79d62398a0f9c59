package engine_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/engine"
)

// TestCheckPrompt: what would fail a job when its worker builds the
// prompt is refused at submit time, naming the field.
func TestCheckPrompt(t *testing.T) {
	t.Parallel()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for name, tc := range map[string]struct {
		command  string
		messages string
		params   map[string]json.RawMessage
		want     string // "" = accepted
	}{
		"Command":           {command: "hi"},
		"Messages":          {messages: `[{"role":"user","content":"hi"}]`},
		"StringMessages":    {messages: `"hi"`},
		"FullPromptString":  {params: map[string]json.RawMessage{"full_prompt": raw(`"hi"`)}},
		"FullPromptList":    {params: map[string]json.RawMessage{"full_prompt": raw(`[{"role":"user","content":"hi"}]`)}},
		"ToolCallOnly":      {messages: `[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]}]`},
		"Nothing":           {want: "the prompt is empty"},
		"EmptyMessages":     {messages: `[]`, want: "the prompt is empty"},
		"EmptyContent":      {messages: `[{"role":"user","content":""}]`, want: "the prompt is empty"},
		"NullFullPrompt":    {params: map[string]json.RawMessage{"full_prompt": raw(`null`)}, want: "the prompt is empty"},
		"EmptyFullPrompt":   {command: "ignored", params: map[string]json.RawMessage{"full_prompt": raw(`""`)}, want: "params.full_prompt: the prompt is empty"},
		"FullPromptNumber":  {command: "x", params: map[string]json.RawMessage{"full_prompt": raw(`5`)}, want: "params.full_prompt: want a string or a list"},
		"FullPromptObject":  {params: map[string]json.RawMessage{"full_prompt": raw(`{"a":1}`)}, want: "params.full_prompt: want a string or a list"},
		"MessagesParamRole": {params: map[string]json.RawMessage{"messages": raw(`[{"role":"wizard","content":"x"}]`)}, want: `params.messages: message 0: unknown role "wizard"`},
		"UnknownRole":       {command: "x", messages: `[{"role":"wizard","content":"x"}]`, want: `messages: message 0: unknown role "wizard"`},
		"MissingRole":       {command: "x", messages: `[{"content":"x"}]`, want: `messages: message 0: unknown role ""`},
		"MessagesNotAList":  {command: "x", messages: `{"role":"user"}`, want: "messages: want a string or a list"},
		"ContentNotAString": {messages: `[{"role":"user","content":[1]}]`, want: "messages: want a string or a list"},
	} {
		err := engine.CheckPrompt(tc.command, raw(tc.messages), tc.params)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", name, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
