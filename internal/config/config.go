// Package config holds jobstream's typed configuration. Values come from
// flags, falling back to environment variables, falling back to the
// documented defaults; Validate returns user-facing errors. Only cmd/ and
// this package read the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/worker"
)

// Roles a serve process can run.
const (
	RoleAll    = "all"
	RoleAPI    = "api"
	RoleWorker = "worker"
)

// Defaults not owned by another package.
const (
	DefaultAddr = ":8080"
	// DefaultDevAddr is the listen address of --dev without --addr:
	// loopback only, since --dev lets anyone who can connect in without a
	// key (the README's first command must not publish an anonymous API on
	// a cloud VM's public interface).
	DefaultDevAddr = "127.0.0.1:8080"
	// DefaultPprofAddr is Serve.PprofAddr's default: loopback only.
	DefaultPprofAddr = "127.0.0.1:6060"
	DefaultMaxConns  = 20
	// DefaultWorkerConns is the workers' pool size (Serve.WorkerConns).
	DefaultWorkerConns = 6
	// DefaultReadHeaderTimeout is Serve.ReadHeaderTimeout's default.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultSessionTTL is Serve.SessionTTL's default.
	DefaultSessionTTL = 24 * time.Hour
	// DefaultLogLevel is Serve.LogLevel's default.
	DefaultLogLevel = "info"
)

// Serve configures `jobstream serve`. Build one with Default (or Flags) and
// change what differs: the zero Serve is not a valid configuration.
type Serve struct {
	// Addr is the HTTP listen address. Env JOBSTREAM_ADDR. Empty (the
	// default) is DefaultAddr, or DefaultDevAddr with Dev: use ListenAddr.
	Addr string
	// DatabaseURL is the PostgreSQL connection string. Env DATABASE_URL.
	// Empty means: the local server, else a private cluster in DataDir.
	DatabaseURL string
	// ServerDatabaseURL is the connection string of the role that serves
	// requests (API, workers, LISTEN): a member of jobstream_app only,
	// that owns nothing, such as jobstream_server (README.md, "Production
	// set-up"). Env JOBSTREAM_SERVER_DATABASE_URL. Defaults to empty:
	// when DatabaseURL is the owner's, serve migrates with it and logs in
	// as jobstream_server on the same server and database (with a password
	// derived from the owner's); otherwise it serves with DatabaseURL.
	// Set without DatabaseURL, serve never holds the owner's credentials
	// and does not migrate (the owner runs `jobstream migrate`).
	ServerDatabaseURL string
	// ListenerURL is a separate connection string for the LISTEN connection,
	// for deployments whose serving connection string goes through a
	// transaction-mode pooler (which breaks LISTEN). It must log in as a
	// role fit to serve, like ServerDatabaseURL. Env
	// JOBSTREAM_LISTENER_URL. Defaults to the serving role's connection
	// string.
	ListenerURL string
	// DataDir holds the private PostgreSQL cluster. Env JOBSTREAM_DATA_DIR.
	// Defaults to $XDG_DATA_HOME/jobstream or ~/.local/share/jobstream.
	DataDir string
	// Role is all (api + workers), api, or worker. Env JOBSTREAM_ROLE.
	// Defaults to all.
	Role string
	// Concurrency is the number of jobs one process runs at once. Env
	// JOBSTREAM_CONCURRENCY. Defaults to 256.
	Concurrency int
	// MaxRunningPerTenant is the most jobs of one tenant a worker process
	// runs at once; the tenant's other jobs wait queued while other
	// tenants' jobs start. Free slots go round robin (the tenant with the
	// fewest jobs running first, then the oldest job). Env
	// JOBSTREAM_MAX_RUNNING_PER_TENANT. Defaults to 0: three quarters of
	// Concurrency (at least 1); negative: no cap (round robin only, for a
	// server with a single tenant).
	MaxRunningPerTenant int
	// MaxRuntime bounds how long one attempt of a job runs: then its model
	// call is stopped and the job fails with an error finish chunk of
	// type "timeout" (enforced by the worker, and by every node's rescuer
	// for a worker that does not). Submissions to the sim whose params
	// would run longer are refused. Env JOBSTREAM_MAX_RUNTIME. Defaults to
	// 1h.
	MaxRuntime time.Duration
	// LeaseTTL is how long a job's lease lasts without a heartbeat. Env
	// JOBSTREAM_LEASE_TTL. Defaults to 30s.
	LeaseTTL time.Duration
	// ShutdownGrace is how long in-flight jobs may finish on SIGTERM. Env
	// JOBSTREAM_SHUTDOWN_GRACE. Defaults to 10s.
	ShutdownGrace time.Duration
	// FlushWindow is the chunk writer's group-commit window. Env
	// JOBSTREAM_FLUSH_WINDOW. Defaults to 5ms.
	FlushWindow time.Duration
	// FlushMaxRows caps the rows of one chunk writer transaction. Env
	// JOBSTREAM_FLUSH_MAX_ROWS. Defaults to 4000 (0 = the default).
	FlushMaxRows int
	// WriteMode is the chunk writer: batched (one group-commit transaction
	// per flush window for all jobs) or naive (a transaction and a NOTIFY
	// per chunk: only to measure what batching buys). Env
	// JOBSTREAM_WRITE_MODE. Defaults to batched.
	WriteMode string
	// ReadBatch caps the reads served by one coalesced read statement; 1
	// turns coalescing off (a statement per woken reader). Env
	// JOBSTREAM_READ_BATCH. Defaults to 500 (0 = the default).
	ReadBatch int
	// LocalReads serves readers of jobs running in this process from what
	// its chunk writer just committed, without a read statement (with
	// --role all). Env JOBSTREAM_LOCAL_READS. Defaults to true; off only
	// to measure what it saves.
	LocalReads bool
	// PollOnly disables LISTEN/NOTIFY: readers and workers poll. Env
	// JOBSTREAM_POLL_ONLY. Defaults to false.
	PollOnly bool
	// MaxConns is the database pool size of the API (request handlers).
	// Env JOBSTREAM_MAX_CONNS. Defaults to 20.
	MaxConns int
	// WorkerConns is the size of the workers' own pool (claims,
	// heartbeats, the chunk writer), kept apart so that the writer never
	// queues for a connection behind request handlers. Env
	// JOBSTREAM_WORKER_CONNS. Defaults to 6 (0 = the default).
	WorkerConns int
	// MaxWait caps long-poll waits. Env JOBSTREAM_MAX_WAIT. Defaults to 25s.
	MaxWait time.Duration
	// Dev allows anonymous requests (tenant "dev"). Never use it on a
	// network others can reach. Env JOBSTREAM_DEV. Defaults to false.
	Dev bool
	// CSRF requires SEMOSS's X-CSRF-Token header (from GET
	// /Monolith/api/config/fetchCsrf) on POSTs authenticated by the
	// session cookie alone. Env JOBSTREAM_CSRF. Defaults to false.
	CSRF bool
	// SessionTTL is how long a SEMOSS session lives without use. Env
	// JOBSTREAM_SESSION_TTL. Defaults to 24h.
	SessionTTL time.Duration
	// EnginesFile is the YAML engines file. Env JOBSTREAM_ENGINES.
	// Defaults to none (the sim engine only).
	EnginesFile string
	// Pprof serves net/http/pprof under /debug/pprof/ on PprofAddr, never
	// on the API's port (profiles and traces are not for clients). Env
	// JOBSTREAM_PPROF. Defaults to false.
	Pprof bool
	// PprofAddr is the listen address of pprof. Env JOBSTREAM_PPROF_ADDR.
	// Defaults to 127.0.0.1:6060 (loopback only).
	PprofAddr string
	// LogLevel is debug, info, warn or error. Env JOBSTREAM_LOG_LEVEL.
	// Defaults to info.
	LogLevel string
	// LogPrompts logs each submitted job's prompt (command, system prompt,
	// messages). Prompts are user data: off unless explicitly enabled.
	// Secrets are never logged. Env JOBSTREAM_LOG_PROMPTS. Defaults to
	// false.
	LogPrompts bool
	// RateLimit is the sustained request rate allowed per API key (per
	// client address for anonymous dev-mode requests), in requests per
	// second; beyond it requests get 429 with Retry-After. 0 disables it.
	// Env JOBSTREAM_RATE_LIMIT. Defaults to 1000 (Default(); the zero
	// Serve has no limit, and does not validate).
	RateLimit float64
	// RateBurst is the number of requests a key may make at once above
	// RateLimit. Env JOBSTREAM_RATE_BURST. Defaults to 2 × RateLimit (0).
	RateBurst int
	// MaxInFlight caps the concurrent requests of one key, long-polls and
	// SSE streams included (429 with Retry-After beyond). 0 disables it.
	// Env JOBSTREAM_MAX_INFLIGHT. Defaults to 5000 (Default()).
	MaxInFlight int
	// MaxInFlightExpensive caps the concurrent requests of one key on the
	// routes that read a whole job (verify, transcript, audit), 429 with
	// Retry-After beyond. 0 disables it. Env
	// JOBSTREAM_MAX_INFLIGHT_EXPENSIVE. Defaults to 4 (Default()).
	MaxInFlightExpensive int
	// CORSOrigins are the browser origins allowed to call the API
	// (comma-separated; "*" allows any, without credentials). Env
	// JOBSTREAM_CORS_ORIGINS. Defaults to none: CORS off.
	CORSOrigins string
	// TrustedProxies are the reverse proxies (comma-separated IP
	// addresses or CIDR prefixes) whose X-Forwarded-Proto and
	// X-Forwarded-Host the server believes: behind a TLS proxy, they say
	// that the client's connection is HTTPS, so the session cookie is
	// Secure and a login's Origin is compared with the https origin. The
	// headers of any other peer are ignored (a client could send them).
	// Env JOBSTREAM_TRUSTED_PROXIES. Defaults to none.
	TrustedProxies string
	// MaxPromptBytes caps the size of a job's prompt (command, system
	// prompt, messages and prompt params together); larger submissions
	// get 413. Env JOBSTREAM_MAX_PROMPT_BYTES. Defaults to 512 KiB (0 =
	// the default).
	MaxPromptBytes int
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers before the connection is closed (defeats slowloris). Env
	// JOBSTREAM_READ_HEADER_TIMEOUT. Defaults to 10s (0 = the default).
	ReadHeaderTimeout time.Duration
	// MaxPendingRows caps the chunks the writer keeps in memory while the
	// database is unreachable or slow. Env JOBSTREAM_MAX_PENDING_ROWS.
	// Defaults to 200,000 (0 = the default).
	MaxPendingRows int
	// OverloadWait is how long a model stream waits for room once
	// MaxPendingRows are buffered (it is read no faster than the database
	// commits meanwhile); after it the job fails with an "overloaded"
	// error chunk. Env JOBSTREAM_OVERLOAD_WAIT. Defaults to 10s (0 = the
	// default).
	OverloadWait time.Duration
	// Retention: the default policy and the pass interval.
	Retention Retention
	// Log: the transparency log's signing key and checkpoints.
	Log Log
	// AdmitBacklog is admission control: while more chunks than this wait
	// for the writer's next commit, the node claims no new jobs (they stay
	// queued). Env JOBSTREAM_ADMIT_BACKLOG. Defaults to 0: twice
	// FlushMaxRows; negative: off.
	AdmitBacklog int

	envErrs []error
}

// Default returns the configuration `jobstream serve` runs with when no flag
// or environment variable says otherwise. It is the one place defaults are
// applied: the flags take their defaults from it, and a server built in code
// (tests, `jobstream bench --in-process`) starts from it, so that it runs
// with the limits production has (rate and in-flight limits included)
// unless it turns them off explicitly.
func Default() Serve {
	return Serve{
		PprofAddr:            DefaultPprofAddr,
		Role:                 RoleAll,
		Concurrency:          worker.DefaultConcurrency,
		MaxRuntime:           worker.DefaultMaxRuntime,
		LeaseTTL:             worker.DefaultLeaseTTL,
		ShutdownGrace:        worker.DefaultShutdownGrace,
		FlushWindow:          worker.DefaultFlushWindow,
		FlushMaxRows:         worker.DefaultMaxBatch,
		WriteMode:            worker.WriteBatched,
		ReadBatch:            stream.DefaultMaxBatch,
		LocalReads:           true,
		MaxConns:             DefaultMaxConns,
		WorkerConns:          DefaultWorkerConns,
		MaxWait:              httpapi.DefaultMaxWait,
		SessionTTL:           DefaultSessionTTL,
		LogLevel:             DefaultLogLevel,
		RateLimit:            httpapi.DefaultRatePerSecond,
		MaxInFlight:          httpapi.DefaultMaxInFlightKey,
		MaxInFlightExpensive: httpapi.DefaultMaxExpensiveInFlight,
		MaxPromptBytes:       httpapi.DefaultMaxPromptBytes,
		ReadHeaderTimeout:    DefaultReadHeaderTimeout,
		MaxPendingRows:       worker.DefaultMaxPending,
		OverloadWait:         worker.DefaultOverloadWait,
		Retention:            DefaultRetention(),
		Log:                  DefaultLog(),
	}
}

// ListenAddr is the address to serve HTTP on: Addr when set, else
// DefaultDevAddr (loopback) with Dev, else DefaultAddr (every interface,
// where a production node behind a load balancer listens; it needs keys).
func (c *Serve) ListenAddr() string {
	switch {
	case c.Addr != "":
		return c.Addr
	case c.Dev:
		return DefaultDevAddr
	}
	return DefaultAddr
}

// Flags registers Serve's flags on fs. A flag's default is the environment
// variable named in its usage when set, else Default()'s value.
func (c *Serve) Flags(fs *flag.FlagSet, getenv func(string) string) {
	c.register(fs, getenv, Default())
}

// Set applies serve flags in args to c, leaving what they do not name as it
// is (the environment is not read), and validates the result. A program
// that builds a Serve in code and also starts `jobstream serve` processes
// (the bench) describes its changes once, as flags, for both.
func (c *Serve) Set(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.register(fs, func(string) string { return "" }, *c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c.Validate()
}

// register registers the flags with defaults from the environment, else d.
func (c *Serve) register(fs *flag.FlagSet, getenv func(string) string, d Serve) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Addr, "addr", env("JOBSTREAM_ADDR", d.Addr), "HTTP listen address (env JOBSTREAM_ADDR; default "+DefaultAddr+", with --dev "+DefaultDevAddr+": loopback only)")
	c.DatabaseURL = env("DATABASE_URL", d.DatabaseURL)
	fs.StringVar(&c.ServerDatabaseURL, "server-database-url", env("JOBSTREAM_SERVER_DATABASE_URL", d.ServerDatabaseURL), "connection string of the role that serves requests, a member of jobstream_app only (env JOBSTREAM_SERVER_DATABASE_URL; default: jobstream_server, derived from DATABASE_URL when that is the owner's). Set it without DATABASE_URL in production: serve then neither holds the owner's credentials nor migrates (run 'jobstream migrate' as the owner)")
	fs.StringVar(&c.ListenerURL, "listener-url", env("JOBSTREAM_LISTENER_URL", d.ListenerURL), "separate connection string for LISTEN, e.g. when the serving connection string goes through PgBouncer; it must log in as a serving role too (env JOBSTREAM_LISTENER_URL; default: the serving role's)")
	fs.StringVar(&c.DataDir, "data-dir", env("JOBSTREAM_DATA_DIR", d.DataDir), "data directory for the private PostgreSQL cluster (env JOBSTREAM_DATA_DIR; default ~/.local/share/jobstream)")
	fs.StringVar(&c.Role, "role", env("JOBSTREAM_ROLE", d.Role), "what to run: all (api + workers), api, or worker (env JOBSTREAM_ROLE)")
	fs.IntVar(&c.Concurrency, "concurrency", c.envInt(getenv, "JOBSTREAM_CONCURRENCY", d.Concurrency), "jobs run at once by this process (env JOBSTREAM_CONCURRENCY)")
	fs.IntVar(&c.MaxRunningPerTenant, "max-running-per-tenant", c.envInt(getenv, "JOBSTREAM_MAX_RUNNING_PER_TENANT", d.MaxRunningPerTenant), "most jobs of one tenant this process runs at once, so that other tenants' jobs start while one floods the queue; 0 = three quarters of --concurrency, negative = no cap (env JOBSTREAM_MAX_RUNNING_PER_TENANT)")
	fs.DurationVar(&c.MaxRuntime, "max-runtime", c.envDuration(getenv, "JOBSTREAM_MAX_RUNTIME", d.MaxRuntime), "longest a job may run; then it fails with a timeout error (env JOBSTREAM_MAX_RUNTIME)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.envDuration(getenv, "JOBSTREAM_LEASE_TTL", d.LeaseTTL), "job lease lifetime without a heartbeat; a dead worker's jobs are rescued after it (env JOBSTREAM_LEASE_TTL)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.envDuration(getenv, "JOBSTREAM_SHUTDOWN_GRACE", d.ShutdownGrace), "how long in-flight jobs may finish on SIGTERM (env JOBSTREAM_SHUTDOWN_GRACE)")
	fs.DurationVar(&c.FlushWindow, "flush-window", c.envDuration(getenv, "JOBSTREAM_FLUSH_WINDOW", d.FlushWindow), "group-commit window of the chunk writer (env JOBSTREAM_FLUSH_WINDOW)")
	fs.IntVar(&c.FlushMaxRows, "flush-max-rows", c.envInt(getenv, "JOBSTREAM_FLUSH_MAX_ROWS", d.FlushMaxRows), "most rows in one chunk writer transaction (env JOBSTREAM_FLUSH_MAX_ROWS)")
	fs.StringVar(&c.WriteMode, "write-mode", env("JOBSTREAM_WRITE_MODE", d.WriteMode), "chunk writer: batched (group commit) or naive (a transaction per chunk, for benchmarks) (env JOBSTREAM_WRITE_MODE)")
	fs.IntVar(&c.ReadBatch, "read-batch", c.envInt(getenv, "JOBSTREAM_READ_BATCH", d.ReadBatch), "most reads served by one coalesced read statement; 1 = no coalescing (env JOBSTREAM_READ_BATCH)")
	fs.BoolVar(&c.LocalReads, "local-reads", c.envBool(getenv, "JOBSTREAM_LOCAL_READS", d.LocalReads), "serve readers of jobs running in this process from what its writer just committed, without a query; false only to measure it (env JOBSTREAM_LOCAL_READS)")
	fs.BoolVar(&c.PollOnly, "poll-only", c.envBool(getenv, "JOBSTREAM_POLL_ONLY", d.PollOnly), "do not LISTEN; readers and workers poll (env JOBSTREAM_POLL_ONLY)")
	fs.IntVar(&c.MaxConns, "max-conns", c.envInt(getenv, "JOBSTREAM_MAX_CONNS", d.MaxConns), "database pool size of the API (env JOBSTREAM_MAX_CONNS)")
	fs.IntVar(&c.WorkerConns, "worker-conns", c.envInt(getenv, "JOBSTREAM_WORKER_CONNS", d.WorkerConns), "database pool size of the workers and chunk writer, apart from the API's (env JOBSTREAM_WORKER_CONNS)")
	fs.DurationVar(&c.MaxWait, "max-wait", c.envDuration(getenv, "JOBSTREAM_MAX_WAIT", d.MaxWait), "cap on long-poll waits (env JOBSTREAM_MAX_WAIT)")
	fs.BoolVar(&c.Dev, "dev", c.envBool(getenv, "JOBSTREAM_DEV", d.Dev), "dev mode: allow anonymous requests (tenant \"dev\"); never on a shared network (env JOBSTREAM_DEV)")
	fs.BoolVar(&c.CSRF, "csrf", c.envBool(getenv, "JOBSTREAM_CSRF", d.CSRF), "require SEMOSS's X-CSRF-Token on cookie-authenticated POSTs (env JOBSTREAM_CSRF)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", c.envDuration(getenv, "JOBSTREAM_SESSION_TTL", d.SessionTTL), "how long an unused SEMOSS session lives (env JOBSTREAM_SESSION_TTL)")
	fs.StringVar(&c.EnginesFile, "engines", env("JOBSTREAM_ENGINES", d.EnginesFile), "YAML engines file (env JOBSTREAM_ENGINES; default: the sim engine only)")
	fs.BoolVar(&c.Pprof, "pprof", c.envBool(getenv, "JOBSTREAM_PPROF", d.Pprof), "serve net/http/pprof under /debug/pprof/ on --pprof-addr, apart from the API (env JOBSTREAM_PPROF)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("JOBSTREAM_PPROF_ADDR", d.PprofAddr), "listen address of --pprof; keep it on loopback (env JOBSTREAM_PPROF_ADDR)")
	fs.StringVar(&c.LogLevel, "log-level", env("JOBSTREAM_LOG_LEVEL", d.LogLevel), "debug, info, warn or error (env JOBSTREAM_LOG_LEVEL)")
	fs.BoolVar(&c.LogPrompts, "log-prompts", c.envBool(getenv, "JOBSTREAM_LOG_PROMPTS", d.LogPrompts), "log each submitted job's prompt; prompts are user data, never logged otherwise (env JOBSTREAM_LOG_PROMPTS)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.envFloat(getenv, "JOBSTREAM_RATE_LIMIT", d.RateLimit), "requests per second allowed per API key, then 429 with Retry-After; 0 = no limit (env JOBSTREAM_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.envInt(getenv, "JOBSTREAM_RATE_BURST", d.RateBurst), "requests a key may make at once above --rate-limit; 0 = twice the rate (env JOBSTREAM_RATE_BURST)")
	fs.IntVar(&c.MaxInFlight, "max-inflight", c.envInt(getenv, "JOBSTREAM_MAX_INFLIGHT", d.MaxInFlight), "concurrent requests (long-polls and SSE streams included) per API key, then 429; 0 = no limit (env JOBSTREAM_MAX_INFLIGHT)")
	fs.IntVar(&c.MaxInFlightExpensive, "max-inflight-expensive", c.envInt(getenv, "JOBSTREAM_MAX_INFLIGHT_EXPENSIVE", d.MaxInFlightExpensive), "concurrent verify, transcript and audit requests (they read a whole job) per API key, then 429; 0 = no limit (env JOBSTREAM_MAX_INFLIGHT_EXPENSIVE)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", env("JOBSTREAM_CORS_ORIGINS", d.CORSOrigins), "comma-separated browser origins allowed to call the API (\"*\" = any, without credentials); default none: CORS off (env JOBSTREAM_CORS_ORIGINS)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", env("JOBSTREAM_TRUSTED_PROXIES", d.TrustedProxies), "comma-separated IP addresses or CIDR prefixes of reverse proxies whose X-Forwarded-Proto/-Host are believed (a TLS proxy: Secure session cookies); default none (env JOBSTREAM_TRUSTED_PROXIES)")
	fs.IntVar(&c.MaxPromptBytes, "max-prompt-bytes", c.envInt(getenv, "JOBSTREAM_MAX_PROMPT_BYTES", d.MaxPromptBytes), "largest prompt (command, system, messages) a job may have (env JOBSTREAM_MAX_PROMPT_BYTES)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.envDuration(getenv, "JOBSTREAM_READ_HEADER_TIMEOUT", d.ReadHeaderTimeout), "time a client has to send request headers (defeats slowloris) (env JOBSTREAM_READ_HEADER_TIMEOUT)")
	fs.IntVar(&c.MaxPendingRows, "max-pending-rows", c.envInt(getenv, "JOBSTREAM_MAX_PENDING_ROWS", d.MaxPendingRows), "chunks kept in memory while the database is slow or unreachable; past it model streams wait for room (env JOBSTREAM_MAX_PENDING_ROWS)")
	c.Retention.register(fs, getenv, d.Retention, true)
	c.Log.register(fs, getenv, d.Log)
	fs.DurationVar(&c.OverloadWait, "overload-wait", c.envDuration(getenv, "JOBSTREAM_OVERLOAD_WAIT", d.OverloadWait), "how long a model stream waits for room past --max-pending-rows before its job fails as overloaded (env JOBSTREAM_OVERLOAD_WAIT)")
	fs.IntVar(&c.AdmitBacklog, "admit-backlog", c.envInt(getenv, "JOBSTREAM_ADMIT_BACKLOG", d.AdmitBacklog), "admission control: claim no new jobs while more chunks than this wait for the writer (0 = twice --flush-max-rows, negative = off) (env JOBSTREAM_ADMIT_BACKLOG)")
}

// Validate returns every problem with c, joined.
func (c *Serve) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	for _, u := range []struct{ name, dsn string }{
		{"DATABASE_URL", c.DatabaseURL},
		{"--server-database-url", c.ServerDatabaseURL},
		{"--listener-url", c.ListenerURL},
	} {
		if u.dsn == "" {
			continue
		}
		if _, err := pgconn.ParseConfig(u.dsn); err != nil {
			// pgconn's message hides the password.
			errs = append(errs, fmt.Errorf("%s is not a PostgreSQL connection string: %w", u.name, err))
		}
	}
	switch c.Role {
	case RoleAll, RoleAPI, RoleWorker:
	default:
		errs = append(errs, fmt.Errorf("--role must be all, api or worker, got %q", c.Role))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency must be at least 1, got %d", c.Concurrency))
	}
	if c.MaxRuntime < time.Second {
		errs = append(errs, fmt.Errorf("--max-runtime must be at least 1s, got %s", c.MaxRuntime))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("--lease-ttl must be at least 1s, got %s", c.LeaseTTL))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace must not be negative, got %s", c.ShutdownGrace))
	}
	if c.FlushWindow < 0 || c.FlushWindow > time.Second {
		errs = append(errs, fmt.Errorf("--flush-window must be between 0 and 1s, got %s", c.FlushWindow))
	}
	if c.FlushMaxRows < 0 {
		errs = append(errs, fmt.Errorf("--flush-max-rows must be at least 1, got %d", c.FlushMaxRows))
	}
	switch c.WriteMode {
	case "", worker.WriteBatched, worker.WriteNaive:
	default:
		errs = append(errs, fmt.Errorf("--write-mode must be batched or naive, got %q", c.WriteMode))
	}
	if c.ReadBatch < 0 {
		errs = append(errs, fmt.Errorf("--read-batch must be at least 1, got %d", c.ReadBatch))
	}
	if c.WorkerConns < 0 {
		errs = append(errs, fmt.Errorf("--worker-conns must be at least 1, got %d", c.WorkerConns))
	}
	if c.MaxConns < 2 {
		errs = append(errs, fmt.Errorf("--max-conns must be at least 2, got %d", c.MaxConns))
	}
	if c.MaxWait < 0 || c.MaxWait > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--max-wait must be between 0 and 5m, got %s", c.MaxWait))
	}
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("--rate-limit must not be negative, got %v", c.RateLimit))
	}
	if c.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("--rate-burst must not be negative, got %d", c.RateBurst))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("--max-inflight must not be negative, got %d", c.MaxInFlight))
	}
	if c.MaxInFlightExpensive < 0 {
		errs = append(errs, fmt.Errorf("--max-inflight-expensive must not be negative, got %d", c.MaxInFlightExpensive))
	}
	if c.MaxPromptBytes < 0 {
		errs = append(errs, fmt.Errorf("--max-prompt-bytes must be at least 1, got %d", c.MaxPromptBytes))
	}
	if c.ReadHeaderTimeout < 0 {
		errs = append(errs, fmt.Errorf("--read-header-timeout must be positive, got %s", c.ReadHeaderTimeout))
	}
	if c.MaxPendingRows < 0 {
		errs = append(errs, fmt.Errorf("--max-pending-rows must be at least 1, got %d", c.MaxPendingRows))
	}
	if c.OverloadWait < 0 {
		errs = append(errs, fmt.Errorf("--overload-wait must not be negative, got %s", c.OverloadWait))
	}
	if err := c.Retention.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, o := range c.Origins() {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			errs = append(errs, fmt.Errorf("--cors-origins: %q is not an origin such as https://app.example.com", o))
		}
	}
	if _, err := c.Proxies(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionTTL < 0 {
		errs = append(errs, fmt.Errorf("--session-ttl must not be negative, got %s", c.SessionTTL))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Proxies returns TrustedProxies as prefixes (an address is a prefix of
// its full length), or an error naming the first entry that is neither.
func (c *Serve) Proxies() (httpapi.TrustedProxies, error) {
	var out httpapi.TrustedProxies
	for e := range strings.SplitSeq(c.TrustedProxies, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not an IP address or a CIDR prefix such as 10.0.0.0/8", e)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Origins returns CORSOrigins as a list (empty: CORS off).
func (c *Serve) Origins() []string {
	var out []string
	for o := range strings.SplitSeq(c.CORSOrigins, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func (c *Serve) envFloat(getenv func(string) string, k string, def float64) float64 {
	v := getenv(k)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s must be a number, got %q", k, v))
		return def
	}
	return f
}

func (c *Serve) envInt(getenv func(string) string, k string, def int) int {
	v := getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s must be an integer, got %q", k, v))
		return def
	}
	return n
}

func (c *Serve) envDuration(getenv func(string) string, k string, def time.Duration) time.Duration {
	v := getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s must be a duration such as 30s, got %q", k, v))
		return def
	}
	return d
}

func (c *Serve) envBool(getenv func(string) string, k string, def bool) bool {
	v := getenv(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s must be true or false, got %q", k, v))
	}
	return b
}
