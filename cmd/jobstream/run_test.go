package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jobstream/jobstream/internal/testserver"
)

// runResult is what one run of the command wrote and returned.
type runResult struct {
	stdout, stderr string
	err            error
}

// runCmd runs the command in-process with env as its whole environment.
func runCmd(t *testing.T, env map[string]string, args ...string) runResult {
	t.Helper()
	var stdout, stderr syncBuffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return runResult{stdout.String(), stderr.String(), err}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a server's
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve runs `jobstream serve` in-process on a database of the test's own
// and returns its base URL once it logged the address it bound.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	url, _ := serveOn(t, testserver.Database(t), append([]string{"--dev"}, args...)...)
	return url
}

// serveOn runs `jobstream serve` in-process on database dbURL, with args
// (no --dev unless given), and returns its base URL.
func serveOn(t *testing.T, dbURL string, args ...string) (string, string) {
	t.Helper()
	env := map[string]string{"DATABASE_URL": dbURL}
	log := testserver.NewLogWatcher()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--max-conns", "4"}, args...)
		done <- run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &bytes.Buffer{}, log)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", log.String())
		}
	})
	select {
	case addr := <-log.Addr():
		return "http://" + addr, dbURL
	case err := <-done:
		t.Fatalf("serve exited before serving: %v\n%s", err, log.String())
	}
	return "", ""
}

func TestHelp(t *testing.T) {
	t.Parallel()

	t.Run("TopLevel", func(t *testing.T) {
		t.Parallel()
		for _, arg := range []string{"--help", "-h", "help"} {
			res := runCmd(t, nil, arg)
			if res.err != nil || !strings.Contains(res.stdout, "Usage:") {
				t.Errorf("jobstream %s = %v, stdout %q", arg, res.err, res.stdout)
			}
			for _, c := range commands() {
				if !strings.Contains(res.stdout, "  "+c.name+" ") {
					t.Errorf("jobstream %s does not list %s", arg, c.name)
				}
			}
		}
	})

	for _, c := range commands() {
		t.Run(strings.ToUpper(c.name[:1])+c.name[1:], func(t *testing.T) {
			t.Parallel()
			// --help needs no database or server, prints to stdout, and
			// succeeds.
			res := runCmd(t, nil, c.name, "--help")
			if res.err != nil {
				t.Errorf("%s --help: %v", c.name, res.err)
			}
			if !strings.HasPrefix(res.stdout, "Usage: jobstream "+c.name) {
				t.Errorf("%s --help stdout = %q, want its usage", c.name, res.stdout)
			}
			if res.stderr != "" {
				t.Errorf("%s --help wrote to stderr: %q", c.name, res.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"NoCommand", nil},
		{"UnknownCommand", []string{"frobnicate"}},
		{"UnknownFlag", []string{"ask", "--nope", "hi"}},
		{"AskWithoutPrompt", []string{"ask"}},
		{"AskBlankPrompt", []string{"ask", "  "}},
		{"AskBadParam", []string{"ask", "hi", "--param", "novalue"}},
		{"TailWithoutID", []string{"tail"}},
		{"TailBadID", []string{"tail", "not-a-job-id"}},
		{"TailNegativeOffset", []string{"tail", "0190b2a4-0000-7000-8000-000000000000", "--offset", "-1"}},
		{"MigrateTwoActions", []string{"migrate", "up", "down"}},
		{"MigrateUnknownAction", []string{"migrate", "sideways"}},
		{"ServeWithArgument", []string{"serve", "extra"}},
		{"ServeBadRole", []string{"serve", "--role", "chef"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runCmd(t, nil, tc.args...)
			var ue usageError
			if !errors.As(res.err, &ue) {
				t.Errorf("jobstream %q = %v, want a usage error (exit status 2)", tc.args, res.err)
			}
		})
	}
}
