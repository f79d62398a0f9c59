package enginetest_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/enginetest"
	"github.com/jobstream/jobstream/internal/engine/sim"
)

// shape describes a chunk by its stream type and the paths of its data's
// keys, such as "tool index function.arguments".
func shape(t *testing.T, chunk string) string {
	t.Helper()
	var c struct {
		StreamType string         `json:"stream_type"`
		Data       map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(chunk), &c); err != nil {
		t.Fatalf("chunk %s: %v", chunk, err)
	}
	var paths []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			paths = append(paths, prefix+k)
		}
	}
	walk("", c.Data)
	sort.Strings(paths)
	return c.StreamType + " " + strings.Join(paths, " ")
}

// TestFixtureShapesMatchSim checks the acceptance criterion: the
// content, thinking and tool chunks the providers emit have exactly the
// shapes the simulator produces.
func TestFixtureShapesMatchSim(t *testing.T) {
	t.Parallel()

	simShapes := map[string]bool{shape(t, enginetest.ChunkJSON(engine.Thinking("x"))): true}
	for _, params := range []string{
		`{"sim_tokens_per_second":0,"sim_tokens":5}`,
		`{"sim_tokens_per_second":0,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`,
	} {
		req := engine.Request{Messages: []engine.Message{{Role: "user", Content: "Weather in Paris?"}}}
		if err := json.Unmarshal([]byte(params), &req.Params); err != nil {
			t.Fatal(err)
		}
		got, _, err := enginetest.Collect(context.Background(), sim.New(), req)
		if err != nil {
			t.Fatalf("sim: %v", err)
		}
		for _, c := range got {
			simShapes[shape(t, c)] = true
		}
	}

	for _, f := range slices.Concat(enginetest.OpenAIFixtures(), enginetest.ResponsesFixtures(), enginetest.AnthropicFixtures()) {
		for _, c := range f.Want {
			s := shape(t, c)
			if strings.HasPrefix(s, engine.StreamUsage) {
				continue // usage fields depend on what the provider reports
			}
			if !simShapes[s] {
				t.Errorf("fixture %s: chunk %s has shape %q, which the simulator never produces", f.Name, c, s)
			}
		}
	}
}

// TestFixturesAssemble checks every fixture's expected chunks: valid UTF-8,
// and, for turns that end with tool calls, argument fragments that
// concatenate to JSON objects, per call index.
func TestFixturesAssemble(t *testing.T) {
	t.Parallel()

	for _, f := range slices.Concat(enginetest.OpenAIFixtures(), enginetest.ResponsesFixtures(), enginetest.AnthropicFixtures()) {
		args := map[int]string{}
		for _, c := range f.Want {
			if !utf8.ValidString(c) {
				t.Errorf("fixture %s: invalid UTF-8 in %q", f.Name, c)
			}
			var v struct {
				StreamType string `json:"stream_type"`
				Data       struct {
					Index    *int `json:"index"`
					Function struct {
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(c), &v); err != nil {
				t.Fatalf("fixture %s: %v", f.Name, err)
			}
			if v.StreamType == engine.StreamTool {
				args[*v.Data.Index] += v.Data.Function.Arguments
			}
		}
		if f.ErrType != "" || f.Finish.Stream != engine.StreamTool {
			continue
		}
		if len(args) == 0 {
			t.Errorf("fixture %s: finishes on the tool stream without tool chunks", f.Name)
		}
		for i, a := range args {
			var obj map[string]any
			if err := json.Unmarshal([]byte(a), &obj); err != nil {
				t.Errorf("fixture %s: call %d arguments %q: %v", f.Name, i, a, err)
			}
		}
	}
}
