// Package server wires one jobstream process together: database (found or
// started by pgsetup), migrations, the LISTEN connection and wake-up hub,
// the stream reader, workers and the HTTP API, for `jobstream serve`.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	jsauth "github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/metrics"
	"github.com/jobstream/jobstream/internal/notify"
	"github.com/jobstream/jobstream/internal/retention"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/worker"
)

// Deps are what Run needs beyond the configuration.
type Deps struct {
	Engines *engine.Registry
	// Auth authenticates API requests; nil means API keys and sessions
	// (internal/auth), which also let anonymous requests in when cfg.Dev is
	// set.
	Auth   httpapi.Authenticator
	Getenv func(string) string
	Logger *slog.Logger
	// Listening, if set, is called with the bound address once the HTTP
	// server accepts connections (tests use it instead of polling).
	Listening func(addr net.Addr)
	// Listener, if set, is the HTTP listener to serve on instead of
	// listening on cfg.ListenAddr(); Run closes it. `serve` binds it before Run so
	// that a port in use is reported before the database is touched.
	Listener net.Listener
	// APITracer, if set, traces the queries of the API's pool (not the
	// workers'): tests count a request's database round trips with it.
	APITracer pgx.QueryTracer
}

// Run serves until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg config.Serve, d Deps) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	proxies, err := cfg.Proxies() // valid: Validate checked it
	if err != nil {
		return err
	}
	if d.Listener != nil {
		// Serving closes it at shutdown; this covers the returns before.
		defer d.Listener.Close()
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	// A submission the simulator could not finish within the runtime
	// bound is a 400, not a job that holds a slot until it times out.
	d.Engines.SetMaxRuntime(cfg.MaxRuntime)
	// The log's key is read before the database is touched: a bad key
	// stops serve at once.
	seqCfg := ledger.Config{CheckpointInterval: cfg.Log.CheckpointInterval, CheckpointDir: cfg.Log.CheckpointDir, Logger: log}
	if cfg.Log.KeyFile != "" {
		signer, err := ledger.LoadSigner(cfg.Log.KeyFile)
		if err != nil {
			return err
		}
		seqCfg.Signer = signer
		log.Info("signing checkpoints of the transparency log", "origin", signer.Name(), "checkpoint_dir", cfg.Log.CheckpointDir)
	}
	db, err := OpenDatabase(ctx, cfg, d, log)
	if err != nil {
		return err
	}
	defer db.Close()
	pool := db.API
	st := store.NewWithConfig(pool, store.Config{Logger: log})
	// Chunk partitions for today and the days ahead exist before the first
	// chunk is written; without them chunks still land (in the DEFAULT
	// partition), so a failure here is only worth a warning.
	host, _ := os.Hostname()
	ret := retention.New(st, retention.Config{
		RanBy:    "serve@" + cmp.Or(host, "unknown"),
		Interval: cfg.Retention.Interval,
		Logger:   log,
	})
	if err := ret.EnsurePartitions(ctx); err != nil {
		log.Warn("creating chunk partitions ahead failed; chunks go to the default partition meanwhile", "err", err)
	}
	seq := ledger.NewSequencer(st, seqCfg)
	m := metrics.New()
	m.WatchPool("api", pool)

	var (
		listener *notify.Listener
		hub      *notify.Hub
	)
	if db.ConnectListener != nil {
		hub = notify.NewHub(store.ParseIDs)
		listener = &notify.Listener{
			Connect: db.ConnectListener,
			LogError: func(ctx context.Context, err error) {
				log.Warn("listener disconnected; reconnecting", "err", err)
			},
		}
		listener.Handle(store.ChannelChunks, countingHub{hub: hub, m: m})
		m.WatchFunc("reader", "waiters", "Reads waiting for a wake-up (long-polls and SSE streams between chunks).", func() float64 { return float64(hub.Waiting()) })
	}
	// Readers of jobs running in this process are served what its writer
	// commits, without reading it back (stream.Feed).
	var feed *stream.Feed
	if hub != nil && cfg.Role == config.RoleAll && cfg.LocalReads {
		feed = stream.NewFeed(hub, stream.FeedConfig{})
	}
	reader := stream.New(st, hub, stream.Config{
		MaxBatch: cfg.ReadBatch,
		Feed:     feed,
		Hooks: stream.Hooks{
			Query: func(reads, rows int, d time.Duration, err error) {
				if err == nil {
					m.ObserveRead(reads, rows, d)
				}
			},
			Wait:  func(d time.Duration, outcome string) { m.LongPoll.WithLabelValues(outcome).Observe(d.Seconds()) },
			Skip:  m.ReadsSkipped.Inc,
			Local: func(int) { m.ReadsLocal.Inc() },
		},
	})
	writerCfg := worker.WriterConfig{
		FlushWindow:  cfg.FlushWindow,
		MaxBatch:     cfg.FlushMaxRows,
		MaxPending:   cfg.MaxPendingRows,
		OverloadWait: cfg.OverloadWait,
		OnFlush: func(f worker.FlushStats) {
			m.ObserveFlush(f.Rows, f.Finishes, f.Fenced, f.Jobs-f.Fenced, f.Notifies, f.Duration, f.Err)
		},
		OnWait: m.ObserveAppendWait,
	}
	if feed != nil {
		writerCfg.Feed = feed
	}

	var w *worker.Worker
	if cfg.Role != config.RoleAPI {
		// The workers' own pool (OpenDatabase says why).
		wpool := db.Worker
		m.WatchPool("worker", wpool)
		st := store.New(wpool)
		wcfg := worker.Config{
			Concurrency:    cfg.Concurrency,
			TenantCap:      cfg.MaxRunningPerTenant,
			MaxRuntime:     cfg.MaxRuntime,
			MaxPromptBytes: cfg.MaxPromptBytes,
			LeaseTTL:       cfg.LeaseTTL,
			ShutdownGrace:  cfg.ShutdownGrace,
			AdmitBacklog:   cfg.AdmitBacklog,
			Writer:         writerCfg,
			WriteMode:      cfg.WriteMode,
			Logger:         log,
		}
		if listener == nil {
			// Poll-only: no notifications, so look for work and
			// cancellations often.
			wcfg.HeartbeatInterval = min(cfg.LeaseTTL/3, time.Second)
			wcfg.PollInterval = 100 * time.Millisecond
		}
		w = worker.New(st, d.Engines, wcfg)
		if listener != nil {
			listener.Handle(store.ChannelJobs, w.JobsHandler())
			listener.Handle(store.ChannelCancel, w.CancelHandler())
		}
		m.WatchFunc("writer", "pending_rows", "Rows waiting for the chunk writer's next transaction.", func() float64 { return float64(w.Writer().Pending()) })
		m.WatchFunc("worker", "running_jobs", "Jobs running in this process.", func() float64 { return float64(w.Running()) })
	}

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	// Request contexts end at shutdown, so open long-polls and SSE streams
	// return instead of holding the process.
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	errc := make(chan error, 4)
	running := 1
	// Retention passes: every node tries, one at a time runs (an advisory
	// lock), so any node can die without retention stopping.
	go func() { errc <- ret.Run(runCtx) }()
	// The transparency log: every node sequences (one at a time, an
	// advisory lock); a node with the key signs checkpoints.
	running++
	go func() { errc <- seq.Run(runCtx) }()
	if listener != nil {
		running++
		go func() { errc <- listener.Listen(runCtx) }()
	}
	// The workers stop when ctx ends, or when Run fails before that (the
	// HTTP listener could not bind, say): Run must never wait on workers
	// nobody told to stop.
	workerCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	workerDone := make(chan struct{})
	if w != nil {
		go func() { defer close(workerDone); _ = w.Run(workerCtx) }()
	} else {
		close(workerDone)
	}

	var (
		httpSrv *http.Server
		api     *API
	)
	if cfg.Role != config.RoleWorker {
		auth := d.Auth
		if auth == nil {
			auth = jsauth.New(st, jsauth.Config{
				Dev: cfg.Dev, CSRF: cfg.CSRF, SessionTTL: cfg.SessionTTL,
				LoginOrigins: cfg.Origins(), Proxies: proxies,
			})
		}
		var limits *httpapi.Limits
		if cfg.RateLimit > 0 || cfg.MaxInFlight > 0 {
			limits = &httpapi.Limits{RatePerSecond: cfg.RateLimit, Burst: cfg.RateBurst, MaxInFlight: cfg.MaxInFlight}
		}
		api = NewAPI(APIDeps{
			Store:   st,
			Reader:  reader,
			Engines: d.Engines,
			Auth:    auth,
			Logger:  log,
			Config: httpapi.Config{MaxWait: cfg.MaxWait, MaxPromptBytes: cfg.MaxPromptBytes, LogPrompts: cfg.LogPrompts,
				MaxExpensiveInFlight: expensiveLimit(cfg.MaxInFlightExpensive)},
			Metrics: m.Handler(),
			Limits:  limits,
			Ready:   readiness(pool, listener, log),
		})
		// CORS is off unless origins are configured; it wraps everything
		// so that preflights are answered before authentication.
		handler := httpapi.CORS(cfg.Origins(), api)
		httpSrv = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: cmp.Or(cfg.ReadHeaderTimeout, config.DefaultReadHeaderTimeout), // slowloris
			ReadTimeout:       30 * time.Second,
			// Above the longest long-poll; SSE extends it per write.
			WriteTimeout:   cfg.MaxWait + 30*time.Second,
			IdleTimeout:    120 * time.Second,
			MaxHeaderBytes: 64 << 10,
			BaseContext:    func(net.Listener) context.Context { return httpCtx },
			// Handlers may learn whether the client reset the connection
			// with their answer unread (SEMOSS cursor mode sends such a
			// page again).
			ConnContext: httpapi.ConnContext,
		}
		if listener != nil {
			// Serve only once LISTEN is in place, so /readyz is green
			// from the first request; a database that refuses the
			// listener still lets the API start (readyz says why).
			t := time.NewTimer(10 * time.Second)
			select {
			case <-listener.Ready():
			case <-t.C:
				log.Warn("LISTEN connection not up after 10s; serving anyway (readers poll)")
			case <-ctx.Done():
			}
			t.Stop()
		}
		ln := d.Listener
		if ln == nil {
			ln, err = net.Listen("tcp", cfg.ListenAddr())
			if err != nil {
				stop()
				stopWorkers()
				<-workerDone
				return fmt.Errorf("listen on %s: %w", cfg.ListenAddr(), err)
			}
		}
		ln = httpapi.WatchConns(ln)
		if a, ok := auth.(*jsauth.Authenticator); ok {
			running++
			go func() { errc <- a.WatchRevocations(runCtx) }()
		}
		log.Info("serving", "addr", ln.Addr().String(), "role", cfg.Role, "dev", cfg.Dev, "poll_only", cfg.PollOnly)
		if cfg.Dev && !Loopback(ln.Addr()) {
			log.Warn("--dev serves anonymous requests beyond this machine: anyone who can reach this address reads and submits jobs without a key; bind loopback (--addr 127.0.0.1:8080) or drop --dev and use keys",
				"addr", ln.Addr().String())
		}
		if d.Listening != nil {
			d.Listening(ln.Addr())
		}
		running++
		go func() {
			if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}

	var pprofSrv *http.Server
	if cfg.Pprof {
		pln, err := net.Listen("tcp", cmp.Or(cfg.PprofAddr, config.DefaultPprofAddr))
		if err != nil {
			log.Error("pprof: listen", "addr", cfg.PprofAddr, "err", err)
		} else {
			pprofSrv = &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
			log.Info("pprof serving", "addr", pln.Addr().String())
			go func() { _ = pprofSrv.Serve(pln) }()
		}
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		running--
	}
	log.Info("shutting down")
	drainStart := time.Now()
	if httpSrv != nil {
		// Drain first: /readyz answers 503 and new work 503 with
		// Retry-After, waiting long-polls answer 200 with what they have
		// and SSE streams end cleanly, so clients resume from their
		// offset on another node. The port stays open meanwhile: a load
		// balancer routes around a node that says it is draining, not
		// around one that refuses connections. Connections are not kept
		// alive, so clients reconnect elsewhere.
		api.Drain()
		httpSrv.SetKeepAlivesEnabled(false)
		if runErr == nil {
			// Keep serving while this node's jobs run out their grace
			// (the workers stopped when ctx ended), and, except in dev
			// mode, for the whole grace, so that load balancers see the
			// 503s.
			<-workerDone
			if !cfg.Dev {
				if d := time.Until(drainStart.Add(cfg.ShutdownGrace)); d > 0 {
					t := time.NewTimer(d)
					<-t.C
				}
			}
		}
		// Then stop accepting and wait for the handlers; whatever is
		// still running after 5 s is cut (request contexts derive from
		// httpCtx).
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := httpSrv.Shutdown(shutdownCtx); err != nil {
			log.Warn("HTTP requests still running after 5s; closing them", "err", err)
			stopHTTP()
			_ = httpSrv.Close()
		}
		stopHTTP()
		cancel()
	}
	if pprofSrv != nil {
		_ = pprofSrv.Close()
	}
	stopWorkers()
	<-workerDone
	stop()
	for ; running > 0; running-- {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

// expensiveLimit is --max-inflight-expensive as httpapi.Config has it: 0
// (no limit) is negative there, where 0 is the default.
func expensiveLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// readiness is /readyz's check: the database answers and the LISTEN
// connection is up. /readyz needs no credentials, so its reasons are
// generic; the details (host, port, user, database) go to the log.
func readiness(pool *pgxpool.Pool, listener *notify.Listener, log *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			log.Warn("not ready: database unreachable", "err", err)
			return errors.New("database unreachable")
		}
		if listener != nil && !listener.Connected() {
			return errors.New("LISTEN connection down; reconnecting")
		}
		return nil
	}
}

// pprofHandler serves net/http/pprof, on a listener of its own.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// countingHub is the Hub as the ChannelChunks handler, counting
// notifications and the waiters they woke.
type countingHub struct {
	hub *notify.Hub
	m   *metrics.Metrics
}

func (c countingHub) HandleNotification(_ context.Context, n *pgconn.Notification) {
	c.m.Notifications.Inc()
	c.m.Wakeups.Add(float64(c.hub.Wake(c.hub.Parse(n.Payload)...)))
}

func (c countingHub) HandleBacklog(ctx context.Context) { c.hub.HandleBacklog(ctx) }

// Loopback reports whether addr is a TCP address on a loopback interface
// only (127.0.0.0/8, ::1). The unspecified address (":8080", "0.0.0.0")
// is every interface, and so not loopback.
func Loopback(addr net.Addr) bool {
	a, ok := addr.(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}
