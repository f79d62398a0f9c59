package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestGracefulShutdown: SIGTERM to a node running three jobs, with clients
// reading them from it. The node stops claiming and
//
//   - lets the job that can finish within --shutdown-grace finish;
//   - hands the job that has written nothing yet back to the queue, where
//     another node picks it up (without it counting as an attempt);
//   - fails the job still streaming at the end of the grace period with a
//     "shutdown" error chunk;
//
// and it ends its open long-polls with a 200 (what there is so far) and
// its SSE streams cleanly. The clients resume from their offset on the
// other node and get every chunk exactly once; the node exits with status
// 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := setup(t)
	a := b.serve("--shutdown-grace", "3s")
	// The other node serves readers; a worker joins it after the SIGTERM.
	o := b.serve("--role", "api")

	// Its model answers after 8 s: after the grace period.
	silent := b.submit(a, "handed back", "sim_first_token_delay", 8, "sim_tokens", 10, "sim_tokens_per_second", 0)
	endless := b.submit(a, "outlives the grace", "sim_tokens", 40_000, "sim_tokens_per_second", 20)
	b.waitStatus(silent.ID, store.StatusRunning)
	eventually(t, time.Minute, "a job to stream", func() bool { return len(b.stored(endless.ID)) > 0 })

	// First a plain long-poll on a, waiting for the silent job's first
	// chunk: the only read waiting on a, so a's waiter count says when it
	// waits.
	type answer struct {
		status int
		page   jobsapi.ChunkPage
		err    error
		took   time.Duration
	}
	waiting := make(chan answer, 1)
	longPollSent := make(chan struct{})
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/jobs/%s/chunks?wait=25s", a.URL, silent.ID), nil)
		start := time.Now()
		close(longPollSent)
		resp, err := b.hc.Do(req)
		if err != nil {
			waiting <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		var page jobsapi.ChunkPage
		if err == nil {
			err = json.Unmarshal(body, &page)
		}
		waiting <- answer{status: resp.StatusCode, page: page, err: err, took: time.Since(start)}
	}()
	<-longPollSent
	eventually(t, 30*time.Second, "the long-poll to wait on a", func() bool {
		return b.metric(a, "jobstream_reader_waiters") >= 1
	})
	// A job that finishes 2.5 s after it starts: within the grace.
	finishes := b.submit(a, "finishes within the grace", "sim_tokens", 50, "sim_tokens_per_second", 20)
	eventually(t, time.Minute, "a job to stream", func() bool { return len(b.stored(finishes.ID)) > 0 })
	// Then SSE readers, on a until it goes.
	served := make([]<-chan struct{}, 3)
	var signals [3]func()
	for i := range signals {
		signals[i], served[i] = signal()
	}
	onA := func(i int) reader { return reader{hc: b.hc, urls: fixed(a.URL, o.URL), served: signals[i]} }
	finishesRead := goRead(func() (read, error) { return onA(0).sse(ctx, finishes.ID) })
	endlessRead := goRead(func() (read, error) { return onA(1).sse(ctx, endless.ID) })
	silentRead := goRead(func() (read, error) { return onA(2).sse(ctx, silent.ID) })
	for _, c := range served {
		testserver.Recv(t, c, "a reader to be served by the node about to stop")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop() }()
	// A worker to take over what a hands back.
	b.serve()

	ans := testserver.Recv(t, waiting, "the waiting long-poll to be answered")
	if ans.err != nil || ans.status != http.StatusOK || ans.page.Status != store.StatusRunning || len(ans.page.Chunks) != 0 || ans.page.NextOffset != 0 {
		t.Errorf("the long-poll waiting at shutdown: %d %+v (%v), want 200 with no chunks and status running", ans.status, ans.page, ans.err)
	}
	if ans.took > 15*time.Second {
		t.Errorf("the long-poll was answered after %s: it waited out its 25 s instead of ending at shutdown", ans.took)
	}

	if err := testserver.Recv(t, stopped, "the node to exit"); err != nil {
		t.Errorf("SIGTERM: exit %v, want a clean exit\n%s", err, a.Logs())
	}

	r := testserver.Recv(t, finishesRead, "the reader of the job finishing within the grace")
	if r.err != nil || r.Status != store.StatusCompleted {
		t.Errorf("job finishing within the grace: %s (%v), want completed", r.Status, r.err)
	}
	if len(r.Ends) < 2 {
		t.Logf("the job finishing within the grace ended before a drained (%v): the machine is slow", r.Ends)
	}
	b.exactlyOnce("reader of the job finishing within the grace", finishes.ID, r.Chunks)

	r = testserver.Recv(t, endlessRead, "the reader of the job outliving the grace")
	if r.err != nil || r.Status != store.StatusFailed {
		t.Errorf("job outliving the grace: %s (%v), want failed", r.Status, r.err)
	}
	b.exactlyOnce("reader of the job outliving the grace", endless.ID, r.Chunks)
	if n := len(r.Chunks); n > 0 && errorType(r.Chunks[n-1]) != "shutdown" {
		t.Errorf("last chunk %s, want an error finish chunk of type shutdown", r.Chunks[n-1].Data)
	}
	if len(r.Ends) < 2 || r.Ends[0] != "eof" {
		t.Errorf("the SSE stream on the stopping node ended %v, want a clean end (eof) then a resume", r.Ends)
	}

	r = testserver.Recv(t, silentRead, "the reader of the handed-back job")
	if r.err != nil || r.Status != store.StatusCompleted || len(r.Chunks) != 12 {
		t.Errorf("handed-back job: %s with %d chunks (%v), want completed with 12 on the other node", r.Status, len(r.Chunks), r.err)
	}
	b.exactlyOnce("reader of the handed-back job", silent.ID, r.Chunks)
	ev := b.events(silent.ID)
	// queued, running (a), queued (handed back), running (o), completed.
	if len(ev) != 5 || ev[2].To != store.StatusQueued || ev[3].To != store.StatusRunning || ev[1].Owner == ev[3].Owner {
		t.Errorf("handed-back job's events: %+v, want it handed back and run by the other node", ev)
	}
	var attempt, maxAttempts int
	if err := b.pool.QueryRow(ctx, `SELECT attempt, max_attempts FROM jobs WHERE id = $1`, silent.ID).Scan(&attempt, &maxAttempts); err != nil {
		t.Fatal(err)
	}
	if maxAttempts-attempt != store.DefaultMaxAttempts-1 {
		t.Errorf("attempt %d of %d: the hand-back counted against the job's attempts", attempt, maxAttempts)
	}
}
