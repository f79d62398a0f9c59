package semoss_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/semoss"
)

// TestSemossUIClient runs semoss-ui's calls against a real server: login,
// runPixelAsync, pixelJobStreaming every 300 ms until ProgressComplete,
// then /engine/result.
func TestSemossUIClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	k := e.key("ui")
	m := newMonolith(t, srv.URL, nil)
	m.login(k)

	var cfg struct {
		LoginDetails map[string]string `json:"loginDetails"`
		CSRF         bool              `json:"csrf"`
	}
	m.get("/config", &cfg)
	if cfg.LoginDetails["native"] != "ui" || cfg.CSRF {
		t.Fatalf("config after login: %+v", cfg)
	}

	const expr = `LLM(engine=["sim"], command=["<encode>tell me about "soccer"</encode>"], paramValues=[{"sim_tokens": 40, "sim_tokens_per_second": 80}], roomId=["<encode>room-ui</encode>"], useHistory=[true]);`
	o := uiStream(m, expr)

	if n := len(o.statuses); n < 3 || o.statuses[n-1] != semoss.SemossProgressComplete {
		t.Fatalf("statuses %v: want several polls ending ProgressComplete", o.statuses)
	}
	for _, s := range o.statuses {
		if s != semoss.SemossSubmitted && s != semoss.SemossInProgress && s != semoss.SemossProgressComplete {
			t.Fatalf("unexpected status %q in %v", s, o.statuses)
		}
	}
	// Every chunk exactly once, in order: what a stateless full read sees.
	if all := m.allChunks(o.jobID); !slices.Equal(keys(o.messages), keys(all)) {
		t.Fatalf("polled chunks differ from the job's stream:\npolled %q\nstream %q", keys(o.messages), keys(all))
	}
	last := o.messages[len(o.messages)-1]
	if last.StreamType != "content" || string(last.Data) != `{"finish_reason":"stop"}` {
		t.Fatalf("last chunk %s %s, want content finish_reason stop", last.StreamType, last.Data)
	}
	if len(o.result.PixelReturn) != 1 || o.result.InsightID == "" {
		t.Fatalf("result %+v", o.result)
	}
	entry := o.result.PixelReturn[0]
	out := outputOf[semoss.LLMOutput](t, entry)
	if entry.PixelExpression != expr || !reflect.DeepEqual(entry.OperationType, []string{"OPERATION"}) || entry.IsMeta {
		t.Fatalf("result entry %+v", entry)
	}
	if out.Response != text(o.messages) || out.MessageType != "CHAT" || out.MessageID != o.jobID ||
		out.RoomID != "room-ui" || out.NumberOfTokensInResponse != 40 || out.NumberOfTokensInPrompt == 0 {
		t.Fatalf("result output %+v; streamed text %q", out, text(o.messages))
	}
	if !strings.HasPrefix(text(o.messages), `You asked: tell me about "soccer"`) {
		t.Fatalf("text %q does not answer the prompt", text(o.messages))
	}
	// /result can be read again, unchanged.
	if again := m.result(o.jobID); !reflect.DeepEqual(again, o.result) {
		t.Fatalf("second /result %+v differs from the first %+v", again, o.result)
	}
}

// TestPythonSDKClient runs the Python SDK's calls against a real server:
// GET /config with Basic, GET /config with the cookie, runPixel META |
// true, runPixel LLM(...) (ask), and stream_ask (runPixelAsync plus a loop
// on /engine/partial without sleeps).
func TestPythonSDKClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	sdk := newPythonSDK(t, srv.URL, e.key("notebook"))

	out := sdk.ask("What is 2+2? (answer \"briefly\")", map[string]any{"max_new_tokens": 12, "temperature": 0.3, "sim_tokens_per_second": 0})
	if !strings.HasPrefix(out.Response.(string), `You asked: What is 2+2? (answer "briefly")`) || out.MessageType != "CHAT" ||
		out.NumberOfTokensInResponse != 12 || out.MessageID == "" || out.RoomID == "" {
		t.Fatalf("ask: %+v", out)
	}

	// The SDK's chat integrations send the whole conversation as
	// full_prompt with an empty question.
	out = sdk.ask("", map[string]any{"full_prompt": []map[string]string{{"role": "user", "content": "hi from langchain"}}, "sim_tokens_per_second": 0, "sim_tokens": 10})
	if !strings.HasPrefix(out.Response.(string), "You asked: hi from langchain") {
		t.Fatalf("ask with full_prompt: %+v", out)
	}

	const tokens = 60
	jobID, parts := sdk.streamAsk("stream me something", map[string]any{"sim_tokens": tokens, "sim_tokens_per_second": 150})
	res := newMonolithFor(t, srv.URL, sdk).result(jobID)
	want := outputOf[semoss.LLMOutput](t, res.PixelReturn[0]).Response
	if got := strings.Join(parts, ""); got != want {
		t.Fatalf("stream_ask yielded %q, want the whole answer %q", got, want)
	}
	// /engine/partial long-polls: the loop without sleeps made about one
	// call per token, not thousands.
	if sdk.partialCalls > tokens+5 {
		t.Fatalf("stream_ask made %d /engine/partial calls for %d tokens", sdk.partialCalls, tokens)
	}
}

// newMonolithFor is a plain client with the Python SDK's credentials.
func newMonolithFor(t *testing.T, serverURL string, sdk *pythonSDK) *monolith {
	m := newMonolith(t, serverURL, nil)
	m.client.Jar.SetCookies(mustURL(t, serverURL), sdk.cookies)
	return m
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// streamExpr is a pixel whose content chunks are all distinct (each carries
// the time it was emitted), so that chunks can be counted exactly.
func streamExpr(tokens, perSecond int) string {
	return fmt.Sprintf(`LLM(engine="sim", command="<encode>count me</encode>", paramValues=[{"sim_tokens": %d, "sim_tokens_per_second": %d, "sim_emit_timestamps": true}]);`, tokens, perSecond)
}

// pollToEnd polls a job with no offset until a finished status and returns
// every chunk received.
func pollToEnd(m *monolith, jobID string) []semoss.StreamMessage {
	var got []semoss.StreamMessage
	for {
		r := m.poll(jobID)
		got = append(got, r.Message...)
		if finished(r.Status) {
			return got
		}
		if r.Status == semoss.SemossUnknownJob {
			m.t.Errorf("job %s: UnknownJob", jobID)
			return got
		}
	}
}

func TestPixelJobStreaming(t *testing.T) {
	t.Parallel()

	t.Run("TwoSessionsEachGetEveryChunkOnce", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		srv := e.serve()
		k := e.key("two")
		a, b := newMonolith(t, srv.URL, nil), newMonolith(t, srv.URL, nil)
		a.login(k)
		b.login(k)
		jobID := a.runPixelAsync(streamExpr(40, 100))
		var wg sync.WaitGroup
		got := make([][]semoss.StreamMessage, 2)
		for i, m := range []*monolith{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); got[i] = pollToEnd(m, jobID) }()
		}
		wg.Wait()
		all := a.allChunks(jobID)
		for i := range got {
			if !slices.Equal(keys(got[i]), keys(all)) {
				t.Fatalf("session %d received %d chunks, want all %d exactly once in order:\n%q\n%q", i, len(got[i]), len(all), keys(got[i]), keys(all))
			}
		}
	})

	// Polls of one session that overlap (a client that does not wait for
	// its previous poll) share the session's cursor: together they receive
	// every chunk exactly once.
	t.Run("ConcurrentPollsOfOneSession", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		srv := e.serve()
		m := newMonolith(t, srv.URL, nil)
		m.login(e.key("eager"))
		jobID := m.runPixelAsync(streamExpr(60, 200))
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got []string
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msgs := pollToEnd(m, jobID)
				mu.Lock()
				got = append(got, keys(msgs)...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		all := keys(m.allChunks(jobID))
		slices.Sort(got)
		slices.Sort(all)
		if !slices.Equal(got, all) {
			t.Fatalf("overlapping polls received %d chunks, want the job's %d exactly once", len(got), len(all))
		}
	})

	// A session's cursor lives in PostgreSQL: polls may alternate between
	// nodes, and a node may restart, without a chunk lost or repeated.
	t.Run("AcrossNodesAndRestart", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		n1, n2 := e.serve(), e.serve()
		m := newMonolith(t, n1.URL, nil)
		m.login(e.key("roaming"))
		jobID := m.runPixelAsync(streamExpr(60, 40))
		var got []semoss.StreamMessage
		poll := func(node *monolith) string {
			r := node.poll(jobID)
			got = append(got, r.Message...)
			return r.Status
		}
		// Alternate between the nodes until part of the stream is read.
		for i := 0; len(got) < 10; i++ {
			poll([]*monolith{m, m.at(n2.URL)}[i%2])
		}
		if err := n1.Stop(); err != nil {
			t.Fatalf("stop node 1: %v", err)
		}
		n3 := e.serve()
		for i := 0; ; i++ {
			if finished(poll([]*monolith{m.at(n3.URL), m.at(n2.URL)}[i%2])) {
				break
			}
		}
		if all := m.at(n2.URL).allChunks(jobID); !slices.Equal(keys(got), keys(all)) {
			t.Fatalf("received %d chunks across nodes, want the job's %d exactly once in order", len(got), len(all))
		}
	})

	t.Run("Offset", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		srv := e.serve()
		k := e.key("offsets")
		m := newMonolith(t, srv.URL, &k) // Basic credentials on every request, no session needed
		jobID := m.runPixelAsync(streamExpr(10, 0))
		m.result(jobID) // waits for the end
		all := m.allChunks(jobID)
		r := m.poll(jobID, "offset", "4")
		if !slices.Equal(keys(r.Message), keys(all[4:])) || *r.Offset != len(all) || r.Status != semoss.SemossProgressComplete {
			t.Fatalf("offset 4: %d chunks, offset %d, status %s", len(r.Message), *r.Offset, r.Status)
		}
		// Stateless: the same read again gives the same answer.
		if again := m.poll(jobID, "offset", "4"); !reflect.DeepEqual(again, r) {
			t.Fatalf("second read from offset 4 differs")
		}
		r = m.poll(jobID, "offset", fmt.Sprint(len(all)+5), "wait", "0")
		if len(r.Message) != 0 || *r.Offset != len(all)+5 || r.Status != semoss.SemossProgressComplete {
			t.Fatalf("past the end: %+v", r)
		}
		for _, bad := range [][]string{{"offset", "-1"}, {"offset", "x"}, {"wait", "soon"}} {
			status, _, body := m.call("/engine/pixelJobStreaming", url.Values{"jobId": {jobID}, bad[0]: {bad[1]}})
			var se struct{ ErrorMessage, ErrorType string }
			if status != http.StatusBadRequest || json.Unmarshal(body, &se) != nil || !strings.Contains(se.ErrorMessage, bad[0]) {
				t.Errorf("%s=%s: %d %s, want 400 naming %s", bad[0], bad[1], status, body, bad[0])
			}
		}
	})

	t.Run("UnknownJob", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		srv := e.serve()
		k := e.key("nobody")
		m := newMonolith(t, srv.URL, nil)
		m.login(k)
		for _, form := range []url.Values{
			{},
			{"jobId": {"not-a-uuid"}},
			{"jobId": {uuid.NewString()}},
			{"jobId": {uuid.NewString()}, "offset": {"0"}},
		} {
			var r semoss.StreamingResponse
			m.post("/engine/pixelJobStreaming", form, &r)
			if r.Status != semoss.SemossUnknownJob || r.Message == nil || len(r.Message) != 0 {
				t.Errorf("%v: %+v, want UnknownJob with []", form, r)
			}
		}
	})

	t.Run("NoSession", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		srv := e.serve()
		k := e.key("stateless")
		m := newMonolith(t, srv.URL, &k)
		jobID := m.runPixelAsync(streamExpr(3, 0))
		status, _, body := m.call("/engine/pixelJobStreaming", url.Values{"jobId": {jobID}})
		if status != http.StatusBadRequest || !strings.Contains(string(body), "JSESSIONID") {
			t.Fatalf("no session, no offset: %d %s; want 400 explaining the cookie", status, body)
		}
	})
}

// TestToolCalls streams a tool-call turn exactly as the chunk format in internal/engine/README.md says,
// reports it as a TOOL result, and answers a follow-up carrying the tool's
// result, through paramValues messages and through the room's history.
func TestToolCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	k := e.key("agent")
	m := newMonolith(t, srv.URL, &k)
	tools := `[{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]`
	expr := `LLM(engine="sim", command="<encode>Paris</encode>", roomId="<encode>weather-room</encode>", paramValues=[{"tools": ` + tools + `, "sim_tokens_per_second": 0}]);`
	jobID := m.runPixelAsync(expr)
	res := m.result(jobID)
	msgs := m.allChunks(jobID)

	// id, type, name, argument fragments, then usage and the finish chunk
	// on the tool stream.
	var args strings.Builder
	var callID string
	for i, c := range msgs {
		var d map[string]any
		if err := json.Unmarshal(c.Data, &d); err != nil {
			t.Fatal(err)
		}
		fn, _ := d["function"].(map[string]any)
		switch {
		case i == 0:
			callID, _ = d["id"].(string)
			if c.StreamType != "tool" || d["index"] != 0.0 || !strings.HasPrefix(callID, "call_") || len(d) != 2 {
				t.Fatalf("chunk 0 = %s %s, want the call's id", c.StreamType, c.Data)
			}
		case i == 1:
			if c.StreamType != "tool" || d["type"] != "function" || d["index"] != 0.0 || len(d) != 2 {
				t.Fatalf("chunk 1 = %s, want its type", c.Data)
			}
		case i == 2:
			if c.StreamType != "tool" || fn["name"] != "get_weather" || len(d) != 2 {
				t.Fatalf("chunk 2 = %s, want its name", c.Data)
			}
		case i < len(msgs)-2:
			a, ok := fn["arguments"].(string)
			if c.StreamType != "tool" || !ok || d["index"] != 0.0 {
				t.Fatalf("chunk %d = %s %s, want an arguments fragment", i, c.StreamType, c.Data)
			}
			args.WriteString(a)
		case i == len(msgs)-2:
			if c.StreamType != "usage" {
				t.Fatalf("chunk %d = %s %s, want usage", i, c.StreamType, c.Data)
			}
		default:
			if c.StreamType != "tool" || string(c.Data) != `{"finish_reason":"tool_calls"}` {
				t.Fatalf("last chunk = %s %s, want {\"finish_reason\":\"tool_calls\"} on the tool stream", c.StreamType, c.Data)
			}
		}
	}
	if args.String() != `{"city":"Paris"}` || len(msgs) < 6 {
		t.Fatalf("arguments %q over %d chunks", args.String(), len(msgs))
	}
	out := outputOf[struct {
		Response    []semoss.ToolCallOutput `json:"response"`
		MessageType string                  `json:"messageType"`
		RoomID      string                  `json:"roomId"`
	}](t, res.PixelReturn[0])
	want := []semoss.ToolCallOutput{{ID: callID, Type: "function", Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	if out.MessageType != "TOOL" || !reflect.DeepEqual(out.Response, want) || out.RoomID != "weather-room" {
		t.Fatalf("TOOL result %+v, want %+v", out, want)
	}

	// Follow-up 1: the whole conversation, tool result included, in
	// paramValues messages.
	conv, _ := json.Marshal([]map[string]any{
		{"role": "user", "content": "Paris"},
		{"role": "assistant", "content": "", "tool_calls": []map[string]any{{"id": callID, "type": "function", "function": map[string]string{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}},
		{"role": "tool", "tool_call_id": callID, "content": "sunny, 21 C"},
	})
	followUp := m.runPixel(`LLM(engine="sim", paramValues=[{"messages": ` + string(conv) + `, "tools": ` + tools + `, "sim_tokens_per_second": 0, "sim_tokens": 20}]);`)
	answer := outputOf[semoss.LLMOutput](t, followUp.PixelReturn[0])
	if answer.MessageType != "CHAT" || !strings.Contains(answer.Response.(string), "sunny, 21 C") {
		t.Fatalf("follow-up with messages: %+v", answer)
	}

	// Follow-up 2, on the native API: only the tool result, on top of the
	// room's history (which holds the call).
	body := fmt.Sprintf(`{"engine":"sim","room_id":"weather-room","use_history":true,"messages":[{"role":"tool","tool_call_id":%q,"content":"rainy"}],"params":{"tools":%s,"sim_tokens_per_second":0,"sim_tokens":20}}`, callID, tools)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/jobs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(k.Access, k.Secret)
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var job jobsapi.Job
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("native follow-up: %d", resp.StatusCode)
	}
	native := outputOf[semoss.LLMOutput](t, m.result(job.ID.String()).PixelReturn[0])
	if native.MessageType != "CHAT" || !strings.Contains(native.Response.(string), "rainy") || native.RoomID != "weather-room" {
		t.Fatalf("native follow-up: %+v", native)
	}
}

// TestStopPixelExecution cancels a running job: its model call stops, the
// stream ends with a cancelled finish chunk, and SEMOSS's three messages
// answer the three cases.
func TestStopPixelExecution(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	m := newMonolith(t, srv.URL, nil)
	m.login(e.key("stopper"))
	jobID := m.runPixelAsync(`LLM(engine="sim", command="<encode>a long story</encode>", paramValues=[{"sim_tokens": 100000, "sim_tokens_per_second": 50}]);`)
	// Wait until it streams (long-polls, no sleeps).
	for r := m.poll(jobID); len(r.Message) == 0; r = m.poll(jobID) {
	}

	stop := func(id string) string {
		out := m.runPixel(`StopPixelExecution(id=["` + id + `"]);`)
		if len(out.PixelReturn) != 1 || out.PixelReturn[0].OperationType[0] != "OPERATION" {
			t.Fatalf("StopPixelExecution answer %+v", out)
		}
		return out.PixelReturn[0].Output.(string)
	}
	if got, want := stop(jobID), "Cancel requested for pixel job "+jobID; got != want {
		t.Fatalf("stop running job: %q, want %q", got, want)
	}
	msgs := pollToEnd(m, jobID)
	var status string
	m.post("/engine/status", url.Values{"jobId": {jobID}}, &status)
	if status != semoss.SemossCanceled {
		t.Fatalf("status after stop: %s", status)
	}
	if last := msgs[len(msgs)-1]; string(last.Data) != `{"finish_reason":"cancelled"}` {
		t.Fatalf("last chunk %s, want finish_reason cancelled", last.Data)
	}
	if n := len(m.allChunks(jobID)); n > 1000 {
		t.Fatalf("%d chunks: the model call was not stopped", n)
	}
	if got, want := stop(jobID), "Pixel job "+jobID+" already completed"; got != want {
		t.Fatalf("stop again: %q, want %q", got, want)
	}
	unknown := uuid.NewString()
	if got, want := stop(unknown), "Pixel job "+unknown+" not found"; got != want {
		t.Fatalf("stop unknown: %q, want %q", got, want)
	}
	res := m.result(jobID)
	if e := res.PixelReturn[0]; e.OperationType[0] != "ERROR" || !strings.Contains(e.Output.(string), "canceled") {
		t.Fatalf("result of a cancelled job: %+v", e)
	}
}

// TestAuthentication: no credentials get 401 with a JSON error on both
// APIs; /config answers logged out; wrong credentials are refused.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	k := e.key("real")
	anon := newMonolith(t, srv.URL, nil)

	for _, path := range []string{"/engine/runPixel", "/engine/runPixelAsync", "/engine/pixelJobStreaming", "/engine/result", "/engine/partial", "/engine/status"} {
		status, h, body := anon.call(path, url.Values{"expression": {"META | true"}})
		var se struct{ ErrorMessage, ErrorType string }
		if status != http.StatusUnauthorized || json.Unmarshal(body, &se) != nil || se.ErrorMessage == "" || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s without credentials: %d %s", path, status, body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs", nil)
	resp, err := anon.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/jobs without credentials: %d", resp.StatusCode)
	}

	var cfg struct {
		LoginDetails map[string]string `json:"loginDetails"`
	}
	anon.get("/config", &cfg)
	if len(cfg.LoginDetails) != 0 {
		t.Errorf("config logged out: loginDetails %v", cfg.LoginDetails)
	}
	wrong := newMonolith(t, srv.URL, &apiKey{Access: k.Access, Secret: k.Secret + "x"})
	wrong.get("/config", &cfg)
	if len(cfg.LoginDetails) != 0 {
		t.Errorf("config with a wrong secret: loginDetails %v", cfg.LoginDetails)
	}
	if status, _, _ := wrong.call("/engine/runPixel", url.Values{"expression": {"META | true"}}); status != http.StatusUnauthorized {
		t.Errorf("runPixel with a wrong secret: %d", status)
	}
	if status, _, _ := anon.call("/auth/login", url.Values{"username": {k.Access}, "password": {"nope"}}); status != http.StatusUnauthorized {
		t.Errorf("/auth/login with a wrong password: %d", status)
	}

	// Revoking a key ends its sessions: a node that has not cached them
	// (nodes cache credentials for up to 5 s) refuses them at once.
	m := newMonolith(t, srv.URL, nil)
	m.login(k)
	e.cli("keys", "revoke", k.Access)
	fresh := e.serve()
	if status, _, body := m.at(fresh.URL).call("/engine/status", url.Values{"jobId": {uuid.NewString()}}); status != http.StatusUnauthorized {
		t.Errorf("session of a revoked key: %d %s", status, body)
	}
	if status, _, _ := newMonolith(t, fresh.URL, &k).call("/engine/status", url.Values{"jobId": {uuid.NewString()}}); status != http.StatusUnauthorized {
		t.Errorf("revoked key: %d", status)
	}

	// Logout ends the session.
	k2 := e.key("leaving")
	m2 := newMonolith(t, srv.URL, nil)
	m2.login(k2)
	m2.post("/logout/all", url.Values{}, &map[string]bool{})
	if status, _, _ := m2.call("/engine/status", url.Values{"jobId": {uuid.NewString()}}); status != http.StatusUnauthorized {
		t.Errorf("after logout: %d", status)
	}
}

// TestOwnership: a job belongs to the key that created it; another key
// gets UnknownJob (404 on the native API), unless both share a tenant.
func TestOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	alice := e.key("alice")
	bob := e.key("bob")
	carol := e.key("carol", "--tenant", "team")
	dave := e.key("dave", "--tenant", "team")

	owner := newMonolith(t, srv.URL, &alice)
	jobID := owner.runPixelAsync(streamExpr(5, 0))
	owner.result(jobID)

	thief := newMonolith(t, srv.URL, nil)
	thief.login(bob)
	if r := thief.poll(jobID); r.Status != semoss.SemossUnknownJob || len(r.Message) != 0 {
		t.Errorf("bob's pixelJobStreaming: %+v", r)
	}
	if r := thief.poll(jobID, "offset", "0"); r.Status != semoss.SemossUnknownJob || len(r.Message) != 0 {
		t.Errorf("bob's pixelJobStreaming with offset: %+v", r)
	}
	var status string
	thief.post("/engine/status", url.Values{"jobId": {jobID}}, &status)
	if status != semoss.SemossUnknownJob {
		t.Errorf("bob's status: %s", status)
	}
	var partial semoss.PartialResponse
	thief.post("/engine/partial", url.Values{"jobId": {jobID}}, &partial)
	if partial.Status != semoss.SemossUnknownJob {
		t.Errorf("bob's partial: %+v", partial)
	}
	if st, _, _ := thief.call("/engine/result", url.Values{"jobId": {jobID}}); st != http.StatusNotFound {
		t.Errorf("bob's result: %d", st)
	}
	if out := thief.runPixel(`StopPixelExecution(id=["` + jobID + `"])`); out.PixelReturn[0].Output != "Pixel job "+jobID+" not found" {
		t.Errorf("bob's stop: %v", out.PixelReturn[0].Output)
	}
	native := func(k apiKey) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/"+jobID, nil)
		req.SetBasicAuth(k.Access, k.Secret)
		resp, err := thief.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := native(bob); st != http.StatusNotFound {
		t.Errorf("bob's GET /v1/jobs/{id}: %d, want 404", st)
	}
	if st := native(alice); st != http.StatusOK {
		t.Errorf("alice's GET /v1/jobs/{id}: %d, want 200", st)
	}

	// Keys of one tenant share its jobs.
	teamJob := newMonolith(t, srv.URL, &carol).runPixelAsync(streamExpr(3, 0))
	if r := newMonolith(t, srv.URL, &dave).poll(teamJob, "offset", "0", "wait", "25"); r.Status == semoss.SemossUnknownJob {
		t.Errorf("dave cannot read carol's job in their shared tenant")
	}
}

// TestSemossRequestEncodings: bodies may be form-encoded (SEMOSS clients),
// JSON objects or multipart forms; oversized ones get 413.
func TestSemossRequestEncodings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.serve()
	k := e.key("encodings")
	m := newMonolith(t, srv.URL, &k)
	send := func(contentType string, body string) (int, semoss.PixelResponse, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, m.base+"/engine/runPixel", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.SetBasicAuth(k.Access, k.Secret)
		resp, err := m.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf strings.Builder
		io.Copy(&buf, resp.Body)
		var out semoss.PixelResponse
		json.Unmarshal([]byte(buf.String()), &out)
		return resp.StatusCode, out, buf.String()
	}
	status, out, body := send("application/json", `{"expression": "META | true", "insightId": "json-insight"}`)
	if status != http.StatusOK || out.InsightID != "json-insight" || len(out.PixelReturn) != 1 || !out.PixelReturn[0].IsMeta {
		t.Errorf("JSON body: %d %s", status, body)
	}
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	w.WriteField("expression", "META | true")
	w.WriteField("insightId", "multipart-insight")
	w.Close()
	status, out, body = send(w.FormDataContentType(), mp.String())
	if status != http.StatusOK || out.InsightID != "multipart-insight" {
		t.Errorf("multipart body: %d %s", status, body)
	}
	status, _, body = send("application/json", `{"expression": `)
	if status != http.StatusBadRequest || !strings.Contains(body, "errorMessage") {
		t.Errorf("broken JSON: %d %s, want 400 with errorMessage", status, body)
	}
	status, _, body = send("application/x-www-form-urlencoded", "expression="+strings.Repeat("x", 2<<20))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "errorMessage") {
		t.Errorf("oversized body: %d %.200s, want 413 with errorMessage", status, body)
	}
}
