package jobsapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

const fixtureOwner = "sse-test"

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	id, event, data string
	comment         bool
}

// sseStream reads events from an open /events response.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

func (b apiBundle) openEvents(t *testing.T, path string, header ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testserver.Timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close(); cancel() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s = %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event (or keep-alive comment).
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev
		case strings.HasPrefix(line, ":"):
			ev.comment = true
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

// chunk reads the next event, which must be chunk seq (skipping keep-alives).
func (s *sseStream) chunk(t *testing.T, seq int) store.Chunk {
	t.Helper()
	ev := s.next(t)
	for ev.comment {
		ev = s.next(t)
	}
	var c store.Chunk
	if ev.event != "chunk" || ev.id != strconv.Itoa(seq) || json.Unmarshal([]byte(ev.data), &c) != nil || c.Seq != seq {
		t.Fatalf("event %+v, want chunk %d", ev, seq)
	}
	return c
}

func (s *sseStream) end(t *testing.T) client.End {
	t.Helper()
	ev := s.next(t)
	for ev.comment {
		ev = s.next(t)
	}
	var end client.End
	if ev.event != "end" || ev.id != "" || json.Unmarshal([]byte(ev.data), &end) != nil {
		t.Fatalf("event %+v, want the end event", ev)
	}
	return end
}

// fixtureJob is a job of the bundle's tenant that the test writes itself.
type fixtureJob struct {
	b     apiBundle
	lease store.Lease
	next  int
}

func (b apiBundle) fixture(t *testing.T) *fixtureJob {
	return &fixtureJob{b: b, lease: testserver.RunningJob(t, b.pool, b.tenant, fixtureOwner)}
}

func (f *fixtureJob) path() string { return "/v1/jobs/" + f.lease.JobID.String() }

func (f *fixtureJob) write(t *testing.T, n int) {
	t.Helper()
	var chunks []store.NewChunk
	for range n {
		chunks = append(chunks, testserver.Content(f.lease, f.next, fmt.Sprintf("c%d ", f.next)))
		f.next++
	}
	if _, err := f.b.store.WriteBatch(context.Background(), fixtureOwner, chunks, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixtureJob) finish(t *testing.T) {
	t.Helper()
	_, err := f.b.store.WriteBatch(context.Background(), fixtureOwner,
		[]store.NewChunk{testserver.FinishChunk(f.lease, f.next, "stop")},
		[]store.Finish{{Lease: f.lease, Status: store.StatusCompleted, FinishReason: "stop"}})
	if err != nil {
		t.Fatal(err)
	}
	f.next++
}

func TestEvents(t *testing.T) {
	t.Parallel()

	t.Run("ResumeWithLastEventID", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{})
		job := b.fixture(t)
		job.write(t, 10)
		job.finish(t)

		s := b.openEvents(t, job.path()+"/events", "Last-Event-ID", "4")
		for seq := 5; seq <= 10; seq++ {
			s.chunk(t, seq)
		}
		if end := s.end(t); end.Status != store.StatusCompleted || end.FinishReason != "stop" || end.NextOffset != 11 {
			t.Errorf("end = %+v", end)
		}
		// Last-Event-ID wins over ?offset=.
		s = b.openEvents(t, job.path()+"/events?offset=1", "Last-Event-ID", "9")
		s.chunk(t, 10)
		s.end(t)
		// Resuming after the last chunk gives just the end.
		s = b.openEvents(t, job.path()+"/events", "Last-Event-ID", "10")
		if end := s.end(t); end.NextOffset != 11 {
			t.Errorf("end = %+v", end)
		}
	})

	t.Run("LiveStreamResumedAfterDisconnect", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{})
		job := b.fixture(t)

		s := b.openEvents(t, job.path()+"/events")
		job.write(t, 3)
		var seen []store.Chunk
		for seq := range 3 {
			seen = append(seen, s.chunk(t, seq))
		}
		s.resp.Body.Close() // the client drops

		job.write(t, 3) // written while nobody listens
		s = b.openEvents(t, job.path()+"/events", "Last-Event-ID", "2")
		for seq := 3; seq < 6; seq++ {
			seen = append(seen, s.chunk(t, seq))
		}
		job.write(t, 2)
		job.finish(t)
		for seq := 6; seq < 9; seq++ {
			seen = append(seen, s.chunk(t, seq))
		}
		if end := s.end(t); end.Status != store.StatusCompleted || end.NextOffset != 9 {
			t.Errorf("end = %+v", end)
		}

		// The resumed stream is exactly the one-read replay.
		snap, err := b.store.Read(context.Background(), b.tenant, job.lease.JobID, 0, 100)
		if err != nil || len(snap.Chunks) != len(seen) {
			t.Fatalf("replay: %d chunks, %v", len(snap.Chunks), err)
		}
		for i, c := range snap.Chunks {
			if c.Seq != seen[i].Seq || !jsonEqual(c.Data, seen[i].Data) {
				t.Errorf("chunk %d: streamed %s, stored %s", i, seen[i].Data, c.Data)
			}
		}
	})

	t.Run("KeepAlive", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{config: httpapi.Config{SSEKeepAlive: 10 * time.Millisecond}})
		job := b.fixture(t)
		s := b.openEvents(t, job.path()+"/events")
		for !s.next(t).comment {
		}
		job.write(t, 1)
		s.chunk(t, 0)
	})

	t.Run("ClientFollowSurvivesRepeatedDrops", func(t *testing.T) {
		t.Parallel()
		b := setupAPI(t, apiOptions{})
		job := b.fixture(t)
		const chunks = 24
		job.write(t, chunks)
		job.finish(t)

		// Every connection is cut after three chunk events: eight drops
		// in all (more than Follow tolerates in a row), each after
		// progress.
		var mu sync.Mutex
		connections := 0
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/events") {
				mu.Lock()
				connections++
				mu.Unlock()
				w = &cutAfter{ResponseWriter: w, events: 3}
			}
			b.srv.Config.Handler.ServeHTTP(w, r)
		}))
		defer flaky.Close()
		c := &client.Client{BaseURL: flaky.URL, HTTP: flaky.Client()}
		var got []int
		end, err := c.Follow(context.Background(), job.lease.JobID, 0, func(ch store.Chunk) error {
			got = append(got, ch.Seq)
			return nil
		})
		if err != nil || end.Status != store.StatusCompleted || end.NextOffset != chunks+1 {
			t.Fatalf("Follow = %+v, %v", end, err)
		}
		for i, seq := range got {
			if seq != i {
				t.Fatalf("chunks %v: each must come once, in order", got)
			}
		}
		if len(got) != chunks+1 || connections != 9 {
			t.Errorf("%d chunks over %d connections, want %d over 9", len(got), connections, chunks+1)
		}
	})
}

// cutAfter passes the first events chunk events of a response through and
// then fails every write, as a dropped connection would.
type cutAfter struct {
	http.ResponseWriter
	events int
	cut    bool
}

func (c *cutAfter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, http.ErrAbortHandler
	}
	marker := []byte("event: chunk\n")
	for i := 0; ; {
		j := bytes.Index(p[i:], marker)
		if j < 0 {
			return c.ResponseWriter.Write(p)
		}
		if c.events == 0 {
			c.cut = true
			n, _ := c.ResponseWriter.Write(p[:i+j])
			return n, http.ErrAbortHandler
		}
		c.events--
		i += j + len(marker)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

func (c *cutAfter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Poll-only servers (no LISTEN) stream too, on their re-read timer.
func TestEventsPollOnly(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	api := server.NewAPI(server.APIDeps{
		Store: b.store, Reader: stream.NewReader(b.store, (*notify.Hub)(nil), 5*time.Millisecond),
		Engines: engines(), Auth: tenantAuth(b.tenant),
	})
	b.srv = httptest.NewServer(api)
	defer b.srv.Close()
	job := b.fixture(t)
	s := b.openEvents(t, job.path()+"/events")
	job.write(t, 2)
	s.chunk(t, 0)
	s.chunk(t, 1)
	job.finish(t)
	s.chunk(t, 2)
	s.end(t)
}
