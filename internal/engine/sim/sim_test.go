package sim

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
)

func collect(t *testing.T, e *Engine, req engine.Request) ([]engine.Chunk, engine.Finish, error) {
	t.Helper()
	var got []engine.Chunk
	fin, err := e.Stream(context.Background(), req, func(c engine.Chunk) error {
		got = append(got, c)
		return nil
	})
	return got, fin, err
}

func params(t *testing.T, kv map[string]any) map[string]json.RawMessage {
	t.Helper()
	p := map[string]json.RawMessage{}
	for k, v := range kv {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p[k] = b
	}
	return p
}

func user(s string) []engine.Message { return []engine.Message{{Role: "user", Content: s}} }

func text(chunks []engine.Chunk) (string, int) {
	var b strings.Builder
	n := 0
	for _, c := range chunks {
		if c.StreamType != engine.StreamContent {
			continue
		}
		var d struct{ Content string }
		_ = json.Unmarshal(c.Data, &d)
		b.WriteString(d.Content)
		n++
	}
	return b.String(), n
}

func TestStream(t *testing.T) {
	t.Parallel()

	t.Run("DeterministicTextFromPrompt", func(t *testing.T) {
		t.Parallel()
		e := New()
		p := params(t, map[string]any{"sim_tokens_per_second": 0, "sim_tokens": 40})
		a, fin, err := collect(t, e, engine.Request{Messages: user("soccer"), Params: p})
		if err != nil || fin != (engine.Finish{Reason: "stop", Stream: "content"}) {
			t.Fatalf("finish %+v, err %v", fin, err)
		}
		b, _, _ := collect(t, e, engine.Request{Messages: user("soccer"), Params: p})
		c, _, _ := collect(t, e, engine.Request{Messages: user("chess"), Params: p})
		ta, n := text(a)
		tb, _ := text(b)
		tc, _ := text(c)
		if ta != tb {
			t.Fatalf("same prompt, different text:\n%s\n%s", ta, tb)
		}
		if ta == tc || !strings.Contains(ta, "soccer") {
			t.Fatalf("text must derive from the prompt: %q vs %q", ta, tc)
		}
		if n != 40 {
			t.Fatalf("%d content chunks, want sim_tokens = 40", n)
		}
		if last := a[len(a)-1]; last.StreamType != engine.StreamUsage {
			t.Fatalf("last chunk %s, want usage", last.StreamType)
		}
	})

	t.Run("MaxCompletionTokensCutsWithLength", func(t *testing.T) {
		t.Parallel()
		got, fin, err := collect(t, New(), engine.Request{Messages: user("x"), Params: params(t, map[string]any{
			"sim_tokens_per_second": 0, "sim_tokens": 40, "max_completion_tokens": 7})})
		if _, n := text(got); err != nil || n != 7 || fin.Reason != engine.FinishLength {
			t.Fatalf("n=%d finish=%+v err=%v, want 7 tokens and length", n, fin, err)
		}
		got, fin, _ = collect(t, New(), engine.Request{Messages: user("x"), Params: params(t, map[string]any{
			"sim_tokens_per_second": 0, "sim_tokens": 5, "max_new_tokens": 7})})
		if _, n := text(got); n != 5 || fin.Reason != engine.FinishStop {
			t.Fatalf("n=%d finish=%+v, want 5 tokens and stop when the cap is not hit", n, fin)
		}
	})

	t.Run("ToolCallInStreamFormat", func(t *testing.T) {
		t.Parallel()
		tools := []map[string]any{{"type": "function", "function": map[string]any{
			"name": "get_weather", "parameters": map[string]any{"type": "object", "properties": map[string]any{
				"city": map[string]any{"type": "string"}, "days": map[string]any{"type": "integer"}}}}}}
		got, fin, err := collect(t, New(), engine.Request{Messages: user("weather in Paris"), Params: params(t, map[string]any{"sim_tokens_per_second": 0, "tools": tools})})
		if err != nil || fin != (engine.Finish{Reason: "tool_calls", Stream: "tool"}) {
			t.Fatalf("finish %+v err %v", fin, err)
		}
		if len(got) < 5 {
			t.Fatalf("only %d chunks", len(got))
		}
		want := []string{`{"id":"call_`, `{"index":0,"type":"function"}`, `{"function":{"name":"get_weather"},"index":0}`}
		if !strings.HasPrefix(string(got[0].Data), `{"id":"call_`) || string(got[1].Data) != want[1] || string(got[2].Data) != want[2] {
			t.Fatalf("tool chunks = %s %s %s", got[0].Data, got[1].Data, got[2].Data)
		}
		var args strings.Builder
		for _, c := range got[3:] {
			if c.StreamType == engine.StreamUsage {
				continue
			}
			var d struct {
				Index    int
				Function struct{ Arguments string }
			}
			if err := json.Unmarshal(c.Data, &d); err != nil || c.StreamType != engine.StreamTool {
				t.Fatalf("chunk %s %s", c.StreamType, c.Data)
			}
			args.WriteString(d.Function.Arguments)
		}
		var parsed map[string]any
		if err := json.Unmarshal([]byte(args.String()), &parsed); err != nil || parsed["days"] != float64(42) || parsed["city"] == nil {
			t.Fatalf("arguments %q do not assemble to the schema's object: %v", args.String(), err)
		}
	})

	t.Run("AnswersAToolResultInText", func(t *testing.T) {
		t.Parallel()
		msgs := append(user("weather?"), engine.Message{Role: "tool", ToolCallID: "call_1", Content: `{"temp":21}`})
		got, fin, err := collect(t, New(), engine.Request{Messages: msgs, Params: params(t, map[string]any{
			"sim_tokens_per_second": 0, "tools": []map[string]any{{"type": "function", "function": map[string]any{"name": "f"}}}})})
		if s, _ := text(got); err != nil || fin.Reason != "stop" || !strings.Contains(s, "tool result") {
			t.Fatalf("text %q finish %+v err %v", s, fin, err)
		}
	})

	t.Run("FailAfter", func(t *testing.T) {
		t.Parallel()
		got, _, err := collect(t, New(), engine.Request{Messages: user("x"), Params: params(t, map[string]any{"sim_tokens_per_second": 0, "sim_fail_after": 3})})
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Type != "sim_error" || len(got) != 3 {
			t.Fatalf("err %v after %d chunks, want sim_error after 3", err, len(got))
		}
	})

	t.Run("PacedAndCancellable", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		start := time.Now()
		_, err := New().Stream(ctx, engine.Request{Messages: user("x"), Params: params(t, map[string]any{"sim_tokens_per_second": 1, "sim_tokens": 100})},
			func(engine.Chunk) error {
				n++
				if n == 2 {
					cancel() // the 3rd token is due 1 s after the 2nd: cancel must cut that wait
				}
				return nil
			})
		if !errors.Is(err, context.Canceled) || n != 2 {
			t.Fatalf("err %v after %d chunks, want context.Canceled after 2", err, n)
		}
		if el := time.Since(start); el > 1900*time.Millisecond {
			t.Fatalf("cancel took effect after %s", el)
		}
	})

	t.Run("ValidateRejectsBadParams", func(t *testing.T) {
		t.Parallel()
		for name, p := range map[string]map[string]any{
			"NegativeRate":   {"sim_tokens_per_second": -1},
			"RateNotNumber":  {"sim_tokens_per_second": "fast"},
			"TokensTooMany":  {"sim_tokens": 2_000_000},
			"TokensAboveCap": {"sim_tokens": 200_000, "sim_tokens_per_second": 0},
			"RateAboveCap":   {"sim_tokens_per_second": 1e9},
			"MaxTokensZero":  {"max_completion_tokens": 0},
			"MaxTokensFloat": {"max_completion_tokens": 1.5},
			"ToolsNotList":   {"tools": "x"},
			"ToolNoName":     {"tools": []map[string]any{{"type": "function", "function": map[string]any{}}}},
		} {
			if err := New().Validate(params(t, p)); err == nil {
				t.Errorf("%s: Validate(%v) accepted it", name, p)
			}
		}
		if err := New().Validate(params(t, map[string]any{"sim_tokens": 3, "temperature": 0.2})); err != nil {
			t.Errorf("valid params rejected: %v", err)
		}
	})
}

// TestBoundedByMaxRuntime: a registry with a maximum runtime refuses
// simulator params that could not end within it (the tester's 3,600 s
// first-token delay, a pace of 0.001 tokens per second), and accepts what
// can, with the engine's own defaults counted (issue 18, item 2).
func TestBoundedByMaxRuntime(t *testing.T) {
	t.Parallel()
	r := engine.NewRegistry()
	r.Register(Info(), New())
	r.SetMaxRuntime(time.Hour)
	for name, tc := range map[string]struct {
		p    map[string]any
		min  time.Duration
		fits bool
	}{
		"Defaults":           {map[string]any{}, 149 * time.Second / 30, true},
		"AnHourOfSilence":    {map[string]any{"sim_first_token_delay": 3600}, time.Hour + 149*time.Second/30, false},
		"Crawl":              {map[string]any{"sim_tokens_per_second": 0.001}, 149_000 * time.Second, false},
		"LongButCapped":      {map[string]any{"sim_tokens": 100_000, "sim_tokens_per_second": 5, "max_completion_tokens": 11}, 2 * time.Second, true},
		"FailsEarly":         {map[string]any{"sim_tokens": 100_000, "sim_tokens_per_second": 5, "sim_fail_after": 6}, time.Second, true},
		"AsFastAsPossible":   {map[string]any{"sim_tokens": 100_000, "sim_tokens_per_second": 0, "sim_first_token_delay": 60}, time.Minute, true},
		"ToolCallIsShort":    {map[string]any{"sim_tokens_per_second": 0.01, "tools": []map[string]any{{"type": "function", "function": map[string]any{"name": "f"}}}}, 300 * time.Second, true},
		"JustOverTheBound":   {map[string]any{"sim_tokens": 3602, "sim_tokens_per_second": 1}, time.Hour + time.Second, false},
		"JustWithinTheBound": {map[string]any{"sim_tokens": 3601, "sim_tokens_per_second": 1}, time.Hour, true},
	} {
		p := params(t, tc.p)
		if got := New().MinRuntime(p); got != tc.min {
			t.Errorf("%s: MinRuntime = %s, want %s", name, got, tc.min)
		}
		err := r.Validate(ID, p)
		if tc.fits && err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		if !tc.fits && (err == nil || !strings.Contains(err.Error(), "maximum runtime")) {
			t.Errorf("%s: Validate = %v, want an error naming the maximum runtime", name, err)
		}
	}
	// Without a bound (SetMaxRuntime 0), only the simulator's own limits.
	r.SetMaxRuntime(0)
	if err := r.Validate(ID, params(t, map[string]any{"sim_first_token_delay": 3600})); err != nil {
		t.Errorf("without a bound: %v", err)
	}
}
