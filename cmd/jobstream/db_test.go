//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/testserver"
)

// TestDBLifecycle starts the private cluster, stops it, starts it again, and
// checks that a stop leaves no postgres process behind. serve, with the same
// data directory and no DATABASE_URL, uses the cluster and says why.
func TestDBLifecycle(t *testing.T) {
	t.Parallel()
	if !havePGBinaries() {
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl, postgres) installed")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{}
	db := func(args ...string) runResult {
		t.Helper()
		res := runCmd(t, env, append(append([]string{"db"}, args...), "--data-dir", dataDir)...)
		if res.err != nil {
			t.Fatalf("db %s: %v\nstdout: %s\nstderr: %s", args, res.err, res.stdout, res.stderr)
		}
		return res
	}
	t.Cleanup(func() {
		if res := runCmd(t, env, "db", "stop", "--data-dir", dataDir); res.err != nil {
			t.Errorf("db stop: %v", res.err)
		}
	})

	if res := db("status"); !strings.Contains(res.stdout, "private cluster:  "+dataDir+": not created") {
		t.Errorf("db status before start:\n%s", res.stdout)
	}
	if res := db("stop"); !strings.Contains(res.stdout, "not created, nothing to stop") {
		t.Errorf("db stop before start: %q", res.stdout)
	}

	pid1 := startedPID(t, db("start").stdout, "started")
	if res := db("start"); startedPID(t, res.stdout, "already running") != pid1 {
		t.Errorf("second db start: %q, want pid %d already running", res.stdout, pid1)
	}

	// Created before: chosen over any local server, and said so.
	var st dbStatusJSON
	if res := db("status", "--json"); json.Unmarshal([]byte(res.stdout), &st) != nil {
		t.Fatalf("db status --json: %q", res.stdout)
	}
	if st.Source != "embedded" || !st.Cluster.Running || st.Cluster.PID != pid1 || !strings.Contains(st.Why, "created in "+dataDir+" before") || !strings.Contains(st.Hint, "DATABASE_URL") {
		t.Errorf("db status --json = %+v", st)
	}
	url := strings.TrimSpace(db("url").stdout)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect to db url %q: %v", url, err)
	}
	_ = conn.Close(context.Background())

	t.Run("ServeSaysWhy", func(t *testing.T) {
		// Not parallel: the stop below must wait for it.
		log := testserver.NewLogWatcher()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--dev", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--max-conns", "4"},
				func(k string) string { return env[k] }, strings.NewReader(""), &syncBuffer{}, log)
		}()
		select {
		case <-log.Addr():
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, log.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		want := regexp.MustCompile(`msg="database postgres://jobstream@/jobstream\?host=` + regexp.QuoteMeta(dataDir) +
			`&port=5432 \(embedded\), because DATABASE_URL is not set and a private cluster was created in ` + regexp.QuoteMeta(dataDir) +
			` before.*; to use another, set DATABASE_URL`)
		if !want.MatchString(log.String()) {
			t.Errorf("serve's log does not say which database and why:\n%s", log.String())
		}
	})

	if res := db("stop"); !strings.Contains(res.stdout, "stopped (was pid "+strconv.Itoa(pid1)+")") {
		t.Errorf("db stop: %q", res.stdout)
	}
	assertGone(t, dataDir, pid1)
	if res := db("stop"); !strings.Contains(res.stdout, "not running") {
		t.Errorf("db stop of a stopped cluster: %q", res.stdout)
	}
	if res := db("status"); !strings.Contains(res.stdout, dataDir+": stopped") {
		t.Errorf("db status after stop:\n%s", res.stdout)
	}

	pid2 := startedPID(t, db("start").stdout, "started")
	if err := syscall.Kill(pid2, 0); err != nil {
		t.Errorf("restarted postmaster %d: %v", pid2, err)
	}
	db("stop")
	assertGone(t, dataDir, pid2)
}

func havePGBinaries() bool {
	for _, glob := range []string{"/usr/lib/postgresql/*/bin/pg_ctl", "/usr/local/pgsql/bin/pg_ctl"} {
		if m, _ := filepath.Glob(glob); len(m) > 0 {
			return true
		}
	}
	return false
}

// startedPID returns the pid of `db start`'s "private cluster in D: <verb>,
// pid N".
func startedPID(t *testing.T, out, verb string) int {
	t.Helper()
	m := regexp.MustCompile(`: ` + verb + `, pid (\d+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("db start printed %q, want %q and a pid", out, verb)
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("postmaster pid %d from db start: %v", pid, err)
	}
	return pid
}

// assertGone checks that the postmaster pid and every child of it are gone,
// and that it removed postmaster.pid.
func assertGone(t *testing.T, dataDir string, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still exists after db stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "pg", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid left after db stop (stat: %v)", err)
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			t.Errorf("process %s is a child of the stopped postmaster %d: %s", p, pid, b[:i+1])
		}
	}
}

// TestDBStatusHidesPassword: `db status` shows which database jobstream
// uses without its password, whether DATABASE_URL carries it in the
// userinfo or as ?password= (issue 18), in text and in JSON; so do serve's
// --help defaults taken from the environment.
func TestDBStatusHidesPassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://jobstream@db.example:5432/jobstream?sslmode=require&password=hunter2",
		"postgres://jobstream:hunter2@db.example:5432/jobstream?sslmode=require",
		"host=db.example user=jobstream password=hunter2 dbname=jobstream",
	} {
		env := map[string]string{"DATABASE_URL": dsn, "JOBSTREAM_DATA_DIR": t.TempDir(), "JOBSTREAM_SERVER_DATABASE_URL": dsn, "JOBSTREAM_LISTENER_URL": dsn}
		for _, args := range [][]string{{"db", "status"}, {"db", "status", "--json"}, {"serve", "--help"}} {
			res := runCmd(t, env, args...)
			if res.err != nil {
				t.Fatalf("%s: %v\n%s", args, res.err, res.stderr)
			}
			if strings.Contains(res.stdout+res.stderr, "hunter2") {
				t.Errorf("%s with DATABASE_URL %s shows the password:\n%s%s", args, dsn, res.stdout, res.stderr)
			}
			if args[0] == "db" && !strings.Contains(res.stdout, "db.example") {
				t.Errorf("%s does not say which database:\n%s", args, res.stdout)
			}
		}
	}
}
