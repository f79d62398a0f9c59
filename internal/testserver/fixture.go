package testserver

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/store"
)

// RunningJob inserts a job of tenant that owner already holds (attempt 1,
// lease for an hour) straight in status running. It never passes through
// the queue, so no claimer can take it, even in a shared database.
func RunningJob(t testing.TB, pool *pgxpool.Pool, tenant, owner string) store.Lease {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := pool.Exec(context.Background(), `
		INSERT INTO jobs (id, tenant, engine, request, status, attempt, lease_owner, lease_expires_at, started_at)
		VALUES ($1, $2, 'sim', '{"command":"fixture"}', 'running', 1, $3, now() + interval '1 hour', now())`,
		id, tenant, owner)
	if err != nil {
		t.Fatalf("testserver: insert running job: %v", err)
	}
	return store.Lease{JobID: id, Attempt: 1}
}

// Content is a content chunk of lease at seq.
func Content(l store.Lease, seq int, text string) store.NewChunk {
	data, _ := json.Marshal(map[string]string{"content": text})
	return store.NewChunk{Lease: l, Seq: seq, StreamType: "content", Data: data}
}

// FinishChunk is a finish chunk of lease at seq.
func FinishChunk(l store.Lease, seq int, reason string) store.NewChunk {
	data, _ := json.Marshal(map[string]string{"finish_reason": reason})
	return store.NewChunk{Lease: l, Seq: seq, StreamType: "content", Data: data}
}

// StartListener runs a notify.Listener on url with hub handling the chunk
// channel (and any extra handlers), until the test ends. It returns once
// the listener is LISTENing. Its connection's application_name is appName
// when set, so a test can find (and kill) its backend.
func StartListener(t testing.TB, url, appName string, hub *notify.Hub, extra map[string]notify.Handler) *notify.Listener {
	t.Helper()
	l := &notify.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				return nil, err
			}
			if appName != "" {
				cfg.RuntimeParams["application_name"] = appName
			}
			return pgx.ConnectConfig(ctx, cfg)
		},
		ReconnectDelay: 10 * time.Millisecond,
	}
	if hub != nil {
		l.Handle(store.ChannelChunks, hub)
	}
	for ch, h := range extra {
		l.Handle(ch, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Listen(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	Recv(t, l.Ready(), "the listener to be ready")
	return l
}

// Timeout bounds waits on signals that should come at once: a safety net
// that turns a hang into a failure, never a synchronisation.
const Timeout = 30 * time.Second

// Recv receives from c, failing the test after Timeout.
func Recv[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v := <-c:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", Timeout, what)
		panic("unreachable")
	}
}

// Tenant returns a tenant name unique to this run of the test: tests in a
// package share a database (also across -count runs), and every read is
// filtered by tenant.
func Tenant(t testing.TB) string {
	return t.Name() + "-" + uuid.NewString()[:8]
}
