package responsesapi_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/internal/worker"
)

// bundle is one test's server: a database of its own (a worker claims
// every queued job of its database), the real authenticator with two
// tenants' keys, a worker running the simulator, and the API over
// httptest, through the real route table.
type bundle struct {
	srv   *httptest.Server
	api   *server.API
	store *store.Store
	pool  *pgxpool.Pool
	// keys are "access:secret" API keys of tenants "a" and "b", as an
	// OpenAI SDK sends them (Bearer).
	keyA, keyB string
	// statements counts the SQL statements the server's pool ran.
	statements *atomic.Int64
}

type options struct {
	// noWorker leaves jobs queued (the test writes their chunks).
	noWorker bool
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	url := testserver.Database(t)
	b := &bundle{statements: new(atomic.Int64)}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 6
	cfg.ConnConfig.Tracer = countTracer{b.statements}
	b.pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Close)
	b.store = store.New(b.pool)
	ctx := context.Background()
	for _, k := range []struct {
		tenant string
		dst    *string
	}{{"a", &b.keyA}, {"b", &b.keyB}} {
		key, secret, err := auth.CreateKey(ctx, b.store, "key-"+k.tenant, k.tenant)
		if err != nil {
			t.Fatal(err)
		}
		*k.dst = key.AccessKey + ":" + secret
	}

	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	hub := notify.NewHub(store.ParseIDs)
	handlers := map[string]notify.Handler{}
	if !o.noWorker {
		wpool := testserver.Pool(t, url, 4)
		w := worker.New(store.New(wpool), engines, worker.Config{})
		handlers[store.ChannelJobs] = w.JobsHandler()
		handlers[store.ChannelCancel] = w.CancelHandler()
		wctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(wctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	testserver.StartListener(t, url, "", hub, handlers)
	b.api = server.NewAPI(server.APIDeps{
		Store:   b.store,
		Reader:  stream.NewReader(b.store, hub, time.Hour),
		Engines: engines,
		Auth:    auth.New(b.store, auth.Config{}),
	})
	b.srv = httptest.NewServer(b.api)
	t.Cleanup(b.srv.Close)
	return b
}

// countTracer counts the statements run on a pool.
type countTracer struct{ n *atomic.Int64 }

func (c countTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (countTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// client returns an official openai-go client for key.
func (b *bundle) client(key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(b.srv.URL+"/v1/"),
		option.WithAPIKey(key),
		option.WithHTTPClient(b.srv.Client()),
		option.WithMaxRetries(0),
	)
}
