package pixel

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendWord(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		word string
		want string // "" means rejected
	}{
		{name: "JSONTrue", word: "true", want: "true"},
		{name: "PythonTrue", word: "True", want: "true"},
		{name: "PythonFalse", word: "False", want: "false"},
		{name: "PythonNone", word: "None", want: "null"},
		{name: "Int", word: "20000", want: "20000"},
		{name: "Negative", word: "-3", want: "-3"},
		{name: "Float", word: "0.3", want: "0.3"},
		{name: "Exponent", word: "1E+21", want: "1E+21"},
		{name: "HugeIntKept", word: "123456789012345678901234567890", want: "123456789012345678901234567890"},
		{name: "PlusSign", word: "+1", want: "1"},
		{name: "Hex", word: "0x1F", want: "31"},
		{name: "Underscores", word: "1_000", want: "1000"},
		{name: "LeadingDot", word: ".5", want: "0.5"},
		{name: "TrailingDot", word: "5.", want: "5"},
		{name: "LeadingZero", word: "007", want: "7"},
		{name: "Inf", word: "inf"},
		{name: "NaN", word: "NaN"},
		{name: "Overflow", word: "+1e999"},
		{name: "Word", word: "gpt4"},
		{name: "LowercaseNone", word: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := appendWord(nil, tt.word)
			if tt.want == "" {
				if ok {
					t.Fatalf("appendWord(%q) = %s, want rejection", tt.word, got)
				}
				return
			}
			if !ok || string(got) != tt.want {
				t.Fatalf("appendWord(%q) = %s, %v; want %s", tt.word, got, ok, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("appendWord(%q) = %s is not valid JSON", tt.word, got)
			}
		})
	}
}

func TestIsJSONNumber(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		s    string
		want bool
	}{
		{name: "Zero", s: "0", want: true},
		{name: "NegativeFraction", s: "-0.25", want: true},
		{name: "Exponent", s: "1e-07", want: true},
		{name: "Empty", s: ""},
		{name: "Minus", s: "-"},
		{name: "LeadingZero", s: "01"},
		{name: "BareDot", s: "1."},
		{name: "BareExponent", s: "1e"},
		{name: "Plus", s: "+1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := isJSONNumber(tt.s); got != tt.want {
				t.Errorf("isJSONNumber(%q) = %v, want %v", tt.s, got, tt.want)
			}
			if got := json.Valid([]byte(tt.s)); tt.s != "" && got != tt.want {
				t.Errorf("json.Valid(%q) = %v, disagrees with the test", tt.s, got)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		s    string
		want string
	}{
		{name: "Plain", s: "hi", want: `"hi"`},
		{name: "HTMLKept", s: "<encode>&", want: `"<encode>&"`},
		{name: "Quotes", s: `a"b\c`, want: `"a\"b\\c"`},
		{name: "Controls", s: "\n\r\t\b\x01", want: `"\n\r\t\u0008\u0001"`},
		{name: "Unicode", s: "日本語😀", want: `"日本語😀"`},
		{name: "LineSeparator", s: "a\u2028b\u2029", want: `"a\u2028b\u2029"`},
		{name: "InvalidUTF8", s: "a\xffb", want: `"a\ufffdb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := appendJSONString(nil, tt.s)
			if string(got) != tt.want {
				t.Fatalf("appendJSONString(%q) = %s, want %s", tt.s, got, tt.want)
			}
			var back string
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", got, err)
			}
			if want := strings.ToValidUTF8(tt.s, "\uFFFD"); back != want {
				t.Errorf("round trip of %q gave %q, want %q", tt.s, back, want)
			}
		})
	}
}
