package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestIdleLongPolls holds 5,000 concurrent long-polls (wait=60s) on one
// node. A waiting request holds no database connection, so the node's
// connections stay within its pools and a job submitted meanwhile streams
// to its end at once; the node's memory stays bounded. Ending the job
// answers all 5,000 with its final status.
func TestIdleLongPolls(t *testing.T) {
	t.Parallel()
	const polls = 5000
	raiseFileLimit(t, 2*polls+1000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := setup(t)
	// Limits on, high enough for one client's 5,000 polls; waits of up
	// to a minute, so that a slow machine's set-up does not outlast them.
	a := b.serve("--max-conns", "4", "--worker-conns", "4", "--max-inflight", "10000", "--rate-limit", "100000", "--max-wait", "1m")

	// Jobs whose model never answers while the polls wait.
	jobs := make([]uuid.UUID, 10)
	for i := range jobs {
		jobs[i] = b.submit(a, "idle", "sim_first_token_delay", 1800).ID
	}
	tr := &http.Transport{MaxIdleConnsPerHost: polls, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	type answer struct {
		status int
		page   jobsapi.ChunkPage
		err    error
	}
	answers := make(chan answer, polls)
	var returned atomic.Int64
	for i := range polls {
		go func() {
			resp, err := hc.Get(fmt.Sprintf("%s/v1/jobs/%s/chunks?wait=60s", a.URL, jobs[i%len(jobs)]))
			returned.Add(1)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			var page jobsapi.ChunkPage
			err = json.NewDecoder(resp.Body).Decode(&page)
			answers <- answer{status: resp.StatusCode, page: page, err: err}
		}()
	}
	eventually(t, 2*time.Minute, "5,000 long-polls to wait", func() bool {
		return b.metric(a, "jobstream_reader_waiters") >= polls
	})

	// While they wait: connections within the pools, and the node serves.
	var conns int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&conns); err != nil {
		t.Fatal(err)
	}
	// api pool 4 + worker pool 4 + LISTEN 1 (+ our own pool's other one).
	if conns > 10 {
		t.Errorf("%d database connections with %d long-polls waiting, want at most the pools' 8 + LISTEN", conns, polls)
	}
	// Memory: what the Go runtime holds (heap, stacks, buffers) stays
	// well within 300 MB; so does the process's RSS, except under the
	// race detector, whose shadow memory is several times the heap.
	rss, goSys := rssBytes(t, a.Pid()), int64(b.metric(a, "go_memstats_sys_bytes"))
	t.Logf("%d long-polls waiting: %d database connections, RSS %d MiB, Go runtime %d MiB, %v goroutines",
		polls, conns, rss>>20, goSys>>20, b.metric(a, "go_goroutines"))
	const limit = 300 << 20
	if goSys > limit {
		t.Errorf("the Go runtime holds %d MiB with %d long-polls waiting, want below %d MiB", goSys>>20, polls, limit>>20)
	}
	if rssLimit := int64(limit) * map[bool]int64{false: 1, true: 5}[raceBuild]; rss > rssLimit {
		t.Errorf("RSS %d MiB with %d long-polls waiting, want below %d MiB", rss>>20, polls, rssLimit>>20)
	}
	probe := b.submit(a, "served while 5,000 wait", "sim_tokens", 20, "sim_tokens_per_second", 0)
	r, err := reader{hc: b.hc, urls: fixed(a.URL)}.poll(ctx, probe.ID)
	if err != nil || r.Status != store.StatusCompleted {
		t.Fatalf("a job streamed while %d long-polls waited: %s (%v)", polls, r.Status, err)
	}
	if n := returned.Load(); n > 0 {
		t.Errorf("%d long-polls returned before their wait was over", n)
	}

	// Ending the jobs answers every long-poll with the final status.
	for _, id := range jobs {
		if _, err := b.client(a).Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for range polls {
		ans := testserver.Recv(t, answers, "a long-poll's answer")
		if ans.err != nil || ans.status != http.StatusOK || ans.page.Status != store.StatusCancelled || len(ans.page.Chunks) != 1 {
			t.Fatalf("long-poll answered %d %+v (%v), want 200 with the cancelled finish chunk", ans.status, ans.page, ans.err)
		}
	}
}

// raiseFileLimit raises this process's open-file limit (which the servers
// it starts inherit) to at least n, or skips the test.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the open-file limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("the open-file limit is %d (hard), below the %d this test needs", lim.Max, n)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot raise the open-file limit to %d: %v", lim.Max, err)
	}
}

// rssBytes is a process's resident memory, from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("cannot read the server's memory use: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q", v)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestSubmissionStorm: 2,000 jobs submitted at once (in about a second)
// are all accepted (201) and queued, none dropped; a worker that starts
// afterwards drains them all, claiming them in submission order.
func TestSubmissionStorm(t *testing.T) {
	t.Parallel()
	const n = 2000
	raiseFileLimit(t, 2*n+1000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := setup(t)
	api := b.serve("--role", "api", "--max-conns", "8", "--rate-limit", "100000")

	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	c := &client.Client{BaseURL: api.URL, HTTP: &http.Client{Transport: tr}}
	start := time.Now()
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		mu     sync.Mutex
		ids    []uuid.UUID
	)
	for i := range n {
		wg.Go(func() {
			job, err := c.Submit(ctx, jobsapi.CreateJobRequest{Engine: "sim", Command: fmt.Sprintf("storm %d", i), Params: params("sim_tokens", 3, "sim_tokens_per_second", 0)})
			if err != nil {
				if failed.Add(1) == 1 {
					t.Errorf("submit %d: %v", i, err)
				}
				return
			}
			mu.Lock()
			ids = append(ids, job.ID)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d submissions in %s", n, time.Since(start).Round(time.Millisecond))
	if failed.Load() > 0 {
		t.Fatalf("%d of %d submissions failed", failed.Load(), n)
	}
	var queued int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status = 'queued'`).Scan(&queued); err != nil || queued != n {
		t.Fatalf("%d jobs queued (%v), want %d", queued, err, n)
	}

	w := b.serve("--concurrency", "64")
	eventually(t, 2*time.Minute, "the worker to drain the queue", func() bool {
		var left int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status <> 'completed'`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
	t.Logf("drained in %s", time.Since(start).Round(time.Millisecond))
	// Claimed oldest first: in id (submission) order, the claim times
	// never go backwards (one claim statement takes a batch, in order).
	rows, err := b.pool.Query(ctx, `SELECT id, started_at, (SELECT count(*) FROM job_chunks c WHERE c.job_id = j.id) FROM jobs j ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var last time.Time
	for i := 0; rows.Next(); i++ {
		var id uuid.UUID
		var started time.Time
		var chunks int
		if err := rows.Scan(&id, &started, &chunks); err != nil {
			t.Fatal(err)
		}
		if started.Before(last) {
			t.Fatalf("job %d (%s) was claimed at %s, before job %d at %s: not in submission order", i, id, started, i-1, last)
		}
		if chunks != 5 {
			t.Fatalf("job %s has %d chunks, want 5", id, chunks)
		}
		last = started
	}
	// The list endpoint pages them: its page size is capped.
	var list jobsapi.JobList
	resp, err := b.hc.Get(w.URL + "/v1/jobs?limit=100000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Jobs) != 500 || list.NextBefore == nil {
		t.Errorf("GET /v1/jobs?limit=100000: %d jobs, next %v (%v), want the capped page of 500", len(list.Jobs), list.NextBefore, err)
	}
}

// TestLimits: per-key request rate and concurrent requests (429 with
// Retry-After, on both APIs, one key not affecting another), body, prompt
// and page size limits, and the header timeout that defeats slowloris.
func TestLimits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := setup(t)

	t.Run("RatePerKey", func(t *testing.T) {
		// A token every 10 s: none comes back during the test.
		a := b.serve("--dev=false", "--rate-limit", "0.1", "--rate-burst", "3")
		k1, k2 := b.key("rate-1"), b.key("rate-2")
		var codes []int
		var retry string
		for range 4 {
			resp := b.do(t, k1, http.MethodGet, a.URL+"/v1/jobs", "")
			codes = append(codes, resp.StatusCode)
			retry = resp.Header.Get("Retry-After")
		}
		if codes[2] != http.StatusOK || codes[3] != http.StatusTooManyRequests || retry == "" {
			t.Errorf("4 requests at once with a burst of 3: %v, Retry-After %q; want the 4th refused with 429 and Retry-After", codes, retry)
		}
		// The SEMOSS surface shares the key's bucket, in its own shape.
		resp := b.do(t, k1, http.MethodPost, a.URL+"/Monolith/api/engine/status", "jobId="+uuid.NewString())
		var se struct{ ErrorMessage, ErrorType string }
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || json.Unmarshal(body, &se) != nil || se.ErrorMessage == "" {
			t.Errorf("SEMOSS request over the rate: %d %s", resp.StatusCode, body)
		}
		if resp := b.do(t, k2, http.MethodGet, a.URL+"/v1/jobs", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("another key: %d, want 200: limits are per key", resp.StatusCode)
		}
	})

	t.Run("ConcurrentWaitsPerKey", func(t *testing.T) {
		a := b.serve("--dev=false", "--max-inflight", "2")
		k1, k2 := b.key("waits-1"), b.key("waits-2")
		c := b.client(a, k1)
		job, err := c.Submit(ctx, jobsapi.CreateJobRequest{Command: "slow", Params: params("sim_first_token_delay", 1800)})
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { c.Chunks(wctx, job.ID, client.ChunksParams{Wait: 25 * time.Second}) })
		}
		eventually(t, time.Minute, "two long-polls to wait", func() bool { return b.metric(a, "jobstream_reader_waiters") >= 2 })
		resp := b.do(t, k1, http.MethodGet, a.URL+"/v1/jobs/"+job.ID.String()+"/chunks?wait=25s", "")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("a third concurrent long-poll: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if resp := b.do(t, k2, http.MethodGet, a.URL+"/v1/jobs", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("another key: %d, want 200", resp.StatusCode)
		}
		stop()
		wg.Wait()
		// The slots are free again, once the node has seen the long-polls
		// go.
		eventually(t, time.Minute, "the key's slots to be free again", func() bool {
			_, err := c.Cancel(ctx, job.ID)
			var ce *client.Error
			if errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests {
				return false
			}
			if err != nil {
				t.Fatalf("cancel once the long-polls ended: %v", err)
			}
			return true
		})
	})

	t.Run("Sizes", func(t *testing.T) {
		a := b.serve("--max-prompt-bytes", "1000")
		big := `{"engine":"sim","command":"` + strings.Repeat("x", 2<<20) + `"}`
		if resp := b.do(t, apiKey{}, http.MethodPost, a.URL+"/v1/jobs", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a 2 MiB body: %d, want 413", resp.StatusCode)
		}
		long := `{"engine":"sim","command":"` + strings.Repeat("x", 1001) + `"}`
		resp := b.do(t, apiKey{}, http.MethodPost, a.URL+"/v1/jobs", long)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "prompt_too_large") {
			t.Errorf("a 1001-byte prompt: %d %s, want 413 prompt_too_large", resp.StatusCode, body)
		}
		msgs := `{"engine":"sim","messages":[{"role":"user","content":"` + strings.Repeat("y", 600) + `"}],"system":"` + strings.Repeat("z", 600) + `"}`
		if resp := b.do(t, apiKey{}, http.MethodPost, a.URL+"/v1/jobs", msgs); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("system + messages over the limit: %d, want 413", resp.StatusCode)
		}
		form := url.Values{"expression": {`LLM(engine="sim", command="` + strings.Repeat("w", 1001) + `")`}}
		resp = b.do(t, apiKey{}, http.MethodPost, a.URL+"/Monolith/api/engine/runPixelAsync", form.Encode())
		body, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("runPixelAsync with a 1001-byte prompt: %d %s, want 413", resp.StatusCode, body)
		}
		if resp := b.do(t, apiKey{}, http.MethodPost, a.URL+"/v1/jobs", `{"engine":"sim","command":"fits"}`); resp.StatusCode != http.StatusCreated {
			t.Errorf("a small prompt: %d, want 201", resp.StatusCode)
		}

		// Pages: limit= is capped at 10,000 chunks.
		job := b.submit(a, "many chunks", "sim_tokens", 10_100, "sim_tokens_per_second", 0)
		if r, err := (reader{hc: b.hc, urls: fixed(a.URL)}).poll(ctx, job.ID); err != nil || len(r.Chunks) != 10_102 {
			t.Fatalf("job of 10,102 chunks: %d (%v)", len(r.Chunks), err)
		}
		page, err := b.client(a).Chunks(ctx, job.ID, client.ChunksParams{Limit: 1_000_000})
		if err != nil || len(page.Chunks) != httpapi.DefaultMaxPageSize || !page.More {
			t.Errorf("limit=1000000: %d chunks, more %v (%v), want the capped page of %d", len(page.Chunks), page.More, err, httpapi.DefaultMaxPageSize)
		}
	})

	t.Run("Slowloris", func(t *testing.T) {
		a := b.serve("--read-header-timeout", "1s")
		conn, err := net.Dial("tcp", a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		closed := make(chan time.Duration, 1)
		go func() {
			io.Copy(io.Discard, conn) // until the server closes the connection
			closed <- time.Since(start)
		}()
		// Dribble the headers, a byte every 50 ms, never finishing them.
		dribble := "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Slow: y\r\n", 1000)
		go func() {
			for i := range len(dribble) {
				if _, err := conn.Write([]byte{dribble[i]}); err != nil {
					return
				}
				select {
				case <-closed:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		took := testserver.Recv(t, closed, "the server to close the slow connection")
		if took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("the slow connection was closed after %s, want about the 1 s header timeout", took)
		}
	})
}

// do sends a request (a JSON body for /v1, a form for SEMOSS), with k's
// credentials when it has them, and returns the response (body closed at
// the end of the test).
func (b *bundle) do(t *testing.T, k apiKey, method, u, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	switch {
	case body == "":
	case strings.Contains(u, "/Monolith/"):
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		req.Header.Set("Content-Type", "application/json")
	}
	if k.Access != "" {
		req.SetBasicAuth(k.Access, k.Secret)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
