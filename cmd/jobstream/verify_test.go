package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/export/exporttest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestVerifyAndExport: verify exits 0 on intact jobs and 1 naming the
// first bad seq of a tampered one, with --all too; export writes the job,
// its chunks with hashes and its events.
func TestVerifyAndExport(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 2)
	s := store.New(pool)
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": url}
	finished := func() uuid.UUID {
		l := testserver.RunningJob(t, pool, "acme", "w1")
		chunks := []store.NewChunk{testserver.Content(l, 0, "a"), testserver.Content(l, 1, "b"), testserver.FinishChunk(l, 2, "stop")}
		if _, err := s.WriteBatch(ctx, "w1", chunks, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
			t.Fatal(err)
		}
		return l.JobID
	}
	good, bad := finished(), finished()

	if res := runCmd(t, env, "verify", good.String()); res.err != nil || !strings.Contains(res.stdout, good.String()+" ok: 3 chunks, intact") {
		t.Fatalf("verify of an intact job: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "verify", "--all"); res.err != nil || !strings.Contains(res.stdout, "2 jobs verified: 2 intact, 0 broken") {
		t.Fatalf("verify --all: %v\n%s%s", res.err, res.stdout, res.stderr)
	}

	// A superuser deletes the finish chunk, bypassing the triggers.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
	if err == nil {
		_, err = conn.Exec(ctx, `DELETE FROM job_chunks WHERE job_id = $1 AND seq = 2`, bad)
	}
	conn.Conn().Close(ctx) //nolint:errcheck // drop the session with its setting
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	want := bad.String() + " BROKEN at seq 2: truncated: 2 of the job's 3 chunks are stored"
	res := runCmd(t, env, "verify", good.String(), bad.String())
	if !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, want) || !strings.Contains(res.stdout, good.String()+" ok") {
		t.Fatalf("verify of a truncated job: %v\n%s%s\nwant %q", res.err, res.stdout, res.stderr, want)
	}
	res = runCmd(t, env, "verify", "--all", "--since", "1h")
	if !errors.Is(res.err, errSilent) || !strings.Contains(res.stdout, want) || strings.Contains(res.stdout, good.String()) ||
		!strings.Contains(res.stdout, "2 jobs verified: 1 intact, 1 broken") {
		t.Fatalf("verify --all: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "verify", "--all", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); res.err != nil || !strings.Contains(res.stdout, "0 jobs verified") {
		t.Fatalf("verify --all --since the future: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "verify", "--all", "--since", "yesterday"); res.err == nil || !strings.Contains(res.err.Error(), "--since") {
		t.Errorf("verify --since yesterday: %v, want a usage error", res.err)
	}

	res = runCmd(t, env, "export", "--tenant", "acme")
	if res.err != nil {
		t.Fatalf("export: %v\n%s", res.err, res.stderr)
	}
	types := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var v struct {
			Type string `json:"type"`
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if v.Type == "chunk" && len(v.Hash) != 64 {
			t.Errorf("chunk line without its hash: %s", line)
		}
		types[v.Type]++
	}
	if types["job"] != 2 || types["chunk"] != 5 || types["event"] < 2 {
		t.Errorf("export has %v lines, want 2 jobs, 5 chunks and their events", types)
	}
	if res := runCmd(t, env, "export", good.String()); res.err != nil || strings.Count(res.stdout, `"type":"job"`) != 1 {
		t.Errorf("export JOB_ID: %v\n%s", res.err, res.stdout)
	}
}

// TestVerifyExport: `jobstream verify --export FILE` reaches the verdict
// every fixture of exporttest demands (real exports of a real database,
// intact and tampered), and prints what the README's Python checker
// prints, so both name the same broken jobs; --export goes alone, and
// --help documents it.
func TestVerifyExport(t *testing.T) {
	t.Parallel()
	script := exporttest.PythonChecker(t)
	fixtures := exporttest.Fixtures(t)
	for _, f := range fixtures {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			res := runCmd(t, nil, "verify", "--export", f.Path)
			switch {
			case f.OK && res.err != nil:
				t.Errorf("exit with %v, want 0\n%s%s", res.err, res.stdout, res.stderr)
			case !f.OK && !errors.Is(res.err, errSilent):
				t.Errorf("exit with %v, want status 1\n%s%s", res.err, res.stdout, res.stderr)
			}
			if got := exporttest.BrokenIDs(res.stdout); !reflect.DeepEqual(got, f.Broken) {
				t.Errorf("reports broken %v, want %v\n%s", got, f.Broken, res.stdout)
			}
			py, code := exporttest.RunPython(t, script, f.Path, false)
			if got, want := exporttest.BrokenIDs(py), exporttest.BrokenIDs(res.stdout); !reflect.DeepEqual(got, want) || py != res.stdout {
				t.Errorf("python3 (exit %d):\n%s\njobstream verify --export:\n%s", code, py, res.stdout)
			}
		})
	}

	var intact string
	for _, f := range fixtures {
		if f.OK {
			intact = f.Path
		}
	}
	stdin, err := os.ReadFile(intact)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--export", "-"}, func(string) string { return "" }, bytes.NewReader(stdin), &stdout, &stderr); err != nil {
		t.Errorf("verify --export - (an intact export on stdin): %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, args := range [][]string{
		{"verify", "--export", intact, "--all"},
		{"verify", "--export", intact, uuid.NewString()},
		{"verify", "--export", intact, "--json"},
	} {
		var u usageError
		if res := runCmd(t, nil, args...); !errors.As(res.err, &u) {
			t.Errorf("%v: %v, want a usage error", args, res.err)
		}
	}
	if res := runCmd(t, nil, "verify", "--export", filepath.Join(t.TempDir(), "missing.jsonl")); res.err == nil || errors.Is(res.err, errSilent) {
		t.Errorf("verify --export of a missing file: %v, want an error naming it", res.err)
	}
	if res := runCmd(t, nil, "verify", "--help"); res.err != nil || !strings.Contains(res.stdout, "--export FILE") || !strings.Contains(res.stdout, "internal/export/README.md") {
		t.Errorf("verify --help does not document --export:\n%s", res.stdout)
	}
}
