package worker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/worker"
)

// recordingFeed records what the worker and its writer tell a Feed.
type recordingFeed struct {
	mu     sync.Mutex
	events []string
	rows   []store.Chunk
	closed chan store.Lease
}

func (f *recordingFeed) Open(l store.Lease, tenant string, next int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf("open %d %s %d", l.Attempt, tenant, next))
}

func (f *recordingFeed) Committed(rows []store.NewChunk, closed []store.Lease, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range rows {
		f.rows = append(f.rows, c.Stored(at))
	}
	for _, l := range closed {
		f.events = append(f.events, fmt.Sprintf("closed by commit %d", l.Attempt))
	}
}

func (f *recordingFeed) Close(l store.Lease) {
	f.mu.Lock()
	f.events = append(f.events, fmt.Sprintf("close %d", l.Attempt))
	f.mu.Unlock()
	f.closed <- l
}

// TestWriterFeedsCommits: the worker opens a job's Feed entry at its
// claim and closes it when the run ends; the writer hands every committed
// chunk but the finish to Committed, exactly as stored (created_at
// included), and the finishing commit closes the entry.
func TestWriterFeedsCommits(t *testing.T) {
	t.Parallel()
	feed := &recordingFeed{closed: make(chan store.Lease, 1)}
	b := setupWorker(t, worker.Config{Writer: worker.WriterConfig{Feed: feed}})
	id := b.submit(t, "sim", map[string]any{"sim_tokens": 40, "sim_tokens_per_second": 400})
	l := <-feed.closed
	if l.JobID != id {
		t.Fatalf("closed %v, want job %s", l, id)
	}
	stored, err := b.store.Read(context.Background(), tenant, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	want := []string{fmt.Sprintf("open %d %s 0", l.Attempt, tenant), fmt.Sprintf("closed by commit %d", l.Attempt), fmt.Sprintf("close %d", l.Attempt)}
	if fmt.Sprint(feed.events) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", feed.events, want)
	}
	// Everything but the finish chunk, which commits with the status.
	if len(feed.rows) != len(stored.Chunks)-1 {
		t.Fatalf("fed %d rows, stored %d chunks", len(feed.rows), len(stored.Chunks))
	}
	for i, c := range feed.rows {
		s := stored.Chunks[i]
		if c.Seq != s.Seq || c.StreamType != s.StreamType || string(c.Data) != string(s.Data) || !c.CreatedAt.Equal(s.CreatedAt) {
			t.Fatalf("fed row %d = %+v, stored %+v", i, c, s)
		}
	}
}
