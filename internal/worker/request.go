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
//
// The room's turns are at most MaxHistoryTurns, and only as many of the
// latest as fit, with the request's own prompt, in Config.MaxPromptBytes
// (promptBytes): the oldest are left out first, whole. A submission is
// held to that limit; without this, a short request in a room of large
// turns was sent a prompt 50 times over it (issue 18, item 6).
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
	var own []engine.Message
	if len(c.Request.Messages) > 0 {
		msgs, err := engine.DecodeMessages(c.Request.Messages)
		if err != nil {
			return req, &engine.Error{Type: "invalid_request", Message: "messages: " + err.Error()}
		}
		own = append(own, msgs...)
	}
	if c.Request.Command != "" {
		own = append(own, engine.Message{Role: "user", Content: c.Request.Command})
	}
	if c.Request.UseHistory && c.RoomID != "" {
		budget := w.cfg.MaxPromptBytes - promptBytes(req.Messages) - promptBytes(own)
		if budget > 0 {
			turns, err := w.store.RecentRoomHistory(ctx, c.Tenant, c.RoomID, c.JobID, MaxHistoryTurns, budget)
			if err != nil {
				return req, err
			}
			req.Messages = append(req.Messages, latestTurns(historyTurns(turns), budget)...)
		}
	}
	req.Messages = append(req.Messages, own...)
	return req, nil
}

// promptBytes is the size msgs add to a prompt: their text, names and tool
// calls.
func promptBytes(msgs []engine.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Content) + len(m.Name) + len(m.ToolCallID)
		for _, tc := range m.ToolCalls {
			n += len(tc.ID) + len(tc.Type) + len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	return n
}

// latestTurns returns the messages of the latest turns that fit in budget
// bytes together, oldest first: the oldest turns are left out, whole, and
// none older than one that did not fit is kept.
func latestTurns(turns [][]engine.Message, budget int) []engine.Message {
	first := len(turns)
	for first > 0 {
		n := promptBytes(turns[first-1])
		if n > budget {
			break
		}
		budget -= n
		first--
	}
	var msgs []engine.Message
	for _, t := range turns[first:] {
		msgs = append(msgs, t...)
	}
	return msgs
}

// historyTurns rebuilds a room's conversation from its finished turns, the
// messages of each apart: the turn's own messages (tool results sent back,
// say), its command as a user message, and its stored output as the
// assistant's reply.
func historyTurns(turns []store.Turn) [][]engine.Message {
	out := make([][]engine.Message, 0, len(turns))
	for _, t := range turns {
		var msgs []engine.Message
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
		out = append(out, msgs)
	}
	return out
}
