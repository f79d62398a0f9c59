package respevent_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/respevent"
	"github.com/jobstream/jobstream/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

var t0 = time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)

// chunks builds stored chunks from (stream_type, data) pairs.
func chunks(pairs ...string) []store.Chunk {
	var out []store.Chunk
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, store.Chunk{
			Seq: i / 2, StreamType: pairs[i], Data: json.RawMessage(pairs[i+1]),
			CreatedAt: t0.Add(time.Duration(i/2) * time.Second),
		})
	}
	return out
}

var (
	textChunks = chunks(
		"content", `{"content":""}`,
		"content", `{"content":"Hello"}`,
		"content", `{"content":", <world> & \"friends\""}`,
		"content", `{"content":" — ünïcode."}`,
		"usage", `{"input_tokens":12,"output_tokens":4}`,
		"content", `{"finish_reason":"stop"}`,
	)
	toolChunks = chunks(
		"tool", `{"index":0,"id":"call_abc"}`,
		"tool", `{"index":0,"type":"function"}`,
		"tool", `{"index":0,"function":{"name":"get_weather"}}`,
		"tool", `{"index":0,"function":{"arguments":"{\"city\":"}}`,
		"tool", `{"index":0,"function":{"arguments":"\"Paris\"}"}}`,
		"usage", `{"input_tokens":20,"output_tokens":7,"cache_read_input_tokens":3}`,
		"tool", `{"finish_reason":"tool_calls"}`,
	)
	cancelChunks = chunks(
		"thinking", `{"thinking":"Let me think"}`,
		"thinking", `{"thinking":" about it."}`,
		"content", `{"content":"The answer"}`,
		"content", `{"content":" is"}`,
		"content", `{"finish_reason":"cancelled"}`,
	)
)

func meta(background bool) respevent.Meta {
	instr := "Be brief."
	return respevent.Meta{Model: "sim", Background: background, Instructions: &instr, Metadata: map[string]string{"k": "v"}}
}

const id = "resp_0193a1b2c3d4e5f60718293a4b5c6d7e"

// derive feeds every chunk at once, as a resumer does.
func derive(m respevent.Meta, cs []store.Chunk) []respevent.Event {
	d := respevent.New(id, t0.Unix(), m)
	evs := d.Open()
	for _, c := range cs {
		evs = append(evs, d.Feed(c)...)
	}
	return evs
}

func sse(evs []respevent.Event) []byte {
	var b []byte
	for _, e := range evs {
		b = e.AppendSSE(b)
	}
	return b
}

// TestGolden pins the event stream of a text response, a function call and
// a cancelled response (with reasoning), byte for byte. Run with -update to
// rewrite the files after an intended change.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		background bool
		chunks     []store.Chunk
	}{
		{"text", false, textChunks},
		{"function_call", false, toolChunks},
		{"cancelled", true, cancelChunks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := sse(derive(meta(tc.background), tc.chunks))
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("events differ from %s (run with -update after an intended change):\n%s", path, got)
			}
		})
	}
}

// TestDeterministic checks that a live reader (who sees the job start
// before any chunk, then gets chunks one at a time) and a resumer (who
// derives everything at once) get byte-identical events for every number.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	for name, cs := range map[string][]store.Chunk{"text": textChunks, "tool": toolChunks, "cancel": cancelChunks} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, bg := range []bool{false, true} {
				want := derive(meta(bg), cs)
				d := respevent.New(id, t0.Unix(), meta(bg))
				live := d.Open()
				live = append(live, d.Start()...) // the job was seen running
				live = append(live, d.Start()...) // twice: nothing more
				for _, c := range cs {
					live = append(live, d.Feed(c)...)
				}
				live = append(live, d.End(store.StatusCompleted, "stop")...) // after the finish chunk: nothing
				if !bytes.Equal(sse(live), sse(want)) {
					t.Fatalf("background=%v: live and resumed events differ:\n%s\n---\n%s", bg, sse(live), sse(want))
				}
				for i, e := range want {
					if e.Seq != i {
						t.Fatalf("event %d has sequence number %d", i, e.Seq)
					}
				}
			}
		})
	}
}

// TestLifecycle checks the order rules of the issue on every stream.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	evs := derive(meta(true), toolChunks)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := "response.created response.queued response.in_progress response.output_item.added " +
		"response.function_call_arguments.delta response.function_call_arguments.delta " +
		"response.function_call_arguments.done response.output_item.done response.completed"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var ev struct {
		Item map[string]any `json:"item"`
	}
	if err := json.Unmarshal(evs[3].JSON(), &ev); err != nil {
		t.Fatal(err)
	}
	item := ev.Item
	if item["type"] != "function_call" || item["call_id"] != "call_abc" || item["name"] != "get_weather" {
		t.Fatalf("output_item.added item = %v", item)
	}
}

// TestTerminalStatuses maps finish reasons onto terminal events.
func TestTerminalStatuses(t *testing.T) {
	t.Parallel()
	for reason, want := range map[string]string{
		"stop":           "response.completed",
		"length":         "response.incomplete max_output_tokens",
		"max_tokens":     "response.incomplete max_output_tokens",
		"content_filter": "response.incomplete content_filter",
		"cancelled":      "response.cancelled",
		"error":          "response.failed",
		"tool_use":       "response.completed",
	} {
		cs := chunks("content", `{"content":"x"}`, "content", `{"finish_reason":"`+reason+`","error":{"message":"boom","type":"upstream"}}`)
		evs := derive(meta(false), cs)
		last := evs[len(evs)-1]
		var body struct {
			Response respevent.Response `json:"response"`
		}
		if err := json.Unmarshal(last.JSON(), &body); err != nil {
			t.Fatal(err)
		}
		got := last.Type
		if body.Response.IncompleteDetails != nil {
			got += " " + body.Response.IncompleteDetails.Reason
		}
		if got != want {
			t.Errorf("finish_reason %s: got %s, want %s", reason, got, want)
		}
		if reason == "error" && (body.Response.Error == nil || body.Response.Error.Message != "boom") {
			t.Errorf("failed response error = %+v", body.Response.Error)
		}
		if body.Response.OutputText != "x" {
			t.Errorf("finish_reason %s: output_text %q", reason, body.Response.OutputText)
		}
	}
}
