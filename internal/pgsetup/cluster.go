package pgsetup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// clusterUser is the superuser initdb creates in the private cluster.
const clusterUser = "jobstream"

// maxSocketPath is the longest Unix socket path every platform accepts
// (macOS's sun_path is 104 bytes with the terminating NUL).
const maxSocketPath = 103

// serverBinaries must all be in one directory: initdb and pg_ctl find
// postgres beside themselves.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// binDirGlobs are where PostgreSQL server packages install their binaries
// (Debian/Ubuntu, source builds, Homebrew on Apple silicon and on Intel),
// searched after PATH. Within a pattern the highest version wins.
var binDirGlobs = []string{
	"/usr/lib/postgresql/*/bin",
	"/usr/local/pgsql/bin",
	"/opt/homebrew/opt/postgresql*/bin",
	"/usr/local/opt/postgresql*/bin",
}

// ourFiles are the names the private cluster puts in DataDir. A DataDir
// holding anything else is not given away to the server's user.
var ourFiles = []string{"pg", "pg.log", "setup.lock", ".s.PGSQL.5432", ".s.PGSQL.5432.lock"}

// account is the unprivileged user that runs initdb and pg_ctl when
// jobstream runs as root. A nil *account means the current user.
type account struct {
	name     string
	uid, gid uint32
}

// cluster is jobstream's private PostgreSQL cluster.
type cluster struct {
	dataDir string // absolute; holds pg/, pg.log, setup.lock and the socket
	bin     string // directory holding serverBinaries; "" if none was found
	logf    func(format string, args ...any)
	warnf   func(format string, args ...any) // what the user should act on
}

// warn reports what the user should act on (logf when no warnf is set).
func (c *cluster) warn(format string, args ...any) {
	if c.warnf != nil {
		c.warnf(format, args...)
		return
	}
	c.logf(format, args...)
}

func (c *cluster) pgdata() string { return filepath.Join(c.dataDir, "pg") }

func (c *cluster) logFile() string { return filepath.Join(c.dataDir, "pg.log") }

func (c *cluster) initialised() bool {
	_, err := os.Stat(filepath.Join(c.pgdata(), "PG_VERSION"))
	return err == nil
}

// url names database on the cluster's socket as its superuser.
func (c *cluster) url(database string) string {
	return connURL(c.dataDir, defaultPort, clusterUser, database)
}

// start makes sure the cluster is initialised and running, and reports
// whether this call started it. Processes starting the same cluster at once
// take turns on DataDir/setup.lock, so exactly one of them starts it.
func (c *cluster) start(ctx context.Context) (started bool, err error) {
	if strings.Contains(c.dataDir, ",") {
		return false, fmt.Errorf("data directory %s: a comma cannot be used in a socket directory", c.dataDir)
	}
	if n := len(c.dataDir) + len("/.s.PGSQL.5432"); n > maxSocketPath {
		return false, fmt.Errorf("data directory %s is too long to hold a Unix socket (%d bytes, at most %d)", c.dataDir, n, maxSocketPath)
	}
	if probe(ctx, c.url("postgres")) == nil {
		return false, nil
	}

	acct, err := serverAccount(c.pgdata())
	if err != nil {
		return false, err
	}
	if err := c.prepareDataDir(acct); err != nil {
		return false, err
	}
	unlock, err := lockFile(filepath.Join(c.dataDir, "setup.lock"))
	if err != nil {
		return false, fmt.Errorf("lock data directory: %w", err)
	}
	defer unlock()
	if probe(ctx, c.url("postgres")) == nil {
		return false, nil // another process started it while we waited
	}

	if c.bin == "" {
		return false, fmt.Errorf("the private PostgreSQL cluster in %s is not running, and no PostgreSQL server "+
			"binaries (initdb, pg_ctl, postgres) were found to start it; install the PostgreSQL server package or put them on PATH",
			c.pgdata())
	}
	if !c.initialised() {
		c.logf("initialising private PostgreSQL cluster in %s", c.pgdata())
		// C locale: byte-order collation never changes under a libc upgrade
		// (which silently corrupts text indexes), and works with UTF8 on
		// every system whatever the caller's LANG.
		if err := c.run(ctx, acct, "initdb", "-D", c.pgdata(), "--auth=trust", "--username="+clusterUser,
			"--encoding=UTF8", "--no-locale", "--no-instructions"); err != nil {
			return false, err
		}
	}

	c.logf("starting private PostgreSQL cluster in %s (log: %s)", c.pgdata(), c.logFile())
	// pg_ctl hands -o to /bin/sh, and postgres reads the socket directory as
	// a list, so the directory is double-quoted for postgres, then
	// single-quoted for the shell.
	opts := "-c listen_addresses='' -c unix_socket_directories=" +
		shellQuote(`"`+strings.ReplaceAll(c.dataDir, `"`, `""`)+`"`) +
		" -p " + strconv.Itoa(defaultPort)
	if err := c.run(ctx, acct, "pg_ctl", "start", "-D", c.pgdata(), "-l", c.logFile(), "-w", "-s", "-o", opts); err != nil {
		return false, fmt.Errorf("%w\n%s:\n%s", err, c.logFile(), tail(c.logFile(), 2048))
	}
	return true, nil
}

// stop stops the cluster with pg_ctl's fast mode (active sessions are
// rolled back) and waits for it. It does nothing if the cluster is not
// running.
func (c *cluster) stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.pgdata(), "postmaster.pid")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	acct, err := serverAccount(c.pgdata())
	if err != nil {
		return err
	}
	c.logf("stopping private PostgreSQL cluster in %s", c.pgdata())
	return c.run(ctx, acct, "pg_ctl", "stop", "-D", c.pgdata(), "-m", "fast", "-w", "-s")
}

// prepareDataDir creates DataDir at mode 0700 (the socket trusts whoever
// reaches it) and, as root, hands it to acct.
func (c *cluster) prepareDataDir(acct *account) error {
	if err := os.MkdirAll(filepath.Dir(c.dataDir), 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := os.Mkdir(c.dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(c.dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", c.dataDir)
	}
	if acct != nil {
		if err := c.handOver(fi, acct); err != nil {
			return err
		}
	}
	if fi.Mode().Perm() != 0o700 {
		c.logf("making data directory %s private (mode 0700)", c.dataDir)
		if err := os.Chmod(c.dataDir, 0o700); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	return nil
}

// onlyOurFiles returns an error if DataDir holds a file the cluster did not
// put there.
func (c *cluster) onlyOurFiles(acct *account) error {
	entries, err := os.ReadDir(c.dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	for _, e := range entries {
		if !slices.Contains(ourFiles, e.Name()) {
			return fmt.Errorf("data directory %s must belong to user %s, who runs PostgreSQL, but it holds %s; "+
				"use an empty or new directory", c.dataDir, acct.name, e.Name())
		}
	}
	return nil
}

// run runs one of the server binaries as acct, returning its output in the
// error if it fails.
func (c *cluster) run(ctx context.Context, acct *account, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dataDir // the server's user may not be able to enter ours
	// Safety net: pg_ctl detaches postgres and points its output at the log,
	// but should anything keep our pipe open, do not wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	acct.apply(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// findBinaries returns the first directory that holds all the server
// binaries, or "".
func (c Config) findBinaries() string {
	dirs := c.binDirs
	if dirs == nil {
		for _, d := range filepath.SplitList(c.Getenv("PATH")) {
			if filepath.IsAbs(d) { // never run a server binary from a relative PATH entry
				dirs = append(dirs, d)
			}
		}
		for _, g := range binDirGlobs {
			matches, _ := filepath.Glob(g)
			dirs = append(dirs, byVersionDesc(matches)...)
		}
	}
	for _, d := range dirs {
		if hasServerBinaries(d) {
			return d
		}
	}
	return ""
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// byVersionDesc sorts bin directories such as /usr/lib/postgresql/15/bin or
// /opt/homebrew/opt/postgresql@16/bin by the version in their parent's name,
// highest first; an unversioned name sorts last.
func byVersionDesc(dirs []string) []string {
	version := func(dir string) []int {
		name := filepath.Base(filepath.Dir(dir))
		i := strings.IndexFunc(name, unicode.IsDigit)
		if i < 0 {
			return nil
		}
		var v []int
		for p := range strings.SplitSeq(name[i:], ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				break
			}
			v = append(v, n)
		}
		return v
	}
	slices.SortStableFunc(dirs, func(a, b string) int { return slices.Compare(version(b), version(a)) })
	return dirs
}

// shellQuote quotes s as one word for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail returns up to the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(bytes.TrimSpace(b))
}
