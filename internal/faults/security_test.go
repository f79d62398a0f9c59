package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/jobsapi"
	jssemoss "github.com/jobstream/jobstream/internal/semoss"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestTenantIsolation: one tenant cannot read, list, cancel, tail or guess
// another's jobs (and keys are stored hashed, and revocable). For every route of both APIs (and the CLI's tail), a
// request naming another tenant's job gets exactly the answer it gets for a
// job that does not exist (404 / UnknownJob), byte for byte once the id is
// masked, and changes nothing.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := setup(t)
	a := b.serve("--dev=false")
	alice, bob := b.key("alice"), b.key("bob")
	aliceClient := b.client(a, alice)

	// Alice's jobs: finished (native), finished (SEMOSS pixel), running.
	done, err := aliceClient.Submit(ctx, jobsapi.CreateJobRequest{Command: "alice's finished job", Params: params("sim_tokens", 5, "sim_tokens_per_second", 0)})
	if err != nil {
		t.Fatal(err)
	}
	am := newMonolith(b, a, alice)
	var async map[string]string
	am.decode(t, "/engine/runPixelAsync", url.Values{"expression": {`LLM(engine="sim", command="alice's pixel", paramValues=[{"sim_tokens":3,"sim_tokens_per_second":0}])`}}, &async)
	pixelJob, err := uuid.Parse(async["jobId"])
	if err != nil {
		t.Fatalf("runPixelAsync: %v", async)
	}
	running, err := aliceClient.Submit(ctx, jobsapi.CreateJobRequest{Command: "alice's running job", Params: params("sim_tokens", 20_000, "sim_tokens_per_second", 10)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uuid.UUID{done.ID, pixelJob} {
		if r, err := (reader{hc: b.hc, urls: fixed(a.URL), key: &alice}).poll(ctx, id); err != nil || r.Status != store.StatusCompleted {
			t.Fatalf("alice's job %s: %s (%v)", id, r.Status, err)
		}
	}
	b.waitStatus(running.ID, store.StatusRunning)
	// Bob has jobs of his own, and a session.
	bobJob, err := b.client(a, bob).Submit(ctx, jobsapi.CreateJobRequest{Command: "bob's job", Params: params("sim_tokens", 2, "sim_tokens_per_second", 0)})
	if err != nil {
		t.Fatal(err)
	}
	bm := newMonolith(b, a, bob)
	bm.decode(t, "/config", nil, &map[string]any{})

	type probe struct {
		name string
		do   func(t *testing.T, id string) string
	}
	native := func(method, path string) func(t *testing.T, id string) string {
		return func(t *testing.T, id string) string {
			resp := b.do(t, bob, method, a.URL+strings.ReplaceAll(path, "{id}", id), "")
			body, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	semoss := func(path string, kv ...string) func(t *testing.T, id string) string {
		return func(t *testing.T, id string) string {
			form := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				form.Set(kv[i], strings.ReplaceAll(kv[i+1], "{id}", id))
			}
			status, h, body := bm.call(t, path, form)
			return fmt.Sprintf("%d %s %s", status, h.Get("Content-Type"), body)
		}
	}
	probes := []probe{
		{"GetJob", native(http.MethodGet, "/v1/jobs/{id}")},
		{"Chunks", native(http.MethodGet, "/v1/jobs/{id}/chunks")},
		{"LongPoll", native(http.MethodGet, "/v1/jobs/{id}/chunks?wait=2s&offset=1")},
		{"Events", native(http.MethodGet, "/v1/jobs/{id}/events")},
		{"Cancel", native(http.MethodPost, "/v1/jobs/{id}/cancel")},
		{"Transcript", native(http.MethodGet, "/v1/jobs/{id}/transcript")},
		{"PixelJobStreaming", semoss("/engine/pixelJobStreaming", "jobId", "{id}", "wait", "1")},
		{"PixelJobStreamingOffset", semoss("/engine/pixelJobStreaming", "jobId", "{id}", "offset", "0", "wait", "1")},
		{"Status", semoss("/engine/status", "jobId", "{id}")},
		{"Result", semoss("/engine/result", "jobId", "{id}")},
		{"Partial", semoss("/engine/partial", "jobId", "{id}", "wait", "0.2")},
		{"Console", semoss("/engine/console", "jobId", "{id}")},
		{"Error", semoss("/engine/error", "jobId", "{id}")},
		{"Terminate", semoss("/engine/terminate", "jobId", "{id}")},
		{"StopPixelExecution", semoss("/engine/runPixel", "insightId", "isolation", "expression", `StopPixelExecution(id=["{id}"])`)},
		{"CLITail", func(t *testing.T, id string) string {
			out, errOut, err := b.cli([]string{"JOBSTREAM_ACCESS_KEY=" + bob.Access, "JOBSTREAM_SECRET_KEY=" + bob.Secret}, "tail", "--url", a.URL, id)
			var ee *exec.ExitError
			code := 0
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			return fmt.Sprintf("exit %d: %s %s", code, out, errOut)
		}},
	}
	volatile := regexp.MustCompile(`"timeToRun":\d+`)
	missing := uuid.Must(uuid.NewV7()).String()
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			want := volatile.ReplaceAllString(strings.ReplaceAll(p.do(t, missing), missing, "<id>"), "")
			if strings.HasPrefix(want, "2") && !strings.Contains(want, jssemoss.SemossUnknownJob) && !strings.Contains(want, "not found") && p.name != "Terminate" {
				t.Errorf("a job that does not exist: %s", want)
			}
			for _, id := range []uuid.UUID{done.ID, pixelJob, running.ID} {
				got := volatile.ReplaceAllString(strings.ReplaceAll(p.do(t, id.String()), id.String(), "<id>"), "")
				if got != want {
					t.Errorf("another tenant's job %s:\n  got  %s\n  want %s (as for a job that does not exist)", id, got, want)
				}
			}
		})
	}

	t.Run("List", func(t *testing.T) {
		for _, before := range []string{"", done.ID.String(), running.ID.String(), missing} {
			var list jobsapi.JobList
			resp := b.do(t, bob, http.MethodGet, a.URL+"/v1/jobs?limit=500&before="+before, "")
			if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
				t.Fatal(err)
			}
			for _, j := range list.Jobs {
				if j.ID != bobJob.ID {
					t.Errorf("bob's list (before=%s) holds job %s, not his", before, j.ID)
				}
			}
		}
	})

	t.Run("NothingChanged", func(t *testing.T) {
		// Bob's cancel and StopPixelExecution did not stop alice's job,
		// which alice still reads (and can cancel).
		if s := b.status(running.ID); s != store.StatusRunning {
			t.Errorf("alice's running job is %s after bob's attempts", s)
		}
		if resp := b.do(t, alice, http.MethodGet, a.URL+"/v1/jobs/"+done.ID.String()+"/transcript", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("alice's transcript: %d", resp.StatusCode)
		}
		if _, err := aliceClient.Cancel(ctx, running.ID); err != nil {
			t.Errorf("alice's cancel: %v", err)
		}
	})

	t.Run("KeysHashedAndRevocable", func(t *testing.T) {
		carol := b.key("carol")
		m := newMonolith(b, a, carol)
		m.decode(t, "/config", nil, &map[string]any{}) // a session too
		// Only hashes are stored: the secret appears nowhere.
		var leaks int
		err := b.pool.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM api_keys k WHERE strpos(row_to_json(k)::text, $1) > 0 OR strpos(encode(k.secret_hash, 'escape'), $1) > 0)
			     + (SELECT count(*) FROM sessions s WHERE strpos(row_to_json(s)::text, $1) > 0)`, carol.Secret).Scan(&leaks)
		if err != nil || leaks != 0 {
			t.Errorf("the secret is stored in %d rows (%v)", leaks, err)
		}
		if resp := b.do(t, carol, http.MethodGet, a.URL+"/v1/jobs", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("carol's key: %d", resp.StatusCode)
		}
		if _, _, err := b.cli(nil, "keys", "revoke", carol.Access); err != nil {
			t.Fatal(err)
		}
		// Refused on every node within the credential cache's 5 s.
		eventually(t, time.Minute, "the revoked key to be refused", func() bool {
			return b.do(t, carol, http.MethodGet, a.URL+"/v1/jobs", "").StatusCode == http.StatusUnauthorized
		})
		if status, _, _ := m.call(t, "/engine/status", url.Values{"jobId": {missing}}); status != http.StatusUnauthorized {
			t.Errorf("a session of the revoked key: %d, want 401", status)
		}
	})

	t.Run("InjectionAttempts", func(t *testing.T) {
		// Hostile text is data: refused or stored verbatim, never SQL.
		hostile := `'; DELETE FROM jobs; --`
		for _, path := range []string{
			"/v1/jobs?engine=" + url.QueryEscape(`' OR '1'='1`),
			"/v1/jobs?status=" + url.QueryEscape(hostile),
			"/v1/jobs?before=" + url.QueryEscape(`' OR 1=1 --`),
			"/v1/jobs/" + url.PathEscape(`' OR 1=1 --`),
		} {
			resp := b.do(t, bob, http.MethodGet, a.URL+path, "")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 500 || strings.Contains(string(body), done.ID.String()) {
				t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			}
		}
		body, _ := json.Marshal(jobsapi.CreateJobRequest{Command: hostile, System: hostile, RoomID: hostile, Params: params("sim_tokens", 1, "sim_tokens_per_second", 0)})
		resp := b.do(t, bob, http.MethodPost, a.URL+"/v1/jobs", string(body))
		var job jobsapi.Job
		if err := json.NewDecoder(resp.Body).Decode(&job); err != nil || resp.StatusCode != http.StatusCreated || job.RoomID != hostile {
			t.Errorf("hostile job: %d %+v (%v)", resp.StatusCode, job, err)
		}
		var status string
		bm.decode(t, "/engine/status", url.Values{"jobId": {`' OR '1'='1`}}, &status)
		if status != jssemoss.SemossUnknownJob {
			t.Errorf("status of a hostile job id: %s", status)
		}
		if resp := b.do(t, apiKey{Access: `' OR '1'='1`, Secret: hostile}, http.MethodGet, a.URL+"/v1/jobs", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a hostile access key: %d, want 401", resp.StatusCode)
		}
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n != 5 {
			t.Errorf("%d jobs in the database (%v), want 5", n, err)
		}
	})
}

// monolith is a client of /Monolith/api with a cookie jar (a browser),
// sending Basic credentials too.
type monolith struct {
	b   *bundle
	url string
	hc  *http.Client
	key apiKey
}

func newMonolith(b *bundle, p *testserver.Process, k apiKey) *monolith {
	jar, _ := cookiejar.New(nil)
	return &monolith{b: b, url: p.URL + "/Monolith/api", hc: &http.Client{Transport: b.hc.Transport, Jar: jar}, key: k}
}

// call POSTs form to path (GETs it when form is nil).
func (m *monolith) call(t *testing.T, path string, form url.Values) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.url+path, nil)
	if form != nil {
		req, _ = http.NewRequest(http.MethodPost, m.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if m.key.Access != "" {
		req.SetBasicAuth(m.key.Access, m.key.Secret)
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func (m *monolith) decode(t *testing.T, path string, form url.Values, out any) {
	t.Helper()
	status, _, body := m.call(t, path, form)
	if status != http.StatusOK || json.Unmarshal(body, out) != nil {
		t.Fatalf("%s: %d %s", path, status, body)
	}
}

// TestSQLParameterised: every SQL statement the jobstream binary sends is
// a constant (sqlc's generated queries, literals), with values passed as
// parameters; the only text ever joined into SQL is an identifier quoted by
// pgx.Identifier.Sanitize. Checked on the source of every package the
// binary is built from, so a query built with fmt.Sprintf or from a
// variable fails here.
func TestSQLParameterised(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{with .Module}}{{.Path}}{{end}} {{.Dir}}{{end}}", testserver.MainPackage).Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		mod, dir, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !strings.HasPrefix(mod, "github.com/jobstream/jobstream") {
			continue // third-party modules
		}
		fset := token.NewFileSet()
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		consts := map[string]bool{}
		var parsed []*ast.File
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			parsed = append(parsed, f)
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, s := range g.Specs {
						for _, n := range s.(*ast.ValueSpec).Names {
							consts[n.Name] = true
						}
					}
				}
			}
		}
		for _, f := range parsed {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				arg := -1
				switch sel.Sel.Name {
				case "Exec", "Query", "QueryRow":
					arg = 1 // (ctx, sql, args...)
				case "Queue":
					arg = 0 // pgx.Batch.Queue(sql, args...)
				}
				if arg < 0 || len(call.Args) <= arg || (arg == 1 && !contextArg(call.Args[0])) {
					return true // not a database call
				}
				checked++
				if !constantSQL(call.Args[arg], consts) {
					t.Errorf("%s: SQL built from something other than constants and sanitised identifiers", fset.Position(call.Pos()))
				}
				return true
			})
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d SQL calls: the scan is broken", checked)
	}
}

// contextArg reports whether e looks like the context.Context that pgx's
// methods take first (ctx, runCtx, context.Background(), ...).
func contextArg(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return strings.HasSuffix(strings.ToLower(e.Name), "ctx")
	case *ast.CallExpr:
		return true
	}
	return false
}

// constantSQL reports whether e is SQL text made of string literals,
// constants and pgx.Identifier{...}.Sanitize() calls joined with +.
func constantSQL(e ast.Expr, consts map[string]bool) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.Ident:
		return consts[e.Name]
	case *ast.ParenExpr:
		return constantSQL(e.X, consts)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && constantSQL(e.X, consts) && constantSQL(e.Y, consts)
	case *ast.CallExpr:
		sel, ok := e.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Sanitize" || len(e.Args) != 0 {
			return false
		}
		lit, ok := sel.X.(*ast.CompositeLit)
		if !ok {
			return false
		}
		typ, ok := lit.Type.(*ast.SelectorExpr)
		return ok && typ.Sel.Name == "Identifier"
	}
	return false
}

// TestCORSAndHeaders: CORS is off unless origins are configured, and then
// only those origins are allowed; every answer carries the security
// headers, errors and refusals included.
func TestCORSAndHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	off := b.serve()
	on := b.serve("--cors-origins", "https://app.example, https://other.example/")
	strict := b.serve("--dev=false", "--rate-limit", "0.01", "--rate-burst", "1")
	k := b.key("headers")

	withOrigin := func(p *testserver.Process, method, origin string) *http.Response {
		req, _ := http.NewRequest(method, p.URL+"/v1/jobs", nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "Authorization, Content-Type")
		}
		resp, err := b.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	t.Run("CORSOffByDefault", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodOptions} {
			if got := withOrigin(off, m, "https://app.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("%s without --cors-origins: Access-Control-Allow-Origin %q", m, got)
			}
		}
	})
	t.Run("CORSConfigured", func(t *testing.T) {
		resp := withOrigin(on, http.MethodGet, "https://app.example")
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("allowed origin: %v", resp.Header)
		}
		pre := withOrigin(on, http.MethodOptions, "https://other.example")
		if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://other.example" || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
		}
		for _, m := range []string{http.MethodGet, http.MethodOptions} {
			if got := withOrigin(on, m, "https://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("%s from an origin not listed: Access-Control-Allow-Origin %q", m, got)
			}
		}
	})
	t.Run("SecurityHeaders", func(t *testing.T) {
		form := "jobId=" + uuid.NewString()
		for _, c := range []struct {
			name       string
			p          *testserver.Process
			k          apiKey
			method     string
			path, body string
			status     int
		}{
			{"OK", off, apiKey{}, http.MethodGet, "/v1/jobs", "", 200},
			{"NotFound", off, apiKey{}, http.MethodGet, "/v1/jobs/" + uuid.NewString(), "", 404},
			{"BadRequest", off, apiKey{}, http.MethodGet, "/v1/jobs/nope", "", 400},
			{"NoRoute", off, apiKey{}, http.MethodGet, "/nope", "", 404},
			{"SEMOSS", off, apiKey{}, http.MethodPost, "/Monolith/api/engine/status", form, 200},
			{"Health", off, apiKey{}, http.MethodGet, "/readyz", "", 200},
			{"Unauthenticated", strict, apiKey{}, http.MethodGet, "/v1/jobs", "", 401},
			{"Authenticated", strict, k, http.MethodGet, "/v1/jobs", "", 200},
			{"RateLimited", strict, k, http.MethodGet, "/v1/jobs", "", 429},
		} {
			resp := b.do(t, c.k, c.method, c.p.URL+c.path, c.body)
			if resp.StatusCode != c.status {
				t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
			}
			for h, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
				"Cache-Control":          "no-store",
			} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s: %s = %q, want %q", c.name, h, got, want)
				}
			}
		}
	})
}

// TestLogsKeepSecrets: prompts and secrets never reach the server's log,
// even at debug level, through either API and through failed logins;
// --log-prompts puts prompts (only) there.
func TestLogsKeepSecrets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := setup(t)
	k := b.key("logs")
	mark := uuid.NewString()[:8]
	prompt, system, pixelPrompt := "purple-elephant-"+mark, "secret-system-prompt-"+mark, "pixel-prompt-"+mark
	wrongSecret := "wrong-secret-" + mark

	run := func(args ...string) (logs string, cookies []string) {
		a := b.serve(append([]string{"--dev=false", "--log-level", "debug"}, args...)...)
		job, err := b.client(a, k).Submit(ctx, jobsapi.CreateJobRequest{Command: prompt, System: system, Params: params("sim_tokens", 3, "sim_tokens_per_second", 0)})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := (reader{hc: b.hc, urls: fixed(a.URL), key: &k}).sse(ctx, job.ID); err != nil || r.Status != store.StatusCompleted {
			t.Fatalf("job: %s (%v)", r.Status, err)
		}
		m := newMonolith(b, a, k)
		m.decode(t, "/config", nil, &map[string]any{})
		var async map[string]string
		m.decode(t, "/engine/runPixelAsync", url.Values{"expression": {`LLM(engine="sim", command="` + pixelPrompt + `")`}}, &async)
		m.decode(t, "/engine/pixelJobStreaming", url.Values{"jobId": {async["jobId"]}}, &map[string]any{})
		u, _ := url.Parse(a.URL)
		for _, c := range m.hc.Jar.Cookies(u) {
			cookies = append(cookies, c.Value)
		}
		if resp := b.do(t, apiKey{Access: k.Access, Secret: wrongSecret}, http.MethodGet, a.URL+"/v1/jobs", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong secret: %d", resp.StatusCode)
		}
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		return a.Logs(), cookies
	}

	logs, cookies := run()
	if len(cookies) == 0 {
		t.Fatal("no session cookie")
	}
	secrets := map[string]string{"secret key": k.Secret, "wrong secret": wrongSecret}
	for i, c := range cookies {
		secrets[fmt.Sprintf("session cookie %d", i)] = c
	}
	for what, s := range map[string]string{"prompt": prompt, "system prompt": system, "pixel prompt": pixelPrompt} {
		secrets[what] = s
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s:\n%s", what, logs)
		}
	}
	if !strings.Contains(logs, "job submitted") {
		t.Errorf("the debug log does not mention the jobs at all (is the check looking at the right log?):\n%s", logs)
	}

	logs, _ = run("--log-prompts")
	for _, s := range []string{prompt, system, pixelPrompt} {
		if !strings.Contains(logs, s) {
			t.Errorf("with --log-prompts, the log lacks %q", s)
		}
	}
	for _, s := range []string{k.Secret, wrongSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("with --log-prompts, the log holds a secret")
		}
	}
}
