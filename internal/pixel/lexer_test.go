package pixel

import (
	"errors"
	"testing"
)

func TestLexerQuoted(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		want string
		end  int // offset after the token; 0 means len(src)
	}{
		{name: "Double", src: `"a'b"`, want: "a'b"},
		{name: "Single", src: `'a"b'`, want: `a"b`},
		{name: "SingleWithEncode", src: `'<encode>it's</encode>'`, want: "it's"},
		{name: "TwoEncodeBlocks", src: `"<encode>a</encode>-<encode>"b"</encode>"`, want: `a-"b"`},
		{name: "EncodeHoldsBackslash", src: `"<encode>C:\new\</encode>"`, want: `C:\new\`},
		{name: "JSONEscapes", src: `"\/\b\f\r"`, want: "/\b\f\r"},
		{name: "SurrogatePair", src: `"\uD83D\uDE00"`, want: "😀"},
		{name: "LoneHighSurrogate", src: `"\ud83dx"`, want: "\uFFFDx"},
		{name: "LoneLowSurrogate", src: `"\ude00"`, want: "\uFFFD"},
		{name: "HighThenNonSurrogate", src: `"\ud83d\u0041"`, want: "\uFFFDA"},
		{name: "PythonHex", src: `"\xe9"`, want: "é"},
		{name: "UnknownEscapeKept", src: `"\d\w"`, want: `\d\w`},
		{name: "StopsAtQuote", src: `"a" "b"`, want: "a", end: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := lexer{src: tt.src, end: len(tt.src), decode: true}
			tok, err := l.next()
			if err != nil {
				t.Fatalf("next(%q): %v", tt.src, err)
			}
			if tok.kind != tokString || tok.val != tt.want {
				t.Errorf("next(%q) = kind %d %q, want string %q", tt.src, tok.kind, tok.val, tt.want)
			}
			end := tt.end
			if end == 0 {
				end = len(tt.src)
			}
			if tok.end != end {
				t.Errorf("token ends at %d, want %d", tok.end, end)
			}
		})
	}
}

func TestLexerErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		pos  int
		msg  string
	}{
		{name: "Unterminated", src: `  "abc`, pos: 2, msg: "unterminated string"},
		{name: "UnterminatedEncode", src: `x "<encode>abc"`, pos: 3, msg: "unterminated <encode> block"},
		{name: "ShortUnicode", src: `"\u12"`, pos: 1, msg: `invalid \u escape`},
		{name: "BigRune", src: `"\U00110000"`, pos: 1, msg: `invalid \U escape`},
		{name: "OverflowRune", src: `"\UFFFFFFFF"`, pos: 1, msg: `invalid \U escape`},
		{name: "NUL", src: `"\x00"`, pos: 1, msg: "NUL character not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := lexer{src: tt.src, end: len(tt.src), decode: true}
			var err error
			for err == nil {
				var tok token
				if tok, err = l.next(); tok.kind == tokEOF && err == nil {
					t.Fatalf("lexed %q without error", tt.src)
				}
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos != tt.pos || se.Msg != tt.msg {
				t.Errorf("error %v, want %q at offset %d", err, tt.msg, tt.pos)
			}
		})
	}
}
