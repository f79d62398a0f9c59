package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/jobsapi"
)

// readmeShot is the README's picture of the console mid-stream, rewritten
// when JOBSTREAM_CONSOLE_README=1.
const readmeShot = "docs/console.png"

// TestSubmitStreams: a prompt submitted in the form streams into the page:
// the text is seen at several lengths between empty and final, and it ends
// equal to the server's transcript, with the status, finish reason, usage
// and timings shown.
func TestSubmitStreams(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, sharedServer(t))
	id := p.submit("Why do front ends poll for LLM output?", params(map[string]any{"sim_tokens": 80, "sim_tokens_per_second": 25}))
	p.observeContent()
	// Mid-stream: some text, not all of it.
	p.waitJS("text to arrive", `document.getElementById('content').textContent.length > 40 && document.getElementById('view-job').dataset.stream === 'reading'`)
	if os.Getenv("JOBSTREAM_CONSOLE_README") == "1" {
		p.do("a README-sized window", chromedp.EmulateViewport(980, 560))
		p.waitJS("more text", `document.getElementById('content').textContent.length > 180`)
		png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(readmeShot), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(readmeShot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(readmeShot)
		t.Logf("README screenshot: %s", abs)
	}
	p.shot("midstream")
	p.waitEnded()
	lengths := eval[[]int](p, `window.__lengths`)
	final := len([]rune(p.text("content")))
	tr := transcript(t, c, id)
	if got := p.text("content"); got != tr.Content {
		t.Errorf("the page shows %q, the transcript is %q", got, tr.Content)
	}
	var mid []int
	for i, n := range lengths {
		if i > 0 && n < lengths[i-1] {
			t.Errorf("the text shrank: lengths %v", lengths)
		}
		if n > 0 && n < final && !slices.Contains(mid, n) {
			mid = append(mid, n)
		}
	}
	if len(mid) < 3 {
		t.Errorf("saw %d distinct intermediate lengths (%v of final %d), want at least 3", len(mid), lengths, final)
	}
	if st := p.text("job-status"); st != "completed" {
		t.Errorf("status %q, want completed", st)
	}
	if fr := p.text("job-finish"); fr != "stop" {
		t.Errorf("finish reason %q, want stop", fr)
	}
	if u := p.text("job-usage"); !strings.HasSuffix(u, "/ 80") {
		t.Errorf("usage %q, want .. / 80", u)
	}
	for _, id := range []string{"job-ttft", "job-tps"} {
		if v := p.text(id); v == "–" || v == "" {
			t.Errorf("#%s shows nothing", id)
		}
	}
	p.waitJS("the transcript", `document.getElementById('view-job').dataset.extras === 'loaded'`)
	// The verification result shows where the server has the route
	// (answers 200), and is hidden otherwise.
	verified := getStatus(t, c, "/v1/jobs/"+id.String()+"/verify") == http.StatusOK
	if shown := eval[bool](p, `!document.getElementById('verify-box').hidden`); shown != verified {
		t.Errorf("verification shown = %v, the route answers 200 = %v", shown, verified)
	}
	// So do the audit events.
	audited := getStatus(t, c, "/v1/jobs/"+id.String()+"/audit") == http.StatusOK
	if shown := eval[bool](p, `!document.getElementById('events-box').hidden`); shown != audited {
		t.Errorf("audit events shown = %v, the route answers 200 = %v", shown, audited)
	}
	if verified && !strings.Contains(p.text("verify-result"), "intact") {
		t.Errorf("verification of an intact job: %q", p.text("verify-result"))
	}
	if tx := p.text("transcript"); !strings.Contains(tx, tr.Content) {
		t.Errorf("the transcript panel lacks the transcript's content: %q", tx)
	}
	p.shot("")
}

// TestToolCall: a tool call streams in with its name and its assembled
// arguments, equal to the transcript's.
func TestToolCall(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, sharedServer(t))
	p.waitJS("the submit form", `!document.getElementById('view-submit').hidden`)
	p.do("insert the example tool", chromedp.Click(chromedp.ID("tools-example")))
	// The click's handler has run when the click returns (the browser
	// acknowledges the input once it is handled), and a form value is no
	// DOM mutation to wait for: check it once, so that a miss says so
	// rather than failing later on a job without tools.
	if !eval[bool](p, `document.getElementById('tools').value.includes('get_weather')`) {
		t.Fatal("the example tool is not in the tools field after the click")
	}
	id := p.submit("What is the weather in Lisbon?", params(map[string]any{"sim_tokens_per_second": 30}))
	p.waitJS("the tool call", `document.querySelector('#tool-calls .tool-name') && document.querySelector('#tool-calls .tool-name').textContent !== ''`)
	p.waitEnded()
	tr := transcript(t, c, id)
	name, args, err := toolArguments(tr)
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](p, `document.querySelector('#tool-calls .tool-name').textContent`); got != name || name != "get_weather" {
		t.Errorf("tool name %q, transcript %q, want get_weather", got, name)
	}
	got := eval[string](p, `document.querySelector('#tool-calls .tool-args').textContent`)
	if got != args {
		t.Errorf("tool arguments %q, transcript %q", got, args)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(got), &v); err != nil || v["city"] == nil {
		t.Errorf("assembled arguments %q: not a JSON object with city (%v)", got, err)
	}
	if n := eval[int](p, `document.querySelectorAll('#tool-calls li').length`); n != 1 {
		t.Errorf("%d tool calls shown, want 1", n)
	}
	if fr := p.text("job-finish"); fr != "tool_calls" {
		t.Errorf("finish reason %q, want tool_calls", fr)
	}
	p.shot("")
}

// TestCancel: Stop cancels the running job for real: the status turns
// cancelled, the text stops growing, and what is shown is exactly what the
// server stored.
func TestCancel(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, sharedServer(t))
	id := p.submit("A long answer, please", params(map[string]any{"sim_tokens": 2000, "sim_tokens_per_second": 25}))
	p.waitJS("text to arrive", `document.getElementById('content').textContent.length > 20`)
	p.do("stop", chromedp.Click(chromedp.ID("stop")))
	p.waitJS("the status cancelled", `document.getElementById('job-status').textContent === 'cancelled'`)
	p.waitEnded()
	p.observeContent()
	job := waitDone(t, c, id)
	if job.Status != "cancelled" || job.FinishReason != "cancelled" {
		t.Errorf("job %s %s, want cancelled", job.Status, job.FinishReason)
	}
	tr := transcript(t, c, id)
	shown := p.text("content")
	if shown != tr.Content {
		t.Errorf("the page shows %d bytes, the server stored %d", len(shown), len(tr.Content))
	}
	if n := len(strings.Fields(shown)); n >= 2000 {
		t.Errorf("the whole answer arrived (%d words): the job was not stopped", n)
	}
	// Nothing changed the text since the stream ended, and no read is
	// going on.
	if lengths := eval[[]int](p, `window.__lengths`); len(lengths) != 1 {
		t.Errorf("the text changed after the job ended: lengths %v", lengths)
	}
	if !eval[bool](p, `document.getElementById('stop').disabled`) {
		t.Error("Stop is still enabled for a cancelled job")
	}
	p.shot("")
}

// TestReloadMidStream: a page reloaded mid-stream (or opened by its URL)
// catches up from the start and follows to the end, with nothing missing
// and nothing twice, over each transport.
func TestReloadMidStream(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	for _, kind := range []string{"sse", "longpoll", "semoss"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p, c := loggedIn(t, s)
			p.setTransport(kind)
			id := p.submit("Reload me", params(map[string]any{"sim_tokens": 120, "sim_tokens_per_second": 30}))
			p.waitJS("text to arrive", `document.getElementById('content').textContent.length > 30`)
			before := p.text("content")
			// The page before the reload is ready and shows this job
			// too: mark it, so that the wait below sees the new one.
			eval[bool](p, `(document.body.dataset.ready = 'stale', true)`)
			p.do("reload", chromedp.Reload())
			p.waitJS("the job page", `document.body.dataset.ready === 'true' && document.getElementById('view-job').dataset.job === '`+id.String()+`'`)
			if got := p.text("job-transport"); !strings.Contains(strings.ToLower(got), map[string]string{"sse": "sse", "longpoll": "long-poll", "semoss": "semoss"}[kind]) {
				t.Errorf("after the reload the page reads with %q, want the chosen %s", got, kind)
			}
			p.waitEnded()
			tr := transcript(t, c, id)
			got := p.text("content")
			if got != tr.Content {
				t.Errorf("after the reload the page shows\n%q\nthe transcript is\n%q", got, tr.Content)
			}
			if !strings.HasPrefix(got, before) || len(before) >= len(got) {
				t.Errorf("reloaded at %d bytes of %d: not mid-stream", len(before), len(got))
			}
			if n := eval[int](p, `Number(document.getElementById('job-chunks').textContent)`); n != 122 {
				// 120 tokens, usage, finish
				t.Errorf("the page read %d chunks, want 122", n)
			}
			// The one thing kept in localStorage is the transport.
			keys := eval[[]string](p, `Object.keys(localStorage)`)
			if len(keys) != 1 || keys[0] != "jobstream.transport" {
				t.Errorf("localStorage holds %v, want only jobstream.transport", keys)
			}
			p.shot("")
		})
	}
}

// TestHistory: the history page lists the key's jobs, filters them by
// engine, status and time range, pages through them, and opens one, which
// replays in full (and from an offset).
func TestHistory(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	access, secret, c := s.key(t)
	ctx := context.Background()
	submit := func(engine string, p map[string]any) uuid.UUID {
		raw := map[string]json.RawMessage{}
		for k, v := range p {
			b, _ := json.Marshal(v)
			raw[k] = b
		}
		j, err := c.Submit(ctx, jobsapi.CreateJobRequest{Engine: engine, Command: "history " + engine, Params: raw})
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, c, j.ID)
		return j.ID
	}
	fast := map[string]any{"sim_tokens": 8, "sim_tokens_per_second": 0}
	a := submit("sim", fast)
	b := submit("sim2", fast)
	f := submit("sim", map[string]any{"sim_tokens": 8, "sim_fail_after": 3, "sim_tokens_per_second": 0})

	p := newPage(t, s)
	p.open("#/history")
	p.login(access, secret)
	rows := func(what string, want ...uuid.UUID) {
		t.Helper()
		p.waitJS("the list", `document.getElementById('history-table').dataset.state === 'loaded'`)
		got := eval[[]string](p, `[...document.querySelectorAll('#history-rows tr')].map(r => r.dataset.job)`)
		var ws []string
		for _, id := range want {
			ws = append(ws, id.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(ws) {
			p.failShot()
			t.Fatalf("%s: rows %v, want %v", what, got, ws)
		}
		if empty := !eval[bool](p, `document.getElementById('history-empty').hidden`); empty != (len(want) == 0) {
			t.Errorf("%s: the 'no jobs' note shown = %v with %d rows", what, empty, len(want))
		}
	}
	// reload runs an action that loads a new list, having first marked
	// the current one stale so that the next rows() waits for the new
	// list rather than reading the old one.
	reload := func(what string, action chromedp.Action[chromedp.Void]) {
		t.Helper()
		eval[bool](p, `(document.getElementById('history-table').dataset.state = 'stale', true)`)
		p.do(what, action)
	}
	apply := func(what string, set map[string]string) {
		t.Helper()
		for id, v := range set {
			p.set(id, v)
		}
		reload(what, chromedp.Click(chromedp.ID("f-apply")))
	}
	rows("all", f, b, a)
	apply("engine sim2", map[string]string{"f-engine": "sim2"})
	rows("engine sim2", b)
	apply("failed", map[string]string{"f-engine": "", "f-status": "failed"})
	rows("status failed", f)
	if got := eval[string](p, `document.querySelector('#history-rows .badge').textContent`); got != "failed" {
		t.Errorf("status badge %q, want failed", got)
	}
	apply("time range in the future", map[string]string{"f-status": "", "f-since": "2999-01-01T00:00"})
	rows("since 2999")
	apply("time range in the past", map[string]string{"f-since": "", "f-until": "2000-01-01T00:00"})
	rows("until 2000")
	apply("time range around now", map[string]string{"f-since": "2000-01-01T00:00", "f-until": "2999-01-01T00:00"})
	rows("2000 to 2999", f, b, a)
	p.shot("filtered")

	// Paging, two at a time (a page size given in the URL).
	reload("page size 2", chromedp.Navigate(p.base+"/#/history?limit=2"))
	rows("page 1", f, b)
	reload("older", chromedp.Click(chromedp.ID("history-older")))
	rows("page 2", a)
	if !eval[bool](p, `document.getElementById('history-older').disabled`) {
		t.Error("Older is enabled on the last page")
	}
	reload("newer", chromedp.Click(chromedp.ID("history-newer")))
	rows("page 1 again", f, b)

	// Open b: it replays in full.
	p.do("open a job", chromedp.Click(chromedp.CSS(`#history-rows tr[data-job="`+b.String()+`"] a`)))
	p.waitJS("the job page", `document.getElementById('view-job').dataset.job === '`+b.String()+`'`)
	p.waitEnded()
	tr := transcript(t, c, b)
	if got := p.text("content"); got != tr.Content {
		t.Errorf("replay shows %q, transcript %q", got, tr.Content)
	}
	if got := p.text("job-engine"); got != "sim2" {
		t.Errorf("engine %q, want sim2", got)
	}
	// Replay from offset 3: the first three tokens are left out.
	part, err := c.Chunks(ctx, b, clientChunks(3))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, ch := range part.Chunks {
		var d struct {
			Content string `json:"content"`
		}
		if ch.StreamType == "content" && json.Unmarshal(ch.Data, &d) == nil {
			want.WriteString(d.Content)
		}
	}
	p.set("replay-offset", "3")
	p.do("replay from 3", chromedp.Click(chromedp.CSS("#replay-form button")))
	p.waitJS("the replay", `document.getElementById('view-job').dataset.from === '3' && document.getElementById('view-job').dataset.stream === 'ended'`)
	if got := p.text("content"); got != want.String() || got == tr.Content {
		t.Errorf("replay from offset 3 shows %q, want %q", got, want.String())
	}
	p.shot("")
}

// TestLogin: the console asks for keys; a wrong secret is refused with a
// clear message, the right one logs in, and logging out ends the session
// (the API then refuses the browser).
func TestLogin(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	access, secret, _ := s.key(t)
	p := newPage(t, s)
	p.open("")
	p.login(access, secret+"x")
	p.waitJS("the error", `!document.getElementById('login-error').hidden`)
	msg := p.text("login-error")
	if !strings.Contains(msg, "Wrong access key or secret key") {
		t.Errorf("wrong secret: message %q", msg)
	}
	if !eval[bool](p, `!document.getElementById('view-login').hidden && document.getElementById('view-submit').hidden`) {
		t.Error("a wrong secret got past the login form")
	}
	p.shot("wrong-secret")
	p.login(access, secret)
	p.waitJS("the submit page", `!document.getElementById('view-submit').hidden`)
	if who := p.text("whoami"); !strings.Contains(who, t.Name()) {
		t.Errorf("signed in as %q, want the key's name %s", who, t.Name())
	}
	if st := eval[int](p, `fetch('/v1/jobs').then(r => r.status)`); st != 200 {
		t.Errorf("GET /v1/jobs with the session: %d", st)
	}
	if eval[bool](p, `document.cookie.includes('JSESSIONID')`) {
		t.Error("the session cookie is visible to scripts")
	}
	p.shot("")
	p.do("log out", chromedp.Click(chromedp.ID("logout")))
	p.waitJS("the login form", `!document.getElementById('view-login').hidden && document.getElementById('notice').textContent === 'Logged out.'`)
	if st := eval[int](p, `fetch('/v1/jobs').then(r => r.status)`); st != 401 {
		t.Errorf("GET /v1/jobs after logout: %d, want 401", st)
	}
	// Without --dev there is no anonymous way in.
	p.do("continue without keys", chromedp.Click(chromedp.ID("login-anonymous")))
	p.waitJS("the refusal", `document.getElementById('login-error').textContent.includes('needs an API key')`)
	p.shot("logged-out")
}

// TestDevAnonymous: in --dev the console lets an anonymous browser in,
// submits with the keyboard alone, and logging out offers the way back in.
// It also checks the page on a narrow screen in dark mode.
func TestDevAnonymous(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--dev")
	p := newPage(t, s)
	p.open("")
	p.waitJS("the submit page", `!document.getElementById('view-submit').hidden && document.getElementById('engine').options.length === 3`)
	if who := p.text("whoami"); !strings.Contains(who, "anonymous") {
		t.Errorf("signed in as %q, want anonymous", who)
	}
	// Keyboard only: type the prompt, Ctrl+Enter submits.
	p.set("params", `{"sim_tokens": 30, "sim_tokens_per_second": 40}`)
	p.do("type a prompt",
		chromedp.Focus(chromedp.ID("prompt")),
		chromedp.KeyEvent("Hello from the keyboard"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	p.waitJS("the job page", `!document.getElementById('view-job').hidden`)
	p.waitEnded()
	if st := p.text("job-status"); st != "completed" {
		t.Errorf("status %q", st)
	}
	// Narrow and dark: nothing wider than the screen, dark background.
	p.do("narrow dark screen",
		chromedp.EmulateViewport(390, 844),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			return emulateDark(ctx, tg)
		}),
	)
	if w := eval[int](p, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("the job page is %d px wider than a 390 px screen", w)
	}
	if bg := eval[string](p, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(17, 20, 24)" {
		t.Errorf("dark mode background %q", bg)
	}
	p.shot("narrow-dark")
	p.do("log out", chromedp.Click(chromedp.ID("logout")))
	p.waitJS("the login form", `!document.getElementById('view-login').hidden`)
	p.do("continue without keys", chromedp.Click(chromedp.ID("login-anonymous")))
	p.waitJS("the submit page", `!document.getElementById('view-submit').hidden`)
	if w := eval[int](p, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("the submit page is %d px wider than a 390 px screen", w)
	}
	p.shot("")
}

// TestCSRF: with --csrf the console sends the session's CSRF token, so
// the SEMOSS transport's cookie-authenticated POSTs, and its logout, are
// accepted; without the token they are refused.
func TestCSRF(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, ownServer(t, "--csrf"))
	p.setTransport("semoss")
	id := p.submit("Protected", params(map[string]any{"sim_tokens": 20, "sim_tokens_per_second": 40}))
	p.waitEnded()
	if got, want := p.text("content"), transcript(t, c, id).Content; got != want {
		t.Errorf("the page shows %q, the transcript is %q", got, want)
	}
	// The same POST without the token is refused: the token is what
	// made it through.
	st := eval[int](p, `fetch('/Monolith/api/engine/pixelJobStreaming', {method: 'POST', body: new URLSearchParams({jobId: '`+id.String()+`', offset: '0', wait: '0'})}).then(r => r.status)`)
	if st != 403 {
		t.Errorf("pixelJobStreaming without the CSRF token: %d, want 403", st)
	}
	// So are the native API's: a cookie alone cannot submit or cancel.
	for _, path := range []string{"/v1/jobs", "/v1/jobs/" + id.String() + "/cancel"} {
		st := eval[int](p, `fetch('`+path+`', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"command":"forged"}'}).then(r => r.status)`)
		if st != 403 {
			t.Errorf("POST %s without the CSRF token: %d, want 403", path, st)
		}
	}
	// So is a logout (a cross-site page's form could send that one): the
	// session lives on.
	if st := eval[int](p, `fetch('/Monolith/api/logout/all', {method: 'POST'}).then(r => r.status)`); st != 403 {
		t.Errorf("logout without the CSRF token: %d, want 403", st)
	}
	if st := eval[int](p, `fetch('/v1/jobs').then(r => r.status)`); st != 200 {
		t.Errorf("GET /v1/jobs after a refused logout: %d, want 200", st)
	}
	p.shot("")
	// The console's own logout sends the token.
	p.do("log out", chromedp.Click(chromedp.ID("logout")))
	p.waitJS("the login form", `!document.getElementById('view-login').hidden && document.getElementById('notice').textContent === 'Logged out.'`)
	if st := eval[int](p, `fetch('/v1/jobs').then(r => r.status)`); st != 401 {
		t.Errorf("GET /v1/jobs after logout: %d, want 401", st)
	}
}

// TestThinking: thinking deltas show in their own collapsible panel, open
// while the job streams, and close and reopen from the keyboard.
func TestThinking(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, sharedServer(t))
	p.waitJS("the engines", `[...document.getElementById('engine').options].some(o => o.value === 'thinker')`)
	p.set("engine", "thinker")
	id := p.submit("Think first", params(map[string]any{"sim_tokens": 20, "sim_tokens_per_second": 40}))
	p.waitEnded()
	tr := transcript(t, c, id)
	if want := strings.Join(thoughts, ""); tr.Thinking != want {
		t.Fatalf("transcript thinking %q, want %q", tr.Thinking, want)
	}
	if got := p.text("thinking"); got != tr.Thinking {
		t.Errorf("thinking shown %q, transcript %q", got, tr.Thinking)
	}
	if got := p.text("content"); got != tr.Content {
		t.Errorf("content shown %q, transcript %q", got, tr.Content)
	}
	if !eval[bool](p, `document.getElementById('thinking-box').open`) {
		t.Error("the thinking panel is closed")
	}
	p.do("collapse with the keyboard",
		chromedp.Focus(chromedp.CSS("#thinking-box summary")),
		chromedp.KeyEvent(" "),
	)
	p.waitJS("the panel to close", `!document.getElementById('thinking-box').open`)
	p.shot("")
}

// finishedJob submits a short job through the API and waits for its end.
func finishedJob(t *testing.T, c *client.Client, command string) uuid.UUID {
	t.Helper()
	j, err := c.Submit(context.Background(), jobsapi.CreateJobRequest{Engine: "sim", Command: command,
		Params: map[string]json.RawMessage{"sim_tokens": json.RawMessage("8"), "sim_tokens_per_second": json.RawMessage("0")}})
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, j.ID)
	return j.ID
}

// TestLeftPageExtras: a job page left while its transcript is still on
// its way (here, for a replay from an offset) does not mark the newer
// page's extras loaded: leaving aborts the old page's reads, which settles
// them at once, and the old page used to mark its extras loaded then, over
// the newer page, whose transcript a test (or a reader) would then find
// empty.
func TestLeftPageExtras(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, sharedServer(t))
	id := finishedJob(t, c, "left page extras")
	p.waitJS("the submit page", `!document.getElementById('view-submit').hidden`)
	held := p.hold("*/v1/jobs/*/transcript")
	p.do("open the job", chromedp.Navigate(p.base+"/#/job/"+id.String()))
	p.waitJS("the job read", `document.getElementById('view-job').dataset.job === '`+id.String()+`' && document.getElementById('view-job').dataset.stream === 'ended'`)
	p.nextHeld("the first page's transcript", held) // never released: leaving aborts it
	p.set("replay-offset", "3")
	p.do("replay from 3", chromedp.Click(chromedp.CSS("#replay-form button")))
	p.waitJS("the replay read", `document.getElementById('view-job').dataset.from === '3' && document.getElementById('view-job').dataset.stream === 'ended'`)
	replay := p.nextHeld("the replay's transcript", held)
	if got := eval[string](p, `document.getElementById('view-job').dataset.extras || ''`); got != "" {
		t.Errorf("the replay's extras are marked %q while its transcript is still on its way", got)
	}
	p.release(replay)
	p.waitJS("the replay's extras", `document.getElementById('view-job').dataset.extras === 'loaded'`)
	if shown, tr := p.text("transcript"), transcript(t, c, id); !strings.Contains(shown, tr.Content) {
		t.Errorf("extras loaded, but the transcript panel shows %q, want the transcript %q", shown, tr.Content)
	}
}

// TestStopAnswerAfterLeaving: Stop's answer arriving after the reader has
// left for another job's page does not write over that page (the cancel
// carries no signal of the page, so leaving does not abort it): neither a
// failure (a "Stop failed" note, and Stop enabled on a finished job) nor a
// status.
func TestStopAnswerAfterLeaving(t *testing.T) {
	t.Parallel()
	p, c := loggedIn(t, sharedServer(t))
	other := finishedJob(t, c, "the other job")
	held := p.hold("*/v1/jobs/*/cancel")
	id := p.submit("A long answer, to stop", params(map[string]any{"sim_tokens": 2000, "sim_tokens_per_second": 25}))
	t.Cleanup(func() {
		// The cancels below never reach the server.
		if _, err := c.Cancel(context.Background(), id); err != nil {
			t.Error(err)
		}
		waitDone(t, c, id)
	})
	stopThenLeave := func(what string, answer func(*fetch.EventRequestPaused) error) {
		t.Helper()
		p.waitJS("the long job's text", `document.getElementById('view-job').dataset.job === '`+id.String()+`' && document.getElementById('content').textContent.length > 0`)
		// Stop, as its button does, keeping the promise, which settles
		// once the page has handled the answer: the checks below need
		// that moment. (The button's handler is this same function:
		// TestCancel clicks it.)
		eval[bool](p, `import('/console/job.js').then(m => (window.__stop = m.stopJob(), true))`)
		cancel := p.nextHeld("the cancel", held)
		p.do("open another job", chromedp.Navigate(p.base+"/#/job/"+other.String()))
		p.waitJS("the other job read", `document.getElementById('view-job').dataset.job === '`+other.String()+`' && document.getElementById('view-job').dataset.stream === 'ended'`)
		if err := answer(cancel); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		eval[bool](p, `window.__stop.then(() => true)`)
		if st := p.text("job-status"); st != "completed" {
			t.Errorf("%s: the other job's page shows status %q, want its own completed", what, st)
		}
		if !eval[bool](p, `document.getElementById('job-error').hidden`) {
			t.Errorf("%s: the other job's page shows a note: %q", what, p.text("job-error"))
		}
		if !eval[bool](p, `document.getElementById('stop').disabled`) {
			t.Errorf("%s: Stop is enabled on the other, finished job's page", what)
		}
	}
	stopThenLeave("a cancel that fails", func(ev *fetch.EventRequestPaused) error {
		_, err := chromedp.Call(p.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
		return err
	})
	p.do("back to the long job", chromedp.Navigate(p.base+"/#/job/"+id.String()))
	stopThenLeave("a cancel answered 'cancelled'", func(ev *fetch.EventRequestPaused) error {
		// The server's answer for a job it cancels at once (a queued
		// one).
		body, _ := json.Marshal(map[string]string{"id": id.String(), "status": "cancelled"})
		_, err := chromedp.Call(p.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: http.StatusAccepted,
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}, Body: body})
		return err
	})
}
