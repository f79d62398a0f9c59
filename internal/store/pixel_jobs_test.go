package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

func TestPixelJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()
	owner := "owner-" + uuid.NewString()

	l := runningJob(t, pool, tenant, owner)
	pj := store.PixelJob{InsightID: "insight-1", Expression: `LLM(command="hi");`, Sync: true}
	if err := s.PixelJobCreate(ctx, l.JobID, pj); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PixelJobGet(ctx, tenant, l.JobID); err != nil || got != pj {
		t.Fatalf("PixelJobGet = %+v, %v; want %+v", got, err, pj)
	}
	if _, err := s.PixelJobGet(ctx, "other", l.JobID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v, want ErrNotFound", err)
	}

	res, err := s.PixelResult(ctx, tenant, l.JobID)
	if err != nil || res.Status != store.StatusRunning || res.RunMillis != 0 || res.Pixel == nil || *res.Pixel != pj {
		t.Fatalf("result of a running job: %+v, %v", res, err)
	}

	tool := func(seq int, data string) store.NewChunk {
		return store.NewChunk{Lease: l, Seq: seq, StreamType: "tool", Data: json.RawMessage(data)}
	}
	chunks := []store.NewChunk{
		content(l, 0, "Let me check. "),
		tool(1, `{"index":0,"id":"call_1"}`),
		tool(2, `{"index":0,"type":"function"}`),
		tool(3, `{"index":0,"function":{"name":"get_weather"}}`),
		tool(4, `{"index":0,"function":{"arguments":"{\"city\":"}}`),
		tool(5, `{"index":0,"function":{"arguments":"\"Paris\"}"}}`),
		tool(6, `{"finish_reason":"tool_calls"}`),
	}
	fin := store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "tool_calls", Usage: json.RawMessage(`{"input_tokens":5,"output_tokens":9}`)}
	if _, err := s.WriteBatch(ctx, owner, chunks, []store.Finish{fin}); err != nil {
		t.Fatal(err)
	}
	res, err = s.PixelResult(ctx, tenant, l.JobID)
	if err != nil {
		t.Fatal(err)
	}
	var calls []struct {
		ID       string `json:"id"`
		Function struct{ Name, Arguments string }
	}
	if err := json.Unmarshal(res.ToolCalls, &calls); err != nil || len(calls) != 1 || calls[0].ID != "call_1" ||
		calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"Paris"}` {
		t.Fatalf("tool calls %s (%v)", res.ToolCalls, err)
	}
	if res.Status != store.StatusCompleted || res.FinishReason != "tool_calls" || res.Content != "Let me check. " || res.RunMillis < 0 {
		t.Fatalf("result %+v", res)
	}
	var usage struct {
		InputTokens int `json:"input_tokens"`
	}
	if json.Unmarshal(res.Usage, &usage) != nil || usage.InputTokens != 5 {
		t.Fatalf("usage %s", res.Usage)
	}

	// A native job has no pixel metadata.
	native := mustSubmit(t, s, store.SubmitParams{Tenant: tenant})
	res, err = s.PixelResult(ctx, tenant, native.ID)
	if err != nil || res.Pixel != nil || res.Status != store.StatusQueued {
		t.Fatalf("native job result: %+v, %v", res, err)
	}
	if _, err := s.PixelResult(ctx, "other", native.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other tenant: %v, want ErrNotFound", err)
	}
}
