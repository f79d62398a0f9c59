// Package exporttest is test-only support for checking exports: real
// exports of a real database, intact and tampered, and the Python checker
// of internal/export/README.md taken from that file and run as written.
// The export package's tests and `jobstream verify --export`'s run the same
// fixtures, so the Go checker, the CLI and the README's Python cannot
// drift apart. Nothing here is used by the jobstream binary.
package exporttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/export"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// Fixture is one export file and the verdict every checker must reach.
type Fixture struct {
	Name string
	Path string
	// Broken are the ids of the jobs that must be reported broken.
	Broken []string
	// Malformed is the number of malformed lines that must be reported.
	Malformed int
	// OK is whether the export verifies (exit status 0).
	OK bool
}

// PythonHeading is the heading of internal/export/README.md under which
// the first ```python block is the checker.
const PythonHeading = "## Checking an export with Python"

// PythonChecker writes the README's Python checker, exactly as written,
// to a file and returns its path. It skips the test when python3 is not
// installed (it is here and in CI).
func PythonChecker(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("exporttest: cannot locate its source")
	}
	readme, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := CodeBlock(string(readme), PythonHeading, "python")
	if err != nil {
		t.Fatalf("internal/export/README.md: %v", err)
	}
	path := filepath.Join(t.TempDir(), "check_export.py")
	if err := os.WriteFile(path, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// CodeBlock returns the body of the first fenced block of lang after the
// line heading in markdown.
func CodeBlock(markdown, heading, lang string) (string, error) {
	lines := strings.SplitAfter(markdown, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimRight(l, "\r\n") == heading })
	if i < 0 {
		return "", fmt.Errorf("no heading %q", heading)
	}
	for ; i < len(lines); i++ {
		if strings.TrimRight(lines[i], "\r\n") == "```"+lang {
			break
		}
	}
	var body strings.Builder
	for i++; i < len(lines); i++ {
		if strings.TrimRight(lines[i], "\r\n") == "```" {
			return body.String(), nil
		}
		body.WriteString(lines[i])
	}
	return "", fmt.Errorf("no closed ```%s block under %q", lang, heading)
}

// RunPython runs the checker at script on file, with -O when optimize,
// and returns its standard output and exit status.
func RunPython(t testing.TB, script, file string, optimize bool) (string, int) {
	t.Helper()
	args := []string{script, file}
	if optimize {
		args = append([]string{"-O"}, args...)
	}
	cmd := exec.Command("python3", args...)
	// Nothing from the environment changes what python runs.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PYTHONDONTWRITEBYTECODE=1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &exit):
		if stderr.Len() > 0 {
			// The checker reports on stdout; anything on stderr is a crash.
			t.Errorf("python3 %s: %s", strings.Join(args, " "), stderr.String())
		}
		return stdout.String(), exit.ExitCode()
	default:
		t.Fatalf("python3: %v", err)
		return "", 0
	}
}

var brokenLine = regexp.MustCompile(`(?m)^([0-9a-f-]{36}) BROKEN`)

// BrokenIDs are the job ids a checker's output reports broken, sorted.
func BrokenIDs(output string) []string {
	var ids []string
	for _, m := range brokenLine.FindAllStringSubmatch(output, -1) {
		ids = append(ids, m[1])
	}
	slices.Sort(ids)
	return ids
}

// MalformedLines counts the malformed lines a checker's output reports.
func MalformedLines(output string) int {
	return len(regexp.MustCompile(`(?m)^line \d+: `).FindAllString(output, -1))
}

// jobs are the fixture's jobs, one per way a job ends or runs.
type jobs struct {
	completed, tricky, cancelledQueued, cancelledRunning, failed, rescued, running, resealed uuid.UUID
}

// Fixtures builds jobs in a database of the test's own (the rescuer acts
// on every job in a database), exports them with the export package, and
// writes the exports, intact and tampered, to files.
func Fixtures(t testing.TB) []Fixture {
	t.Helper()
	pool := testserver.Pool(t, testserver.Database(t), 3)
	s := store.New(pool)
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()
	var j jobs

	finished := func(status string, texts []string, last store.NewChunk) uuid.UUID {
		t.Helper()
		l := testserver.RunningJob(t, pool, tenant, "w1")
		var chunks []store.NewChunk
		for i, txt := range texts {
			chunks = append(chunks, testserver.Content(l, i, txt))
		}
		last.Lease, last.Seq = l, len(texts)
		chunks = append(chunks, last)
		fin := store.Finish{Lease: l, Status: status, FinishReason: "stop"}
		if _, err := s.WriteBatch(ctx, "w1", chunks, []store.Finish{fin}); err != nil {
			t.Fatal(err)
		}
		return l.JobID
	}
	j.completed = finished(store.StatusCompleted, []string{"a", "b", "c"}, testserver.FinishChunk(store.Lease{}, 0, "stop"))
	j.tricky = finished(store.StatusCompleted,
		[]string{"plain", "non-ASCII: héllo ☃ 😀", "a NUL: \x00!", `quotes " and \ backslash`, "<html>&", "\u2028\u2029"},
		testserver.FinishChunk(store.Lease{}, 0, "length"))
	j.cancelledRunning = finished(store.StatusCancelled, []string{"x"}, testserver.FinishChunk(store.Lease{}, 0, "cancelled"))
	errData, _ := json.Marshal(map[string]any{"finish_reason": "error", "error": map[string]string{"message": "boom", "type": "sim_error"}})
	j.failed = finished(store.StatusFailed, []string{"y"}, store.NewChunk{StreamType: "content", Data: errData})
	j.resealed = finished(store.StatusCompleted, []string{"p", "q"}, testserver.FinishChunk(store.Lease{}, 0, "stop"))

	queued, err := s.Submit(ctx, store.SubmitParams{Tenant: tenant, Engine: "sim", Request: store.Request{Command: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestCancel(ctx, tenant, queued.ID); err != nil {
		t.Fatal(err)
	}
	j.cancelledQueued = queued.ID

	dead := testserver.RunningJob(t, pool, tenant, "dead-worker")
	if _, err := s.WriteBatch(ctx, "dead-worker", []store.NewChunk{testserver.Content(dead, 0, "half")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1`, dead.JobID); err != nil {
		t.Fatal(err)
	}
	if res, err := s.RescueExpired(ctx, 100, time.Second); err != nil || len(res.Failed) != 1 {
		t.Fatalf("RescueExpired = %+v, %v; want the job failed", res, err)
	}
	j.rescued = dead.JobID

	running := testserver.RunningJob(t, pool, tenant, "w1")
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{testserver.Content(running, 0, "so"), testserver.Content(running, 1, " far")}, nil); err != nil {
		t.Fatal(err)
	}
	j.running = running.JobID

	intact := exportAll(t, s, tenant)
	lines := strings.SplitAfter(strings.TrimSuffix(intact, "\n"), "\n")
	lines[len(lines)-1] += "\n"

	// The auditor's attack in the database: a superuser who bypasses the
	// triggers deletes the finish chunk and re-seals the job for the
	// shorter chain.
	resealDB(t, pool, j.resealed)
	resealed := exportAll(t, s, tenant)

	dir := t.TempDir()
	var out []Fixture
	add := func(f Fixture, text string) {
		f.Path = filepath.Join(dir, f.Name+".jsonl")
		if err := os.WriteFile(f.Path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		slices.Sort(f.Broken)
		out = append(out, f)
	}
	ids := func(u ...uuid.UUID) []string {
		var s []string
		for _, id := range u {
			s = append(s, id.String())
		}
		return s
	}
	// edit returns the intact lines with fn applied to each (nil drops).
	edit := func(fn func(l string) []string) string {
		var b strings.Builder
		for _, l := range lines {
			for _, r := range fn(l) {
				b.WriteString(r)
			}
		}
		return b.String()
	}
	keep := func(l string) []string { return []string{l} }
	isJobLine := func(l string, id uuid.UUID) bool {
		return strings.HasPrefix(l, `{"type":"job","id":"`+id.String()+`"`)
	}
	isChunk := func(l string, id uuid.UUID, seq int) bool {
		return strings.HasPrefix(l, fmt.Sprintf(`{"type":"chunk","job_id":"%s","seq":%d,`, id, seq))
	}

	add(Fixture{Name: "intact", OK: true}, intact)
	add(Fixture{Name: "tampered-chunk", Broken: ids(j.tricky)}, strings.Replace(intact, "héllo", "hello", 1))
	add(Fixture{Name: "truncated-in-the-database", Broken: ids(j.resealed)}, resealed)
	// The same attack on the file: the finish chunk's line deleted and the
	// job line re-sealed for the shorter chain.
	add(Fixture{Name: "truncated-in-the-file", Broken: ids(j.completed)}, edit(func(l string) []string {
		switch {
		case isChunk(l, j.completed, 3):
			return nil
		case isJobLine(l, j.completed):
			var h string
			for _, c := range lines {
				if isChunk(c, j.completed, 2) {
					var v struct{ Hash string }
					_ = json.Unmarshal([]byte(c), &v)
					h = v.Hash
				}
			}
			return []string{resealLine(t, l, 3, h)}
		}
		return keep(l)
	}))
	add(Fixture{Name: "chunk-without-its-job-line", Broken: ids(j.cancelledQueued)}, edit(func(l string) []string {
		if isJobLine(l, j.cancelledQueued) {
			return nil
		}
		return keep(l)
	}))
	var jobLine string
	for _, l := range lines {
		if isJobLine(l, j.cancelledQueued) {
			jobLine = l
		}
	}
	add(Fixture{Name: "job-line-last", OK: true}, edit(func(l string) []string {
		if isJobLine(l, j.cancelledQueued) {
			return nil
		}
		return keep(l)
	})+jobLine)
	// Every line in reverse: each job line now follows its chunks (fine),
	// and the chunks of every job with more than one come last first.
	reversed := slices.Clone(lines)
	slices.Reverse(reversed)
	add(Fixture{Name: "reversed", Broken: ids(j.completed, j.tricky, j.cancelledRunning, j.failed, j.resealed, j.rescued, j.running)},
		strings.Join(reversed, ""))
	add(Fixture{Name: "two-chunks-swapped", Broken: ids(j.failed)}, edit(func(l string) []string {
		switch {
		case isChunk(l, j.failed, 0):
			return nil
		case isChunk(l, j.failed, 1):
			for _, c := range lines {
				if isChunk(c, j.failed, 0) {
					return []string{l, c}
				}
			}
		}
		return keep(l)
	}))
	add(Fixture{Name: "malformed-lines", Broken: ids(j.rescued), Malformed: 9}, edit(func(l string) []string {
		switch {
		case isJobLine(l, j.completed):
			return []string{
				"not json\n",
				"\n",
				"[1]\n",
				"{\"type\":\"chunk\",\"job_id\":\"x\",\"seq\":NaN}\n",
				"{\"type\":\"job\",\"id\":\"\xff\"}\n",
				"{\"type\":\"note\"}\n",
				`{"type":"chunk","job_id":"` + strings.ToUpper(j.completed.String()) + `","seq":0,"stream_type":"content","data":"{}","hash":"00"}` + "\n",
				`{"type":"job","id":"` + uuid.NewString() + `","status":"done"}` + "\n",
				`{"type":"chunk","job_id":"` + j.completed.String() + `","seq":1.0,"stream_type":"content","data":"{}","hash":"00"}` + "\n",
				l,
			}
		case isJobLine(l, j.rescued):
			return []string{l, l} // two job lines
		}
		return keep(l)
	}))
	add(Fixture{Name: "empty"}, "")
	// The transparency log's members (a checkpoint line first, a job
	// line's log_index, leaf and inclusion_proof): both checkers read
	// past them without a verifier key; a checkpoint line without a note
	// is malformed to both.
	withLog := `{"type":"checkpoint","note":"example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAA\n"}` + "\n" +
		edit(func(l string) []string {
			if isJobLine(l, j.completed) {
				return []string{strings.TrimSuffix(l, "}\n") + `,"log_index":0,"leaf":"AQ==","inclusion_proof":[]}` + "\n"}
			}
			return keep(l)
		})
	add(Fixture{Name: "checkpoint-and-proofs", OK: true}, withLog)
	add(Fixture{Name: "checkpoint-malformed", Malformed: 1}, `{"type":"checkpoint","note":7}`+"\n"+intact)

	// Erased jobs (jobstream erase), of a tenant of their own: an erased
	// job verifies from its hashes; a hash edited in the file, or a chunk
	// given its data back, does not.
	erasedTenant := "e-" + uuid.NewString()
	var erased []uuid.UUID
	for range 2 {
		l := testserver.RunningJob(t, pool, erasedTenant, "w1")
		chunks := []store.NewChunk{testserver.Content(l, 0, "secret"), testserver.Content(l, 1, "more"), testserver.FinishChunk(l, 2, "stop")}
		if _, err := s.WriteBatch(ctx, "w1", chunks, []store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Erase(ctx, l.JobID, "GDPR Art. 17", "dpo@example"); err != nil {
			t.Fatal(err)
		}
		erased = append(erased, l.JobID)
	}
	erasedExport := exportAll(t, s, erasedTenant)
	if strings.Contains(erasedExport, "secret") || !strings.Contains(erasedExport, `"erased":{"by":"dpo@example"`) {
		t.Fatalf("export of erased jobs:\n%s", erasedExport)
	}
	add(Fixture{Name: "erased", OK: true}, erasedExport)
	var first struct{ Hash string }
	for _, l := range strings.SplitAfter(erasedExport, "\n") {
		if isChunk(l, erased[0], 1) {
			_ = json.Unmarshal([]byte(l), &first)
		}
	}
	add(Fixture{Name: "erased-hash-edited", Broken: ids(erased[0])}, strings.Replace(erasedExport, first.Hash, strings.Repeat("0", 64), 1))
	add(Fixture{Name: "erased-data-restored", Broken: ids(erased[1])}, func() string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(erasedExport, "\n") {
			if isChunk(l, erased[1], 0) {
				l = strings.Replace(l, `"data":"{\"erased\":true}"`, `"data":"{\"content\":\"secret\"}"`, 1)
			}
			b.WriteString(l)
		}
		return b.String()
	}())
	return out
}

// resealDB deletes a completed job's finish chunk and re-seals the job for
// the shorter chain, as a superuser bypassing every trigger.
func resealDB(t testing.TB, pool *pgxpool.Pool, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	defer conn.Conn().Close(ctx) //nolint:errcheck // drop the session with its setting
	for _, q := range []string{
		`SET session_replication_role = replica`,
		`DELETE FROM job_chunks WHERE job_id = $1 AND seq = (SELECT max(seq) FROM job_chunks WHERE job_id = $1)`,
		`UPDATE jobs SET chunk_count = chunk_count - 1,
		        final_hash = (SELECT hash FROM job_chunks WHERE job_id = $1 ORDER BY seq DESC LIMIT 1)
		 WHERE id = $1`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{id}
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("tamper: %s: %v", q, err)
		}
	}
}

// resealLine rewrites a job line's seal.
func resealLine(t testing.TB, l string, count int, hash string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		t.Fatal(err)
	}
	m["chunk_count"], _ = json.Marshal(count)
	m["final_hash"], _ = json.Marshal(hash)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func exportAll(t testing.TB, s *store.Store, tenant string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Records(context.Background(), store.JobFilter{Tenant: tenant}, func(r store.Record) error {
		return export.Write(&buf, r)
	}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
