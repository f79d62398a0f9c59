package responsesapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// These tests drive /v1/responses with the official openai-go v3 client.

func TestSDKNew(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.client(b.keyA)
	resp, err := c.Responses.New(context.Background(), responses.ResponseNewParams{
		Model:        shared.ResponsesModel("sim"),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me about football")},
		Instructions: openai.String("Be brief."),
		Metadata:     shared.Metadata{"purpose": "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != responses.ResponseStatusCompleted {
		t.Fatalf("status %q, want completed", resp.Status)
	}
	if !strings.HasPrefix(resp.OutputText(), "You asked: Tell me about football") {
		t.Fatalf("output_text %q", resp.OutputText())
	}
	if !strings.HasPrefix(resp.ID, "resp_") || resp.Model != "sim" || resp.Instructions.OfString != "Be brief." || resp.Metadata["purpose"] != "test" {
		t.Fatalf("response %s", resp.RawJSON())
	}
	if resp.Usage.OutputTokens != 150 || resp.Usage.TotalTokens != resp.Usage.InputTokens+150 {
		t.Fatalf("usage %+v", resp.Usage)
	}
	if len(resp.Output) != 1 || resp.Output[0].Type != "message" || resp.Output[0].Status != "completed" {
		t.Fatalf("output %s", resp.RawJSON())
	}
	// GET returns the same Response.
	got, err := c.Responses.Get(context.Background(), resp.ID, responses.ResponseGetParams{})
	if err != nil {
		t.Fatal(err)
	}
	if got.RawJSON() != resp.RawJSON() {
		t.Fatalf("GET differs from the created Response:\n%s\n%s", got.RawJSON(), resp.RawJSON())
	}
}

// collect reads a stream to its end.
func collect(t *testing.T, s *ssestream.Stream[responses.ResponseStreamEventUnion]) []responses.ResponseStreamEventUnion {
	t.Helper()
	var evs []responses.ResponseStreamEventUnion
	for s.Next() {
		evs = append(evs, s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return evs
}

// checkSequence checks that events are numbered first, first+1, ... with no
// gap or repeat.
func checkSequence(t *testing.T, evs []responses.ResponseStreamEventUnion, first int64) {
	t.Helper()
	for i, e := range evs {
		if e.SequenceNumber != first+int64(i) {
			t.Fatalf("event %d (%s) has sequence_number %d, want %d", i, e.Type, e.SequenceNumber, first+int64(i))
		}
	}
}

func TestSDKStreamingText(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.client(b.keyA)
	evs := collect(t, c.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model:           shared.ResponsesModel("sim"),
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Hello")},
		MaxOutputTokens: openai.Int(20),
	}))
	checkSequence(t, evs, 0)
	var types []string
	var text strings.Builder
	for _, e := range evs {
		if len(types) == 0 || types[len(types)-1] != e.Type {
			types = append(types, e.Type)
		}
		if e.Type == "response.output_text.delta" {
			text.WriteString(e.Delta)
		}
	}
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		"response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.incomplete"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	last := evs[len(evs)-1].Response
	if last.Status != responses.ResponseStatusIncomplete || last.IncompleteDetails.Reason != "max_output_tokens" {
		t.Fatalf("terminal response %s", last.RawJSON())
	}
	if text.String() != last.OutputText() || text.Len() == 0 {
		t.Fatalf("deltas %q, output_text %q", text.String(), last.OutputText())
	}
}

var weatherTool = responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
	Name:        "get_weather",
	Description: openai.String("The weather in a city"),
	Parameters: map[string]any{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required":   []string{"city"},
	},
	Strict: openai.Bool(true),
}}

func TestSDKStreamingFunctionTool(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.client(b.keyA)
	ctx := context.Background()
	evs := collect(t, c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model: shared.ResponsesModel("sim"),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Paris")},
		Tools: []responses.ToolUnionParam{weatherTool},
	}))
	checkSequence(t, evs, 0)
	var added *responses.ResponseStreamEventUnion
	var args strings.Builder
	var done string
	for i, e := range evs {
		switch e.Type {
		case "response.output_item.added":
			added = &evs[i]
		case "response.function_call_arguments.delta":
			args.WriteString(e.Delta)
		case "response.function_call_arguments.done":
			done = e.Arguments
			if !strings.Contains(e.RawJSON(), `"name":"get_weather"`) {
				t.Errorf("arguments.done without the name: %s", e.RawJSON())
			}
		}
	}
	if added == nil || added.Item.Type != "function_call" || added.Item.Name != "get_weather" || !strings.HasPrefix(added.Item.CallID, "call_") {
		t.Fatalf("output_item.added: %+v", added)
	}
	if args.String() != done || done != `{"city":"Paris"}` {
		t.Fatalf("argument deltas %q, done %q", args.String(), done)
	}
	final := evs[len(evs)-1]
	if final.Type != "response.completed" || len(final.Response.Output) != 1 {
		t.Fatalf("terminal event %s %s", final.Type, final.Response.RawJSON())
	}
	call := final.Response.Output[0].AsFunctionCall()

	// The tool round trip: the call and its output go back as input, and
	// the model answers in text.
	resp, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model: shared.ResponsesModel("sim"),
		Tools: []responses.ToolUnionParam{weatherTool},
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("Paris", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
			{OfFunctionCallOutput: &responses.ResponseInputItemFunctionCallOutputParam{
				CallID: openai.String(call.CallID),
				Output: responses.ResponseInputItemFunctionCallOutputOutputUnionParam{OfString: openai.String("sunny, 21°C")},
			}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.OutputText(), "You asked: Based on the tool result sunny, 21°C") {
		t.Fatalf("answer to the tool result: %q", resp.OutputText())
	}
	items, err := c.Responses.InputItems.List(ctx, resp.ID, responses.InputItemListParams{Order: responses.InputItemListParamsOrderAsc})
	if err != nil {
		t.Fatal(err)
	}
	if len(items.Data) != 3 || items.Data[0].Type != "message" || items.Data[1].Type != "function_call" || items.Data[2].Type != "function_call_output" {
		t.Fatalf("input items %s", items.RawJSON())
	}
}

// TestSDKBackgroundResume creates a background response, drops its event
// stream part-way, and resumes it with starting_after: the events join up
// with nothing missed or repeated, and their deltas make the output_text.
func TestSDKBackgroundResume(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.client(b.keyA)
	ctx := context.Background()
	resp, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model:      shared.ResponsesModel("sim"),
		Input:      responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me a long story")},
		Background: openai.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != responses.ResponseStatusQueued || !resp.Background {
		t.Fatalf("background create: status %q background %v", resp.Status, resp.Background)
	}
	var evs []responses.ResponseStreamEventUnion
	s := c.Responses.GetStreaming(ctx, resp.ID, responses.ResponseGetParams{})
	for s.Next() {
		evs = append(evs, s.Current())
		if len(evs) == 12 { // a few deltas in: drop the connection
			break
		}
	}
	s.Close()
	if len(evs) != 12 {
		t.Fatalf("first stream ended after %d events: %v", len(evs), s.Err())
	}
	last := evs[len(evs)-1].SequenceNumber
	rest := collect(t, c.Responses.GetStreaming(ctx, resp.ID, responses.ResponseGetParams{StartingAfter: openai.Int(last)}))
	all := append(evs, rest...)
	checkSequence(t, all, 0)
	if all[0].Type != "response.created" || all[1].Type != "response.queued" || all[2].Type != "response.in_progress" {
		t.Fatalf("opening events %s %s %s", all[0].Type, all[1].Type, all[2].Type)
	}
	var text strings.Builder
	for _, e := range all {
		if e.Type == "response.output_text.delta" {
			text.WriteString(e.Delta)
		}
	}
	final, err := c.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != responses.ResponseStatusCompleted || text.String() != final.OutputText() {
		t.Fatalf("status %q; deltas %q\noutput_text %q", final.Status, text.String(), final.OutputText())
	}
	if tail := all[len(all)-1]; tail.Type != "response.completed" || tail.Response.RawJSON() == "" {
		t.Fatalf("last event %s", tail.Type)
	}

	// A full replay (openai-python's resume helper asks for one) gives the
	// same events again.
	replay := collect(t, c.Responses.GetStreaming(ctx, resp.ID, responses.ResponseGetParams{}))
	if len(replay) != len(all) {
		t.Fatalf("replay has %d events, the live stream %d", len(replay), len(all))
	}
	for i := range replay {
		if replay[i].RawJSON() != all[i].RawJSON() {
			t.Fatalf("event %d differs:\n%s\n%s", i, replay[i].RawJSON(), all[i].RawJSON())
		}
	}
}

func TestSDKCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	c := b.client(b.keyA)
	ctx := context.Background()
	resp, err := c.Responses.New(ctx, responses.ResponseNewParams{
		Model:      shared.ResponsesModel("sim"),
		Input:      responses.ResponseNewParamsInputUnion{OfString: openai.String("Go on and on")},
		Background: openai.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the model is writing.
	s := c.Responses.GetStreaming(ctx, resp.ID, responses.ResponseGetParams{})
	for s.Next() && s.Current().Type != "response.output_text.delta" {
	}
	cancelled, err := c.Responses.Cancel(ctx, resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.Status != responses.ResponseStatusCancelled {
		t.Fatalf("cancel: status %q", cancelled.Status)
	}
	if cancelled.OutputText() == "" || len(cancelled.OutputText()) > 600 {
		t.Fatalf("cancelled mid-way: output_text %q", cancelled.OutputText())
	}
	// The stream that was open ends with response.cancelled.
	var lastType string
	for s.Next() {
		lastType = s.Current().Type
	}
	if err := s.Err(); err != nil || lastType != "response.cancelled" {
		t.Fatalf("open stream ended with %q, %v", lastType, err)
	}
	again, err := c.Responses.Cancel(ctx, resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.RawJSON() != cancelled.RawJSON() {
		t.Fatalf("second cancel differs:\n%s\n%s", again.RawJSON(), cancelled.RawJSON())
	}
}

// TestSDKOtherTenant: another tenant's response id is a 404 on every
// route, in OpenAI's error shape.
func TestSDKOtherTenant(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	owner := b.client(b.keyA)
	resp, err := owner.Responses.New(ctx, responses.ResponseNewParams{
		Model:      shared.ResponsesModel("sim"),
		Input:      responses.ResponseNewParamsInputUnion{OfString: openai.String("mine")},
		Background: openai.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	other := b.client(b.keyB)
	check := func(what string, err error) {
		t.Helper()
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Type != "invalid_request_error" || apiErr.Message == "" {
			t.Errorf("%s: %v, want a 404 invalid_request_error", what, err)
		}
	}
	_, err = other.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
	check("Get", err)
	_, err = other.Responses.Cancel(ctx, resp.ID)
	check("Cancel", err)
	check("Delete", other.Responses.Delete(ctx, resp.ID))
	_, err = other.Responses.InputItems.List(ctx, resp.ID, responses.InputItemListParams{})
	check("InputItems", err)
	s := other.Responses.GetStreaming(ctx, resp.ID, responses.ResponseGetParams{})
	s.Next()
	check("GetStreaming", s.Err())
	// The owner still sees it.
	if _, err := owner.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{}); err != nil {
		t.Fatal(err)
	}
}
