package jsonstr

import (
	"encoding/json"
	"testing"
)

// FuzzAppend: AppendMarshal writes json.Marshal's bytes; Append writes JSON
// that decodes to the same string.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "hi", "\"\\/\b\f\n\r\t\x00\x1f\x7f", "<>&", "\u2028\u2029", "bad \xff\xfe", "日本語 ⚽"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		if got := AppendMarshal(nil, s); string(got) != string(want) {
			t.Fatalf("AppendMarshal(%q) = %s, want %s", s, got, want)
		}
		var readable, marshalled string
		if err := json.Unmarshal(Append(nil, s), &readable); err != nil {
			t.Fatalf("Append(%q) = %s is not JSON: %v", s, Append(nil, s), err)
		}
		_ = json.Unmarshal(want, &marshalled)
		if readable != marshalled {
			t.Fatalf("Append(%q) decodes to %q, json.Marshal's to %q", s, readable, marshalled)
		}
	})
}

func TestAppendLeavesHTML(t *testing.T) {
	if got := string(Append(nil, "<a&b>\b")); got != `"<a&b>\u0008"` {
		t.Errorf("Append = %s", got)
	}
}
