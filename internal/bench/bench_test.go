package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

var benchDBs atomic.Int64

// benchDatabase names a database for one bench run on the test server
// (the bench only runs on databases named jobstream_bench*); the server
// the bench starts creates and migrates it. It is dropped at the end.
func benchDatabase(t *testing.T) string {
	t.Helper()
	base := dbtest.URL(t)
	name := fmt.Sprintf("%s_t%d_%d", DefaultDatabase, os.Getpid(), benchDBs.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testserver.WithDatabase(base, "postgres"))
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return testserver.WithDatabase(base, name)
}

// TestRunSmoke runs a tiny benchmark in each read mode against an
// in-process server and checks its accounting: every chunk delivered once,
// in order. It asserts nothing about speed.
func TestRunSmoke(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{ModeSSE, ModeLongPoll, ModeSEMOSS} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			res, err := Run(context.Background(), Config{
				Streams:         2,
				Readers:         2,
				Rate:            200,
				Tokens:          30,
				Mode:            mode,
				Duration:        time.Second,
				Warmup:          100 * time.Millisecond,
				Ramp:            10 * time.Millisecond,
				Linger:          20 * time.Millisecond,
				PollInterval:    20 * time.Millisecond,
				DatabaseURL:     benchDatabase(t),
				InProcessConfig: smallServe(),
				Logf:            t.Logf,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Fatalf("lost %d, duplicated %d, reordered %d, failed %d: %v", res.Lost, res.Duplicated, res.Reordered, res.Failed, res.Errors)
			}
			if res.Jobs < 2 || res.Samples == 0 || res.CommitsPerS == 0 || res.RequestsPerToken == 0 {
				t.Fatalf("nothing measured: %+v", res)
			}
			if res.Completed+res.Cancelled != res.Jobs || res.Completed == 0 || res.QueuedMaxS < 0 || res.QueuedMeanS > res.QueuedMaxS {
				t.Fatalf("job outcomes: %d jobs, %d completed, %d cancelled, queued mean %.3f max %.3f s",
					res.Jobs, res.Completed, res.Cancelled, res.QueuedMeanS, res.QueuedMaxS)
			}
			var b strings.Builder
			if err := NewReport([]Result{res}).WriteTable(&b); err != nil || !strings.Contains(b.String(), "latency p99 (ms)") {
				t.Fatalf("table: %v\n%s", err, b.String())
			}
		})
	}
}

// TestRunCountsLoss: the accounting is checked against the chunks stored
// in the database, so a reader that misses chunks is caught.
func TestRunCountsLoss(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	for _, s := range []int{0, 1, 2, 4} {
		tr.Seq(s)
	}
	res := Result{Lost: tr.Lost(6), Duplicated: tr.dups, Reordered: tr.reordered}
	if res.OK() || res.Lost != 2 {
		t.Fatalf("%+v", res)
	}
}

// smallServe is serve's default configuration with a pool small enough for
// parallel tests.
func smallServe() *config.Serve {
	c := config.Default()
	c.MaxConns = 4
	return &c
}

// TestCompareRaw runs a tiny jobstream benchmark and the raw group-commit
// load on the same database, as `bench --compare raw` does, and checks the
// report: the raw load delivered every row it wrote, once and in order,
// and both have CPU-per-token figures and ratios. Nothing about speed.
func TestCompareRaw(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Streams:         3,
		Readers:         1,
		Rate:            200,
		Tokens:          40,
		Duration:        time.Second,
		Warmup:          100 * time.Millisecond,
		Ramp:            10 * time.Millisecond,
		DatabaseURL:     benchDatabase(t),
		InProcessConfig: smallServe(),
		Logf:            t.Logf,
	}
	js, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := RunRaw(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !raw.OK() {
		t.Fatalf("raw: lost %d, duplicated %d, reordered %d, failed %d: %v", raw.Lost, raw.Duplicated, raw.Reordered, raw.Failed, raw.Errors)
	}
	if raw.Jobs < cfg.Streams || raw.Samples == 0 || raw.CommitsPerS == 0 || raw.DeliveredTPS == 0 || raw.WrittenTPS == 0 {
		t.Fatalf("raw measured nothing: %+v", raw)
	}
	if raw.ServerUSPerToken <= 0 || raw.PostgresUSPerToken < 0 || js.PostgresUSPerToken < 0 {
		t.Fatalf("no CPU per token: raw %+v, jobstream %+v", raw, js)
	}
	rep := NewReport([]Result{js, raw})
	if rep.DeliveredOverRaw <= 0 {
		t.Fatalf("no delivered ratio: %+v", rep)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{WriteModeRaw, "server CPU (µs/token)", "postgres CPU (µs/token)", "jobstream / raw delivered tokens/s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestProfileNeedsStartedServer: --profile is refused up front where no
// profile can be taken (a server at --url, or one in the bench's process),
// rather than silently writing none.
func TestProfileNeedsStartedServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{Profile: "p", Exe: "/bin/jobstream"}, true},
		{Config{Profile: "p"}, false},
		{Config{Profile: "p", Exe: "/bin/jobstream", URL: "http://127.0.0.1:8080"}, false},
		{Config{}, true},
	} {
		err := tc.cfg.defaults()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "--profile")) {
			t.Errorf("%+v: %v, want ok = %v", tc.cfg, err, tc.ok)
		}
	}
}
