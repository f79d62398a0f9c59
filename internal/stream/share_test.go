package stream_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// gateTracer holds the first chunk-read statement after arm at its end
// (pgx traces a query's end when its rows are closed, after all were read):
// the statement has taken its snapshot and read its rows, but its result
// is not delivered until release. That is a read "in flight" across a
// commit, deterministically.
type gateTracer struct {
	mu      sync.Mutex
	armed   bool
	blocked chan struct{}
	release chan struct{}
}

func newGateTracer() *gateTracer {
	return &gateTracer{blocked: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateTracer) arm() { g.mu.Lock(); g.armed = true; g.mu.Unlock() }

func (g *gateTracer) hold(sql string) {
	if !strings.Contains(sql, "name: ChunkRead") {
		return
	}
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.blocked)
		<-g.release
	}
}

// TestReadNeverSharesAStaleStatement: readers of the same job at the same
// offset may share one statement, but a read must never take the result of
// a statement that started before the reader subscribed (or was woken):
// that statement's snapshot can predate the very commit the reader would
// have been woken for, and the wake-up is then lost until the recheck timer.
func TestReadNeverSharesAStaleStatement(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name     string
		maxBatch int
	}{
		{"Coalesced", 0},
		{"Uncoalesced", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			gate := newGateTracer()
			cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 4
			cfg.ConnConfig.Tracer = endTracer{gate}
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			var releaseOnce sync.Once
			release := func() { releaseOnce.Do(func() { close(gate.release) }) }
			t.Cleanup(release)

			s := store.New(pool)
			hub := notify.NewHub(store.ParseIDs)
			testserver.StartListener(t, dbtest.URL(t), "", hub, nil)
			r := stream.New(s, hub, stream.Config{Recheck: time.Hour, MaxBatch: tc.maxBatch})
			tenant := testserver.Tenant(t)
			l := testserver.RunningJob(t, pool, tenant, owner)
			p := stream.Params{Tenant: tenant, JobID: l.JobID, Limit: 100, Wait: time.Minute}

			// Reader B's statement sees no chunk and is held.
			gate.arm()
			resB := make(chan readResult, 1)
			go func() {
				snap, err := r.Read(ctx, p)
				resB <- readResult{snap: snap, err: err}
			}()
			testserver.Recv(t, gate.blocked, "reader B's statement")

			// A chunk commits, and its notification has been handled.
			spy := hub.Subscribe(l.JobID)
			defer spy.Close()
			if _, err := s.WriteBatch(ctx, owner, []store.NewChunk{testserver.Content(l, 0, "x")}, nil); err != nil {
				t.Fatal(err)
			}
			testserver.Recv(t, spy.C, "the commit's notification")

			// Reader A starts now: it must see the chunk at once, not
			// share B's older statement.
			resA := make(chan readResult, 1)
			go func() {
				snap, err := r.Read(ctx, p)
				resA <- readResult{snap: snap, err: err}
			}()
			a := testserver.Recv(t, resA, "reader A (it shared a statement older than the commit)")
			if a.err != nil || len(a.snap.Chunks) != 1 {
				t.Errorf("reader A = %+v, %v; want chunk 0", a.snap, a.err)
			}

			// B was subscribed during the commit: woken, it reads again.
			release()
			b := testserver.Recv(t, resB, "reader B")
			if b.err != nil || len(b.snap.Chunks) != 1 {
				t.Errorf("reader B = %+v, %v; want chunk 0", b.snap, b.err)
			}
		})
	}
}

// endTracer holds statements at their end (see gateTracer).
type endTracer struct{ g *gateTracer }

type sqlKey struct{}

func (e endTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlKey{}, data.SQL)
}

func (e endTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	sql, _ := ctx.Value(sqlKey{}).(string)
	e.g.hold(sql)
}
