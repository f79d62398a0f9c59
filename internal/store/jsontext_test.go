package store

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPGJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"content":"plain"}`, `{"content":"plain"}`},
		{`{"content":"a\u0000b"}`, `{"content":"a\ufffdb"}`},
		{`{"content":"\\u0000"}`, `{"content":"\\u0000"}`},
		{`{"content":"\\\u0000"}`, `{"content":"\\\ufffd"}`},
		{`{"a":"\u0000\u0000","b":"\n\u0000"}`, `{"a":"\ufffd\ufffd","b":"\n\ufffd"}`},
		{`"\u00001"`, `"\ufffd1"`},
	} {
		if got := string(pgJSON([]byte(tc.in))); got != tc.want {
			t.Errorf("pgJSON(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzPGJSON: for any string, the JSON encoding after pgJSON is still valid
// JSON and decodes to the string with each NUL replaced by U+FFFD.
func FuzzPGJSON(f *testing.F) {
	for _, s := range []string{"", "a\x00b", `\u0000`, "\\\x00", "\xff\x00\"", "\x00\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := json.Marshal(map[string]string{"k": s})
		if err != nil {
			t.Skip()
		}
		var got map[string]string
		if err := json.Unmarshal(pgJSON(in), &got); err != nil {
			t.Fatalf("pgJSON(%s) is not JSON: %v", in, err)
		}
		var plain map[string]string
		_ = json.Unmarshal(in, &plain) // invalid UTF-8 is already U+FFFD here
		if want := strings.ReplaceAll(plain["k"], "\x00", "\uFFFD"); got["k"] != want {
			t.Fatalf("pgJSON(%s) decodes to %q, want %q", in, got["k"], want)
		}
	})
}
