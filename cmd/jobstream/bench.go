package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/jobstream/jobstream/internal/bench"
	"github.com/jobstream/jobstream/internal/pgsetup"
)

const benchAbout = `Measure throughput and delivery latency: --streams concurrent sim
generations of --tokens tokens at --rate tokens/s each, every job followed by
--readers readers (--mode sse, longpoll with a --linger min_wait, or semoss
pixelJobStreaming pollers every --poll-interval). Latency is the reader's
receive time minus the time the sim engine emitted the token.

The server is started as a child process ('jobstream serve', so its CPU is
measured apart from the load generator's) on the database jobstream_bench of
DATABASE_URL's server (else the local server), whose tables are emptied
first; or measured at --url. --write-mode batched,naive runs the same
workload twice, with group commit and with a transaction per chunk, and
prints the ratio. --compare raw then runs, in the same invocation and on the
same database, a raw PostgreSQL group-commit load of the same shape (the same
job_chunks rows, a commit every 10 ms with one NOTIFY, one LISTEN connection
and one read statement per wake-up; no HTTP, no leases) and prints
jobstream's delivered tokens/s and CPU per token as ratios of it. CPU per
token is µs of CPU per delivered token, of the server and of every postgres
process (of the bench process for the raw load, its load generator
included). Lost, duplicated and reordered chunks must be 0.`

func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench", "[flags]", benchAbout)
	var c bench.Config
	fs.IntVar(&c.Streams, "streams", bench.DefaultStreams, "concurrent generations")
	fs.Float64Var(&c.Rate, "rate", bench.DefaultRate, "tokens per second of each generation")
	fs.IntVar(&c.Tokens, "tokens", 0, "tokens per generation (default rate x duration: one generation per stream)")
	fs.IntVar(&c.Readers, "readers", bench.DefaultReaders, "readers per job")
	fs.StringVar(&c.Mode, "mode", bench.ModeSSE, "how readers read: sse, longpoll or semoss")
	fs.DurationVar(&c.Duration, "duration", bench.DefaultDuration, "how long to run (measured after --warmup)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "start of the run left out of the figures (default min(3s, duration/5))")
	fs.DurationVar(&c.Ramp, "ramp", 0, "spread of the streams' starts (default 1s)")
	fs.DurationVar(&c.Grace, "grace", 0, "how long jobs still running or queued after --duration may go on before they are cancelled (default 3s)")
	fs.DurationVar(&c.Linger, "linger", bench.DefaultLinger, "long-poll min_wait (0: none)")
	fs.DurationVar(&c.PollInterval, "poll-interval", bench.DefaultPoll, "semoss pollers' interval")
	fs.StringVar(&c.URL, "url", "", "measure this running server instead of starting one")
	dbURL := fs.String("database-url", "", "database of the started server; its name must start with jobstream_bench (default: jobstream_bench on DATABASE_URL's server)")
	writeModes := fs.String("write-mode", "batched", "chunk writer of the started server: batched, naive, or batched,naive to compare")
	serverArgs := fs.String("server-args", "", "extra 'serve' flags for the started server, space-separated (e.g. \"--flush-window 10ms\")")
	inProcess := fs.Bool("in-process", false, "run the server in the bench's process (its CPU then includes the load generator)")
	fs.StringVar(&c.Profile, "profile", "", "write a CPU profile of the started server, taken during the measurement, to this file")
	compare := fs.String("compare", "", "also run this baseline in the same invocation and report the ratio: raw (PostgreSQL group commit, no HTTP)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	quiet := fs.Bool("quiet", false, "no progress messages on stderr")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("bench takes no arguments, got %q", pos)
	}
	if *compare != "" && *compare != "raw" {
		return usagef("--compare must be raw, got %q", *compare)
	}
	if c.URL != "" {
		if err := checkServerURL("--url", c.URL); err != nil {
			return err
		}
	}
	if *compare != "" && c.URL != "" {
		return usagef("--compare raw needs a started server's database, not --url")
	}
	if c.Linger == 0 {
		c.Linger = -1 // bench.Config's "none"; its zero means the default
	}
	if c.URL == "" {
		if *dbURL == "" {
			base := e.getenv("DATABASE_URL")
			if base == "" {
				res, err := pgsetup.Resolve(ctx, pgsetup.Config{Getenv: e.getenv, Database: bench.DefaultDatabase})
				if err != nil {
					return err
				}
				base = res.URL
			}
			*dbURL = bench.DatabaseURL(base, bench.DefaultDatabase)
		}
		if !*inProcess {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the jobstream binary: %w", err)
			}
			c.Exe = exe
		}
	}
	c.DatabaseURL = *dbURL
	c.ServerArgs = strings.Fields(*serverArgs)
	if !*quiet {
		c.Logf = func(format string, args ...any) { fmt.Fprintf(e.stderr, "bench: "+format+"\n", args...) }
	}
	var results []bench.Result
	for _, mode := range strings.Split(*writeModes, ",") {
		mode = strings.TrimSpace(mode)
		if mode != "batched" && mode != "naive" {
			return usagef("--write-mode must be batched, naive or batched,naive, got %q", *writeModes)
		}
		rc := c
		rc.WriteMode = mode
		if c.Profile != "" && mode != "batched" {
			rc.Profile = strings.TrimSuffix(c.Profile, ".pprof") + "." + mode + ".pprof"
		}
		if c.Logf != nil {
			c.Logf("%s: %d streams x %g tokens/s, %d %s reader(s) per job, %s", mode, c.Streams, c.Rate, c.Readers, c.Mode, c.Duration)
		}
		res, err := bench.Run(ctx, rc)
		if err != nil {
			return fmt.Errorf("bench (%s): %w", mode, err)
		}
		results = append(results, res)
	}
	if *compare == "raw" {
		if c.Logf != nil {
			c.Logf("raw group commit: %d streams x %g tokens/s, %s", c.Streams, c.Rate, c.Duration)
		}
		res, err := bench.RunRaw(ctx, c)
		if err != nil {
			return fmt.Errorf("bench (raw): %w", err)
		}
		results = append(results, res)
	}
	report := bench.NewReport(results)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := report.WriteTable(e.stdout); err != nil {
		return err
	}
	for _, r := range results {
		if !r.OK() {
			return fmt.Errorf("%s/%s: %d lost, %d duplicated, %d reordered, %d failed", r.Mode, r.WriteMode, r.Lost, r.Duplicated, r.Reordered, r.Failed)
		}
	}
	return nil
}
