package pgsetup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultDatabase is the database used with a local server or the private
// cluster when Config.Database is empty.
const DefaultDatabase = "jobstream"

// Sources of a Result: where its URL came from.
const (
	SourceEnv      = "env"      // Config.DatabaseURL
	SourceLocal    = "local"    // a server already running on this machine
	SourceEmbedded = "embedded" // jobstream's private cluster in Config.DataDir
)

const (
	// defaultPort is PostgreSQL's port, probed locally and used by the
	// private cluster (whose socket lives in its own directory).
	defaultPort = 5432

	// probeTimeout bounds each attempt to reach a local server, so that a
	// firewalled port cannot stall startup.
	probeTimeout = 2 * time.Second
)

// defaultHosts are probed, in order, for a local server when PGHOST is unset:
// the socket directories of Debian-style and source installs, then TCP.
var defaultHosts = []string{"/var/run/postgresql", "/tmp", "127.0.0.1"}

// Config says how to find the server. The zero value is valid.
type Config struct {
	// DatabaseURL is the connection string from DATABASE_URL. When set it is
	// used as is: no local server is probed and no cluster is started, but
	// its database is still created if missing. Defaults to empty.
	DatabaseURL string

	// DataDir is jobstream's data directory. A private cluster lives in
	// DataDir/pg, logs to DataDir/pg.log and listens on a socket in DataDir.
	// Must be absolute. Defaults to $XDG_DATA_HOME/jobstream, else
	// $HOME/.local/share/jobstream (HOME falling back to the user database).
	DataDir string

	// Database is the database name used with a local server or the private
	// cluster. Defaults to DefaultDatabase.
	Database string

	// Getenv reads PGHOST, PGPORT and PGUSER (see the package doc), PATH
	// (searched for server binaries), and XDG_DATA_HOME and HOME (for the
	// default DataDir). main passes os.Getenv. Defaults to an empty
	// environment. pgx itself still reads libpq's other variables, such as
	// PGPASSWORD and PGSSLMODE, from the process environment.
	Getenv func(key string) string

	// Logf receives progress messages such as "starting private PostgreSQL
	// cluster in ...". Defaults to discarding them.
	Logf func(format string, args ...any)

	// Test hooks.
	noLocal bool     // probe no local server
	binDirs []string // when non-nil, the only directories searched for server binaries
}

// Result is the server Resolve settled on.
type Result struct {
	// URL is a pgx connection string for the database, which exists.
	URL string

	// Source is SourceEnv, SourceLocal or SourceEmbedded.
	Source string

	// Stop stops the private cluster with pg_ctl's fast mode; it does
	// nothing if the cluster is not running. It is nil unless this Resolve
	// started the cluster. jobstream does not call it: the cluster keeps
	// running for next time.
	Stop func(ctx context.Context) error
}

// Resolve finds or starts the server as the package doc describes, and
// creates the database if it is missing.
func Resolve(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	cfg.Database = cmp.Or(cfg.Database, DefaultDatabase)

	res, err := cfg.resolve(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := EnsureDatabase(ctx, res.URL); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (c Config) resolve(ctx context.Context) (Result, error) {
	if c.DatabaseURL != "" {
		c.Logf("using DATABASE_URL")
		return Result{URL: c.DatabaseURL, Source: SourceEnv}, nil
	}

	if c.DataDir == "" {
		dir, err := defaultDataDir(c.Getenv)
		if err != nil {
			return Result{}, err
		}
		c.DataDir = dir
	}
	if !filepath.IsAbs(c.DataDir) {
		return Result{}, fmt.Errorf("data directory %q is not an absolute path", c.DataDir)
	}
	cl := &cluster{dataDir: filepath.Clean(c.DataDir), logf: c.Logf}

	var local localServer
	if !c.noLocal {
		var err error
		if local, err = localCandidates(c.Getenv); err != nil {
			return Result{}, err
		}
	}
	existing := cl.initialised()
	if !c.noLocal && (local.explicit || !existing) {
		url, err := local.find(ctx, c.Database, c.Logf)
		if err == nil {
			c.Logf("using local PostgreSQL: %s", url)
			return Result{URL: url, Source: SourceLocal}, nil
		}
		if local.explicit {
			return Result{}, fmt.Errorf("no PostgreSQL server answered at %s (from PGHOST/PGPORT): %w", local, err)
		}
		c.Logf("no local PostgreSQL server answered at %s", local)
	}

	cl.bin = c.findBinaries()
	if cl.bin == "" && !existing {
		tried := "no local server was probed"
		if !c.noLocal {
			tried = "no server answered at " + local.String()
		}
		return Result{}, fmt.Errorf("no PostgreSQL server found (%s) and no PostgreSQL server binaries "+
			"(initdb, pg_ctl, postgres) on PATH or in %s; either set DATABASE_URL, start PostgreSQL, "+
			"install the PostgreSQL server package (apt install postgresql, brew install postgresql, ...) "+
			"so that jobstream can run its own cluster in %s, or run `docker compose up`",
			tried, strings.Join(binDirGlobs, ", "), cl.dataDir)
	}

	started, err := cl.start(ctx)
	if err != nil {
		return Result{}, err
	}
	res := Result{URL: cl.url(c.Database), Source: SourceEmbedded}
	if started {
		res.Stop = cl.stop
	} else {
		c.Logf("using private PostgreSQL cluster in %s", cl.pgdata())
	}
	return res, nil
}

// defaultDataDir follows the XDG base directory spec, which ignores a
// relative XDG_DATA_HOME.
func defaultDataDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "jobstream"), nil
	}
	home := getenv("HOME")
	if home == "" {
		u, err := user.Current()
		if err != nil {
			return "", fmt.Errorf("find home directory for the data directory: %w", err)
		}
		home = u.HomeDir
	}
	if !filepath.IsAbs(home) {
		return "", fmt.Errorf("home directory %q is not an absolute path; set the data directory", home)
	}
	return filepath.Join(home, ".local", "share", "jobstream"), nil
}

// localServer is where to look for a server already running on this machine.
type localServer struct {
	hosts    []string // socket directories and TCP hosts, in order
	port     int
	users    []string // roles to try on each host, in order
	explicit bool     // PGHOST or PGPORT chose hosts or port
}

func localCandidates(getenv func(string) string) (localServer, error) {
	s := localServer{hosts: defaultHosts, port: defaultPort}
	if v := getenv("PGHOST"); v != "" {
		s.hosts = nil
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				s.hosts = append(s.hosts, h)
			}
		}
		s.explicit = true
	}
	if v := getenv("PGPORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil || port < 1 || port > 65535 {
			return localServer{}, fmt.Errorf("PGPORT %q is not a port number", v)
		}
		s.port = port
		s.explicit = true
	}
	if v := getenv("PGUSER"); v != "" {
		s.users = []string{v}
	} else {
		if u, err := user.Current(); err == nil && u.Username != "" {
			s.users = append(s.users, u.Username)
		}
		if len(s.users) == 0 || s.users[0] != "postgres" {
			s.users = append(s.users, "postgres")
		}
	}
	return s, nil
}

func (s localServer) String() string {
	return fmt.Sprintf("%s port %d", strings.Join(s.hosts, ", "), s.port)
}

// find returns a URL for database on the first host that lets one of the
// users in. A server that answers but turns a user away is logged, since the
// fix (a role, a password) is the user's to make.
func (s localServer) find(ctx context.Context, database string, logf func(string, ...any)) (string, error) {
	var errs []error
	for _, host := range s.hosts {
		for _, user := range s.users {
			url := connURL(host, s.port, user, database)
			err := probe(ctx, url)
			if err == nil {
				return url, nil
			}
			errs = append(errs, err)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				break // nothing answered here; other users will fare no better
			}
			logf("local PostgreSQL at %s refused user %s: %s", host, user, pgErr.Message)
		}
	}
	return "", errors.Join(errs...)
}

// probe reports whether a server at url lets its user in. A missing database
// counts as success: EnsureDatabase will create it.
func probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if pgCode(err) == codeInvalidCatalogName {
			return nil
		}
		return err
	}
	return conn.Close(ctx)
}

// connURL builds a URL for host, which is a TCP host or, when it starts with
// a slash, a socket directory. The port is always spelled out so that a
// PGPORT in the environment cannot redirect the URL.
func connURL(host string, port int, user, database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(user), Path: "/" + database}
	if strings.HasPrefix(host, "/") {
		// pgx decodes only %XX, not + for a space. Slashes are legal in a
		// query; keeping them makes the URL readable.
		q := strings.NewReplacer("+", "%20", "%2F", "/").Replace(url.QueryEscape(host))
		u.RawQuery = "host=" + q +
			"&port=" + strconv.Itoa(port)
	} else {
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return u.String()
}
