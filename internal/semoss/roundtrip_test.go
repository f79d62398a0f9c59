package semoss_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/semoss"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/testserver"
)

// jobQueries counts the API pool's queries that concern one job (take its
// id as an argument): a request's database round trips for that job,
// whatever else the pool does meanwhile.
type jobQueries struct {
	mu    sync.Mutex
	job   uuid.UUID
	names []string
}

func (q *jobQueries) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.job == uuid.Nil {
		return ctx
	}
	for _, a := range d.Args {
		switch v := a.(type) {
		case uuid.UUID:
			if v != q.job {
				continue
			}
		case []uuid.UUID:
			if !slices.Contains(v, q.job) {
				continue
			}
		default:
			continue
		}
		q.names = append(q.names, queryName(d.SQL))
		break
	}
	return ctx
}

func (q *jobQueries) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the queries counted since the last take.
func (q *jobQueries) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.names
	q.names = nil
	return n
}

func queryName(sql string) string {
	var name string
	if _, err := fmt.Sscanf(sql, "-- name: %s", &name); err == nil {
		return name
	}
	return sql
}

// TestPollRoundTrips: a pixelJobStreaming poll that finds data waiting
// makes at most 2 database round trips for the job, including the poll
// that ends the job: the cursor's advance (which settles the page before
// and returns the chunks, the status and whether the job is synchronous),
// then the record that the answer was written whole. It was 3 to 4:
// CursorGet, a wait read, CursorRead, then PixelJobGet on completion.
func TestPollRoundTrips(t *testing.T) {
	t.Parallel()
	tracer := &jobQueries{}
	base := startInProcess(t, testserver.Database(t), server.Deps{Engines: semossEngines(), APITracer: tracer}, "--dev")
	m := newMonolith(t, base, nil)
	m.get("/config", &struct{}{})

	// More chunks than one page (1,000): a poll in the middle of the
	// stream and the last one both find data ready.
	jobID := m.runPixelAsync(`LLM(engine=["sim"], command=["<encode>count</encode>"], paramValues=[{"sim_tokens": 2500, "sim_tokens_per_second": 0}]);`)
	m.allChunks(jobID) // the job has ended: every later poll finds data
	tracer.mu.Lock()
	tracer.job = uuid.MustParse(jobID)
	tracer.mu.Unlock()

	first := m.poll(jobID) // creates the session's cursor
	tracer.take()
	got := len(first.Message)
	for i := 0; ; i++ {
		r := m.poll(jobID)
		if n := tracer.take(); len(n) > 2 {
			t.Errorf("poll %d (%d chunks, %s) made %d round trips for the job, want at most 2: %v", i+2, len(r.Message), r.Status, len(n), n)
		}
		got += len(r.Message)
		if r.Status != semoss.SemossInProgress {
			if r.Status != semoss.SemossProgressComplete || got != 2502 {
				t.Fatalf("ended %s after %d chunks, want ProgressComplete after 2502", r.Status, got)
			}
			return
		}
		if len(r.Message) == 0 || i > 5 {
			t.Fatalf("poll %d: %d chunks, %s", i+2, len(r.Message), r.Status)
		}
	}
}
