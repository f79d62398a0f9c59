package testserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

func newClient(p *testserver.Process) *client.Client {
	return &client.Client{BaseURL: p.URL, HTTP: &http.Client{Transport: &http.Transport{}}}
}

func closeClients(cs ...*client.Client) {
	for _, c := range cs {
		c.HTTP.CloseIdleConnections()
	}
}

func params(kv ...any) map[string]json.RawMessage {
	p := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		raw, _ := json.Marshal(kv[i+1])
		p[kv[i].(string)] = raw
	}
	return p
}

// poll long-polls a job to its end through c, calling each per chunk.
func poll(t *testing.T, c *client.Client, id uuid.UUID, each func(store.Chunk)) ([]store.Chunk, jobsapi.ChunkPage) {
	t.Helper()
	var all []store.Chunk
	for {
		page, err := c.Chunks(context.Background(), id, client.ChunksParams{Offset: len(all), Wait: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Chunks) == 0 && !store.Terminal(page.Status) {
			t.Fatalf("a 20 s long-poll at offset %d expired with nothing", len(all))
		}
		for _, ch := range page.Chunks {
			all = append(all, ch)
			if each != nil {
				each(ch)
			}
		}
		if store.Terminal(page.Status) && !page.More {
			return all, page
		}
	}
}

// TestTwoServers runs two `jobstream serve` processes on one database:
// whichever runs a job, any node serves it, woken by LISTEN/NOTIFY.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testserver.Database(t)
	a := testserver.Start(t, bin, testserver.Options{DatabaseURL: db})
	b := testserver.Start(t, bin, testserver.Options{DatabaseURL: db})
	ca, cb := newClient(a), newClient(b)
	t.Cleanup(func() { closeClients(ca, cb) })

	t.Run("SubmitOnOneReadOnTheOther", func(t *testing.T) {
		job, err := ca.Submit(ctx, jobsapi.CreateJobRequest{Engine: "sim", Command: "two nodes", Params: params("sim_tokens", 40, "sim_tokens_per_second", 200)})
		if err != nil {
			t.Fatal(err)
		}
		// Follow live on b over SSE while a long-polls.
		followed := make(chan []store.Chunk, 1)
		go func() {
			var got []store.Chunk
			end, err := cb.Follow(ctx, job.ID, 0, func(c store.Chunk) error { got = append(got, c); return nil })
			if err != nil || end.Status != store.StatusCompleted {
				t.Errorf("Follow on b = %+v, %v", end, err)
			}
			followed <- got
		}()
		polled, last := poll(t, ca, job.ID, nil)
		if last.Status != store.StatusCompleted || len(polled) != 42 {
			t.Fatalf("a: ended %s with %d chunks, want completed with 42", last.Status, len(polled))
		}
		got := testserver.Recv(t, followed, "b's SSE stream to end")
		if len(got) != len(polled) {
			t.Fatalf("b streamed %d chunks, a served %d", len(got), len(polled))
		}
		for i := range got {
			if got[i].Seq != i || polled[i].Seq != i || !bytes.Equal(got[i].Data, polled[i].Data) {
				t.Fatalf("chunk %d: b %d %s, a %d %s", i, got[i].Seq, got[i].Data, polled[i].Seq, polled[i].Data)
			}
		}
		ta, err1 := ca.Transcript(ctx, job.ID)
		tb, err2 := cb.Transcript(ctx, job.ID)
		if err1 != nil || err2 != nil || ta.Content != tb.Content || !strings.HasPrefix(ta.Content, "You asked: two nodes") {
			t.Errorf("transcripts differ: %q (%v) vs %q (%v)", ta.Content, err1, tb.Content, err2)
		}
	})

	t.Run("CancelOnTheOther", func(t *testing.T) {
		const tokens = 100_000
		job, err := cb.Submit(ctx, jobsapi.CreateJobRequest{Engine: "sim", Command: "long", Params: params("sim_tokens", tokens, "sim_tokens_per_second", 200)})
		if err != nil {
			t.Fatal(err)
		}
		requested := false
		chunks, last := poll(t, cb, job.ID, func(store.Chunk) {
			if !requested {
				requested = true
				// Whichever node runs the job hears of it on
				// ChannelCancel.
				if _, err := ca.Cancel(ctx, job.ID); err != nil {
					t.Errorf("cancel on a: %v", err)
				}
			}
		})
		if last.Status != store.StatusCancelled || len(chunks) > tokens/10 {
			t.Errorf("ended %s with %d chunks, want cancelled early", last.Status, len(chunks))
		}
		var d map[string]any
		_ = json.Unmarshal(chunks[len(chunks)-1].Data, &d)
		if len(d) != 1 || d["finish_reason"] != "cancelled" {
			t.Errorf("last chunk %s", chunks[len(chunks)-1].Data)
		}
	})

	t.Run("ListedOnBoth", func(t *testing.T) {
		var la, lb jobsapi.JobList
		for _, x := range []struct {
			c   *client.Client
			out *jobsapi.JobList
		}{{ca, &la}, {cb, &lb}} {
			resp, err := x.c.HTTP.Get(x.c.BaseURL + "/v1/jobs")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(x.out)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(la.Jobs) != 2 || len(lb.Jobs) != 2 || la.Jobs[0].ID != lb.Jobs[0].ID {
			t.Errorf("a lists %d jobs, b %d", len(la.Jobs), len(lb.Jobs))
		}
	})
}

// TestProcess checks the harness itself: a server reports its address,
// serves, and exits cleanly on SIGTERM; Kill ends one at once.
func TestProcess(t *testing.T) {
	t.Parallel()
	db := testserver.Database(t)

	t.Run("StopIsClean", func(t *testing.T) {
		t.Parallel()
		p := testserver.Start(t, bin, testserver.Options{DatabaseURL: db, Args: []string{"--role", "api"}})
		c := newClient(p)
		defer closeClients(c)
		resp, err := c.HTTP.Get(p.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("healthz = %d", resp.StatusCode)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("Stop = %v, want a clean exit\n%s", err, p.Logs())
		}
		if !strings.Contains(p.Logs(), "shutting down") {
			t.Errorf("log lacks the shutdown:\n%s", p.Logs())
		}
		if err := p.Stop(); err != nil {
			t.Errorf("second Stop = %v", err)
		}
	})

	t.Run("Kill", func(t *testing.T) {
		t.Parallel()
		p := testserver.Start(t, bin, testserver.Options{DatabaseURL: db, Args: []string{"--role", "api"}})
		if err := p.Kill(); err != nil {
			t.Errorf("Kill = %v", err)
		}
		select {
		case <-p.Done():
		default:
			t.Error("Done not closed after Kill")
		}
	})

	t.Run("ExitBeforeServing", func(t *testing.T) {
		t.Parallel()
		// A bad flag: Start must not wait for an address that never comes.
		ft := &fakeT{TB: t}
		func() {
			defer func() { _ = recover() }()
			testserver.Start(ft, bin, testserver.Options{DatabaseURL: db, Args: []string{"--role", "chef"}})
		}()
		if !ft.fatal {
			t.Error("Start of a server that exits at once did not fail the test")
		}
	})
}

// fakeT records Fatalf instead of ending the test.
type fakeT struct {
	testing.TB
	fatal bool
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = true
	panic(errors.New("fatal"))
}

func (f *fakeT) Helper() {}

// TestPollOnlyServer: without LISTEN, workers find jobs and readers find
// chunks by polling.
func TestPollOnlyServer(t *testing.T) {
	t.Parallel()
	p := testserver.Start(t, bin, testserver.Options{DatabaseURL: testserver.Database(t), Args: []string{"--poll-only"}})
	c := newClient(p)
	defer closeClients(c)
	job, err := c.Submit(context.Background(), jobsapi.CreateJobRequest{Engine: "sim", Command: "poll", Params: params("sim_tokens", 20, "sim_tokens_per_second", 100)})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	end, err := c.Follow(context.Background(), job.ID, 0, func(ch store.Chunk) error {
		if ch.Seq != got {
			t.Errorf("seq %d, want %d", ch.Seq, got)
		}
		got++
		return nil
	})
	if err != nil || end.Status != store.StatusCompleted || got != 22 {
		t.Errorf("Follow = %+v, %d chunks, %v", end, got, err)
	}
}

// TestCrashedServerJobIsRescued: a server killed mid-stream leaves its job
// running with a lease nobody renews; another server's rescuer fails it
// with an error chunk, so readers see a clean end.
func TestCrashedServerJobIsRescued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testserver.Database(t)
	ttl := []string{"--lease-ttl", "1s"}
	a := testserver.Start(t, bin, testserver.Options{DatabaseURL: db, Args: ttl})
	ca := newClient(a)
	defer closeClients(ca)
	job, err := ca.Submit(ctx, jobsapi.CreateJobRequest{Engine: "sim", Command: "crash", Params: params("sim_tokens", 100_000, "sim_tokens_per_second", 100)})
	if err != nil {
		t.Fatal(err)
	}
	// a (the only server) is running it once a chunk is out.
	page, err := ca.Chunks(ctx, job.ID, client.ChunksParams{Wait: 20 * time.Second})
	if err != nil || len(page.Chunks) == 0 {
		t.Fatalf("stream did not start: %+v, %v", page, err)
	}
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}

	b := testserver.Start(t, bin, testserver.Options{DatabaseURL: db, Args: ttl})
	cb := newClient(b)
	defer closeClients(cb)
	chunks, last := poll(t, cb, job.ID, nil)
	if last.Status != store.StatusFailed || last.FinishReason != "error" {
		t.Fatalf("ended %s/%s, want failed/error", last.Status, last.FinishReason)
	}
	var d struct {
		FinishReason string `json:"finish_reason"`
		Error        struct{ Type string }
	}
	end := chunks[len(chunks)-1]
	if err := json.Unmarshal(end.Data, &d); err != nil || d.FinishReason != "error" || d.Error.Type != "lease_expired" {
		t.Errorf("last chunk %s, want an error finish chunk of type lease_expired", end.Data)
	}
	for i, c := range chunks {
		if c.Seq != i {
			t.Fatalf("seq %d at %d: the rescue chunk must follow the dead worker's last chunk", c.Seq, i)
		}
	}
}
