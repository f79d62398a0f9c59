package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/testserver"
)

// TestAuthMessages: what ask says when the server wants a key it did not
// get, or got half of.
func TestAuthMessages(t *testing.T) {
	t.Parallel()
	url, _ := serveOn(t, testserver.Database(t)) // no --dev: keys required

	t.Run("NoKey", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "ask", "hi")
		if res.err == nil || !strings.Contains(res.err.Error(), "JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY") || !strings.Contains(res.err.Error(), "jobstream keys create") {
			t.Errorf("ask without a key: %v, want it to name JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY", res.err)
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{"JOBSTREAM_URL": url, "JOBSTREAM_ACCESS_KEY": "ak_nope", "JOBSTREAM_SECRET_KEY": "sk_nope"}, "ask", "hi")
		if res.err == nil || !strings.Contains(res.err.Error(), "JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY") || !strings.Contains(res.err.Error(), "invalid access key or secret key") {
			t.Errorf("ask with a wrong key: %v", res.err)
		}
		if strings.Contains(res.err.Error(), "unauthenticated: unauthenticated") {
			t.Errorf("ask with a wrong key repeats itself: %v", res.err)
		}
	})

	t.Run("MissingSecret", func(t *testing.T) {
		t.Parallel()
		for _, cmd := range [][]string{{"ask", "hi"}, {"jobs"}, {"tail", "0190b2a4-0000-7000-8000-000000000000"}} {
			res := runCmd(t, map[string]string{"JOBSTREAM_URL": url, "JOBSTREAM_ACCESS_KEY": "ak_x"}, cmd...)
			if res.err == nil || !strings.Contains(res.err.Error(), "secret key is missing") || !strings.Contains(res.err.Error(), "JOBSTREAM_SECRET_KEY") {
				t.Errorf("%s with an access key only: %v, want the secret key named missing", cmd[0], res.err)
			}
		}
	})

	// The server itself: one "unauthenticated", and a missing secret named.
	for name, tc := range map[string]struct{ user, pass, want string }{
		"ServerMissingSecret": {"ak_x", "", "the secret key is missing"},
		"ServerWrongKey":      {"ak_x", "sk_y", "invalid access key or secret key"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/v1/jobs", nil)
			req.SetBasicAuth(tc.user, tc.pass)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string }
			}
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil || resp.StatusCode != 401 || body.Error.Code != "unauthenticated" {
				t.Fatalf("GET /v1/jobs as %s:%s = %d %s", tc.user, tc.pass, resp.StatusCode, b)
			}
			if !strings.HasPrefix(body.Error.Message, tc.want) {
				t.Errorf("message %q, want it to start with %q (and not repeat the code)", body.Error.Message, tc.want)
			}
		})
	}
}

// TestUnknownEngineHint: the CLI names the CLI command, and what the
// server offers.
func TestUnknownEngineHint(t *testing.T) {
	t.Parallel()
	url := serve(t)
	res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "ask", "hi", "--engine", "nope")
	if res.err == nil {
		t.Fatal("ask --engine nope succeeded")
	}
	msg := res.err.Error()
	if !strings.Contains(msg, `unknown engine "nope"`) || !strings.Contains(msg, "offers: sim") || !strings.Contains(msg, "jobstream engines --url "+url) || strings.Contains(msg, "GET /v1/engines") {
		t.Errorf("ask --engine nope: %q, want the engines offered and `jobstream engines --url`", msg)
	}
	// The hint's command works.
	if res := runCmd(t, nil, "engines", "--url", url); res.err != nil || !strings.Contains(res.stdout, "sim") {
		t.Errorf("engines --url: %v\n%s", res.err, res.stdout)
	}
}

// TestConnectErrorOnce: pgx reports each connection attempt on a line, and
// tries TLS then plain text: the same refusal must not be printed twice.
func TestConnectErrorOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port with nothing on it: refused
	res := runCmd(t, map[string]string{"DATABASE_URL": "postgres://postgres@" + addr + "/x"}, "keys", "list")
	if res.err == nil {
		t.Fatal("keys list with an unreachable database succeeded")
	}
	lines := strings.Split(res.err.Error(), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("line %q printed twice in:\n%s", l, res.err)
		}
		seen[l] = true
	}
	if !strings.Contains(res.err.Error(), "connection refused") {
		t.Errorf("error %q does not say the connection was refused", res.err)
	}
}

// TestServePortTaken: a port in use is reported before the database is
// touched (here it is unreachable: its error must not come first).
func TestServePortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x?connect_timeout=30"}
	start := time.Now()
	res := runCmd(t, env, "serve", "--dev", "--addr", ln.Addr().String())
	if res.err == nil || !strings.Contains(res.err.Error(), "listen on "+ln.Addr().String()) || !strings.Contains(res.err.Error(), "address already in use") || !strings.Contains(res.err.Error(), "--addr") {
		t.Fatalf("serve on a taken port: %v\n%s", res.err, res.stderr)
	}
	if strings.Contains(res.err.Error()+res.stderr, "database") {
		t.Errorf("serve on a taken port looked for the database first: %v\n%s", res.err, res.stderr)
	}
	t.Logf("reported after %s", time.Since(start))
}

// TestBadFlagValue: one line naming the flag and --help, not the usage.
func TestBadFlagValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--concurrency", "x"}, `invalid value "x" for --concurrency: want an integer; see 'jobstream serve --help'`},
		{[]string{"serve", "--lease-ttl", "soon"}, `invalid value "soon" for --lease-ttl: want a duration such as 30s or 5m; see 'jobstream serve --help'`},
		{[]string{"serve", "--role", "chef"}, `--role must be all, api or worker, got "chef"; see 'jobstream serve --help'`},
		{[]string{"ask", "hi", "--nope"}, `unknown flag --nope; see 'jobstream ask --help'`},
		{[]string{"ask", "hi", "--param", "novalue"}, `invalid value "novalue" for --param: want k=v, got "novalue"; see 'jobstream ask --help'`},
		{[]string{"keys", "create", "--name"}, `--name needs a value; see 'jobstream keys create --help'`},
		{[]string{"jobs", "--limit", "0"}, `--limit must be between 1 and 500, got 0`},
		{[]string{"jobs", "--status", "done"}, `--status must be queued, running, completed, failed or cancelled, got "done"`},
		// A server URL without a scheme is named before any request
		// (issue 19: it was Go's `unsupported protocol scheme "localhost"`).
		{[]string{"ask", "hi", "--url", "localhost:8080"}, `--url "localhost:8080" has no scheme: use http://localhost:8080 (or https://)`},
		{[]string{"jobs", "--url", "127.0.0.1:8080"}, `--url "127.0.0.1:8080" has no scheme: use http://127.0.0.1:8080 (or https://)`},
		{[]string{"tail", "01a2542e-1481-773d-b270-5bce15bcdd54", "--url", "localhost"}, `--url "localhost" has no scheme: use http://localhost (or https://)`},
		{[]string{"engines", "--url", "localhost:8080"}, `--url "localhost:8080" has no scheme: use http://localhost:8080 (or https://)`},
		{[]string{"ask", "hi", "--url", "ftp://localhost:8080"}, `--url "ftp://localhost:8080": the scheme must be http or https, not "ftp"`},
		{[]string{"ask", "hi", "--url", "http://"}, `--url "http://" is not a server URL such as http://localhost:8080`},
		{[]string{"bench", "--url", "localhost:8080"}, `--url "localhost:8080" has no scheme: use http://localhost:8080 (or https://)`},
	} {
		res := runCmd(t, nil, tc.args...)
		var ue usageError
		if !errors.As(res.err, &ue) || res.err.Error() != tc.want {
			t.Errorf("jobstream %q: %v, want the usage error %q", tc.args, res.err, tc.want)
		}
		if res.stderr != "" || res.stdout != "" {
			t.Errorf("jobstream %q printed more than its error:\nstdout: %s\nstderr: %s", tc.args, res.stdout, res.stderr)
		}
	}
}

// TestTailFinishedJob: tail of a finished job reports the job's own time,
// not how long tail took to print it.
func TestTailFinishedJob(t *testing.T) {
	t.Parallel()
	url := serve(t)
	env := map[string]string{"JOBSTREAM_URL": url}
	ask := runCmd(t, env, "ask", "hi", "--param", "sim_tokens=6", "--param", "sim_tokens_per_second=20")
	if ask.err != nil {
		t.Fatalf("ask: %v\n%s", ask.err, ask.stderr)
	}
	id := regexp.MustCompile(`(?m)^job (\S+)$`).FindStringSubmatch(ask.stderr)[1]
	askSummary := regexp.MustCompile(`(?m)^\[completed: .*\]$`).FindString(ask.stderr)
	m := regexp.MustCompile(`^\[completed: stop, 6 tokens in (\S+), first token after (\S+)\]$`).FindStringSubmatch(askSummary)
	if m == nil {
		t.Fatalf("ask's summary %q", askSummary)
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d < 250*time.Millisecond {
		t.Errorf("ask's job took %s; 6 tokens at 20/s take at least 250ms", m[1])
	}
	for _, args := range [][]string{{"tail", id}, {"tail", id, "--json"}} {
		res := runCmd(t, env, args...)
		if res.err != nil {
			t.Fatalf("%q: %v", args, res.err)
		}
		if got := strings.TrimSpace(res.stderr); got != askSummary {
			t.Errorf("%q summary %q, want the job's own, as ask said: %q", args, got, askSummary)
		}
	}
}

// TestConfigurationDocumented: every serve flag has a row in the
// configuration table, internal/config/README.md.
func TestConfigurationDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "internal", "config", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	res := runCmd(t, nil, "serve", "--help")
	for _, m := range regexp.MustCompile(`(?m)^  -(\S+)`).FindAllStringSubmatch(res.stdout, -1) {
		if !strings.Contains(string(doc), "`--"+m[1]+"`") {
			t.Errorf("serve --%s is not in the configuration table of internal/config/README.md", m[1])
		}
	}
}

// TestHelpAndVersion: `help CMD` shows CMD's help, not the top-level one
// (issue 19); `--version` and `-version` print the version as `version`
// does.
func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"ask", "serve", "keys"} {
		want := runCmd(t, nil, cmd, "--help")
		got := runCmd(t, nil, "help", cmd)
		if got.err != nil || want.err != nil {
			t.Fatalf("help %s: %v; %s --help: %v", cmd, got.err, cmd, want.err)
		}
		if !strings.HasPrefix(got.stdout, "Usage: jobstream "+cmd) || got.stdout != want.stdout {
			t.Errorf("help %s printed:\n%s\nwant what %s --help prints:\n%s", cmd, got.stdout, cmd, want.stdout)
		}
	}
	if res := runCmd(t, nil, "help", "nope"); res.err == nil || !strings.Contains(res.err.Error(), `unknown command "nope"`) {
		t.Errorf("help nope: %v", res.err)
	}
	top := runCmd(t, nil, "help")
	if top.err != nil || !strings.Contains(top.stdout, "Commands:") {
		t.Errorf("help: %v\n%s", top.err, top.stdout)
	}
	version := runCmd(t, nil, "version")
	if version.err != nil || !strings.HasPrefix(version.stdout, "jobstream ") {
		t.Fatalf("version: %v %q", version.err, version.stdout)
	}
	for _, flag := range []string{"--version", "-version"} {
		res := runCmd(t, nil, flag)
		if res.err != nil || res.stdout != version.stdout {
			t.Errorf("jobstream %s: %v %q, want %q", flag, res.err, res.stdout, version.stdout)
		}
	}
}
