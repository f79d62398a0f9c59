package responsesapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

// do sends a request with key as the bearer token.
func (b *bundle) do(t *testing.T, method, path, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// openAIError decodes OpenAI's error shape strictly: exactly message,
// type, param and code.
func openAIError(t *testing.T, body []byte) (message, typ string, param, code *string) {
	t.Helper()
	var e struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Error) != 4 {
		t.Fatalf("not OpenAI's error shape: %s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Fatalf("error without %q: %s", k, body)
		}
	}
	_ = json.Unmarshal(e.Error["message"], &message)
	_ = json.Unmarshal(e.Error["type"], &typ)
	_ = json.Unmarshal(e.Error["param"], &param)
	_ = json.Unmarshal(e.Error["code"], &code)
	return message, typ, param, code
}

// TestValidation: every bad create request is a 4xx in OpenAI's shape
// naming the parameter, and stores nothing.
func TestValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noWorker: true})
	long := strings.Repeat("x", 600)
	for _, tc := range []struct {
		name, body string
		status     int
		param      string
	}{
		{"NoModel", `{"input":"hi"}`, 400, "model"},
		{"UnknownModel", `{"model":"gpt-9","input":"hi"}`, 400, "model"},
		{"NoInput", `{"model":"sim"}`, 400, "input"},
		{"EmptyInput", `{"model":"sim","input":""}`, 400, "input"},
		{"EmptyList", `{"model":"sim","input":[]}`, 400, "input"},
		{"InputNumber", `{"model":"sim","input":42}`, 400, "input"},
		{"BadRole", `{"model":"sim","input":[{"role":"robot","content":"hi"}]}`, 400, "input[0].role"},
		{"NoRole", `{"model":"sim","input":[{"content":"hi"}]}`, 400, "input[0].role"},
		{"ImagePart", `{"model":"sim","input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]}`, 400, "input[0].content[0].type"},
		{"ItemType", `{"model":"sim","input":[{"type":"web_search_call"}]}`, 400, "input[0].type"},
		{"CallOutputNoCallID", `{"model":"sim","input":[{"type":"function_call_output","output":"x"}]}`, 400, "input[0].call_id"},
		{"ToolType", `{"model":"sim","input":"hi","tools":[{"type":"web_search"}]}`, 400, "tools[0].type"},
		{"ToolName", `{"model":"sim","input":"hi","tools":[{"type":"function","name":"a b"}]}`, 400, "tools[0].name"},
		{"ToolParams", `{"model":"sim","input":"hi","tools":[{"type":"function","name":"f","parameters":[1]}]}`, 400, "tools[0].parameters"},
		{"ToolChoice", `{"model":"sim","input":"hi","tool_choice":"sometimes"}`, 400, "tool_choice"},
		{"ToolChoiceName", `{"model":"sim","input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`, 400, "tool_choice.name"},
		{"MaxTokens", `{"model":"sim","input":"hi","max_output_tokens":0}`, 400, "max_output_tokens"},
		{"MaxTokensFraction", `{"model":"sim","input":"hi","max_output_tokens":1.5}`, 400, "max_output_tokens"},
		{"Temperature", `{"model":"sim","input":"hi","temperature":3}`, 400, "temperature"},
		{"TopP", `{"model":"sim","input":"hi","top_p":-1}`, 400, "top_p"},
		{"BackgroundType", `{"model":"sim","input":"hi","background":"yes"}`, 400, "background"},
		{"MetadataValue", `{"model":"sim","input":"hi","metadata":{"k":"` + long + `"}}`, 400, "metadata"},
		{"MetadataType", `{"model":"sim","input":"hi","metadata":{"k":1}}`, 400, "metadata"},
		{"StoreFalse", `{"model":"sim","input":"hi","store":false}`, 400, "store"},
		{"Unsupported", `{"model":"sim","input":"hi","previous_response_id":"resp_x"}`, 400, "previous_response_id"},
		{"Unknown", `{"model":"sim","input":"hi","colour":"red"}`, 400, "colour"},
		{"NUL", `{"model":"sim","input":"a\u0000b"}`, 400, ""},
		{"Syntax", `{"model":`, 400, ""},
		{"Trailing", `{"model":"sim","input":"hi"} {}`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.do(t, http.MethodPost, "/v1/responses", b.keyA, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			msg, typ, param, _ := openAIError(t, body)
			if typ != "invalid_request_error" || msg == "" {
				t.Fatalf("error %s", body)
			}
			if got := deref(param); got != tc.param {
				t.Fatalf("param %q, want %q: %s", got, tc.param, body)
			}
		})
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d jobs stored by invalid requests", n)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestAuthErrors: no key, a wrong key, and an unknown id are OpenAI-shaped.
func TestAuthErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noWorker: true})
	for name, key := range map[string]string{"NoKey": "", "WrongKey": "ak_nope:sk_nope", "OpenAIKey": "sk-proj-abc"} {
		status, body := b.do(t, http.MethodGet, "/v1/responses/resp_00000000000000000000000000000000", key, "")
		if status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d: %s", name, status, body)
		}
		if _, _, _, code := openAIError(t, body); deref(code) != "invalid_api_key" {
			t.Fatalf("%s: code %q", name, deref(code))
		}
	}
	for _, id := range []string{"resp_00000000000000000000000000000000", "resp_nothex", "nope"} {
		status, body := b.do(t, http.MethodGet, "/v1/responses/"+id, b.keyA, "")
		if status != http.StatusNotFound {
			t.Fatalf("%s: status %d: %s", id, status, body)
		}
		openAIError(t, body)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id, event string
	data      []byte
}

// readSSE reads events from r until the stream ends or stop says so.
func readSSE(t *testing.T, r io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
				if stop != nil && stop(cur) {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = []byte(line[6:])
		}
	}
	return out
}

func (b *bundle) stream(t *testing.T, ctx context.Context, method, path, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.keyA)
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, body)
	}
	return resp
}

// TestReadersSeeSameBytes: the SSE event name is the event's type; a
// stream read live, two concurrent readers, a resumer (with stream in the
// JSON body, as openai-go sends it) and a late full replay all see
// byte-identical events for the same sequence number.
func TestReadersSeeSameBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	status, body := b.do(t, http.MethodPost, "/v1/responses", b.keyA, `{"model":"sim","input":"Count with me","background":true,"max_output_tokens":40}`)
	if status != http.StatusOK {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct{ ID, Status string }
	_ = json.Unmarshal(body, &created)
	if created.Status != "queued" {
		t.Fatalf("background create: %s", body)
	}
	path := "/v1/responses/" + created.ID + "?stream=true"
	var wg sync.WaitGroup
	live := make([][]sseEvent, 2)
	for i := range live {
		wg.Go(func() {
			resp := b.stream(t, ctx, http.MethodGet, path, "")
			defer resp.Body.Close()
			live[i] = readSSE(t, resp.Body, nil)
		})
	}
	// A resumer after event 5, asking with stream in the body.
	resp := b.stream(t, ctx, http.MethodGet, "/v1/responses/"+created.ID+"?starting_after=5", `{"stream":true}`)
	resumed := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	wg.Wait()
	resp = b.stream(t, ctx, http.MethodGet, path, "")
	replay := readSSE(t, resp.Body, nil)
	resp.Body.Close()

	want := replay
	if len(want) < 40 || want[len(want)-1].event != "response.incomplete" {
		t.Fatalf("replay: %d events, last %q", len(want), want[len(want)-1].event)
	}
	for i, e := range want {
		var head struct {
			Type string `json:"type"`
			Seq  int    `json:"sequence_number"`
		}
		if err := json.Unmarshal(e.data, &head); err != nil {
			t.Fatal(err)
		}
		if head.Type != e.event || head.Seq != i || e.id != fmt.Sprint(i) {
			t.Fatalf("event %d: event %q id %q, data type %q sequence_number %d", i, e.event, e.id, head.Type, head.Seq)
		}
	}
	same := func(name string, got []sseEvent, first int) {
		t.Helper()
		if len(got) != len(want)-first {
			t.Fatalf("%s: %d events, want %d", name, len(got), len(want)-first)
		}
		for i, e := range got {
			if w := want[first+i]; e.event != w.event || !bytes.Equal(e.data, w.data) {
				t.Fatalf("%s: event %d differs:\n%s\n%s", name, first+i, e.data, w.data)
			}
		}
	}
	same("live reader 1", live[0], 0)
	same("live reader 2", live[1], 0)
	same("resumer", resumed, 6)
}

// TestReplayStatements measures what a full replay costs: a response of
// 10,000 events, replayed from 0, is read in a handful of statements, not
// one per event (openai-python's resume helper always replays from 0).
func TestReplayStatements(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noWorker: true})
	ctx := context.Background()
	status, body := b.do(t, http.MethodPost, "/v1/responses", b.keyA, `{"model":"sim","input":"long","background":true}`)
	if status != http.StatusOK {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(body, &created)
	// Play the worker: 9,991 content chunks and the finish chunk give
	// created, queued, in_progress, item and part added, 9,991 deltas,
	// text and part and item done, and completed: 10,000 events.
	claims, err := b.store.Claim(ctx, "test", 1, time.Hour)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim: %v %v", claims, err)
	}
	l := claims[0].Lease
	const deltas = 9991
	chunks := make([]store.NewChunk, 0, deltas)
	for i := range deltas {
		chunks = append(chunks, store.NewChunk{Lease: l, Seq: i, StreamType: "content", Data: json.RawMessage(fmt.Sprintf(`{"content":"t%d "}`, i))})
	}
	if _, err := b.store.WriteBatch(ctx, "test", chunks, nil); err != nil {
		t.Fatal(err)
	}
	fin := store.NewChunk{Lease: l, Seq: deltas, StreamType: "content", Data: json.RawMessage(`{"finish_reason":"stop"}`)}
	if _, err := b.store.WriteBatch(ctx, "test", []store.NewChunk{fin}, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}

	before, start := b.statements.Load(), time.Now()
	resp := b.stream(t, ctx, http.MethodGet, "/v1/responses/"+created.ID+"?stream=true", "")
	evs := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	n, took := b.statements.Load()-before, time.Since(start)
	if len(evs) != 10_000 || evs[len(evs)-1].event != "response.completed" {
		t.Fatalf("replay: %d events, last %q", len(evs), evs[len(evs)-1].event)
	}
	t.Logf("a replay of %d events from 0 ran %d SQL statements in %s", len(evs), n, took.Round(time.Millisecond))
	if n > 3 {
		t.Fatalf("a replay of %d events ran %d statements, want at most 3", len(evs), n)
	}
}

// TestDeleteAndInputItems: input items list in both orders with paging;
// DELETE hides the response (404 afterwards) but keeps its job.
func TestDeleteAndInputItems(t *testing.T) {
	t.Parallel()
	b := setup(t, options{noWorker: true})
	status, body := b.do(t, http.MethodPost, "/v1/responses", b.keyA, `{"model":"sim","background":true,"input":[
		{"role":"developer","content":"Be kind."},
		{"type":"message","role":"user","content":[{"type":"input_text","text":"Hello "},{"type":"input_text","text":"there"}]},
		{"role":"assistant","content":"Hi!"},
		{"role":"user","content":"Again"}]}`)
	if status != http.StatusOK {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(body, &created)
	type list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Type, Role string
			Content        []struct{ Type, Text string }
		} `json:"data"`
		FirstID, LastID *string
		HasMore         bool `json:"has_more"`
	}
	var l list
	status, body = b.do(t, http.MethodGet, "/v1/responses/"+created.ID+"/input_items?limit=3", b.keyA, "")
	if err := json.Unmarshal(body, &l); status != 200 || err != nil {
		t.Fatalf("input_items: %d %s", status, body)
	}
	if l.Object != "list" || len(l.Data) != 3 || !l.HasMore || l.Data[0].Role != "user" || l.Data[0].Content[0].Text != "Again" || l.Data[1].Content[0].Type != "output_text" {
		t.Fatalf("newest first: %s", body)
	}
	status, body = b.do(t, http.MethodGet, "/v1/responses/"+created.ID+"/input_items?order=asc&after="+l.Data[0].ID, b.keyA, "")
	l = list{}
	if err := json.Unmarshal(body, &l); status != 200 || err != nil || len(l.Data) != 0 || l.HasMore {
		t.Fatalf("after the newest, ascending: %d %s", status, body)
	}
	status, body = b.do(t, http.MethodGet, "/v1/responses/"+created.ID+"/input_items?order=asc", b.keyA, "")
	l = list{}
	if err := json.Unmarshal(body, &l); status != 200 || err != nil || len(l.Data) != 4 || l.Data[1].Content[0].Text != "Hello there" || l.Data[0].Role != "developer" {
		t.Fatalf("ascending: %d %s", status, body)
	}
	for _, q := range []string{"limit=0", "limit=101", "order=up", "after=msg_nope"} {
		status, body := b.do(t, http.MethodGet, "/v1/responses/"+created.ID+"/input_items?"+q, b.keyA, "")
		if status != 400 {
			t.Fatalf("%s: %d %s", q, status, body)
		}
		openAIError(t, body)
	}

	status, body = b.do(t, http.MethodDelete, "/v1/responses/"+created.ID, b.keyB, "")
	if status != http.StatusNotFound {
		t.Fatalf("another tenant's delete: %d %s", status, body)
	}
	status, body = b.do(t, http.MethodDelete, "/v1/responses/"+created.ID, b.keyA, "")
	if status != http.StatusOK || !strings.Contains(string(body), `"deleted":true`) {
		t.Fatalf("delete: %d %s", status, body)
	}
	for _, path := range []string{"", "/input_items", "?stream=true"} {
		if status, body := b.do(t, http.MethodGet, "/v1/responses/"+created.ID+path, b.keyA, ""); status != http.StatusNotFound {
			t.Fatalf("GET%s after delete: %d %s", path, status, body)
		}
	}
	if status, _ := b.do(t, http.MethodDelete, "/v1/responses/"+created.ID, b.keyA, ""); status != http.StatusNotFound {
		t.Fatalf("second delete: %d", status)
	}
	// The job stays (chunks are append-only; retention removes it), and
	// the delete cancelled it, since nothing could read it any more.
	id := uuid.MustParse(strings.TrimPrefix(created.ID, "resp_"))
	job, err := b.store.Get(context.Background(), "a", id)
	if err != nil || job.Status != store.StatusCancelled {
		t.Fatalf("job after delete: %+v %v", job, err)
	}
}
