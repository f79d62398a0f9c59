package engine

import (
	"encoding/json"
	"testing"
	"time"
)

// The hand-built text chunks must be exactly what marshalling would give,
// for every kind of text (quotes, control characters, HTML, non-ASCII,
// invalid UTF-8).
func TestTextChunks(t *testing.T) {
	t.Parallel()
	at := time.UnixMicro(1_700_000_000_123_456)
	for _, text := range []string{"", "hi", ` "quoted" \ back`, "line\nbreak\ttab\x01", "<b>&</b>", "日本語 ⚽", "bad \xff utf8"} {
		want, _ := json.Marshal(map[string]string{"content": text})
		if got := Content(text); string(got.Data) != string(want) || got.StreamType != StreamContent {
			t.Errorf("Content(%q) = %s %s, want content %s", text, got.StreamType, got.Data, want)
		}
		want, _ = json.Marshal(map[string]string{"thinking": text})
		if got := Thinking(text); string(got.Data) != string(want) || got.StreamType != StreamThinking {
			t.Errorf("Thinking(%q) = %s %s, want thinking %s", text, got.StreamType, got.Data, want)
		}
		var d struct {
			Content     string `json:"content"`
			EmittedAtUS int64  `json:"emitted_at_us"`
		}
		got := ContentAt(text, at)
		want, _ = json.Marshal(text)
		var wantText string
		_ = json.Unmarshal(want, &wantText)
		if err := json.Unmarshal(got.Data, &d); err != nil || d.Content != wantText || d.EmittedAtUS != at.UnixMicro() {
			t.Errorf("ContentAt(%q) = %s (%v)", text, got.Data, err)
		}
	}
}
