// Package bench is `jobstream bench`: a load generator that runs simulated
// generations against a jobstream server and measures what readers get.
//
// Each of Streams streams runs sim jobs of Tokens tokens at Rate tokens/s,
// one after another, for Duration; every job is followed by Readers readers
// (SSE, long-poll or SEMOSS pixelJobStreaming pollers). The sim engine
// stamps every content chunk with the time it emitted it (emitted_at_us),
// so latency is the reader's receive time minus that stamp, on the same
// machine's clock. Every reader checks that it received each chunk exactly
// once and in order, against the chunks stored in the database.
//
// The server is a child process (`jobstream serve`, so its CPU time is
// measured apart from the load generator's), the bench's own process
// (InProcess), or one given by URL. Commits and NOTIFYs per second come
// from the server's /metrics (the chunk writer's counters).
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/config"
)

// Modes of reading.
const (
	ModeSSE      = "sse"
	ModeLongPoll = "longpoll"
	ModeSEMOSS   = "semoss"
)

// Defaults for Config.
const (
	DefaultStreams  = 100
	DefaultRate     = 50
	DefaultReaders  = 1
	DefaultDuration = 20 * time.Second
	DefaultLinger   = 100 * time.Millisecond
	DefaultPoll     = 300 * time.Millisecond
	// DefaultDatabase is the database a bench-started server uses. Its
	// tables are emptied before each run: nothing else may use it.
	DefaultDatabase = "jobstream_bench"
)

// Config describes one benchmark.
type Config struct {
	// Streams is the number of concurrent generations. Defaults to 100.
	Streams int
	// Rate is each generation's pace in tokens/s. Defaults to 50.
	Rate float64
	// Tokens is the length of one generation. Defaults to Rate x Duration
	// (one generation per stream for the whole run).
	Tokens int
	// Readers is the number of readers of each job. Defaults to 1.
	Readers int
	// Mode is sse, longpoll or semoss. Defaults to sse.
	Mode string
	// Duration is how long streams start new generations and how long
	// figures are measured over (after Warmup). Defaults to 20 s.
	Duration time.Duration
	// Warmup is left out of the measurements (connections, claims,
	// caches). Defaults to min(3 s, Duration/5).
	Warmup time.Duration
	// Ramp spreads the streams' starts. Defaults to 1 s.
	Ramp time.Duration
	// Grace is how long jobs still running (or queued) after Duration may
	// go on before the bench cancels them. Defaults to 3 s; an overload
	// run that must see every queued job complete gives it minutes.
	Grace time.Duration
	// Linger is the long-poll min_wait. Defaults to 100 ms. Negative: none.
	Linger time.Duration
	// PollInterval is the SEMOSS pollers' interval. Defaults to 300 ms.
	PollInterval time.Duration

	// URL is a running server to measure. Empty: start one.
	URL string
	// Exe is the jobstream binary started as the server (`Exe serve`).
	// Empty with URL empty: run the server in this process (InProcess).
	Exe string
	// DatabaseURL is the database of a started server; its database name
	// must start with "jobstream_bench" because its tables are emptied.
	DatabaseURL string
	// WriteMode is the started server's --write-mode. Defaults to batched.
	WriteMode string
	// ServerArgs are extra `serve` flags for a started server.
	ServerArgs []string
	// InProcessConfig is the serve configuration of an in-process server
	// (Exe empty), before the bench's own serve flags (see serveArgs) and
	// ServerArgs are applied to it. Nil: config.Default(), what `serve`
	// runs with.
	InProcessConfig *config.Serve

	// Profile, if set, is where to write a CPU profile of the server taken
	// during the measurement (the server must run with --pprof; a started
	// child gets it).
	Profile string
	// Logf reports progress. Optional.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() error {
	if c.Streams == 0 {
		c.Streams = DefaultStreams
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Readers == 0 {
		c.Readers = DefaultReaders
	}
	if c.Mode == "" {
		c.Mode = ModeSSE
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Tokens == 0 {
		c.Tokens = max(int(c.Rate*c.Duration.Seconds()), 1)
	}
	if c.Warmup == 0 {
		c.Warmup = min(3*time.Second, c.Duration/5)
	}
	if c.Ramp == 0 {
		c.Ramp = time.Second
	}
	if c.Grace == 0 {
		c.Grace = 3 * time.Second
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPoll
	}
	if c.WriteMode == "" {
		c.WriteMode = "batched"
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	var errs []error
	if c.Streams < 1 || c.Readers < 1 || c.Tokens < 1 || c.Rate < 0 {
		errs = append(errs, errors.New("--streams, --readers and --tokens must be at least 1, --rate not negative"))
	}
	switch c.Mode {
	case ModeSSE, ModeLongPoll, ModeSEMOSS:
	default:
		errs = append(errs, fmt.Errorf("--mode must be sse, longpoll or semoss, got %q", c.Mode))
	}
	if c.Profile != "" && (c.URL != "" || c.Exe == "") {
		errs = append(errs, errors.New("--profile needs a server the bench starts itself (not --url or --in-process)"))
	}
	if c.Warmup >= c.Duration {
		errs = append(errs, fmt.Errorf("--warmup (%s) must be shorter than --duration (%s)", c.Warmup, c.Duration))
	}
	return errors.Join(errs...)
}

// Result is what one run measured.
type Result struct {
	Mode      string  `json:"mode"`
	WriteMode string  `json:"write_mode"`
	Streams   int     `json:"streams"`
	Readers   int     `json:"readers"`
	Rate      float64 `json:"rate"`
	Tokens    int     `json:"tokens"`
	// Seconds is the measurement window (Duration - Warmup).
	Seconds float64 `json:"seconds"`
	Jobs    int     `json:"jobs"`

	// WantedTPS is Streams x Rate.
	WantedTPS float64 `json:"wanted_tps"`
	// WrittenTPS is chunks committed per second by the server's writer
	// during the window.
	WrittenTPS float64 `json:"written_tps"`
	// DeliveredTPS is content chunks received per second by all readers
	// during the window (Readers x WrittenTPS when they keep up).
	DeliveredTPS float64     `json:"delivered_tps"`
	LatencyMS    Percentiles `json:"latency_ms"`
	Samples      int         `json:"latency_samples"`
	// RequestsPerToken is read requests / content chunks received, over the
	// whole run.
	RequestsPerToken float64 `json:"requests_per_token"`
	CommitsPerS      float64 `json:"commits_per_s"`
	// CommitMS and BatchRows are the chunk writer's mean transaction
	// duration and rows per transaction during the window.
	CommitMS        float64 `json:"commit_ms"`
	BatchRows       float64 `json:"batch_rows"`
	NotifiesPerS    float64 `json:"notifies_per_s"`
	ReadQueriesPerS float64 `json:"read_queries_per_s"`
	// ServerCPU is the server process's CPU use in cores (-1: unknown;
	// includes the load generator when the server runs in-process).
	ServerCPU float64 `json:"server_cpu"`
	// PostgresCPU is the CPU use, in cores, of every postgres process on
	// the machine (other databases' activity included).
	PostgresCPU float64 `json:"postgres_cpu"`
	// BenchCPU is the load generator's CPU use in cores.
	BenchCPU float64 `json:"bench_cpu"`
	// Load is the machine's 1-minute load average at the end.
	Load float64 `json:"load_avg_1m"`
	// ServerUSPerToken and PostgresUSPerToken are ServerCPU and
	// PostgresCPU in µs of CPU per delivered token (-1: unknown). For the
	// raw load, the server is the bench process (load generator included).
	ServerUSPerToken   float64 `json:"server_us_per_token"`
	PostgresUSPerToken float64 `json:"postgres_us_per_token"`

	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Reordered  int `json:"reordered"`
	// Failed counts jobs that did not complete, and readers that gave up.
	Failed int `json:"failed"`
	// Completed and Cancelled count the run's jobs by final status
	// (cancelled: still going Grace after the end). QueuedMeanS and
	// QueuedMaxS are how long jobs waited in the queue before a worker
	// claimed them (admission control holds claims while the writer is
	// behind). -1: unknown (no database access).
	Completed   int      `json:"completed"`
	Cancelled   int      `json:"cancelled"`
	QueuedMeanS float64  `json:"queued_mean_s"`
	QueuedMaxS  float64  `json:"queued_max_s"`
	Errors      []string `json:"errors,omitempty"`
}

// OK reports whether every chunk was delivered exactly once, in order.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 && r.Failed == 0
}

// Run runs one benchmark.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	raiseFileLimit()
	tgt, db, err := cfg.start(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if db != nil {
			db.Close(context.Background())
		}
		if tgt.stop != nil {
			if err := tgt.stop(); err != nil {
				cfg.Logf("server stopped: %v", err)
			}
		}
	}()

	conns := cfg.Streams*cfg.Readers + cfg.Streams + 64
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	defer hc.CloseIdleConnections()

	r := &run{cfg: cfg, tgt: tgt, hc: hc, db: db}
	return r.run(ctx)
}

func (c *Config) start(ctx context.Context) (*target, *pgx.Conn, error) {
	if c.URL != "" {
		t := &target{url: strings.TrimRight(c.URL, "/")}
		var db *pgx.Conn
		if c.DatabaseURL != "" {
			conn, err := pgx.Connect(ctx, c.DatabaseURL)
			if err != nil {
				return nil, nil, fmt.Errorf("connect to the server's database: %w", err)
			}
			db = conn
		}
		return t, db, nil
	}
	if c.DatabaseURL == "" {
		return nil, nil, errors.New("a database URL is needed to start a server")
	}
	u, err := pgx.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("parse database URL: %w", err)
	}
	if !strings.HasPrefix(u.Database, DefaultDatabase) {
		return nil, nil, fmt.Errorf("the bench empties its database's tables: its name must start with %q, got %q", DefaultDatabase, u.Database)
	}
	var t *target
	if c.Exe != "" {
		args := c.serveArgs()
		pprofURL := ""
		if c.Profile != "" {
			// pprof is served apart from the API, on its own address.
			addr, err := freeLoopbackAddr()
			if err != nil {
				return nil, nil, err
			}
			args = append(args, "--pprof", "--pprof-addr", addr)
			pprofURL = "http://" + addr
		}
		t, err = startChild(ctx, c.Exe, c.DatabaseURL, append(args, c.ServerArgs...))
		if t != nil {
			t.pprofURL = pprofURL
		}
	} else {
		sc := config.Default()
		if c.InProcessConfig != nil {
			sc = *c.InProcessConfig
		}
		if err := sc.Set(append(c.serveArgs(), c.ServerArgs...)); err != nil {
			return nil, nil, fmt.Errorf("in-process server: %w", err)
		}
		t, err = startInProcess(ctx, c.DatabaseURL, sc)
	}
	if err != nil {
		return nil, nil, err
	}
	db, err := pgx.Connect(ctx, c.DatabaseURL)
	if err == nil {
		// The bench's own database is emptied by its owner (emptyTables).
		// The audit trail is not emptied (it cannot be).
		err = emptyTables(ctx, db)
	}
	if err != nil {
		_ = t.stop()
		return nil, nil, fmt.Errorf("empty the bench database: %w", err)
	}
	return t, db, nil
}

// serveArgs are the serve flags the bench runs its server with, a started
// child or an in-process one alike: both start from serve's defaults
// (config.Default()) and change only these.
func (c *Config) serveArgs() []string {
	args := []string{
		"--concurrency", strconv.Itoa(c.Streams + 16),
		"--write-mode", c.WriteMode,
		// Every reader is the same dev principal: one key's request
		// rate limit would throttle the load generator itself.
		"--rate-limit", "0",
		"--max-inflight", "0",
		// ... and every job is the dev tenant's: the per-tenant cap
		// would hold a quarter of the streams back.
		"--max-running-per-tenant", "-1",
	}
	if c.WriteMode == "naive" {
		// A commit per chunk, from every job's goroutine at once: give
		// them as many connections as the API has.
		args = append(args, "--worker-conns", "20")
	}
	return args
}

type run struct {
	cfg Config
	tgt *target
	hc  *http.Client
	db  *pgx.Conn

	requests atomic.Int64
	tokens   atomic.Int64

	mu      sync.Mutex
	jobs    []uuid.UUID
	readers []*reader
	errs    []string
	failed  int
}

func (r *run) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

type snapshot struct {
	at      time.Time
	metrics map[string]float64
	server  float64
	self    float64
	pg      map[int]float64
	tokens  int64
}

func (r *run) snap(ctx context.Context) snapshot {
	s := snapshot{at: time.Now(), tokens: r.tokens.Load()}
	s.self, _ = procCPU(os.Getpid())
	if r.tgt.pid > 0 {
		s.server, _ = procCPU(r.tgt.pid)
	}
	s.pg = postgresCPU()
	m, err := scrape(ctx, r.hc, r.tgt.url)
	if err != nil {
		r.cfg.Logf("scrape metrics: %v", err)
	}
	s.metrics = m
	return s
}

func (r *run) run(ctx context.Context) (Result, error) {
	cfg := r.cfg
	start := time.Now()
	from := start.Add(cfg.Warmup)
	end := start.Add(cfg.Duration)
	winFrom, winTo := micros(from), micros(end)

	runCtx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()

	var wg sync.WaitGroup
	for i := range cfg.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			delay := time.Duration(int64(cfg.Ramp) * int64(i) / int64(cfg.Streams))
			if !sleepCtx(runCtx, time.Until(start.Add(delay))) {
				return
			}
			for runCtx.Err() == nil && time.Now().Before(end) {
				r.stream(runCtx, winFrom, winTo)
			}
		}()
	}

	// The bench emptied the tables, so the planner's statistics describe
	// an empty jobs table until autovacuum next analyzes it (up to a
	// minute): measure the steady state of a deployment whose statistics
	// are current instead.
	if r.db != nil && r.tgt.pid != 0 && sleepCtx(runCtx, time.Until(start.Add(cfg.Ramp+200*time.Millisecond))) {
		if _, err := r.db.Exec(runCtx, "ANALYZE jobs"); err != nil {
			cfg.Logf("analyze: %v", err)
		}
	}

	// Measurement window.
	var a, b snapshot
	var profErr error
	profDone := make(chan struct{})
	go func() {
		defer close(profDone)
		if cfg.Profile == "" || !sleepCtx(runCtx, time.Until(from)) {
			return
		}
		secs := max(int((cfg.Duration-cfg.Warmup)/time.Second)-1, 1)
		profErr = r.profile(runCtx, secs)
	}()
	if sleepCtx(runCtx, time.Until(from)) {
		a = r.snap(runCtx)
	}
	if sleepCtx(runCtx, time.Until(end)) {
		b = r.snap(runCtx)
	}
	cfg.Logf("measured; waiting for the last jobs to end")

	// Jobs still running a little after the end are cancelled (a writer
	// that cannot keep up would otherwise run for long after), and their
	// readers follow them to their end.
	grace := time.NewTimer(cfg.Grace)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-grace.C:
		r.cancelRunning(ctx)
		select {
		case <-waited:
		case <-time.After(60 * time.Second):
			cancelAll()
			<-waited
			r.errorf("readers did not finish within 60s of the jobs' cancellation")
		}
	}
	grace.Stop()
	<-profDone
	if profErr != nil {
		cfg.Logf("profile: %v", profErr)
	}
	return r.result(ctx, a, b)
}

// stream runs one job and its readers to the end.
func (r *run) stream(ctx context.Context, winFrom, winTo int64) {
	cfg := r.cfg
	body, _ := json.Marshal(map[string]any{
		"engine":  "sim",
		"command": "benchmark",
		"params": map[string]any{
			"sim_tokens":            cfg.Tokens,
			"sim_tokens_per_second": cfg.Rate,
			"sim_emit_timestamps":   true,
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.tgt.url+"/v1/jobs", bytes.NewReader(body))
	if err != nil {
		r.errorf("submit: %v", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	var job struct {
		ID uuid.UUID `json:"id"`
	}
	if err := doJSON(r.hc, req, &job); err != nil {
		if ctx.Err() == nil {
			r.errorf("submit: %v", err)
			sleepCtx(ctx, time.Second)
		}
		return
	}
	r.mu.Lock()
	r.jobs = append(r.jobs, job.ID)
	r.mu.Unlock()

	var wg sync.WaitGroup
	for range cfg.Readers {
		rd := &reader{hc: r.hc, base: r.tgt.url, job: job.ID, tr: newTracker(), from: winFrom, to: winTo, requests: &r.requests, tokens: &r.tokens, finalOffset: -1}
		r.mu.Lock()
		r.readers = append(r.readers, rd)
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch cfg.Mode {
			case ModeSSE:
				err = rd.sse(ctx)
			case ModeLongPoll:
				err = rd.longPoll(ctx, 25*time.Second, max(cfg.Linger, 0))
			case ModeSEMOSS:
				err = rd.semoss(ctx, cfg.PollInterval)
			}
			if err != nil && ctx.Err() == nil {
				r.errorf("reader of job %s: %v", job.ID, err)
			}
		}()
	}
	wg.Wait()
}

// jobOutcomes counts the run's jobs by final status and measures how long
// they were queued.
func (r *run) jobOutcomes(ctx context.Context, res *Result) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var mean, longest *float64
	err := r.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'cancelled'),
		avg(extract(epoch FROM started_at - created_at))::float8, max(extract(epoch FROM started_at - created_at))::float8
		FROM jobs WHERE id = ANY($1)`, r.jobs).Scan(&res.Completed, &res.Cancelled, &mean, &longest)
	if err != nil {
		return fmt.Errorf("count job outcomes: %w", err)
	}
	if mean != nil && longest != nil {
		res.QueuedMeanS, res.QueuedMaxS = *mean, *longest
	}
	return nil
}

// cancelRunning asks the server to cancel every job not finished yet.
func (r *run) cancelRunning(ctx context.Context) {
	r.mu.Lock()
	jobs := append([]uuid.UUID(nil), r.jobs...)
	r.mu.Unlock()
	r.cfg.Logf("cancelling jobs still running")
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, id := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.tgt.url+"/v1/jobs/"+id.String()+"/cancel", nil)
			if err != nil {
				return
			}
			resp, err := r.hc.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

func (r *run) profile(ctx context.Context, secs int) error {
	if r.tgt.pprofURL == "" {
		return errors.New("--profile needs a server the bench starts itself (not --url or --in-process)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.tgt.pprofURL+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", resp.Status)
	}
	f, err := os.Create(r.cfg.Profile)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *run) result(ctx context.Context, a, b snapshot) (Result, error) {
	cfg := r.cfg
	res := Result{
		Mode: cfg.Mode, WriteMode: cfg.WriteMode, Streams: cfg.Streams, Readers: cfg.Readers,
		Rate: cfg.Rate, Tokens: cfg.Tokens, WantedTPS: float64(cfg.Streams) * cfg.Rate,
		ServerCPU: -1, QueuedMeanS: -1, QueuedMaxS: -1,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Jobs = len(r.jobs)
	res.Failed = r.failed
	res.Errors = r.errs

	// Expected chunks per job: from the database when we can see it, else
	// from what the server said at each job's end.
	expected := map[uuid.UUID]int{}
	if r.db != nil {
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		rows, err := r.db.Query(qctx, `SELECT c.job_id, count(*), j.status FROM job_chunks c JOIN jobs j ON j.id = c.job_id WHERE c.job_id = ANY($1) GROUP BY c.job_id, j.status`, r.jobs)
		if err == nil {
			for rows.Next() {
				var id uuid.UUID
				var n int
				var status string
				if err := rows.Scan(&id, &n, &status); err == nil {
					expected[id] = n
					if status == "failed" {
						res.Failed++
					}
				}
			}
			rows.Close()
			err = rows.Err()
		}
		cancel()
		if err != nil {
			return res, fmt.Errorf("count stored chunks: %w", err)
		}
		if err := r.jobOutcomes(ctx, &res); err != nil {
			return res, err
		}
	}
	// Readers without seqs (SEMOSS) are checked chunk by chunk against
	// what is stored.
	var stored map[uuid.UUID]*storedChunks
	if cfg.Mode == ModeSEMOSS && r.db != nil {
		var err error
		if stored, err = r.storedStamps(ctx); err != nil {
			return res, err
		}
	}
	var lat []int32
	for _, rd := range r.readers {
		if sc := stored[rd.job]; sc != nil {
			lost, dups, reordered := rd.tr.compareStored(sc.content, sc.others)
			res.Lost += lost
			res.Duplicated += dups
			res.Reordered += reordered
			lat = append(lat, rd.tr.lat...)
			continue
		}
		want, ok := expected[rd.job]
		if !ok {
			want = max(rd.finalOffset, rd.tr.maxSeq+1)
		}
		res.Lost += rd.tr.Lost(want)
		res.Duplicated += rd.tr.dups
		res.Reordered += rd.tr.reordered
		lat = append(lat, rd.tr.lat...)
	}
	res.Samples = len(lat)
	res.LatencyMS = percentiles(lat)

	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 || a.metrics == nil || b.metrics == nil {
		return res, errors.New("the run ended before its measurement window did")
	}
	res.Seconds = secs
	d := func(name string) float64 { return (b.metrics[name] - a.metrics[name]) / secs }
	res.WrittenTPS = d("jobstream_writer_chunks_total")
	res.CommitsPerS = d(`jobstream_writer_commits_total{result="ok"}`)
	res.NotifiesPerS = d("jobstream_writer_notifies_total")
	if n := d("jobstream_writer_commit_seconds_count"); n > 0 {
		res.CommitMS = 1000 * d("jobstream_writer_commit_seconds_sum") / n
		res.BatchRows = d("jobstream_writer_batch_rows_sum") / n
	}
	res.ReadQueriesPerS = d(`jobstream_reader_queries_total{kind="single"}`) + d(`jobstream_reader_queries_total{kind="many"}`)
	res.DeliveredTPS = float64(b.tokens-a.tokens) / secs
	if t := r.tokens.Load(); t > 0 {
		res.RequestsPerToken = float64(r.requests.Load()) / float64(t)
	}
	if r.tgt.pid > 0 {
		res.ServerCPU = (b.server - a.server) / secs
	}
	res.BenchCPU = (b.self - a.self) / secs
	if r.tgt.pid == os.Getpid() {
		res.BenchCPU = -1 // the same process: ServerCPU holds both
	}
	res.PostgresCPU = cpuDelta(a.pg, b.pg) / secs
	res.Load = loadAvg()
	res.setCPUPerToken()
	return res, nil
}

// setCPUPerToken derives the µs-per-token figures from the CPU ones.
func (r *Result) setCPUPerToken() {
	r.ServerUSPerToken, r.PostgresUSPerToken = -1, -1
	if r.DeliveredTPS <= 0 {
		return
	}
	if r.ServerCPU >= 0 {
		r.ServerUSPerToken = r.ServerCPU * 1e6 / r.DeliveredTPS
	}
	r.PostgresUSPerToken = r.PostgresCPU * 1e6 / r.DeliveredTPS
}

// MachineUSPerToken is server + PostgreSQL CPU per delivered token, in µs
// (-1: unknown).
func (r Result) MachineUSPerToken() float64 {
	if r.ServerUSPerToken < 0 || r.PostgresUSPerToken < 0 {
		return -1
	}
	return r.ServerUSPerToken + r.PostgresUSPerToken
}

type storedChunks struct {
	content []stampKey
	others  int
}

// storedStamps loads every job's chunks, as the stamps and texts of its
// content chunks in seq order and the number of other chunks.
func (r *run) storedStamps(ctx context.Context) (map[uuid.UUID]*storedChunks, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rows, err := r.db.Query(ctx, `
		SELECT job_id, coalesce((data->>'emitted_at_us')::bigint, 0), coalesce(data->>'content', '')
		FROM job_chunks WHERE job_id = ANY($1) ORDER BY job_id, seq`, r.jobs)
	if err != nil {
		return nil, fmt.Errorf("load stored chunks: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]*storedChunks{}
	for rows.Next() {
		var id uuid.UUID
		var k stampKey
		if err := rows.Scan(&id, &k.stamp, &k.text); err != nil {
			return nil, err
		}
		sc := out[id]
		if sc == nil {
			sc = &storedChunks{}
			out[id] = sc
		}
		if k.stamp > 0 {
			sc.content = append(sc.content, k)
		} else {
			sc.others++
		}
	}
	return out, rows.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// raiseFileLimit lifts the open-files soft limit to the hard limit: a run
// holds a socket per reader on each side.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// DatabaseURL returns base with its database replaced by name.
func DatabaseURL(base, name string) string {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := neturl.Parse(base)
		if err != nil {
			return base
		}
		u.Path = "/" + name
		return u.String()
	}
	var kept []string
	for _, f := range strings.Fields(base) {
		if !strings.HasPrefix(f, "dbname=") {
			kept = append(kept, f)
		}
	}
	return strings.Join(append(kept, "dbname="+name), " ")
}
