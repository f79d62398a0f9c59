package pixel

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// params decodes a compact JSON object, as Parse writes them.
func params(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test params %s: %v", s, err)
	}
	return m
}

func TestParse(t *testing.T) {
	t.Parallel()

	const pythonSDK = `LLM(engine = "2c6de0ff-62e0-4dd0-8380-782ac4d40245", command = "<encode>What's 2+2? (answer "briefly")` + "\n" + `日本語</encode>", paramValues = [ {'max_new_tokens': 100, 'temperature': 0.3, 'stream': True, 'x': None} ] );`
	const semossUI = `LLM(engine=["abc"], command=["<encode>hi</encode>"], paramValues=[{"max_completion_tokens":2000}], roomId=["<encode>room-1</encode>"], useHistory=[true]);`

	tests := []struct {
		name string
		expr string
		want []Pixel
	}{
		{
			name: "PythonSDK",
			expr: pythonSDK,
			want: []Pixel{{Kind: KindLLM, Expr: pythonSDK, LLM: &LLMCall{
				Engine:     "2c6de0ff-62e0-4dd0-8380-782ac4d40245",
				Command:    "What's 2+2? (answer \"briefly\")\n日本語",
				UseHistory: true,
				Params:     params(t, `{"max_new_tokens":100,"temperature":0.3,"stream":true,"x":null}`),
			}}},
		},
		{
			name: "PythonSDKNew",
			expr: `LLM(engine="e1", command="<encode>hi</encode>", context=["<encode>be "terse"</encode>"], useHistory=false, paramValues=[{"max_completion_tokens": 20000, "temperature": 0.3}], roomId="<encode>r1</encode>");`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{
				Engine: "e1", Command: "hi", Context: `be "terse"`, RoomID: "r1",
				Params: params(t, `{"max_completion_tokens":20000,"temperature":0.3}`),
			}}},
		},
		{
			name: "SemossUI",
			expr: semossUI,
			want: []Pixel{{Kind: KindLLM, Expr: semossUI, LLM: &LLMCall{
				Engine: "abc", Command: "hi", RoomID: "room-1", UseHistory: true,
				Params: params(t, `{"max_completion_tokens":2000}`),
			}}},
		},
		{
			name: "CommandOnly",
			expr: `  LLM(command="hello")  `,
			want: []Pixel{{Kind: KindLLM, Expr: `LLM(command="hello");`, LLM: &LLMCall{Command: "hello", UseHistory: true}}},
		},
		{
			name: "SingleQuotesAndBareWords",
			expr: `llm(engine=sim, command='it\'s', useHistory="False")`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Engine: "sim", Command: "it's"}}},
		},
		{
			name: "BareUUIDEngine",
			expr: `LLM(engine=2c6de0ff-62e0-4dd0-8380-782ac4d40245, command=<encode>x</encode>)`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Engine: "2c6de0ff-62e0-4dd0-8380-782ac4d40245", Command: "x", UseHistory: true}}},
		},
		{
			name: "EncodeBodyIsLiteral",
			expr: "LLM(command=\"<encode>a\"b'c(d),e;f=g\\n\n</encode>\");META|true",
			want: []Pixel{
				{Kind: KindLLM, LLM: &LLMCall{Command: "a\"b'c(d),e;f=g\\n\n", UseHistory: true}},
				{Kind: KindMeta, Expr: "META|true;"},
			},
		},
		{
			name: "EncodeEndsAtFirstClose",
			expr: `LLM(command="<encode><encode>x</encode>")`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "<encode>x", UseHistory: true}}},
		},
		{
			name: "EncodeInsideLongerString",
			expr: `LLM(command="say <encode>"hi"</encode>\tnow")`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "say \"hi\"\tnow", UseHistory: true}}},
		},
		{
			name: "Escapes",
			expr: `LLM(command="q\" b\\ n\n t\t u\u00e9 pair\ud83d\ude00 x\x41 U\U0001F600 other\d")`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "q\" b\\ n\n t\t ué pair😀 xA U😀 other\\d", UseHistory: true}}},
		},
		{
			name: "ContextListJoined",
			expr: `LLM(command="c", context=["<encode>one</encode>", 'two', three])`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", Context: "one\ntwo\nthree", UseHistory: true}}},
		},
		{
			name: "ContextString",
			expr: `LLM(command="c", context="sys")`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", Context: "sys", UseHistory: true}}},
		},
		{
			name: "PythonDictLiteral",
			expr: `LLM(command="c", paramValues=[{'max_completion_tokens': 20000, 'temperature': 0.3, 'tools': [{'type': 'function', 'function': {'name': 'f', 'parameters': {'type': 'object', 'required': [],},},},], 'flag': False, 'n': -1.5e3, 'h': 0x10, 'half': .5, "k\"q": "v<&>",},])`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", UseHistory: true, Params: params(t,
				`{"max_completion_tokens":20000,"temperature":0.3,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","required":[]}}}],"flag":false,"n":-1.5e3,"h":16,"half":0.5,"k\"q":"v<&>"}`)}}},
		},
		{
			name: "ParamsObjectWithoutList",
			expr: `LLM(command="c", paramValues={"messages": [{"role": "user", "content": "<encode>a"b</encode>"}]})`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", UseHistory: true, Params: params(t, `{"messages":[{"role":"user","content":"a\"b"}]}`)}}},
		},
		{
			name: "FullPromptWithoutCommand",
			expr: `LLM(engine="e", paramValues=[{"full_prompt": [{"role": "user", "content": "hi"}], "stream": True}]);`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Engine: "e", UseHistory: true, Params: params(t, `{"full_prompt":[{"role":"user","content":"hi"}],"stream":true}`)}}},
		},
		{
			name: "MessagesWithoutCommand",
			expr: `LLM(paramValues={'messages': 'hi'})`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{UseHistory: true, Params: params(t, `{"messages":"hi"}`)}}},
		},
		{
			name: "ParamsEmpty",
			expr: `LLM(command="c", paramValues=[ {} ] );`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", UseHistory: true, Params: map[string]json.RawMessage{}}}},
		},
		{
			name: "ParamsEmptyListAndNone",
			expr: `LLM(command="c", paramValues=[]); LLM(command="d", paramValues=None)`,
			want: []Pixel{
				{Kind: KindLLM, LLM: &LLMCall{Command: "c", UseHistory: true}},
				{Kind: KindLLM, LLM: &LLMCall{Command: "d", UseHistory: true}},
			},
		},
		{
			name: "IgnoredSemossArgs",
			expr: `LLM(insightId="i-1", command="c", projectId=[p, {a: b}])`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", UseHistory: true}}},
		},
		{
			name: "TrailingCommaInArgs",
			expr: `LLM(command="c",)`,
			want: []Pixel{{Kind: KindLLM, LLM: &LLMCall{Command: "c", UseHistory: true}}},
		},
		{
			name: "Meta",
			expr: "META | true",
			want: []Pixel{{Kind: KindMeta, Expr: "META | true;"}},
		},
		{
			name: "MetaSpacingAndCase",
			expr: " meta\n|\tTRUE ; ",
			want: []Pixel{{Kind: KindMeta, Expr: "meta\n|\tTRUE;"}},
		},
		{
			name: "MetaThenLLM",
			expr: `META | true; LLM(command="c");`,
			want: []Pixel{
				{Kind: KindMeta, Expr: "META | true;"},
				{Kind: KindLLM, Expr: `LLM(command="c");`, LLM: &LLMCall{Command: "c", UseHistory: true}},
			},
		},
		{
			name: "Stop",
			expr: `StopPixelExecution(id=["0192f0c4-0000-7000-8000-000000000001"]);`,
			want: []Pixel{{Kind: KindStop, Expr: `StopPixelExecution(id=["0192f0c4-0000-7000-8000-000000000001"]);`, StopIDs: []string{"0192f0c4-0000-7000-8000-000000000001"}}},
		},
		{
			name: "StopString",
			expr: `StopPixelExecution(id="j1")`,
			want: []Pixel{{Kind: KindStop, StopIDs: []string{"j1"}}},
		},
		{
			name: "StopSeveral",
			expr: `stoppixelexecution( id = [ 'j1', j2, "<encode>j3</encode>", ] )`,
			want: []Pixel{{Kind: KindStop, StopIDs: []string{"j1", "j2", "j3"}}},
		},
		{
			name: "MaxPixels",
			expr: strings.Repeat("META | true;", MaxPixels),
			want: func() []Pixel {
				var px []Pixel
				for range MaxPixels {
					px = append(px, Pixel{Kind: KindMeta, Expr: "META | true;"})
				}
				return px
			}(),
		},
		{
			name: "EmptyStatements",
			expr: ";; META | true ;;",
			want: []Pixel{{Kind: KindMeta, Expr: "META | true;"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d pixels, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if tt.want[i].Expr == "" {
					got[i].Expr = "" // not under test here
				}
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("pixel %d:\n got %s\nwant %s", i, dump(got[i]), dump(tt.want[i]))
				}
			}
		})
	}
}

func dump(p Pixel) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()

	const (
		syntax = iota + 1
		unsupported
		other
	)
	tests := []struct {
		name string
		expr string
		kind int
		pos  int // for syntax errors
		msg  string
	}{
		{name: "Empty", expr: "  ; ", kind: syntax, pos: 0, msg: "pixel: syntax error at offset 0: empty expression"},
		{name: "UnterminatedEncode", expr: `LLM(command="<encode>hi", engine="x")`, kind: syntax, pos: 13, msg: "pixel: syntax error at offset 13: unterminated <encode> block"},
		{name: "UnterminatedBareEncode", expr: `LLM(command=<encode>hi)`, kind: syntax, pos: 12},
		{name: "UnterminatedString", expr: `LLM(command="hi)`, kind: syntax, pos: 12, msg: "pixel: syntax error at offset 12: unterminated string"},
		{name: "UnterminatedStringEscape", expr: `LLM(command="hi\`, kind: syntax, pos: 12},
		{name: "BadUnicodeEscape", expr: `LLM(command="\u12x4")`, kind: syntax, pos: 13},
		{name: "NULEscape", expr: `LLM(command="a\u0000")`, kind: syntax, pos: 14},
		{name: "NULByte", expr: "LLM(command=\"a\x00\")", kind: syntax, pos: 14},
		{name: "InvalidUTF8", expr: "LLM(command=\"\xff\")", kind: syntax, pos: 13, msg: "pixel: syntax error at offset 13: invalid UTF-8"},
		{name: "UnclosedParen", expr: `LLM(command="c"`, kind: syntax, pos: 3, msg: `pixel: syntax error at offset 3: "(" is never closed`},
		{name: "MismatchedBracket", expr: `LLM(command=["c")]`, kind: syntax, pos: 16},
		{name: "StrayCloser", expr: `LLM(command="c"))`, kind: syntax, pos: 16},
		{name: "MissingComma", expr: `LLM(command="c" engine="e")`, kind: syntax, pos: 16},
		{name: "MissingEquals", expr: `LLM(command "c")`, kind: syntax, pos: 12},
		{name: "PositionalArg", expr: `LLM("c")`, kind: syntax, pos: 4},
		{name: "TrailingGarbage", expr: `LLM(command="c") | Collect(1)`, kind: syntax, pos: 17},
		{name: "NotAName", expr: `"LLM"`, kind: syntax, pos: 0, msg: `pixel: syntax error at offset 0: expected a pixel name, found string`},
		{name: "NumberName", expr: `42`, kind: syntax, pos: 0},
		{name: "SecondPixelPosition", expr: `META | true; LLM(command="c", "x")`, kind: syntax, pos: 30},
		{name: "DepthLimit", expr: `LLM(command="c", paramValues=[{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}])`, kind: syntax, pos: 96, msg: "pixel: syntax error at offset 96: brackets nested more than 64 deep"},
		{name: "BadParamsSyntax", expr: `LLM(command="c", paramValues=[{'a' 1}])`, kind: syntax, pos: 35},
		{name: "BadParamsMissingValue", expr: `LLM(command="c", paramValues=[{'a': }])`, kind: syntax, pos: 36},
		{name: "BadParamsDoubleComma", expr: `LLM(command="c", paramValues=[{'a': [1,,2]}])`, kind: syntax, pos: 39},
		{name: "UnknownFunction", expr: `Foo(1)`, kind: unsupported, msg: `pixel: unsupported pixel "Foo"`},
		{name: "UnknownPipeline", expr: `META | true; Frame() | Select(a > 1, 'x') | Collect(-1);`, kind: unsupported, msg: `pixel: unsupported pixel "Frame"`},
		{name: "BareWord", expr: `hello world`, kind: unsupported, msg: `pixel: unsupported pixel "hello"`},
		{name: "MetaFalse", expr: `META | false`, kind: unsupported, msg: `pixel: unsupported pixel "META | false;"`},
		{name: "MetaAlone", expr: `META`, kind: unsupported},
		{name: "LongNameClipped", expr: strings.Repeat("é", 40) + "()", kind: unsupported, msg: `pixel: unsupported pixel "` + strings.Repeat("é", 30) + `..."`},
		{name: "MissingCommand", expr: `LLM(engine="e")`, kind: other, msg: "pixel: LLM: missing command argument (or paramValues full_prompt or messages)"},
		{name: "MissingCommandNullPrompt", expr: `LLM(paramValues=[{"full_prompt": None}])`, kind: other, msg: "pixel: LLM: missing command argument (or paramValues full_prompt or messages)"},
		{name: "MissingCommandOtherParams", expr: `LLM(engine="e", paramValues=[{"temperature": 0}])`, kind: other, msg: "pixel: LLM: missing command argument (or paramValues full_prompt or messages)"},
		{name: "Image", expr: `LLM(command="c", image="https://x/y.png")`, kind: other, msg: "pixel: LLM: argument image: image and URL inputs are not supported; send text in command, or messages in paramValues"},
		{name: "URL", expr: `LLM(command="c", url=["https://x"])`, kind: other, msg: "pixel: LLM: argument url: image and URL inputs are not supported; send text in command, or messages in paramValues"},
		{name: "UnknownArgument", expr: `LLM(command="c", Engine="e")`, kind: other, msg: `pixel: LLM: unknown argument "Engine"`},
		{name: "UnknownArguments", expr: `LLM(foo=1, command="c", bar=[{x: y}])`, kind: other, msg: `pixel: LLM: unknown arguments "foo", "bar"`},
		{name: "DuplicateArgument", expr: `LLM(command="c", command="d")`, kind: other, msg: "pixel: LLM: argument command given twice"},
		{name: "EngineList", expr: `LLM(command="c", engine=["a", "b"])`, kind: other, msg: "pixel: LLM: engine: want one value, found a list of 2"},
		{name: "CommandObject", expr: `LLM(command={"a": 1})`, kind: other, msg: `pixel: LLM: command: want a string, found "{"`},
		{name: "UseHistoryBad", expr: `LLM(command="c", useHistory=maybe)`, kind: other, msg: `pixel: LLM: useHistory: want true or false, found "maybe"`},
		{name: "ParamsString", expr: `LLM(command="c", paramValues="{}")`, kind: other, msg: "pixel: LLM: paramValues: want an object, found string"},
		{name: "ParamsNotObject", expr: `LLM(command="c", paramValues=[1])`, kind: other, msg: `pixel: LLM: paramValues: want an object in the list, found "1"`},
		{name: "ParamsSeveral", expr: `LLM(command="c", paramValues=[{}, {}])`, kind: other, msg: "pixel: LLM: paramValues: want one object, found several"},
		{name: "ParamsUnquotedWord", expr: `LLM(command="c", paramValues=[{'model': gpt4}])`, kind: other, msg: `pixel: LLM: paramValues: unquoted word "gpt4" (quote strings)`},
		{name: "ParamsInfinity", expr: `LLM(command="c", paramValues=[{'t': inf}])`, kind: other},
		{name: "StopMissingID", expr: `StopPixelExecution()`, kind: other, msg: "pixel: StopPixelExecution: missing id argument"},
		{name: "StopEmptyList", expr: `StopPixelExecution(id=[])`, kind: other, msg: "pixel: StopPixelExecution: id: no job id given"},
		{name: "StopEmptyID", expr: `StopPixelExecution(id=[""])`, kind: other, msg: "pixel: StopPixelExecution: id: empty job id"},
		{name: "StopUnknownArg", expr: `StopPixelExecution(jobId="j")`, kind: other, msg: `pixel: StopPixelExecution: unknown argument "jobId"`},
		{name: "TooManyPixels", expr: strings.Repeat("META | true;", MaxPixels+1), kind: other, msg: "pixel: expression holds more than 100 pixels"},
		{name: "TooLarge", expr: `LLM(command="` + strings.Repeat("x", MaxExprLen) + `")`, kind: other, msg: "pixel: expression is 4194319 bytes, over the limit of 4194304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.expr)
			if err == nil {
				t.Fatalf("Parse(%.80q) = %+v, want an error", tt.expr, got)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
			var se *SyntaxError
			isSyntax := errors.As(err, &se)
			isUnsupported := errors.Is(err, ErrUnsupported)
			switch tt.kind {
			case syntax:
				if !isSyntax {
					t.Fatalf("error %q is not a *SyntaxError", err)
				}
				if se.Pos != tt.pos {
					t.Errorf("error %q at offset %d, want %d", err, se.Pos, tt.pos)
				}
			case unsupported:
				if !isUnsupported || isSyntax {
					t.Errorf("error %q: want only ErrUnsupported (syntax %v, unsupported %v)", err, isSyntax, isUnsupported)
				}
			case other:
				if isSyntax || isUnsupported {
					t.Errorf("error %q: want a plain error (syntax %v, unsupported %v)", err, isSyntax, isUnsupported)
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		kind Kind
		want string
	}{
		{name: "LLM", kind: KindLLM, want: "LLM"},
		{name: "Meta", kind: KindMeta, want: "META"},
		{name: "Stop", kind: KindStop, want: "StopPixelExecution"},
		{name: "Zero", kind: 0, want: "Kind(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	benchmarks := []struct {
		name string
		expr string
	}{
		{name: "PythonSDK", expr: `LLM(engine="e1", command="<encode>What's 2+2?</encode>", useHistory=true, paramValues=[{'max_new_tokens': 100, 'temperature': 0.3, 'stream': True}]);`},
		{name: "LargeCommand", expr: `LLM(engine="e1", command="<encode>` + strings.Repeat("long prompt ", (MaxExprLen-100)/12) + `</encode>");`},
		{name: "LargeParams", expr: `LLM(command="c", paramValues=[{'messages': [` + strings.Repeat(`{'role': 'user', 'content': "hi\n"},`, (MaxExprLen-100)/40) + `]}]);`},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.expr)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bm.expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseLimits: the StopPixelExecution pixels of one expression stop at
// most MaxStopIDs distinct jobs between them (ErrTooMany beyond, which
// callers answer with 400), and an error
// never echoes the whole input: a list of 20,000 unknown arguments, or one
// name of 100 KB, makes a short message.
func TestParseLimits(t *testing.T) {
	t.Parallel()
	ids := make([]string, MaxStopIDs+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("abcdef00-0000-0000-0000-%012d", i))
	}
	if _, err := Parse(`StopPixelExecution(id=[` + strings.Join(ids[:MaxStopIDs], ",") + `])`); err != nil {
		t.Errorf("%d ids: %v", MaxStopIDs, err)
	}
	if _, err := Parse(`StopPixelExecution(id=[` + strings.Join(ids, ",") + `])`); !errors.Is(err, ErrTooMany) {
		t.Errorf("%d ids: %v, want ErrTooMany", len(ids), err)
	}
	// Per expression, not per pixel: the amplification of jobstream
	// issue 18 (MaxPixels pixels of MaxStopIDs distinct ids, 10,000
	// cancels in one request), and two pixels just over the cap together.
	var many []string
	for p := range MaxPixels {
		var list []string
		for i := range MaxStopIDs {
			list = append(list, fmt.Sprintf(`"00000000-0000-0000-%04d-%012d"`, p, i))
		}
		many = append(many, `StopPixelExecution(id=[`+strings.Join(list, ",")+`])`)
	}
	for name, expr := range map[string]string{
		"ManyPixels": strings.Join(many, ";"),
		"TwoPixels": `StopPixelExecution(id=[` + strings.Join(ids[:60], ",") + `]); StopPixelExecution(id=[` +
			strings.Join(ids[60:], ",") + `])`,
	} {
		if _, err := Parse(expr); !errors.Is(err, ErrTooMany) {
			t.Errorf("%s: %.200v, want ErrTooMany", name, err)
		}
	}
	// Repeated ids count once, in whatever case their hex digits come.
	var repeats []string
	upper := strings.ToUpper(strings.Join(ids[:MaxStopIDs], ","))
	for range MaxPixels / 2 {
		repeats = append(repeats, `StopPixelExecution(id=[`+strings.Join(ids[:MaxStopIDs], ",")+`])`, `StopPixelExecution(id=[`+upper+`])`)
	}
	if px, err := Parse(strings.Join(repeats, ";")); err != nil || len(px) != MaxPixels {
		t.Errorf("%d pixels repeating the same %d ids: %d pixels, %v", MaxPixels, MaxStopIDs, len(px), err)
	}
	var args []string
	for i := range 20_000 {
		args = append(args, fmt.Sprintf("arg%d=1", i))
	}
	for name, expr := range map[string]string{
		"ManyUnknown": `LLM(command="c", ` + strings.Join(args, ", ") + `)`,
		"LongUnknown": `LLM(command="c", ` + strings.Repeat("a", 100_000) + `=1)`,
		"LongStopArg": `StopPixelExecution(` + strings.Repeat("a", 100_000) + `=1)`,
	} {
		_, err := Parse(expr)
		if err == nil || len(err.Error()) > 512 {
			t.Errorf("%s: %d-byte error %.200v", name, len(fmt.Sprint(err)), err)
		}
	}
}
