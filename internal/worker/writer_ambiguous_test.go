package worker_test

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

// cutAfterCommit is a connection that, once armed, sends the next COMMIT
// to the server and then closes: the server commits, the client sees an
// error. That is an ambiguous commit.
type cutAfterCommit struct {
	net.Conn
	armed *atomic.Bool
}

func (c cutAfterCommit) Write(p []byte) (int, error) {
	if len(p) > 0 && p[0] == 'Q' && bytes.Contains(bytes.ToLower(p), []byte("commit")) && c.armed.CompareAndSwap(true, false) {
		n, err := c.Conn.Write(p)
		_ = c.Conn.Close()
		return n, err
	}
	return c.Conn.Write(p)
}

// TestWriterAmbiguousFinish: a finishing batch whose COMMIT lands although
// the writer sees an error is retried; the retry finds the job completed,
// not running. Finish must report success and the flush no fenced job
// (issue 19: the job was reported lease-lost and counted as fenced).
func TestWriterAmbiguousFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dbtest.Isolated(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	armed := new(atomic.Bool)
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return cutAfterCommit{Conn: conn, armed: armed}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b, w, start := setupWriterOn(t, pool, worker.WriterConfig{})
	l := testserver.RunningJob(t, b.pool, b.tenant, owner)
	if err := w.Append(ctx, testserver.Content(l, 0, "a")); err != nil {
		t.Fatal(err)
	}
	finished := make(chan error, 1)
	go func() { finished <- w.Finish(ctx, testserver.FinishChunk(l, 1, "stop"), completed(l)) }()
	for w.Pending() < 2 {
		// Finish queues before it waits; Pending counts it.
		select {
		case err := <-finished:
			t.Fatalf("Finish returned before the writer ran: %v", err)
		default:
			runtime.Gosched()
		}
	}
	armed.Store(true)
	start()
	if st := testserver.Recv(t, b.flushes, "the ambiguous commit"); st.Err == nil {
		t.Fatalf("first flush = %+v, want the cut connection's error", st)
	}
	job, err := b.store.Get(ctx, b.tenant, l.JobID)
	if err != nil || job.Status != store.StatusCompleted {
		t.Fatalf("after the ambiguous commit: %+v, %v; want it completed (the commit landed)", job, err)
	}
	st := testserver.Recv(t, b.flushes, "the retry")
	if st.Err != nil || st.Fenced != 0 {
		t.Fatalf("retry = %+v, want no fenced job", st)
	}
	if err := testserver.Recv(t, finished, "Finish"); err != nil {
		t.Fatalf("Finish = %v, want nil: the job completed", err)
	}
	if n := worker.LostLeases(w); n != 0 {
		t.Fatalf("Writer remembers %d lost leases", n)
	}
	if got := b.seqs(t, l); len(got) != 2 {
		t.Fatalf("chunks %v, want [0 1]", got)
	}
}
