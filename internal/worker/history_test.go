package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/worker"
)

// sized answers with param n bytes of text and reports each request it
// gets on seen (if set).
type sized struct{ seen chan engine.Request }

func (s sized) Stream(_ context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	if s.seen != nil {
		s.seen <- req
	}
	var n int
	_ = json.Unmarshal(req.Params["n"], &n)
	if n > 0 {
		if err := emit(engine.Content(strings.Repeat("x", n))); err != nil {
			return engine.Finish{}, err
		}
	}
	return engine.Finish{Reason: engine.FinishStop}, nil
}

// TestHistoryBounded: a use_history job's prompt holds only the latest
// turns of its room that fit, with its own prompt, in MaxPromptBytes; the
// oldest are left out first, whole (issue 18, item 6: an 80-byte request
// in a room of large turns was sent 25 MB).
func TestHistoryBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	seen := make(chan engine.Request, 100)
	const limit = 2000
	b := setupWorkerWith(t, worker.Config{MaxPromptBytes: limit}, map[string]engine.Engine{"sized": sized{}, "seen": sized{seen: seen}}, nil)
	room := "room-1"
	submit := func(eng string, r store.Request) store.Job {
		t.Helper()
		job, err := b.store.Submit(ctx, store.SubmitParams{Tenant: tenant, Engine: eng, RoomID: room, Request: r})
		if err != nil {
			t.Fatal(err)
		}
		b.end(t, tenant, job.ID, 30*time.Second)
		return job
	}
	// Six turns of 506 bytes each: "turn n" and 500 bytes of answer.
	for i := range 6 {
		submit("sized", store.Request{Command: fmt.Sprintf("turn %d", i), Params: map[string]json.RawMessage{"n": json.RawMessage("500")}})
	}
	submit("seen", store.Request{System: "sys", Command: "now", UseHistory: true})
	req := <-seen
	var got []string
	size := 0
	for _, m := range req.Messages {
		got = append(got, m.Role+":"+m.Content[:min(len(m.Content), 6)])
		size += len(m.Content)
	}
	// 2,000 - 6 bytes of its own: three turns (1,518 bytes), not four.
	want := "system:sys user:turn 3 assistant:xxxxxx user:turn 4 assistant:xxxxxx user:turn 5 assistant:xxxxxx user:now"
	if strings.Join(got, " ") != want {
		t.Errorf("prompt %q,\nwant %q", strings.Join(got, " "), want)
	}
	if size > limit {
		t.Errorf("prompt of %d bytes, over the %d limit", size, limit)
	}

	// One turn larger than the limit: none of the history fits, and the
	// job still runs on its own prompt.
	submit("sized", store.Request{Command: "huge", Params: map[string]json.RawMessage{"n": json.RawMessage("5000")}})
	submit("seen", store.Request{Command: "again", UseHistory: true})
	if req := <-seen; len(req.Messages) != 1 || req.Messages[0].Content != "again" {
		t.Errorf("after a turn over the limit: %d messages, want only the command", len(req.Messages))
	}
}
