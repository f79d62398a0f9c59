package pixel

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		`LLM(engine = "2c6de0ff-62e0-4dd0-8380-782ac4d40245", command = "<encode>What's 2+2? (answer "briefly")` + "\n" + `日本語</encode>", paramValues = [ {'max_new_tokens': 100, 'temperature': 0.3, 'stream': True, 'x': None} ] );`,
		`LLM(engine=["abc"], command=["<encode>hi</encode>"], paramValues=[{"max_completion_tokens":2000}], roomId=["<encode>room-1</encode>"], useHistory=[true]);`,
		`LLM(engine="e1", command="<encode>hi</encode>", useHistory=true, context=["<encode>sys</encode>"], paramValues=[{"max_completion_tokens": 20000, "temperature": 0.3, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}], roomId="<encode>r</encode>");`,
		`LLM(engine = "001510f8-b86e-492e-a7f0-41299775e7d9", command = "<encode>What are the skills required for {{job}}</encode>", paramValues = [ {} ] );`,
		`llm(engine=sim, command='it\'s \u00e9 \ud83d\ude00 \x41', useHistory="False", insightId=new, projectId=[p])`,
		`LLM(command="c", paramValues={'a': [1, -2.5e3, 0x1F, .5, True, None, {'b': ()}],},)`,
		`LLM(command=<encode>a"b'c(d),e;f=g</encode>)`,
		"META | true",
		"meta|TRUE; LLM(command=\"x\");;",
		`StopPixelExecution(id=["0192f0c4-0000-7000-8000-000000000001"]);`,
		`StopPixelExecution(id="j1"); StopPixelExecution(id=[a, 'b', "<encode>c</encode>",])`,
		`Foo(1)`,
		`Frame() | Select(a > 1) | Collect(-1);`,
		`LLM(command="<encode>unterminated`,
		`LLM(command="unterminated`,
		`LLM(command="c", paramValues=[{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}])`,
		`LLM(command="c", paramValues=[{'model': gpt4}])`,
		"LLM(command=\"\xff\x00\")",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		pixels, err := Parse(expr)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pixel: ") {
				t.Fatalf("error %q lacks the pixel: prefix", err)
			}
			var se *SyntaxError
			if errors.As(err, &se) {
				if se.Pos < 0 || se.Pos > len(expr) {
					t.Fatalf("syntax error offset %d outside [0, %d]", se.Pos, len(expr))
				}
				if errors.Is(err, ErrUnsupported) {
					t.Fatalf("error %q is both a syntax error and unsupported", err)
				}
			}
			return
		}
		if len(pixels) == 0 {
			t.Fatal("no pixels and no error")
		}
		for _, px := range pixels {
			if !strings.HasSuffix(px.Expr, ";") {
				t.Fatalf("Expr %q does not end in ;", px.Expr)
			}
			switch px.Kind {
			case KindLLM:
				if px.LLM == nil {
					t.Fatal("LLM pixel without LLMCall")
				}
				for k, v := range px.LLM.Params {
					if !json.Valid(v) {
						t.Fatalf("param %q = %s is not valid JSON", k, v)
					}
				}
			case KindStop:
				if len(px.StopIDs) == 0 {
					t.Fatal("stop pixel without ids")
				}
			case KindMeta:
			default:
				t.Fatalf("bad kind %v", px.Kind)
			}
			// A pixel's Expr parses back to the same pixel on its own.
			again, err := Parse(px.Expr)
			if err != nil {
				t.Fatalf("Parse(%q) of a parsed pixel's Expr: %v", px.Expr, err)
			}
			if len(again) != 1 || !reflect.DeepEqual(again[0], px) {
				t.Fatalf("Parse(%q) = %+v, want %+v", px.Expr, again, px)
			}
		}
	})
}
