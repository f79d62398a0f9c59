package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// bundle is one test's database, the servers on it and an HTTP client of
// its own (closed when the test ends, so no connection outlives it).
type bundle struct {
	t    *testing.T
	db   string
	pool *pgxpool.Pool
	hc   *http.Client
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := testserver.Database(t)
	return setupOn(t, db)
}

// setupOn is setup on a database of the caller's (a private cluster's).
func setupOn(t *testing.T, db string) *bundle {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &bundle{t: t, db: db, pool: testserver.Pool(t, db, 2), hc: &http.Client{Transport: tr}}
}

// serve starts `jobstream serve` (dev mode unless args say --dev=false).
func (b *bundle) serve(args ...string) *testserver.Process {
	b.t.Helper()
	return testserver.Start(b.t, bin, testserver.Options{DatabaseURL: b.db, Args: args})
}

// client is a /v1 client of p, with k's credentials when given.
func (b *bundle) client(p *testserver.Process, k ...apiKey) *client.Client {
	c := &client.Client{BaseURL: p.URL, HTTP: b.hc}
	if len(k) > 0 {
		c.AccessKey, c.SecretKey = k[0].Access, k[0].Secret
	}
	return c
}

func (b *bundle) submit(p *testserver.Process, command string, kv ...any) jobsapi.Job {
	b.t.Helper()
	job, err := b.client(p).Submit(context.Background(), jobsapi.CreateJobRequest{Engine: "sim", Command: command, Params: params(kv...)})
	if err != nil {
		b.t.Fatalf("submit %q: %v", command, err)
	}
	return job
}

func params(kv ...any) map[string]json.RawMessage {
	p := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		raw, _ := json.Marshal(kv[i+1])
		p[kv[i].(string)] = raw
	}
	return p
}

// status reads a job's status straight from the database.
func (b *bundle) status(id uuid.UUID) string {
	b.t.Helper()
	var s string
	if err := b.pool.QueryRow(context.Background(), `SELECT status FROM jobs WHERE id = $1`, id).Scan(&s); err != nil {
		b.t.Fatalf("status of %s: %v", id, err)
	}
	return s
}

// eventually polls cond until it holds, failing the test after limit. For
// states with no push signal (a job's status, /readyz, a gauge): a bounded
// poll of an observable, never a sleep standing in for a signal.
func eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus waits until job id has status.
func (b *bundle) waitStatus(id uuid.UUID, status string) {
	b.t.Helper()
	eventually(b.t, time.Minute, "job "+id.String()+" to be "+status, func() bool { return b.status(id) == status })
}

// readyz returns the status code of p's /readyz (0 if unreachable).
func (b *bundle) readyz(p *testserver.Process) int {
	resp, err := b.hc.Get(p.URL + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// metric returns the value of the Prometheus series whose line starts with
// series (name and labels, e.g. `jobstream_pool_acquired_conns{pool="api"}`).
func (b *bundle) metric(p *testserver.Process, series string) float64 {
	b.t.Helper()
	resp, err := b.hc.Get(p.URL + "/metrics")
	if err != nil {
		b.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.t.Fatalf("metric %s = %q", series, v)
			}
			return f
		}
	}
	b.t.Fatalf("no metric %s", series)
	return 0
}

// stored returns a job's chunks as the database holds them.
func (b *bundle) stored(id uuid.UUID) []store.Chunk {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT seq, stream_type, data FROM job_chunks WHERE job_id = $1 ORDER BY seq`, id)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []store.Chunk
	for rows.Next() {
		var c store.Chunk
		if err := rows.Scan(&c.Seq, &c.StreamType, &c.Data); err != nil {
			b.t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// event is one row of a job's audit trail.
type event struct {
	From, To string
	Attempt  int
	Owner    string
}

// events returns the job's status transitions, in order: its audit trail
// without the events that change no status (reads of the job, cancel
// requests, holds).
func (b *bundle) events(id uuid.UUID) []event {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT coalesce(from_status, ''), to_status, attempt, coalesce(lease_owner, '')
		FROM job_events WHERE job_id = $1 AND to_status IS NOT NULL ORDER BY id`, id)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.From, &e.To, &e.Attempt, &e.Owner); err != nil {
			b.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// exactlyOnce checks that a reader got the job's stored chunks, each once,
// in order, and that the last one is a finish chunk.
func (b *bundle) exactlyOnce(who string, id uuid.UUID, got []store.Chunk) {
	b.t.Helper()
	want := b.stored(id)
	if len(got) != len(want) {
		b.t.Errorf("%s got %d chunks, the database has %d", who, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i].Seq != i || want[i].Seq != i || got[i].StreamType != want[i].StreamType || !jsonEqual(got[i].Data, want[i].Data) {
			b.t.Errorf("%s chunk %d: got seq %d %s, stored seq %d %s", who, i, got[i].Seq, got[i].Data, want[i].Seq, want[i].Data)
			return
		}
	}
	if len(want) == 0 || finishReason(want[len(want)-1]) == "" {
		b.t.Errorf("%s: the job's last chunk is not a finish chunk", who)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// finishReason is a chunk's finish_reason ("" for other chunks).
func finishReason(c store.Chunk) string {
	var d struct {
		FinishReason string `json:"finish_reason"`
	}
	_ = json.Unmarshal(c.Data, &d)
	return d.FinishReason
}

// errorType is an error finish chunk's error type.
func errorType(c store.Chunk) string {
	var d struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(c.Data, &d)
	return d.Error.Type
}

// read is what a resilient reader got: the chunks in order, the final
// status, and how each of its connections (or requests) ended.
type read struct {
	Chunks []store.Chunk
	Status string
	// Ends lists how each connection ended: "end" (the job's end event or
	// a terminal page), "eof" (the server closed the stream cleanly),
	// "cut: ..." (an abrupt close), or the error.
	Ends []string
}

// reader follows a job like a well-behaved client: from offset 0, on the
// first of urls, moving on to the next (round robin) whenever a connection
// fails, a stream ends, or a request is refused with a 5xx, and resuming
// from the next offset. It fails on a chunk out of order or repeated.
type reader struct {
	hc   *http.Client
	urls func() []string
	key  *apiKey
	// served, if set, is called after each answer the reader gets (an SSE
	// stream's headers, a long-poll's page): a signal that it is being
	// served by the node it is on.
	served func()
}

func (r reader) signal() {
	if r.served != nil {
		r.served()
	}
}

// signal returns a function that closes the returned channel the first
// time it is called.
func signal() (func(), <-chan struct{}) {
	c := make(chan struct{})
	var once sync.Once
	return func() { once.Do(func() { close(c) }) }, c
}

// sse follows job id over SSE (GET /events, Last-Event-ID).
func (r reader) sse(ctx context.Context, id uuid.UUID) (read, error) {
	return r.follow(ctx, id, r.sseOnce)
}

// poll follows job id by long-polling GET /chunks?offset=N&wait=10s.
func (r reader) poll(ctx context.Context, id uuid.UUID) (read, error) {
	return r.follow(ctx, id, r.pollOnce)
}

// go runs f in the background and returns its outcome on a channel.
func goRead(f func() (read, error)) <-chan readResult {
	c := make(chan readResult, 1)
	go func() {
		rd, err := f()
		c <- readResult{rd, err}
	}()
	return c
}

type readResult struct {
	read
	err error
}

func (r reader) follow(ctx context.Context, id uuid.UUID, once func(ctx context.Context, url string, id uuid.UUID, rd *read) (bool, error)) (read, error) {
	var rd read
	backoff := 20 * time.Millisecond
	for i := 0; ; i++ {
		urls := r.urls()
		before := len(rd.Chunks)
		done, err := once(ctx, urls[i%len(urls)], id, &rd)
		if err != nil {
			return rd, err
		}
		if done {
			return rd, nil
		}
		if ctx.Err() != nil {
			return rd, fmt.Errorf("gave up after %d connections: %w (ends: %v)", len(rd.Ends), ctx.Err(), rd.Ends)
		}
		if len(rd.Chunks) > before {
			backoff = 20 * time.Millisecond
		} else {
			backoff = min(2*backoff, 500*time.Millisecond)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (r reader) request(ctx context.Context, url string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if r.key != nil {
		req.SetBasicAuth(r.key.Access, r.key.Secret)
	}
	return req
}

// add appends c, which must be the next chunk.
func (rd *read) add(c store.Chunk) error {
	if c.Seq != len(rd.Chunks) {
		return fmt.Errorf("got chunk %d after %d chunks: repeated or out of order", c.Seq, len(rd.Chunks))
	}
	rd.Chunks = append(rd.Chunks, c)
	return nil
}

func (r reader) sseOnce(ctx context.Context, url string, id uuid.UUID, rd *read) (bool, error) {
	req := r.request(ctx, url+"/v1/jobs/"+id.String()+"/events")
	if n := len(rd.Chunks); n > 0 {
		req.Header.Set("Last-Event-ID", strconv.Itoa(n-1))
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		rd.Ends = append(rd.Ends, "connect: "+err.Error())
		return false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return false, fmt.Errorf("GET events: %d %s", resp.StatusCode, body)
		}
		rd.Ends = append(rd.Ends, fmt.Sprintf("status %d", resp.StatusCode))
		return false, nil
	}
	r.signal()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case "chunk":
				var c store.Chunk
				if err := json.Unmarshal([]byte(data), &c); err != nil {
					return false, fmt.Errorf("chunk event %q: %v", data, err)
				}
				if err := rd.add(c); err != nil {
					return false, err
				}
			case "end":
				var end client.End
				if err := json.Unmarshal([]byte(data), &end); err != nil {
					return false, fmt.Errorf("end event %q: %v", data, err)
				}
				rd.Status = end.Status
				rd.Ends = append(rd.Ends, "end")
				return true, nil
			case "error":
				rd.Ends = append(rd.Ends, "error event: "+data)
				return false, nil
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil {
		rd.Ends = append(rd.Ends, "cut: "+err.Error())
	} else {
		rd.Ends = append(rd.Ends, "eof")
	}
	return false, nil
}

func (r reader) pollOnce(ctx context.Context, url string, id uuid.UUID, rd *read) (bool, error) {
	for {
		req := r.request(ctx, fmt.Sprintf("%s/v1/jobs/%s/chunks?offset=%d&wait=10s", url, id, len(rd.Chunks)))
		resp, err := r.hc.Do(req)
		if err != nil {
			rd.Ends = append(rd.Ends, "request: "+err.Error())
			return false, nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			rd.Ends = append(rd.Ends, "cut: "+err.Error())
			return false, nil
		}
		if resp.StatusCode != http.StatusOK {
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return false, fmt.Errorf("GET chunks: %d %s", resp.StatusCode, body)
			}
			rd.Ends = append(rd.Ends, fmt.Sprintf("status %d", resp.StatusCode))
			return false, nil
		}
		var page jobsapi.ChunkPage
		if err := json.Unmarshal(body, &page); err != nil {
			return false, fmt.Errorf("GET chunks: %v in %q", err, body)
		}
		r.signal()
		for _, c := range page.Chunks {
			if err := rd.add(c); err != nil {
				return false, err
			}
		}
		rd.Status = page.Status
		if store.Terminal(page.Status) && !page.More {
			rd.Ends = append(rd.Ends, "end")
			return true, nil
		}
	}
}

// fixed returns urls as a reader's url list.
func fixed(urls ...string) func() []string { return func() []string { return urls } }

// apiKey is a key made by `jobstream keys create`.
type apiKey struct {
	Access string `json:"access_key"`
	Secret string `json:"secret_key"`
}

// key creates an API key with the CLI, as an operator does.
func (b *bundle) key(name string, args ...string) apiKey {
	b.t.Helper()
	out, _, err := b.cli(nil, append([]string{"keys", "create", "--name", name, "--json"}, args...)...)
	if err != nil {
		b.t.Fatalf("keys create: %v", err)
	}
	var k apiKey
	if err := json.Unmarshal(out, &k); err != nil || k.Access == "" || k.Secret == "" {
		b.t.Fatalf("keys create printed %q (%v)", out, err)
	}
	return k
}

// cli runs the jobstream command on the bundle's database with extra
// environment variables, returning its output.
func (b *bundle) cli(env []string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "DATABASE_URL" && k != "TEST_DATABASE_URL" && !strings.HasPrefix(k, "JOBSTREAM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DATABASE_URL="+b.db)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("jobstream %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), errb.Bytes(), err
}
