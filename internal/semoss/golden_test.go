package semoss_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestSemossGolden")

var (
	uuidRe      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeToRunRe = regexp.MustCompile(`"timeToRun": \d+`)
)

// normalize indents a JSON body keeping its field order, and replaces what
// differs from run to run: ids (numbered by first appearance) and timings.
func normalize(body []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return string(body)
	}
	ids := map[string]string{}
	s := uuidRe.ReplaceAllStringFunc(buf.String(), func(id string) string {
		if _, ok := ids[id]; !ok {
			ids[id] = fmt.Sprintf("<id-%d>", len(ids)+1)
		}
		return ids[id]
	})
	return timeToRunRe.ReplaceAllString(s, `"timeToRun": "<ms>"`)
}

// TestSemossGolden pins the exact JSON bodies of the SEMOSS surface (field
// names, status strings, envelopes) in testdata/*.golden. Run with
// -update to rewrite them after an intended change.
func TestSemossGolden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	k := e.key("golden")
	anon := newMonolith(t, srv.URL, nil)
	m := newMonolith(t, srv.URL, nil) // a session, from GET /config with Basic

	check := func(name string, status int, body []byte) {
		t.Helper()
		got := fmt.Sprintf("%d\n%s\n", status, normalize(body))
		path := filepath.Join("testdata", name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s: body changed\n--- got\n%s--- want\n%s", name, got, want)
		}
	}
	call := func(name string, c *monolith, path string, form url.Values, header ...string) []byte {
		t.Helper()
		status, _, body := c.call(path, form, header...)
		check(name, status, body)
		return body
	}
	jobOf := func(body []byte) string {
		var v struct {
			JobID string `json:"jobId"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.JobID == "" {
			t.Fatalf("no jobId in %s", body)
		}
		return v.JobID
	}
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	call("config_logged_out", anon, "/config", nil)
	basic := "Basic " + basicOf(k)
	call("config_logged_in", m, "/config", nil, "Authorization", basic)
	call("unauthenticated", anon, "/engine/runPixel", form("expression", "META | true"))
	call("login_failed", anon, "/auth/login", form("username", k.Access, "password", "wrong"))

	// runPixel: META, a synchronous LLM, errors, several pixels.
	call("runpixel_meta", m, "/engine/runPixel", form("expression", "META | true", "insightId", "new"))
	sync := call("runpixel_llm", m, "/engine/runPixel", form("insightId", "new", "expression",
		`LLM(engine="sim", command="<encode>hello</encode>", roomId="<encode>golden-room</encode>", paramValues=[{"sim_tokens": 6, "sim_tokens_per_second": 0}]);`))
	var syncOut struct {
		PixelReturn []struct {
			Output struct {
				MessageID string `json:"messageId"`
			} `json:"output"`
		} `json:"pixelReturn"`
	}
	json.Unmarshal(sync, &syncOut)
	call("status_sync_job", m, "/engine/status", form("jobId", syncOut.PixelReturn[0].Output.MessageID))
	call("runpixel_syntax_error", m, "/engine/runPixel", form("insightId", "i-1", "expression", `LLM(command="x"`))
	call("runpixel_unsupported", m, "/engine/runPixel", form("insightId", "i-1", "expression", `Frame() | Collect(5);`))
	call("runpixel_unknown_engine", m, "/engine/runPixel", form("insightId", "i-1", "expression", `LLM(engine="gpt-9", command="hi");`))
	call("runpixel_several", m, "/engine/runPixel", form("insightId", "i-1", "expression",
		`META | true; StopPixelExecution(id=["`+uuid.NewString()+`"]);`))

	// An async job, read every way.
	job := jobOf(call("runpixelasync", m, "/engine/runPixelAsync", form("insightId", "insight-7", "expression",
		`LLM(engine="sim", command="<encode>stream this</encode>", roomId="<encode>golden-room</encode>", paramValues=[{"sim_tokens": 5, "sim_tokens_per_second": 0}]);`)))
	call("result", m, "/engine/result", form("jobId", job))
	call("pixeljobstreaming", m, "/engine/pixelJobStreaming", form("jobId", job))
	call("pixeljobstreaming_again", m, "/engine/pixelJobStreaming", form("jobId", job))
	call("pixeljobstreaming_offset", m, "/engine/pixelJobStreaming", form("jobId", job, "offset", "3"))
	call("status", m, "/engine/status", form("jobId", job))
	call("partial", m, "/engine/partial", form("jobId", job))
	call("partial_again", m, "/engine/partial", form("jobId", job))
	call("console", m, "/engine/console", form("jobId", job))
	call("error_none", m, "/engine/error", form("jobId", job))
	call("terminate", m, "/engine/terminate", form("jobId", job))

	// Unknown jobs and bad input.
	unknown := uuid.NewString()
	call("pixeljobstreaming_unknown", m, "/engine/pixelJobStreaming", form("jobId", unknown))
	call("pixeljobstreaming_missing_jobid", m, "/engine/pixelJobStreaming", form())
	call("status_unknown", m, "/engine/status", form("jobId", "nope"))
	call("partial_unknown", m, "/engine/partial", form("jobId", unknown))
	call("result_unknown", m, "/engine/result", form("jobId", unknown))
	call("runpixelasync_not_llm", m, "/engine/runPixelAsync", form("expression", "META | true"))
	call("runpixelasync_syntax_error", m, "/engine/runPixelAsync", form("expression", `LLM(command=`))

	// A job that fails.
	failed := jobOf(call("runpixelasync_failing", m, "/engine/runPixelAsync", form("insightId", "insight-8", "expression",
		`LLM(engine="sim", command="<encode>fail</encode>", paramValues=[{"sim_tokens": 5, "sim_tokens_per_second": 0, "sim_fail_after": 2}]);`)))
	call("result_failed", m, "/engine/result", form("jobId", failed))
	call("pixeljobstreaming_failed", m, "/engine/pixelJobStreaming", form("jobId", failed))
	call("error", m, "/engine/error", form("jobId", failed))
	call("error_again", m, "/engine/error", form("jobId", failed))

	// A tool call.
	tool := jobOf(call("runpixelasync_tool", m, "/engine/runPixelAsync", form("insightId", "insight-9", "expression",
		`LLM(engine="sim", command="<encode>Oslo</encode>", paramValues=[{"sim_tokens_per_second": 0, "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}]);`)))
	call("result_tool", m, "/engine/result", form("jobId", tool))
	call("pixeljobstreaming_tool", m, "/engine/pixelJobStreaming", form("jobId", tool))
	call("partial_tool", m, "/engine/partial", form("jobId", tool, "wait", "0"))

	call("logout", m, "/logout/all", form())
}

func basicOf(k apiKey) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(k.Access, k.Secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
