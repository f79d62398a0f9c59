package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/store"
)

// MaxHistoryTurns caps how many earlier turns of a room are sent: the
// latest ones.
const MaxHistoryTurns = 50

// buildRequest assembles the conversation an engine receives:
//
//   - params.full_prompt or params.messages, when given, are the whole
//     conversation (they override everything else, as in SEMOSS);
//   - otherwise: the system prompt (SEMOSS "context"), then the room's
//     latest turns rebuilt from their stored chunks when use_history is
//     set, then the request's own messages (tool results sent back for the
//     room's last turn, say), then the command as the last user message.
func (w *Worker) buildRequest(ctx context.Context, c store.Claim) (engine.Request, error) {
	req := engine.Request{JobID: c.JobID.String(), Params: map[string]json.RawMessage{}}
	for k, v := range c.Request.Params {
		req.Params[k] = v
	}
	for _, name := range []string{engine.ParamFullPrompt, engine.ParamMessages} {
		raw, ok := req.Params[name]
		if !ok || string(raw) == "null" {
			continue
		}
		delete(req.Params, name)
		msgs, err := engine.DecodeMessages(raw)
		if err != nil {
			return req, &engine.Error{Type: "invalid_request", Message: fmt.Sprintf("param %s: %v", name, err)}
		}
		req.Messages = msgs
		return req, nil
	}
	if c.Request.System != "" {
		req.Messages = append(req.Messages, engine.Message{Role: "system", Content: c.Request.System})
	}
	if c.Request.UseHistory && c.RoomID != "" {
		turns, err := w.store.RecentRoomHistory(ctx, c.Tenant, c.RoomID, c.JobID, MaxHistoryTurns)
		if err != nil {
			return req, err
		}
		req.Messages = append(req.Messages, historyMessages(turns)...)
	}
	if len(c.Request.Messages) > 0 {
		msgs, err := engine.DecodeMessages(c.Request.Messages)
		if err != nil {
			return req, &engine.Error{Type: "invalid_request", Message: "messages: " + err.Error()}
		}
		req.Messages = append(req.Messages, msgs...)
	}
	if c.Request.Command != "" {
		req.Messages = append(req.Messages, engine.Message{Role: "user", Content: c.Request.Command})
	}
	return req, nil
}

// historyMessages rebuilds a room's conversation from its finished turns:
// each turn's own messages (tool results sent back, say), its command as a
// user message, and its stored output as the assistant's reply.
func historyMessages(turns []store.Turn) []engine.Message {
	var msgs []engine.Message
	for _, t := range turns {
		if len(t.Request.Messages) > 0 {
			if m, err := engine.DecodeMessages(t.Request.Messages); err == nil {
				for _, x := range m {
					if x.Role != "system" {
						msgs = append(msgs, x)
					}
				}
			}
		}
		if t.Request.Command != "" {
			msgs = append(msgs, engine.Message{Role: "user", Content: t.Request.Command})
		}
		reply := engine.Message{Role: "assistant", Content: t.Content}
		var calls []engine.ToolCall
		if json.Unmarshal(t.ToolCalls, &calls) == nil && len(calls) > 0 {
			reply.ToolCalls = calls
		}
		if reply.Content != "" || len(reply.ToolCalls) > 0 {
			msgs = append(msgs, reply)
		}
	}
	return msgs
}
