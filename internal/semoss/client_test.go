package semoss_test

// Test clients of the SEMOSS surface: a server harness (real `jobstream
// serve` processes on a database of the test's own), and two clients that
// make exactly the calls SEMOSS's own clients make: semoss-ui
// (libs/sdk/src/api/base.ts) and the Python SDK (ai_server ServerClient and
// ModelEngine).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/semoss"
	"github.com/jobstream/jobstream/internal/testserver"
)

// env is one test's database and the servers on it.
type env struct {
	t  *testing.T
	db string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, db: testserver.Database(t)}
}

// serve starts `jobstream serve` on the env's database, with API keys
// required (not dev mode) unless args say otherwise.
func (e *env) serve(args ...string) *testserver.Process {
	e.t.Helper()
	return testserver.Start(e.t, jobstreamBin(e.t), testserver.Options{
		DatabaseURL: e.db,
		Args:        append([]string{"--dev=false"}, args...),
	})
}

type apiKey struct {
	Access string `json:"access_key"`
	Secret string `json:"secret_key"`
}

// key creates an API key the way an operator does: `jobstream keys create
// --name NAME --json [args]`.
func (e *env) key(name string, args ...string) apiKey {
	e.t.Helper()
	out := e.cli(append([]string{"keys", "create", "--name", name, "--json"}, args...)...)
	var k apiKey
	if err := json.Unmarshal(out, &k); err != nil || k.Access == "" || k.Secret == "" {
		e.t.Fatalf("keys create printed %q (%v)", out, err)
	}
	return k
}

// cli runs the jobstream command on the env's database and returns its
// standard output.
func (e *env) cli(args ...string) []byte {
	e.t.Helper()
	cmd := exec.Command(jobstreamBin(e.t), args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "DATABASE_URL" && k != "TEST_DATABASE_URL" && !strings.HasPrefix(k, "JOBSTREAM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DATABASE_URL="+e.db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("jobstream %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// monolith is a plain client of /Monolith/api with a cookie jar (like a
// browser), sending Basic credentials on every request when it has a key.
type monolith struct {
	t      *testing.T
	base   string
	client *http.Client
	key    *apiKey
}

func newMonolith(t *testing.T, serverURL string, key *apiKey) *monolith {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &monolith{t: t, base: serverURL + "/Monolith/api", client: &http.Client{Jar: jar, Transport: tr, Timeout: time.Minute}, key: key}
}

// at returns a client of another node sharing this one's cookies.
func (m *monolith) at(serverURL string) *monolith {
	c := *m
	c.base = serverURL + "/Monolith/api"
	return &c
}

// call sends a request (a form POST, or a GET when form is nil).
func (m *monolith) call(path string, form url.Values, header ...string) (int, http.Header, []byte) {
	m.t.Helper()
	var req *http.Request
	if form == nil {
		req, _ = http.NewRequest(http.MethodGet, m.base+path, nil)
	} else {
		req, _ = http.NewRequest(http.MethodPost, m.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if m.key != nil {
		req.SetBasicAuth(m.key.Access, m.key.Secret)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s: %v", req.Method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		m.t.Fatalf("%s %s: read body: %v", req.Method, path, err)
	}
	return resp.StatusCode, resp.Header, body
}

// post POSTs form and decodes a 200 answer into out.
func (m *monolith) post(path string, form url.Values, out any) {
	m.t.Helper()
	m.decode(path, form, out)
}

// get GETs path and decodes a 200 answer into out.
func (m *monolith) get(path string, out any) {
	m.t.Helper()
	m.decode(path, nil, out)
}

func (m *monolith) decode(path string, form url.Values, out any) {
	m.t.Helper()
	status, _, body := m.call(path, form)
	if status != http.StatusOK {
		m.t.Fatalf("%s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		m.t.Fatalf("%s: decode %s: %v", path, body, err)
	}
}

// login logs in like semoss-ui: POST /auth/login; the jar keeps the cookie.
func (m *monolith) login(k apiKey) {
	m.t.Helper()
	var out map[string]string
	m.post("/auth/login", url.Values{"username": {k.Access}, "password": {k.Secret}, "disableRedirect": {"true"}}, &out)
	if out["success"] != "true" {
		m.t.Fatalf("login: %v", out)
	}
}

func (m *monolith) runPixel(expr string) semoss.PixelResponse {
	m.t.Helper()
	var out semoss.PixelResponse
	m.post("/engine/runPixel", url.Values{"expression": {expr}, "insightId": {"new"}}, &out)
	return out
}

func (m *monolith) runPixelAsync(expr string) string {
	m.t.Helper()
	var out struct {
		JobID string `json:"jobId"`
	}
	m.post("/engine/runPixelAsync", url.Values{"expression": {expr}, "insightId": {"new"}}, &out)
	if out.JobID == "" {
		m.t.Fatal("runPixelAsync returned no jobId")
	}
	return out.JobID
}

func (m *monolith) poll(jobID string, extra ...string) semoss.StreamingResponse {
	m.t.Helper()
	form := url.Values{"jobId": {jobID}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	var out semoss.StreamingResponse
	m.post("/engine/pixelJobStreaming", form, &out)
	return out
}

func (m *monolith) result(jobID string) semoss.PixelResponse {
	m.t.Helper()
	var out semoss.PixelResponse
	m.post("/engine/result", url.Values{"jobId": {jobID}}, &out)
	return out
}

// allChunks reads a finished job's whole stream statelessly (offset=0).
func (m *monolith) allChunks(jobID string) []semoss.StreamMessage {
	m.t.Helper()
	var all []semoss.StreamMessage
	offset := 0
	for {
		r := m.poll(jobID, "offset", fmt.Sprint(offset), "wait", "25")
		all = append(all, r.Message...)
		offset = *r.Offset
		if finished(r.Status) {
			return all
		}
	}
}

func finished(status string) bool {
	return status == semoss.SemossProgressComplete || status == semoss.SemossComplete ||
		status == semoss.SemossError || status == semoss.SemossCanceled
}

// uiOutcome is what semoss-ui saw of a streamed pixel.
type uiOutcome struct {
	jobID    string
	messages []semoss.StreamMessage
	statuses []string
	result   semoss.PixelResponse
}

// uiStream does what semoss-ui does for a streamed LLM pixel:
// runPixelAsync, then pixelJobStreaming with the job id every 300 ms (the
// client's own pace, from a ticker as in the browser) applying the chunks
// in order, until a finished status, then /engine/result once.
func uiStream(m *monolith, expr string) uiOutcome {
	m.t.Helper()
	o := uiOutcome{jobID: m.runPixelAsync(expr)}
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		r := m.poll(o.jobID)
		o.messages = append(o.messages, r.Message...)
		o.statuses = append(o.statuses, r.Status)
		switch r.Status {
		case semoss.SemossProgressComplete, semoss.SemossComplete:
			o.result = m.result(o.jobID)
			return o
		case semoss.SemossCanceled:
			return o
		case semoss.SemossError, semoss.SemossUnknownJob:
			m.t.Fatalf("job %s: status %s after %d polls", o.jobID, r.Status, len(o.statuses))
		}
		<-tick.C
	}
}

// pythonSDK makes exactly the HTTP calls of SEMOSS's Python SDK
// (ai_server.ServerClient and ModelEngine): it keeps the cookies of its
// first /config answer and sends them, with its Basic credentials, on every
// later call, checks the login with GET /config before each pixel, and
// streams with runPixelAsync and a loop on /engine/partial that never
// sleeps.
type pythonSDK struct {
	t       *testing.T
	base    string
	client  *http.Client
	auth    string
	cookies []*http.Cookie
	insight string
	// partialCalls counts /engine/partial requests.
	partialCalls int
}

func newPythonSDK(t *testing.T, serverURL string, k apiKey) *pythonSDK {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p := &pythonSDK{
		t: t, base: serverURL + "/Monolith/api", client: &http.Client{Transport: tr, Timeout: time.Minute},
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(k.Access+":"+k.Secret)),
	}
	// loginUserAccessKey: is_session_login(auth headers), no cookies yet.
	resp, loggedIn := p.isSessionLogin(true)
	if !loggedIn {
		t.Fatal("python sdk: User could not successfully login")
	}
	p.cookies = resp.Cookies()
	// set_csrf_if_enabled: GET /config with the cookies only.
	var cfg map[string]any
	p.getJSON("/config", false, &cfg)
	if cfg["csrf"] != false {
		t.Fatalf("python sdk: csrf = %v, want false", cfg["csrf"])
	}
	// make_new_insight: META | true with insightId=new.
	out := p.runPixelWith("META | true", "new")
	p.insight = out.InsightID
	if p.insight == "" {
		t.Fatal("python sdk: no insightID for META | true")
	}
	return p
}

func (p *pythonSDK) do(method, path string, form url.Values, withAuth bool) (*http.Response, []byte) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, p.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	}
	if withAuth {
		req.Header.Set("Authorization", p.auth)
	}
	for _, c := range p.cookies {
		req.AddCookie(c)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("python sdk: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (p *pythonSDK) getJSON(path string, withAuth bool, out any) {
	p.t.Helper()
	resp, b := p.do(http.MethodGet, path, nil, withAuth)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, out) != nil {
		p.t.Fatalf("python sdk: GET %s: %d %s", path, resp.StatusCode, b)
	}
}

// isSessionLogin is ServerClient.is_session_login: GET /config, logged in
// when loginDetails is truthy.
func (p *pythonSDK) isSessionLogin(withAuth bool) (*http.Response, bool) {
	p.t.Helper()
	resp, b := p.do(http.MethodGet, "/config", nil, withAuth)
	var cfg struct {
		LoginDetails map[string]any `json:"loginDetails"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &cfg) != nil {
		return resp, false
	}
	return resp, len(cfg.LoginDetails) > 0
}

// runPixelWith is ServerClient.run_pixel (full_response=True).
func (p *pythonSDK) runPixelWith(expr, insight string) semoss.PixelResponse {
	p.t.Helper()
	if _, ok := p.isSessionLogin(false); !ok {
		p.t.Fatal("python sdk: Please login")
	}
	resp, b := p.do(http.MethodPost, "/engine/runPixel", url.Values{"expression": {expr}, "insightId": {insight}}, true)
	var out semoss.PixelResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || len(out.PixelReturn) == 0 {
		p.t.Fatalf("python sdk: runPixel: %d %s", resp.StatusCode, b)
	}
	if slices.Contains(out.PixelReturn[0].OperationType, "ERROR") {
		p.t.Fatalf("python sdk: runPixel raised: %v", out.PixelReturn[0].Output)
	}
	return out
}

// llmPixel builds the pixel of ModelEngine.ask and stream_ask.
func llmPixel(engine, question string, params map[string]any) string {
	opt := ""
	if params != nil {
		b, _ := json.Marshal(params)
		opt = ",paramValues=[" + string(b) + "]"
	}
	return fmt.Sprintf(`LLM(engine="%s", command="<encode>%s</encode>", useHistory=true%s);`, engine, question, opt)
}

// ask is ModelEngine.ask: pixelReturn[0].output.
func (p *pythonSDK) ask(question string, params map[string]any) semoss.LLMOutput {
	p.t.Helper()
	out := p.runPixelWith(llmPixel("sim", question, params), p.insight)
	return outputOf[semoss.LLMOutput](p.t, out.PixelReturn[0])
}

// streamAsk is ModelEngine.stream_ask: runPixelAsync, then
// get_partial_responses, which posts to /engine/partial in a loop without
// sleeping and yields each non-empty "new".
func (p *pythonSDK) streamAsk(question string, params map[string]any) (jobID string, parts []string) {
	p.t.Helper()
	if _, ok := p.isSessionLogin(false); !ok {
		p.t.Fatal("python sdk: Please login")
	}
	resp, b := p.do(http.MethodPost, "/engine/runPixelAsync", url.Values{"expression": {llmPixel("sim", question, params)}, "insightId": {p.insight}}, true)
	var job struct {
		JobID string `json:"jobId"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &job) != nil || job.JobID == "" {
		p.t.Fatalf("python sdk: runPixelAsync: %d %s", resp.StatusCode, b)
	}
	started := false
	for {
		p.partialCalls++
		resp, b := p.do(http.MethodPost, "/engine/partial", url.Values{"jobId": {job.JobID}}, true)
		var r struct {
			Status  string         `json:"status"`
			Message map[string]any `json:"message"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
			p.t.Fatalf("python sdk: partial: %d %s", resp.StatusCode, b)
		}
		newChunk, _ := r.Message["new"].(string)
		switch {
		case newChunk != "":
			started = true
			parts = append(parts, newChunk)
		case started && slices.Contains([]string{"ProgressComplete", "Complete", "Error", "UnknownJob", "Canceled"}, r.Status):
			return job.JobID, parts
		case slices.Contains([]string{"Error", "UnknownJob", "Canceled"}, r.Status):
			p.t.Fatalf("python sdk: Stream failed or canceled. Status: %s", r.Status)
		}
	}
}

// outputOf decodes a pixelReturn entry's output as T.
func outputOf[T any](t *testing.T, e semoss.PixelReturn) T {
	t.Helper()
	var v T
	b, _ := json.Marshal(e.Output)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("output %s is not a %T: %v", b, v, err)
	}
	return v
}

// text concatenates the content deltas of a stream.
func text(msgs []semoss.StreamMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		if m.StreamType != "content" {
			continue
		}
		var d struct {
			Content string `json:"content"`
		}
		_ = json.Unmarshal(m.Data, &d)
		b.WriteString(d.Content)
	}
	return b.String()
}

// keys returns the stream's chunks as comparable strings.
func keys(msgs []semoss.StreamMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.StreamType + " " + string(m.Data)
	}
	return out
}
