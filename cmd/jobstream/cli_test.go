//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// terminal is a pseudo-terminal for a command's stdout and stderr, as a
// user's shell gives it.
type terminal struct {
	tty  *os.File
	out  syncBuffer
	done chan struct{}
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	term := &terminal{tty: tty, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		_, _ = io.Copy(&term.out, ptmx) // ends with EIO once tty is closed
	}()
	t.Cleanup(func() { tty.Close(); <-term.done; ptmx.Close() })
	return term
}

// output closes the terminal and returns all the command wrote, with the
// terminal's \r\n turned back into \n.
func (term *terminal) output() string {
	term.tty.Close()
	<-term.done
	return strings.ReplaceAll(term.out.String(), "\r\n", "\n")
}

// runOn runs a command with stdout and stderr on term.
func runOn(t *testing.T, term *terminal, vars map[string]string, args ...string) error {
	t.Helper()
	e := &env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""), stdout: term.tty, stderr: term.tty}
	return runEnv(context.Background(), e, args)
}

// TestAskTerminal: on a terminal, a spinner on stderr until the first
// token, erased before the text; on a pipe, neither spinner nor styles
// (TestAskAndTail).
func TestAskTerminal(t *testing.T) {
	t.Parallel()
	url := serve(t)
	term := newTerminal(t)
	err := runOn(t, term, map[string]string{"JOBSTREAM_URL": url, "TERM": "xterm"}, "ask", "hi",
		"--param", "sim_first_token_delay=0.5", "--param", "sim_tokens=5", "--param", "sim_tokens_per_second=0")
	out := term.output()
	if err != nil {
		t.Fatalf("ask: %v\n%q", err, out)
	}
	spin := strings.Index(out, "| waiting for the first token")
	erase := strings.LastIndex(out, "\r\x1b[K")
	text := strings.Index(out, "You asked: hi")
	if spin < 0 || erase < spin || text < erase {
		t.Errorf("want the spinner, then its erasure, then the text; got %q", out)
	}
	if !regexp.MustCompile(`(?m)^job [0-9a-f-]{36}$`).MatchString(out) || !strings.Contains(out, "[completed: stop, 5 tokens in ") {
		t.Errorf("ask on a terminal: %q, want the job id and the outcome", out)
	}
}

// thinkingJob stores a finished job of the dev tenant whose turn thinks,
// answers and calls a tool, in the database of a served URL.
func thinkingJob(t *testing.T, dbURL string) uuid.UUID {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l := testserver.RunningJob(t, pool, httpapi.DevTenant, "cli-test")
	chunk := func(seq int, typ, data string) store.NewChunk {
		return store.NewChunk{Lease: l, Seq: seq, StreamType: typ, Data: json.RawMessage(data)}
	}
	chunks := []store.NewChunk{
		chunk(0, "thinking", `{"thinking":"Paris, "}`),
		chunk(1, "thinking", `{"thinking":"so weather."}`),
		chunk(2, "content", `{"content":"Let me look."}`),
		chunk(3, "tool", `{"index":0,"id":"call_1"}`),
		chunk(4, "tool", `{"index":0,"type":"function"}`),
		chunk(5, "tool", `{"index":0,"function":{"name":"get_weather"}}`),
		chunk(6, "tool", `{"index":0,"function":{"arguments":"{\"city\":"}}`),
		chunk(7, "tool", `{"index":0,"function":{"arguments":"\"Paris\"}"}}`),
		chunk(8, "tool", `{"finish_reason":"tool_calls"}`),
	}
	fin := store.Finish{Lease: l, Status: store.StatusCompleted, FinishReason: "tool_calls", Usage: json.RawMessage(`{"output_tokens":9}`)}
	if _, err := store.New(pool).WriteBatch(t.Context(), "cli-test", chunks, []store.Finish{fin}); err != nil {
		t.Fatal(err)
	}
	return l.JobID
}

// TestTailThinkingAndTools: thinking is dimmed where the terminal allows
// it and marked otherwise; tool calls are printed with their assembled,
// indented arguments; --json prints the chunks as they are.
func TestTailThinkingAndTools(t *testing.T) {
	t.Parallel()
	url, dbURL := serveOn(t, testserver.Database(t), "--dev")
	id := thinkingJob(t, dbURL).String()
	const tool = "tool call get_weather (call_1):\n  {\n    \"city\": \"Paris\"\n  }\n"

	t.Run("Terminal", func(t *testing.T) {
		t.Parallel()
		term := newTerminal(t)
		err := runOn(t, term, map[string]string{"JOBSTREAM_URL": url, "TERM": "xterm"}, "tail", id)
		out := term.output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "\x1b[2mParis, so weather.\x1b[22m\n\nLet me look.\n" + tool; !strings.HasPrefix(out, want) {
			t.Errorf("tail on a terminal:\n%q\nwant it to start with\n%q", out, want)
		}
	})

	for name, env := range map[string]map[string]string{
		"DumbTerminal": {"JOBSTREAM_URL": url, "TERM": "dumb"},
		"NoColor":      {"JOBSTREAM_URL": url, "TERM": "xterm", "NO_COLOR": "1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			term := newTerminal(t)
			err := runOn(t, term, env, "tail", id)
			out := term.output()
			if err != nil || strings.ContainsRune(out, '\x1b') || !strings.HasPrefix(out, "(thinking) Paris, so weather.\n\nLet me look.\n"+tool) {
				t.Errorf("tail (%s) = %v\n%q", name, err, out)
			}
		})
	}

	t.Run("Pipe", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "tail", id)
		if want := "(thinking) Paris, so weather.\n\nLet me look.\n" + tool; res.err != nil || res.stdout != want {
			t.Errorf("tail to a pipe = %q, %v; want %q", res.stdout, res.err, want)
		}
		if !regexp.MustCompile(`^\[completed: tool_calls, 9 tokens in \S+, first token after \S+\]\n$`).MatchString(res.stderr) {
			t.Errorf("tail's summary = %q", res.stderr)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "tail", id, "--json")
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if res.err != nil || len(lines) != 9 {
			t.Fatalf("tail --json: %v\n%s", res.err, res.stdout)
		}
		for i, line := range lines {
			var c store.Chunk
			if err := json.Unmarshal([]byte(line), &c); err != nil || c.Seq != i {
				t.Errorf("line %d = %q, want chunk %d", i, line, i)
			}
		}
	})
}

// TestAskToolCall: ask prints the sim's tool call with its name.
func TestAskToolCall(t *testing.T) {
	t.Parallel()
	url := serve(t)
	res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "ask", "weather in Paris?", "--param", "sim_tokens_per_second=0",
		"--param", `tools=[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`)
	if res.err != nil || !regexp.MustCompile(`^tool call get_weather \(call_[0-9a-f]+\):\n  \S`).MatchString(res.stdout) {
		t.Errorf("ask with tools = %v\n%q", res.err, res.stdout)
	}
	if !strings.Contains(res.stderr, "[completed: tool_calls") {
		t.Errorf("ask with tools: stderr %q", res.stderr)
	}
}

// TestAskJSON: --json prints every chunk, one JSON object per line, and
// nothing else on stdout.
func TestAskJSON(t *testing.T) {
	t.Parallel()
	url := serve(t)
	res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "ask", "hi", "--json", "--param", "sim_tokens=4", "--param", "sim_tokens_per_second=0")
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if res.err != nil || len(lines) != 6 { // 4 tokens, usage, finish
		t.Fatalf("ask --json: %v\n%s", res.err, res.stdout)
	}
	for i, line := range lines {
		var c store.Chunk
		if err := json.Unmarshal([]byte(line), &c); err != nil || c.Seq != i || c.StreamType == "" {
			t.Errorf("line %d = %q, want chunk %d", i, line, i)
		}
	}
}

// firstWrite signals when something is first written.
type firstWrite struct {
	syncBuffer
	once sync.Once
	c    chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	w.once.Do(func() { close(w.c) })
	return n, err
}

// askInBackground runs ask on a slow job with an interrupts channel, and
// returns once the first token is printed.
func askInBackground(t *testing.T, url string) (interrupts chan os.Signal, stderr *syncBuffer, done chan error) {
	t.Helper()
	interrupts = make(chan os.Signal, 2)
	stdout := &firstWrite{c: make(chan struct{})}
	stderr = &syncBuffer{}
	vars := map[string]string{"JOBSTREAM_URL": url}
	e := &env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, interrupts: interrupts}
	done = make(chan error, 1)
	go func() {
		done <- runEnv(context.Background(), e, []string{"ask", "hi", "--param", "sim_tokens=1000", "--param", "sim_tokens_per_second=5"})
	}()
	select {
	case <-stdout.c:
	case err := <-done:
		t.Fatalf("ask ended before its first token: %v\n%s", err, stderr)
	}
	return interrupts, stderr, done
}

func jobOf(t *testing.T, url, stderr string) jobsapi.Job {
	t.Helper()
	m := regexp.MustCompile(`(?m)^job (\S+)$`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no job id in %q", stderr)
	}
	c := &client.Client{BaseURL: url}
	job, err := c.Get(context.Background(), uuid.MustParse(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// TestAskInterrupt: Ctrl-C cancels the job and shows how it ended; two
// Ctrl-Cs detach, leaving the job running, with the command to follow it.
func TestAskInterrupt(t *testing.T) {
	t.Parallel()
	url := serve(t)

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		interrupts, stderr, done := askInBackground(t, url)
		interrupts <- os.Interrupt
		err := <-done
		if !errors.Is(err, errSilent) || !strings.Contains(stderr.String(), "cancelling job ") || !strings.Contains(stderr.String(), "[cancelled: cancelled") {
			t.Errorf("ask after Ctrl-C = %v\n%s", err, stderr)
		}
		if job := jobOf(t, url, stderr.String()); job.Status != store.StatusCancelled {
			t.Errorf("job status after Ctrl-C = %s, want cancelled", job.Status)
		}
	})

	t.Run("Detach", func(t *testing.T) {
		t.Parallel()
		interrupts, stderr, done := askInBackground(t, url)
		interrupts <- os.Interrupt
		interrupts <- os.Interrupt
		err := <-done
		job := jobOf(t, url, stderr.String())
		t.Cleanup(func() { _, _ = (&client.Client{BaseURL: url}).Cancel(context.Background(), job.ID) })
		if want := "detached: job " + job.ID.String() + " keeps running; follow it with: jobstream tail " + job.ID.String(); !errors.Is(err, errSilent) || !strings.Contains(stderr.String(), want) {
			t.Errorf("ask after two Ctrl-Cs = %v\n%s\nwant %q", err, stderr, want)
		}
		if job.Status != store.StatusRunning || job.CancelRequestedAt != nil {
			t.Errorf("job after two Ctrl-Cs: status %s, cancel requested %v; want it running", job.Status, job.CancelRequestedAt)
		}
	})
}

// TestJobs lists jobs as a table and as JSON, with filters.
func TestJobs(t *testing.T) {
	t.Parallel()
	url, dbURL := serveOn(t, testserver.Database(t), "--dev")
	env := map[string]string{"JOBSTREAM_URL": url}
	ok := runCmd(t, env, "ask", "one", "--param", "sim_tokens=3", "--param", "sim_tokens_per_second=0")
	failed := runCmd(t, env, "ask", "two", "--param", "sim_tokens_per_second=0", "--param", "sim_fail_after=2")
	if ok.err != nil || failed.err == nil {
		t.Fatalf("ask: %v, %v", ok.err, failed.err)
	}
	okJob, failedJob := jobOf(t, url, ok.stderr), jobOf(t, url, failed.stderr)
	thinking := thinkingJob(t, dbURL)

	res := runCmd(t, env, "jobs")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.err != nil || len(lines) != 4 {
		t.Fatalf("jobs: %v\n%s", res.err, res.stdout)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "ID STATUS ENGINE AGE TOKENS TTFT" {
		t.Errorf("header %q", lines[0])
	}
	row := regexp.MustCompile(`^(\S+)\s+(\S+)\s+(\S+)\s+(\d+[smhd])\s+(\S+)\s+(\S+)$`)
	want := []struct {
		id     uuid.UUID
		status string
		tokens string
	}{{thinking, "completed", "9"}, {failedJob.ID, "failed", "-"}, {okJob.ID, "completed", "3"}}
	for i, w := range want {
		m := row.FindStringSubmatch(lines[i+1])
		if m == nil || m[1] != w.id.String() || m[2] != w.status || m[3] != "sim" || m[5] != w.tokens || m[6] == "-" {
			t.Errorf("row %d = %q, want %s %s sim, %s tokens and a ttft", i, lines[i+1], w.id, w.status, w.tokens)
		}
	}

	res = runCmd(t, env, "jobs", "--status", "failed")
	if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); res.err != nil || len(lines) != 2 || !strings.HasPrefix(lines[1], failedJob.ID.String()) {
		t.Errorf("jobs --status failed:\n%s", res.stdout)
	}
	res = runCmd(t, env, "jobs", "--engine", "other")
	if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); res.err != nil || len(lines) != 1 {
		t.Errorf("jobs --engine other:\n%s", res.stdout)
	}

	res = runCmd(t, env, "jobs", "--json", "--limit", "2")
	var rows []jobRow
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("jobs --json --limit 2: %v\n%s", err, res.stdout)
	}
	if rows[0].ID != thinking || rows[1].ID != failedJob.ID || rows[0].TTFTMillis == nil || *rows[0].TTFTMillis < 0 {
		t.Errorf("jobs --json: %+v", rows)
	}
	if !bytes.Contains([]byte(res.stdout), []byte(`"ttft_ms"`)) {
		t.Errorf("jobs --json has no ttft_ms:\n%s", res.stdout)
	}
}

// TestAskCtrlC presses Ctrl-C on a real terminal: the built binary runs on
// a pty as its controlling terminal, so ^C reaches it as SIGINT from the
// terminal driver, as at a shell prompt.
func TestAskCtrlC(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := testserver.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t)

	for _, name := range []string{"Once", "Twice"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, "ask", "hi", "--param", "sim_tokens=1000", "--param", "sim_tokens_per_second=5")
			cmd.Env = []string{"JOBSTREAM_URL=" + url, "TERM=xterm", "PATH=" + os.Getenv("PATH")}
			ptmx, err := pty.Start(cmd)
			if err != nil {
				t.Skipf("no pseudo-terminal: %v", err)
			}
			defer ptmx.Close()
			var out syncBuffer
			first := make(chan struct{})
			cancelling := make(chan struct{})
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				buf := make([]byte, 4096)
				var once, once2 sync.Once
				for {
					n, err := ptmx.Read(buf)
					out.Write(buf[:n])
					if strings.Contains(out.String(), "You") {
						once.Do(func() { close(first) })
					}
					if strings.Contains(out.String(), "cancelling job") {
						once2.Do(func() { close(cancelling) })
					}
					if err != nil {
						return
					}
				}
			}()
			select {
			case <-first:
			case <-copied:
				t.Fatalf("ask ended before its first token:\n%q", out.String())
			}
			if _, err := ptmx.Write([]byte("\x03")); err != nil {
				t.Fatal(err)
			}
			if name == "Twice" {
				// A second ^C once the first was seen (two at once
				// arrive as one signal, as they would from a
				// terminal to any process).
				<-cancelling
				if _, err := ptmx.Write([]byte("\x03")); err != nil {
					t.Fatal(err)
				}
			}
			werr := cmd.Wait()
			<-copied
			text := strings.ReplaceAll(out.String(), "\r\n", "\n")
			job := jobOf(t, url, text)
			switch name {
			case "Once":
				if werr == nil || !strings.Contains(text, "cancelling job ") || !strings.Contains(text, "[cancelled: cancelled") || job.Status != store.StatusCancelled {
					t.Errorf("ask after ^C: %v, job %s\n%q", werr, job.Status, text)
				}
			case "Twice":
				t.Cleanup(func() { _, _ = (&client.Client{BaseURL: url}).Cancel(context.Background(), job.ID) })
				// That the job is left running is TestAskInterrupt's to
				// check: here the second ^C may come after the
				// cancel's delay on a loaded machine.
				if werr == nil || !strings.Contains(text, "detached: job "+job.ID.String()+" keeps running") {
					t.Errorf("ask after ^C^C: %v, job %s\n%q", werr, job.Status, text)
				}
			}
		})
	}
}

// rawControls lists the control characters in out that reached the
// terminal raw (as the escapes visible would have written instead), once
// jobstream's own sequences in own are taken out.
func rawControls(out string, own ...string) []string {
	for _, s := range own {
		out = strings.ReplaceAll(out, s, "")
	}
	var raw []string
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		if r == utf8.RuneError && n == 1 || r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f {
			raw = append(raw, fmt.Sprintf("%q at %d", out[i:i+n], i))
		}
		i += n
	}
	return raw
}

// TestAskTerminalEscapes: the sim restates the prompt, so a prompt with a
// window-title OSC, BEL, a clear-screen CSI and a C1 CSI comes back as model
// output; ask shows them escaped and keeps its own spinner.
func TestAskTerminalEscapes(t *testing.T) {
	t.Parallel()
	url := serve(t)
	prompt := "\x1b]0;pwned\x07hi \x1b[2J\u009b31mred"
	env := map[string]string{"JOBSTREAM_URL": url, "TERM": "xterm"}
	params := []string{"--param", "sim_first_token_delay=0.3", "--param", "sim_tokens=10", "--param", "sim_tokens_per_second=0"}

	term := newTerminal(t)
	err := runOn(t, term, env, append([]string{"ask", prompt}, params...)...)
	out := term.output()
	if err != nil {
		t.Fatalf("ask: %v\n%q", err, out)
	}
	const want = `You asked: \x1b]0;pwned\x07hi \x1b[2J\u009b31mred — here is a simulated answer.` + "\n"
	erase := strings.LastIndex(out, "\r\x1b[K")
	if erase < 0 || !strings.Contains(out[erase:], want) {
		t.Errorf("ask on a terminal:\n%q\nwant the spinner erased, then\n%q", out, want)
	}
	// The spinner's frames and its erasure are jobstream's own: all of
	// them come before the erasure.
	if erase >= 0 {
		if raw := rawControls(out[erase:], "\r\x1b[K"); len(raw) > 0 {
			t.Errorf("raw control characters after the spinner: %v\n%q", raw, out)
		}
	}

	// --json leaves the chunks alone: their text is the prompt's bytes.
	res := runCmd(t, env, append([]string{"ask", prompt, "--json"}, params...)...)
	if res.err != nil {
		t.Fatalf("ask --json: %v\n%s", res.err, res.stderr)
	}
	var text strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
		var c store.Chunk
		var d struct{ Content string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		_ = json.Unmarshal(c.Data, &d)
		text.WriteString(d.Content)
	}
	if got, w := text.String(), "You asked: "+prompt+" — here is a simulated answer."; got != w {
		t.Errorf("ask --json text = %q, want %q", got, w)
	}
}

// escapesJob stores a failed job of the dev tenant whose thinking, text,
// tool calls, finish reason and error carry terminal escapes, in the
// database of a served URL.
func escapesJob(t *testing.T, dbURL string) uuid.UUID {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l := testserver.RunningJob(t, pool, httpapi.DevTenant, "cli-test")
	chunk := func(seq int, typ string, data any) store.NewChunk {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		return store.NewChunk{Lease: l, Seq: seq, StreamType: typ, Data: b}
	}
	type fn struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments,omitempty"`
	}
	type tool struct {
		Index    int    `json:"index"`
		ID       string `json:"id,omitempty"`
		Function fn     `json:"function"`
	}
	chunks := []store.NewChunk{
		chunk(0, "thinking", map[string]string{"thinking": "plan\x1b]0;pwned\x07 "}),
		chunk(1, "thinking", map[string]string{"thinking": "\x1b[2J\u009b31m"}),
		chunk(2, "content", map[string]string{"content": "Safe\rEVIL\b\b \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ \x1b]52;c;cHduZWQ=\x07\x7f\u0085end\tok\n"}),
		chunk(3, "tool", tool{Index: 0, ID: "call_\x1b[31m1", Function: fn{Name: "get\u009dweather"}}),
		chunk(4, "tool", tool{Index: 0, Function: fn{Arguments: "{\"city\":\"Par\u009bis\"}"}}),
		chunk(5, "tool", tool{Index: 1, ID: "call_2", Function: fn{Name: "f", Arguments: "not json\x1b[1A"}}),
		chunk(6, "tool", map[string]string{"finish_reason": "tool_calls"}),
	}
	fin := store.Finish{Lease: l, Status: store.StatusFailed, FinishReason: "error\x1b]0;x\x07",
		Error: json.RawMessage(`{"code":"upstream","message":"provider said \u001b]0;x\u0007 and ` + "\u009b2J\x7f" + `"}`),
		Usage: json.RawMessage(`{"output_tokens":7}`)}
	if _, err := store.New(pool).WriteBatch(t.Context(), "cli-test", chunks, []store.Finish{fin}); err != nil {
		t.Fatal(err)
	}
	return l.JobID
}

// TestTailEscapes: escape sequences, CR, BS, BEL, DEL, NUL and C1 controls
// in a job's thinking, text, tool calls, finish reason and error are shown
// escaped, on a terminal (where only the thinking's dim styles are raw) and
// on a pipe; --json prints them as the server sent them.
func TestTailEscapes(t *testing.T) {
	t.Parallel()
	url, dbURL := serveOn(t, testserver.Database(t), "--dev")
	id := escapesJob(t, dbURL).String()
	const (
		thinking = `plan\x1b]0;pwned\x07 \x1b[2J\u009b31m`
		text     = `Safe\x0dEVIL\x08\x08 \x1b]8;;http://evil/\x1b\link\x1b]8;;\x1b\ \x1b]52;c;cHduZWQ=\x07\x7f\u0085end` + "\tok\n"
		tools    = `tool call get\u009dweather (call_\x1b[31m1):` + "\n" +
			"  {\n    \"city\": \"Par\\u009bis\"\n  }\n" +
			"tool call f (call_2):\n" +
			`  not json\x1b[1A` + "\n"
		summary = `(?m)^\[failed: error\\x1b\]0;x\\x07, 7 tokens in \S+, first token after \S+\]\n` +
			`error: \{"code":"upstream","message":"provider said \\u001b\]0;x\\u0007 and \\u009b2J\\x7f"\}\n`
	)

	t.Run("Terminal", func(t *testing.T) {
		t.Parallel()
		term := newTerminal(t)
		err := runOn(t, term, map[string]string{"JOBSTREAM_URL": url, "TERM": "xterm"}, "tail", id)
		out := term.output()
		if !errors.Is(err, errSilent) {
			t.Errorf("tail of a failed job = %v, want errSilent", err)
		}
		if want := styleDim + thinking + styleUndim + "\n\n" + text + tools; !strings.HasPrefix(out, want) {
			t.Errorf("tail on a terminal:\n%q\nwant it to start with\n%q", out, want)
		}
		if !regexp.MustCompile(summary).MatchString(out) {
			t.Errorf("tail on a terminal:\n%q\nwant the summary and error matching %s", out, summary)
		}
		if raw := rawControls(out, styleDim, styleUndim); len(raw) > 0 {
			t.Errorf("raw control characters on the terminal: %v\n%q", raw, out)
		}
		if n, m := strings.Count(out, styleDim), strings.Count(out, styleUndim); n != 1 || m != 1 {
			t.Errorf("%d dims and %d undims, want the thinking's one each:\n%q", n, m, out)
		}
	})

	t.Run("Pipe", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "tail", id)
		if want := "(thinking) " + thinking + "\n\n" + text + tools; res.stdout != want {
			t.Errorf("tail to a pipe = %q\nwant %q", res.stdout, want)
		}
		if !regexp.MustCompile(`^` + summary + `$`).MatchString(res.stderr) {
			t.Errorf("tail's stderr = %q, want it to match %s", res.stderr, summary)
		}
		if raw := rawControls(res.stdout + res.stderr); len(raw) > 0 {
			t.Errorf("raw control characters on a pipe: %v", raw)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{"JOBSTREAM_URL": url}, "tail", id, "--json")
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if !errors.Is(res.err, errSilent) || len(lines) != 7 {
			t.Fatalf("tail --json: %v\n%s", res.err, res.stdout)
		}
		var got strings.Builder
		for i, line := range lines {
			var c store.Chunk
			var d struct{ Content, Thinking string }
			if err := json.Unmarshal([]byte(line), &c); err != nil || c.Seq != i {
				t.Fatalf("line %d = %q, want chunk %d", i, line, i)
			}
			_ = json.Unmarshal(c.Data, &d)
			got.WriteString(d.Thinking + d.Content)
		}
		want := "plan\x1b]0;pwned\x07 \x1b[2J\u009b31m" + "Safe\rEVIL\b\b \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ \x1b]52;c;cHduZWQ=\x07\x7f\u0085end\tok\n"
		if got.String() != want {
			t.Errorf("tail --json text = %q, want %q", got.String(), want)
		}
		// JSON's own escapes for C0, the rest as raw bytes: as sent.
		for _, s := range []string{`\u001b]0;pwned\u0007`, "\u009b31m", "\x7f", "\u0085end"} {
			if !strings.Contains(res.stdout, s) {
				t.Errorf("tail --json has no %q:\n%s", s, res.stdout)
			}
		}
	})
}
