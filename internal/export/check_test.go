package export_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/export"
	"github.com/jobstream/jobstream/internal/export/exporttest"
)

// goCheck is export.Check's report on file and its exit status.
func goCheck(t *testing.T, file string) (string, int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	sum, err := export.Check(f, &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.OK() {
		return out.String(), 0
	}
	return out.String(), 1
}

// TestPythonChecker: the Python checker of README.md, taken from the file
// as written and run with python3 and with python3 -O (which drops
// asserts), reaches the expected verdict on real exports of a real
// database, intact and tampered in each way an auditor worries about: a
// message per broken job and per malformed line, exit status 1, exit 0
// only for an intact export of at least one job. export.Check (`jobstream
// verify --export`) prints the same report, line for line.
func TestPythonChecker(t *testing.T) {
	t.Parallel()
	script := exporttest.PythonChecker(t)
	for _, f := range exporttest.Fixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			goOut, goCode := goCheck(t, f.Path)
			for _, optimize := range []bool{false, true} {
				out, code := exporttest.RunPython(t, script, f.Path, optimize)
				mode := map[bool]string{false: "python3", true: "python3 -O"}[optimize]
				if wantCode := map[bool]int{true: 0, false: 1}[f.OK]; code != wantCode {
					t.Errorf("%s exit status %d, want %d\n%s", mode, code, wantCode, out)
				}
				if got := exporttest.BrokenIDs(out); !reflect.DeepEqual(got, f.Broken) {
					t.Errorf("%s reports broken %v, want %v\n%s", mode, got, f.Broken, out)
				}
				if got := exporttest.MalformedLines(out); got != f.Malformed {
					t.Errorf("%s reports %d malformed lines, want %d\n%s", mode, got, f.Malformed, out)
				}
				if out != goOut || code != goCode {
					t.Errorf("%s (exit %d):\n%s\njobstream verify --export (exit %d):\n%s", mode, code, out, goCode, goOut)
				}
			}
		})
	}
}

// TestCheckerEdges: hand-made exports of the shapes a database never
// writes (escapes, repeated members, odd numbers, odd hashes, a finished
// job without chunks) get the same report from Python and from Go.
func TestCheckerEdges(t *testing.T) {
	t.Parallel()
	script := exporttest.PythonChecker(t)
	id := uuid.MustParse("01934b3c-0000-7000-8000-000000000001")
	// The job's seed: version 2, over its tenant, engine and request.
	request := sha256.Sum256([]byte(`{"command":"x"}`))
	seed := chain.SeedV2Of(id, "t", "sim", request[:])
	v2 := fmt.Sprintf(`"chain_version":2,"request_sha256":"%x","tenant":"t","engine":"sim"`, request)
	type chunk struct {
		streamType, data string
	}
	// sealed is a finished job's lines: its job line, sealed, and its
	// chunk lines with a correct chain.
	sealed := func(id uuid.UUID, status string, chunks []chunk) []string {
		h := seed
		var lines []string
		for i, c := range chunks {
			h = chain.Next(h, i, c.streamType, []byte(c.data))
			data, _ := json.Marshal(c.data)
			lines = append(lines, fmt.Sprintf(`{"type":"chunk","job_id":"%s","seq":%d,"stream_type":%q,"data":%s,"hash":"%s"}`, id, i, c.streamType, data, h))
		}
		job := fmt.Sprintf(`{"type":"job","id":"%s","status":"%s","chunk_count":%d,"final_hash":"%s",%s}`, id, status, len(chunks), h, v2)
		return append([]string{job}, lines...)
	}
	finish := chunk{"content", `{"finish_reason":"stop"}`}
	// Every case's export verifies only when its name is in intact.
	intact := map[string]bool{
		"intact": true, "repeated, last wins": true, "running, unsealed": true, "lone surrogate escape in data": true,
		"minus zero seq": true, "repeated type": true, "crlf": true, "erased, no chunks": true,
	}
	// erasedJob is an erased job's line without chunks: its seal is the seed.
	erasedJob := func(erased string) []string {
		empty := sha256.Sum256(nil)
		return []string{fmt.Sprintf(`{"type":"job","id":"%s","status":"cancelled","chunk_count":0,"final_hash":"%s",%s,"erased":%s}`,
			id, seed, v2, strings.ReplaceAll(erased, "EMPTY", fmt.Sprintf("%x", empty)))}
	}
	cases := map[string][]string{
		"intact":              sealed(id, "completed", []chunk{{"content", `{"content":"a"}`}, finish}),
		"no chunks, sealed":   sealed(id, "cancelled", nil),
		"finish not a string": sealed(id, "failed", []chunk{{"content", `{"finish_reason":1}`}}),
		"repeated members":    sealed(id, "completed", []chunk{{"content", `{"finish_reason":"stop","finish_reason":null}`}}),
		"repeated, last wins": sealed(id, "completed", []chunk{{"content", `{"finish_reason":null,"finish_reason":"stop"}`}}),
		"NaN in data":         sealed(id, "completed", []chunk{{"content", `{"finish_reason":"stop","x":NaN}`}}),
		"data not JSON":       sealed(id, "completed", []chunk{{"content", `{"finish_reason":"stop"`}}),
		"name case":           sealed(id, "completed", []chunk{{"content", `{"Finish_Reason":"stop"}`}}),
		"running, unsealed":   {fmt.Sprintf(`{"type":"job","id":"%s","status":"running","chunk_count":null,"final_hash":null,%s}`, id, v2)},
		"seal removed":        {fmt.Sprintf(`{"type":"job","id":"%s","status":"completed",%s}`, id, v2)},
		"uppercase hash": func() []string {
			l := sealed(id, "completed", []chunk{finish})
			h := chain.Next(seed, 0, finish.streamType, []byte(finish.data)).String()
			l[1] = strings.Replace(l[1], h, strings.ToUpper(h), 1)
			return l
		}(),
		"lone surrogate escape in data": func() []string {
			// Go reads \ud800 as U+FFFD, and so does the Python checker.
			l := sealed(id, "completed", []chunk{{"content", `{"content":"` + "\ufffd" + `"}`}, finish})
			l[1] = strings.Replace(l[1], "\ufffd", `\ud800`, 1)
			return l
		}(),
		"minus zero seq": func() []string {
			l := sealed(id, "completed", []chunk{finish})
			l[1] = strings.Replace(l[1], `"seq":0`, `"seq":-0`, 1)
			return l
		}(),
		"huge seq": func() []string {
			l := sealed(id, "completed", []chunk{finish})
			l[1] = strings.Replace(l[1], `"seq":0`, `"seq":100000000000000000000000`, 1)
			return l
		}(),
		"braced id": func() []string {
			l := sealed(id, "completed", []chunk{finish})
			l[0] = strings.Replace(l[0], id.String(), "{"+id.String()+"}", 1)
			return l
		}(),
		"repeated type":               {fmt.Sprintf(`{"type":"event","type":"job","id":"%s","status":"queued",%s}`, id, v2)},
		"null line":                   {"null"},
		"erased, no chunks":           erasedJob(`{"by":"a","at":"x","reason":"r","chunk_hashes_sha256":"EMPTY"}`),
		"erased, other hashes kept":   erasedJob(`{"by":"a","at":"x","reason":"r","chunk_hashes_sha256":"` + strings.Repeat("ab", 32) + `"}`),
		"erased, not an object":       erasedJob(`true`),
		"erased, uppercase hash kept": erasedJob(`{"by":"a","at":"x","reason":"r","chunk_hashes_sha256":"` + strings.Repeat("AB", 32) + `"}`),
		"erased, reason missing":      erasedJob(`{"by":"a","at":"x","chunk_hashes_sha256":"EMPTY"}`),
		"only events":                 {`{"type":"event","job_id":"x"}`},
		"crlf": func() []string {
			l := sealed(id, "completed", []chunk{finish})
			for i := range l {
				l[i] += "\r"
			}
			return l
		}(),
	}
	dir := t.TempDir()
	for name, lines := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".jsonl")
			if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			goOut, goCode := goCheck(t, file)
			out, code := exporttest.RunPython(t, script, file, false)
			if out != goOut || code != goCode {
				t.Errorf("python3 (exit %d):\n%s\njobstream verify --export (exit %d):\n%s", code, out, goCode, goOut)
			}
			if want := map[bool]int{true: 0, false: 1}[intact[name]]; goCode != want {
				t.Errorf("exit status %d, want %d:\n%s", goCode, want, goOut)
			}
		})
	}

	// Python's json gives up near a nesting depth of 1,000 (its recursion
	// limit), Go's at 10,000: the messages differ, but both fail closed.
	deep := filepath.Join(dir, "deep.jsonl")
	if err := os.WriteFile(deep, []byte(strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := exporttest.RunPython(t, script, deep, false); code != 1 || !strings.Contains(out, "line 1: not JSON") {
		t.Errorf("python3 on a line nested 5,000 deep: exit %d\n%s", code, out)
	}
	if out, code := goCheck(t, deep); code != 1 || !strings.Contains(out, "line 1: not a JSON object") {
		t.Errorf("Go on a line nested 5,000 deep: exit %d\n%s", code, out)
	}
}
