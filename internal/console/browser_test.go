package console_test

// The console's end-to-end tests: a real jobstream server (server.Run, in
// process, on real PostgreSQL, with the sim engine) and Debian's Chromium,
// driven with chromedp. One server and one browser serve every test; each
// test opens its own tab in a browser context of its own (cookies and
// localStorage are not shared) and logs in with an API key of its own
// tenant, so the tests run in parallel without seeing each other's jobs.
//
// Nothing here sleeps: the tests wait on the page's state with chromedp
// polls (in-page predicates) and on the server with its own long-polls.
//
// Environment:
//
//	JOBSTREAM_CHROMIUM        the browser binary (default: chromium on PATH)
//	JOBSTREAM_SCREENSHOTS     where each test writes <TestName>.png
//	                          (default: a new temporary directory, logged)
//	JOBSTREAM_REQUIRE_CHROMIUM set to 1 (.ci/run does) to fail, not
//	                          skip, where there is no Chromium
//	JOBSTREAM_CONSOLE_README  set to 1 to rewrite docs/console.png, the
//	                          README's picture of the console mid-stream

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	jsauth "github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// testTimeout bounds one browser test: a safety net, never a wait.
const testTimeout = 90 * time.Second

// A running jobstream server.
type jobstream struct {
	base  string // http://127.0.0.1:port
	store *store.Store
	stop  func()
}

var (
	shared struct {
		sync.Mutex
		server   *jobstream
		browser  context.Context
		stopAll  []func()
		shotsDir string
	}
	browserOnce sync.Once
	browserErr  error
	chromePath  string
)

// shutdown stops what the tests shared (TestMain calls it after the tests).
func shutdown() {
	shared.Lock()
	defer shared.Unlock()
	for i := len(shared.stopAll) - 1; i >= 0; i-- {
		shared.stopAll[i]()
	}
	shared.stopAll = nil
}

func engines() *engine.Registry {
	r := engine.NewRegistry()
	r.Register(sim.Info(), sim.New())
	r.Register(engine.Info{ID: "sim2", Provider: "sim", Model: "second simulator"}, sim.New())
	r.Register(engine.Info{ID: "thinker", Provider: "sim", Model: "thinks first"}, thinker{})
	return r
}

// thinker is the simulator with a few thinking deltas before its answer
// (the sim engine itself never thinks).
type thinker struct{}

// thoughts are what thinker thinks, one delta each.
var thoughts = []string{"The user ", "wants a ", "short answer; ", "keep it simple."}

func (thinker) Stream(ctx context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	for _, th := range thoughts {
		if err := emit(engine.Thinking(th)); err != nil {
			return engine.Finish{}, err
		}
	}
	return sim.New().Stream(ctx, req, emit)
}

// sharedServer returns the server the tests share (API keys required, as
// in production), started on first use on the package's database.
func sharedServer(t *testing.T) *jobstream {
	t.Helper()
	browser(t) // skips first where there is no browser
	shared.Lock()
	defer shared.Unlock()
	if shared.server == nil {
		shared.server = startServer(t, dbtest.URL(t))
		shared.stopAll = append(shared.stopAll, shared.server.stop)
	}
	return shared.server
}

// ownServer starts a server with extra serve flags (--dev, --csrf) for
// one test, on a database of its own: a worker runs every job of its
// database.
func ownServer(t *testing.T, flags ...string) *jobstream {
	t.Helper()
	browser(t)
	s := startServer(t, testserver.Database(t), flags...)
	t.Cleanup(s.stop)
	return s
}

// startServer runs `jobstream serve` in process (server.Run) on url with
// the sim engines, and returns once it listens.
func startServer(t *testing.T, url string, flags ...string) *jobstream {
	t.Helper()
	args := append([]string{"--addr", "127.0.0.1:0", "--max-conns", "6", "--worker-conns", "3"}, flags...)
	var cfg config.Serve
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Flags(fs, func(string) string { return "" })
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = url
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, cfg, server.Deps{
			Engines:   engines(),
			Getenv:    func(string) string { return "" },
			Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Listening: func(a net.Addr) { addr <- a },
		})
	}()
	var a net.Addr
	timeout := time.NewTimer(testserver.Timeout)
	defer timeout.Stop()
	select {
	case a = <-addr:
	case err := <-done:
		cancel()
		t.Fatalf("server.Run: %v", err)
	case <-timeout.C:
		cancel()
		<-done
		t.Fatalf("the server did not listen within %s", testserver.Timeout)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	return &jobstream{base: "http://" + a.String(), store: store.New(pool), stop: func() {
		cancel()
		<-done
		pool.Close()
	}}
}

// key makes an API key with a tenant of its own, and a client using it.
func (s *jobstream) key(t *testing.T) (access, secret string, c *client.Client) {
	t.Helper()
	k, secret, err := jsauth.CreateKey(context.Background(), s.store, t.Name(), "")
	if err != nil {
		t.Fatal(err)
	}
	return k.AccessKey, secret, &client.Client{BaseURL: s.base, AccessKey: k.AccessKey, SecretKey: secret}
}

// findChromium is the browser to test with, or "" when there is none.
func findChromium() string {
	if p := os.Getenv("JOBSTREAM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser returns the shared browser, started on first use, or skips the
// test when there is no Chromium on this machine (CI installs it: .ci/run).
func browser(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		chromePath = findChromium()
		if chromePath == "" {
			return
		}
		dir, err := os.MkdirTemp("", "jobstream-console-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		// The machines have no internet: without these flags Chromium
		// keeps trying to reach it.
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromePath),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1100, 820),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelBrowser := chromedp.NewContext(allocCtx)
		if err := chromedp.Do(ctx); err != nil { // starts the browser
			cancelBrowser()
			cancelAlloc()
			browserErr = fmt.Errorf("start %s: %w", chromePath, err)
			return
		}
		shared.Lock()
		shared.browser = ctx
		shared.stopAll = append(shared.stopAll, func() {
			cancelBrowser()
			cancelAlloc()
			os.RemoveAll(dir)
		})
		shared.Unlock()
	})
	if chromePath == "" && os.Getenv("JOBSTREAM_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no Chromium on this machine, and JOBSTREAM_REQUIRE_CHROMIUM=1 (CI) requires it: apt-get install chromium")
	}
	if chromePath == "" {
		t.Skip("no Chromium on this machine (set JOBSTREAM_CHROMIUM, or apt-get install chromium; .ci/run installs it): skipping the browser tests")
	}
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return shared.browser
}

// page is one test's tab.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	// problems are script errors and console errors (CSP violations
	// among them): any fails the test.
	mu       sync.Mutex
	problems []string
}

// newPage opens a tab in a fresh browser context (its own cookies and
// storage) on server s.
func newPage(t *testing.T, s *jobstream) *page {
	t.Helper()
	b := browser(t)
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	p := &page{t: t, ctx: ctx, base: s.base}
	if err := chromedp.Listen(ctx, p.onEvent); err != nil {
		cancel()
		t.Fatal(err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, testTimeout)
	p.ctx = tctx
	t.Cleanup(func() {
		p.mu.Lock()
		for _, msg := range p.problems {
			t.Errorf("browser: %s", msg)
		}
		p.mu.Unlock()
		cancelTimeout()
		cancel()
	})
	return p
}

func (p *page) onEvent(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "uncaught exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		// A 4xx the test provoked is the browser's network log, not a
		// fault of the page.
		if ev.Entry.Source == log.EntrySourceNetwork {
			return
		}
		msg = fmt.Sprintf("console %s: %s", ev.Entry.Source, ev.Entry.Text)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		msg = "console.error called"
	default:
		return
	}
	p.mu.Lock()
	p.problems = append(p.problems, msg)
	p.mu.Unlock()
}

// do runs actions, failing the test (with a screenshot) on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.failShot()
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.failShot()
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript predicate holds in the page.
func (p *page) waitJS(what, predicate string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingTimeout(testTimeout), chromedp.WithPollingMutation())); err != nil {
		p.failShot()
		p.t.Fatalf("waiting for %s (%s): %v", what, predicate, err)
	}
}

// set sets a form control's value, as typing or choosing would (with its
// input and change events).
func (p *page) set(id, value string) {
	p.t.Helper()
	js, _ := json.Marshal(value)
	eval[bool](p, fmt.Sprintf(`(() => {
		const el = document.getElementById(%q);
		el.value = %s;
		if (el.value !== %s) throw new Error('cannot set #' + el.id + ' to ' + %s);
		el.dispatchEvent(new Event('input', { bubbles: true }));
		el.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`, id, js, js, js))
}

func (p *page) text(id string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf("document.getElementById(%q).textContent", id))
}

// screenshotDir is where the screenshots go: JOBSTREAM_SCREENSHOTS, else a
// temporary directory made once per run (and kept: it is the artifact).
func screenshotDir(t *testing.T) string {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.shotsDir == "" {
		dir := os.Getenv("JOBSTREAM_SCREENSHOTS")
		if dir == "" {
			d, err := os.MkdirTemp("", "jobstream-console-screenshots-")
			if err != nil {
				t.Fatal(err)
			}
			dir = d
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		shared.shotsDir = dir
	}
	return shared.shotsDir
}

// shot saves a screenshot of the tab as <dir>/<TestName>[-suffix].png.
func (p *page) shot(suffix string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Errorf("screenshot: %v", err)
		return ""
	}
	name := strings.NewReplacer("/", "-", " ", "_").Replace(p.t.Name())
	if suffix != "" {
		name += "-" + suffix
	}
	path := filepath.Join(screenshotDir(p.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Errorf("screenshot: %v", err)
		return ""
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

func (p *page) failShot() {
	if p.ctx.Err() == nil {
		p.shot("failure")
	}
}

// open loads the console at fragment (e.g. "#/history") in a new
// document and waits for it to start. On a tab that shows the console
// already, a navigation to another fragment would stay in the same
// document, which is ready already (and shows the old page): the tab goes
// through about:blank first, so that the wait sees the new document.
func (p *page) open(fragment string) {
	p.t.Helper()
	p.do("open the console", chromedp.Navigate("about:blank"), chromedp.Navigate(p.base+"/"+fragment))
	p.waitJS("the console to start", `document.body.dataset.ready === 'true' || !document.getElementById('notice').hidden`)
}

// login logs in through the form with an access key and secret.
func (p *page) login(access, secret string) {
	p.t.Helper()
	p.waitJS("the login form", `!document.getElementById('view-login').hidden`)
	p.set("access-key", access)
	p.set("secret-key", secret)
	p.do("log in", chromedp.Click(chromedp.ID("login-submit")))
}

// loggedIn opens a tab on s logged in with a new key of its own tenant,
// and returns it with an API client using the same key.
func loggedIn(t *testing.T, s *jobstream) (*page, *client.Client) {
	t.Helper()
	access, secret, c := s.key(t)
	p := newPage(t, s)
	p.open("")
	p.login(access, secret)
	return p, c
}

// submit fills the submit form and sends it; it returns the new job's id
// once the job page shows it (a new id: the job page keeps the last job's
// id while other pages show).
func (p *page) submit(prompt, params string) uuid.UUID {
	p.t.Helper()
	p.waitJS("the submit form", `!document.getElementById('view-submit').hidden && document.getElementById('engine').options.length > 0`)
	prev := eval[string](p, `document.getElementById('view-job').dataset.job || ''`)
	p.set("prompt", prompt)
	p.set("params", params)
	p.do("submit", chromedp.Click(chromedp.ID("submit")))
	p.waitJS("the new job's page", fmt.Sprintf(`!document.getElementById('view-job').hidden && (document.getElementById('view-job').dataset.job || '').length === 36 && document.getElementById('view-job').dataset.job !== %q`, prev))
	id, err := uuid.Parse(eval[string](p, `document.getElementById('view-job').dataset.job`))
	if err != nil {
		p.t.Fatal(err)
	}
	return id
}

// setTransport picks a transport in the header's selector.
func (p *page) setTransport(kind string) {
	p.t.Helper()
	p.set("transport", kind)
}

// observeContent records the content's length at every change, in
// window.__lengths.
func (p *page) observeContent() {
	p.t.Helper()
	eval[bool](p, `(() => {
		const el = document.getElementById('content');
		window.__lengths = [el.textContent.length];
		window.__observer = new MutationObserver(() => window.__lengths.push(el.textContent.length));
		window.__observer.observe(el, { childList: true, characterData: true, subtree: true });
		return true;
	})()`)
}

// hold pauses the tab's requests whose URL matches pattern (Fetch's
// wildcards: * is any run of characters) from now on, and delivers each
// one on the channel as it is paused; release lets one go on. A test uses
// it to make an answer arrive late, after a step of its choosing.
func (p *page) hold(pattern string) <-chan *fetch.EventRequestPaused {
	p.t.Helper()
	held := make(chan *fetch.EventRequestPaused, 64)
	if err := chromedp.Listen(p.ctx, func(ev any) {
		if ev, ok := ev.(*fetch.EventRequestPaused); ok {
			select {
			case held <- ev:
			default: // more than a test holds; the test times out on what it misses
			}
		}
	}); err != nil {
		p.t.Fatal(err)
	}
	if _, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}}); err != nil {
		p.t.Fatalf("hold %s: %v", pattern, err)
	}
	return held
}

// nextHeld waits for the next request that hold paused.
func (p *page) nextHeld(what string, held <-chan *fetch.EventRequestPaused) *fetch.EventRequestPaused {
	p.t.Helper()
	select {
	case ev := <-held:
		return ev
	case <-p.ctx.Done():
		p.t.Fatalf("waiting for %s to be sent: %v", what, p.ctx.Err())
		return nil
	}
}

// release lets a held request go on to the server.
func (p *page) release(ev *fetch.EventRequestPaused) {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID}); err != nil {
		p.t.Fatalf("release %s: %v", ev.Request.URL, err)
	}
}

// waitEnded waits until the job page has read the whole job.
func (p *page) waitEnded() {
	p.t.Helper()
	p.waitJS("the stream to end", `['ended', 'error'].includes(document.getElementById('view-job').dataset.stream)`)
	if s := eval[string](p, `document.getElementById('view-job').dataset.stream`); s != "ended" {
		p.failShot()
		p.t.Fatalf("the job page ended in state %q: %s", s, p.text("job-error"))
	}
}

// waitDone waits for a job to finish, through the API.
func waitDone(t *testing.T, c *client.Client, id uuid.UUID) jobsapi.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := c.Follow(ctx, id, 0, func(store.Chunk) error { return nil }); err != nil {
		t.Fatalf("follow job %s: %v", id, err)
	}
	j, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func transcript(t *testing.T, c *client.Client, id uuid.UUID) jobsapi.TranscriptResponse {
	t.Helper()
	tr, err := c.Transcript(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func params(kv map[string]any) string {
	b, _ := json.Marshal(kv)
	return string(b)
}

var errNoCall = errors.New("no tool call in the transcript")

// toolArguments is the assembled arguments of a transcript's first call.
func toolArguments(tr jobsapi.TranscriptResponse) (name, args string, err error) {
	var calls []struct {
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal(tr.ToolCalls, &calls); err != nil {
		return "", "", err
	}
	if len(calls) == 0 {
		return "", "", errNoCall
	}
	return calls[0].Function.Name, calls[0].Function.Arguments, nil
}

func clientChunks(offset int) client.ChunksParams { return client.ChunksParams{Offset: offset} }

// emulateDark makes the tab prefer a dark colour scheme.
func emulateDark(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	})
	return err
}

// getStatus is the status of a GET with c's key.
func getStatus(t *testing.T, c *client.Client, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(c.AccessKey, c.SecretKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
