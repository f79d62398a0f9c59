package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/store"
)

func TestAskAndTail(t *testing.T) {
	t.Parallel()
	url := serve(t)
	env := map[string]string{"JOBSTREAM_URL": url}

	// ask: submit, stream the text to stdout, report on stderr.
	ask := runCmd(t, env, "ask", "write me a paragraph about soccer", "--param", "sim_tokens=12", "--param", "sim_tokens_per_second=0")
	if ask.err != nil {
		t.Fatalf("ask: %v\nstderr: %s", ask.err, ask.stderr)
	}
	m := regexp.MustCompile(`(?m)^job ([0-9a-f-]{36})$`).FindStringSubmatch(ask.stderr)
	if m == nil {
		t.Fatalf("ask stderr %q names no job", ask.stderr)
	}
	id := m[1]
	if !strings.HasPrefix(ask.stdout, "You asked: write me a paragraph about soccer") || !strings.HasSuffix(ask.stdout, "\n") {
		t.Errorf("ask stdout = %q", ask.stdout)
	}
	if !strings.Contains(ask.stderr, "[completed: stop, 12 tokens in ") {
		t.Errorf("ask stderr = %q, want the outcome", ask.stderr)
	}
	if strings.Contains(ask.stderr, "waiting for the first token") || strings.ContainsRune(ask.stdout+ask.stderr, '\x1b') {
		t.Errorf("ask drew a spinner or styles on a non-terminal: %q", ask.stderr)
	}
	words := len(strings.Fields(ask.stdout))
	if words != 12 {
		t.Errorf("ask printed %d words, want the 12 tokens", words)
	}

	t.Run("TailJSON", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, env, "tail", id, "--json")
		if res.err != nil {
			t.Fatalf("tail: %v\n%s", res.err, res.stderr)
		}
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != 14 {
			t.Fatalf("tail printed %d lines, want 12 content + usage + finish:\n%s", len(lines), res.stdout)
		}
		var text strings.Builder
		for i, line := range lines {
			var c store.Chunk
			if err := json.Unmarshal([]byte(line), &c); err != nil || c.Seq != i {
				t.Fatalf("line %d = %q (%v), want chunk %d as JSON", i, line, err, i)
			}
			var d struct{ Content string }
			_ = json.Unmarshal(c.Data, &d)
			text.WriteString(d.Content)
		}
		if text.String()+"\n" != ask.stdout {
			t.Errorf("tail's text %q differs from ask's %q", text.String(), ask.stdout)
		}
		if !strings.Contains(lines[13], `"finish_reason":"stop"`) {
			t.Errorf("last line %q", lines[13])
		}
	})

	t.Run("TailText", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"tail", id}, {"tail", id, "--text"}} {
			res := runCmd(t, env, args...)
			if res.err != nil || res.stdout != ask.stdout {
				t.Errorf("%q = %q, %v; want ask's output %q", args, res.stdout, res.err, ask.stdout)
			}
		}
	})

	t.Run("TailFromOffset", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, map[string]string{}, "tail", "--url", url, "--offset", "10", "--json", id)
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if res.err != nil || len(lines) != 4 || !strings.HasPrefix(lines[0], `{"seq":10,`) {
			t.Errorf("tail --offset 10 = %q, %v; want chunks 10 to 13", res.stdout, res.err)
		}
	})

	t.Run("TailUnknownJob", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, env, "tail", "0190b2a4-0000-7000-8000-000000000000")
		if res.err == nil || !strings.Contains(res.err.Error(), "404") || !strings.Contains(res.err.Error(), "no such job") {
			t.Errorf("tail of an unknown job = %v", res.err)
		}
	})

	t.Run("AskUnknownEngine", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, env, "ask", "hi", "--engine", "nope")
		if res.err == nil || !strings.Contains(res.err.Error(), `unknown engine "nope"`) {
			t.Errorf("ask --engine nope = %v", res.err)
		}
	})

	t.Run("AskFailedJob", func(t *testing.T) {
		t.Parallel()
		res := runCmd(t, env, "ask", "hi", "--param", "sim_tokens_per_second=0", "--param", "sim_fail_after=3")
		if res.err == nil {
			t.Fatal("ask of a failing job succeeded")
		}
		if !strings.Contains(res.stderr, "[failed: error, ") || !strings.Contains(res.stderr, "sim_error") {
			t.Errorf("stderr = %q, want the failure and its error", res.stderr)
		}
	})
}
