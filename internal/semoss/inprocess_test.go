package semoss_test

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/semoss"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// Tests that need what a `jobstream serve` process cannot be given (an
// engine that reports what it was sent, an authenticator with CSRF on) run
// the same server in this process: internal/server.Run, on a database of
// their own, over real HTTP.

// echoEngine answers with the JSON of the conversation it received.
type echoEngine struct{}

func (echoEngine) Stream(ctx context.Context, req engine.Request, emit engine.Emit) (engine.Finish, error) {
	b, err := json.Marshal(req.Messages)
	if err != nil {
		return engine.Finish{}, err
	}
	if err := emit(engine.Content(string(b))); err != nil {
		return engine.Finish{}, err
	}
	return engine.Finish{Reason: engine.FinishStop, Stream: engine.StreamContent}, nil
}

// startInProcess runs server.Run with args (serve's flags) on dbURL and
// returns its base URL; it is shut down when the test ends.
func startInProcess(t *testing.T, dbURL string, d server.Deps, args ...string) string {
	t.Helper()
	var cfg config.Serve
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Flags(fs, func(string) string { return "" })
	if err := fs.Parse(append([]string{"--addr", "127.0.0.1:0", "--max-conns", "4", "--shutdown-grace", "1s"}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = dbURL
	addr := make(chan net.Addr, 1)
	d.Listening = func(a net.Addr) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, d) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a.String()
	case err := <-done:
		t.Fatalf("server exited before serving: %v", err)
	}
	return ""
}

func semossEngines() *engine.Registry {
	r := engine.NewRegistry()
	r.Register(sim.Info(), sim.New())
	r.Register(engine.Info{ID: "echo", Provider: "test"}, echoEngine{})
	return r
}

// TestRoomHistory checks, end to end, what the engine receives for the
// turns of a room: the room's earlier turns rebuilt from their stored
// chunks with useHistory, nothing without, and only the given conversation
// with paramValues messages. It runs in dev mode, whose anonymous sessions
// SEMOSS clients get from GET /config.
func TestRoomHistory(t *testing.T) {
	t.Parallel()
	base := startInProcess(t, testserver.Database(t), server.Deps{Engines: semossEngines()}, "--dev")
	m := newMonolith(t, base, nil)
	var cfg struct {
		LoginDetails map[string]string `json:"loginDetails"`
	}
	m.get("/config", &cfg)
	if len(cfg.LoginDetails) == 0 {
		t.Fatalf("dev mode /config: loginDetails %v, want the anonymous session", cfg.LoginDetails)
	}

	type msg struct{ Role, Content string }
	turn := func(expr string) (string, []msg) {
		t.Helper()
		out := m.runPixel(expr)
		if out.PixelReturn[0].OperationType[0] != "OPERATION" {
			t.Fatalf("%s: %+v", expr, out.PixelReturn[0])
		}
		o := outputOf[semoss.LLMOutput](t, out.PixelReturn[0])
		var got []msg
		if err := json.Unmarshal([]byte(o.Response.(string)), &got); err != nil {
			t.Fatalf("echo output %q: %v", o.Response, err)
		}
		return o.Response.(string), got
	}
	check := func(name string, got, want []msg) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: engine received\n%+v\nwant\n%+v", name, got, want)
		}
	}
	r1, got := turn(`LLM(engine="echo", command="<encode>first</encode>", context=["<encode>be brief</encode>"], roomId="<encode>room-1</encode>", useHistory=true);`)
	check("first turn", got, []msg{{"system", "be brief"}, {"user", "first"}})
	r2, got := turn(`LLM(engine="echo", command="<encode>second</encode>", context=["<encode>be brief</encode>"], roomId="<encode>room-1</encode>", useHistory=true);`)
	check("second turn", got, []msg{{"system", "be brief"}, {"user", "first"}, {"assistant", r1}, {"user", "second"}})
	r3, got := turn(`LLM(engine="echo", command="<encode>third</encode>", roomId="<encode>room-1</encode>", useHistory=false);`)
	check("without history", got, []msg{{"user", "third"}})
	_, got = turn(`LLM(engine="echo", command="<encode>ignored</encode>", roomId="<encode>room-1</encode>", useHistory=true, paramValues=[{"messages": [{"role": "user", "content": "only this"}]}]);`)
	check("paramValues messages", got, []msg{{"user", "only this"}})
	// Another room has a history of its own.
	_, got = turn(`LLM(engine="echo", command="<encode>elsewhere</encode>", roomId="<encode>room-2</encode>", useHistory=true);`)
	check("other room", got, []msg{{"user", "elsewhere"}})

	// The native API: the request's own messages follow the room's
	// history (a tool result sent back for the room's last turn, say).
	r4 := `[{"role":"user","content":"only this"}]`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/jobs", strings.NewReader(`{"engine":"echo","room_id":"room-1","use_history":true,"messages":[{"role":"user","content":"native"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var job jobsapi.Job
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	res := m.result(job.ID.String())
	o := outputOf[semoss.LLMOutput](t, res.PixelReturn[0])
	var native []msg
	if err := json.Unmarshal([]byte(o.Response.(string)), &native); err != nil {
		t.Fatal(err)
	}
	check("native job", native, []msg{
		{"user", "first"}, {"assistant", r1}, {"user", "second"}, {"assistant", r2},
		{"user", "third"}, {"assistant", r3}, {"user", "ignored"}, {"assistant", r4}, {"user", "native"},
	})
}

// TestCSRF runs the CSRF handshake of semoss-ui and the Python SDK against a
// server with CSRF protection on.
func TestCSRF(t *testing.T) {
	t.Parallel()
	db := testserver.Database(t)
	st := store.New(testserver.Pool(t, db, 2))
	a := auth.New(st, auth.Config{CSRF: true})
	base := startInProcess(t, db, server.Deps{Engines: semossEngines(), Auth: a})
	key, secret, err := auth.CreateKey(context.Background(), st, "csrf", "")
	if err != nil {
		t.Fatal(err)
	}
	k := apiKey{Access: key.AccessKey, Secret: secret}

	// GET /config with Basic: logged in, csrf on, the token in the body.
	login := newMonolith(t, base, &k)
	var cfg map[string]any
	login.get("/config", &cfg)
	token, _ := cfg["X-CSRF-Token"].(string)
	if cfg["csrf"] != true || token == "" {
		t.Fatalf("config: %v", cfg)
	}
	m := newMonolith(t, base, nil) // the same session, by its cookie only
	m.client.Jar = login.client.Jar

	// GET /config/fetchCsrf with X-CSRF-Token: fetch gives it in a header.
	status, h, _ := m.call("/config/fetchCsrf", nil, "X-CSRF-Token", "fetch")
	if status != http.StatusOK || h.Get("X-CSRF-Token") != token {
		t.Fatalf("fetchCsrf: %d, header %q, want %q", status, h.Get("X-CSRF-Token"), token)
	}
	meta := url.Values{"expression": {"META | true"}}
	if status, _, body := m.call("/engine/runPixel", meta); status != http.StatusForbidden || !strings.Contains(string(body), "errorMessage") {
		t.Fatalf("POST without the token: %d %s, want 403", status, body)
	}
	if status, _, body := m.call("/engine/runPixel", meta, "X-CSRF-Token", token); status != http.StatusOK {
		t.Fatalf("POST with the token: %d %s", status, body)
	}
	basicOnly := newMonolith(t, base, &k)
	if status, _, body := basicOnly.call("/engine/runPixel", meta); status != http.StatusOK {
		t.Fatalf("POST with Basic credentials: %d %s, want 200 (no token needed)", status, body)
	}
}

// TestCSRFLogout: with CSRF protection on, a logout that rides on the
// session cookie alone, as a cross-site page's form or image would (POST or
// GET), is refused with 403 and the session lives on; the same logout with the session's token
// (what the console sends) ends it, and one with Basic credentials needs
// no token.
func TestCSRFLogout(t *testing.T) {
	t.Parallel()
	db := testserver.Database(t)
	st := store.New(testserver.Pool(t, db, 2))
	a := auth.New(st, auth.Config{CSRF: true})
	base := startInProcess(t, db, server.Deps{Engines: semossEngines(), Auth: a})
	key, secret, err := auth.CreateKey(context.Background(), st, "csrf-logout", "")
	if err != nil {
		t.Fatal(err)
	}
	k := apiKey{Access: key.AccessKey, Secret: secret}

	m := newMonolith(t, base, nil) // a browser: the cookie only
	m.login(k)
	loggedIn := func() (string, bool) {
		t.Helper()
		var cfg struct {
			LoginDetails map[string]string `json:"loginDetails"`
			Token        string            `json:"X-CSRF-Token"`
		}
		m.get("/config", &cfg)
		return cfg.Token, cfg.LoginDetails["native"] != ""
	}
	token, in := loggedIn()
	if !in || token == "" {
		t.Fatalf("after login: logged in %v, token %q", in, token)
	}
	meta := url.Values{"expression": {"META | true"}}

	// POST, and GET (jobstream issue 18 item 11: a cross-site <img
	// src=".../logout/all"> ended the session): refused alike.
	for _, tc := range []struct {
		form url.Values
		h    []string
	}{
		{url.Values{}, []string{"Origin", "https://elsewhere.example", "Sec-Fetch-Site", "cross-site"}},
		{url.Values{}, []string{"X-CSRF-Token", "not-the-token"}},
		{nil, []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Dest", "image"}},
		{nil, []string{"X-CSRF-Token", "not-the-token"}},
	} {
		h := tc.h
		status, _, body := m.call("/logout/all", tc.form, h...)
		var e struct {
			Type string `json:"errorType"`
		}
		_ = json.Unmarshal(body, &e)
		if status != http.StatusForbidden || e.Type != "CSRF" {
			t.Errorf("logout by cookie with %v: %d %s, want 403 CSRF", h, status, body)
		}
		if _, in := loggedIn(); !in {
			t.Fatalf("a refused logout (%v) ended the session", h)
		}
		if status, _, body := m.call("/engine/runPixel", meta, "X-CSRF-Token", token); status != http.StatusOK {
			t.Fatalf("after a refused logout (%v), the session's POST: %d %s", h, status, body)
		}
	}

	// With the token: logged out.
	if status, _, body := m.call("/logout/all", url.Values{}, "X-CSRF-Token", token); status != http.StatusOK {
		t.Fatalf("logout with the token: %d %s", status, body)
	}
	if _, in := loggedIn(); in {
		t.Error("logout with the token left the session logged in")
	}
	if status, _, _ := m.call("/engine/runPixel", meta, "X-CSRF-Token", token); status != http.StatusUnauthorized {
		t.Errorf("after logout, the session's POST: %d, want 401", status)
	}

	// GET with the token logs out too (semoss-ui's logout is a GET).
	m.login(k)
	if token, _ = loggedIn(); token == "" {
		t.Fatal("second login: no token")
	}
	if status, _, body := m.call("/logout/all", nil, "X-CSRF-Token", token); status != http.StatusOK {
		t.Fatalf("GET logout with the token: %d %s", status, body)
	}
	if _, in := loggedIn(); in {
		t.Error("GET logout with the token left the session logged in")
	}

	// Basic credentials (a cross-site page cannot attach them) need none.
	b := newMonolith(t, base, &k)
	b.login(k)
	if status, _, body := b.call("/logout/all", url.Values{}); status != http.StatusOK {
		t.Errorf("logout with Basic credentials: %d %s, want 200", status, body)
	}
}
