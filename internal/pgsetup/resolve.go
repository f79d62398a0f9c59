package pgsetup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
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

	// Warnf receives what the user should act on, such as a directory
	// whose mode had to change for the cluster's user. Defaults to Logf.
	Warnf func(format string, args ...any)

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

	// Why says why this server was chosen, e.g. "DATABASE_URL is set".
	Why string

	// Hint says how to choose another, e.g. "set DATABASE_URL ...".
	Hint string

	// DataDir is the private cluster's data directory (SourceEmbedded only).
	DataDir string

	// Stop stops the private cluster with pg_ctl's fast mode; it does
	// nothing if the cluster is not running. It is nil unless this Resolve
	// started the cluster. jobstream does not call it: the cluster keeps
	// running for next time.
	Stop func(ctx context.Context) error
}

// Resolve finds or starts the server as the package doc describes, and
// creates the database if it is missing.
func Resolve(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res, err := cfg.resolve(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := EnsureDatabase(ctx, res.URL); err != nil {
		return Result{}, err
	}
	cfg.Logf("%s", res)
	return res, nil
}

// String says which database this is, why it was chosen and how to choose
// another, in one line for the start-up log. The URL's password is hidden.
func (r Result) String() string {
	return fmt.Sprintf("database %s (%s), because %s; to use another, %s", Redact(r.URL), r.Source, r.Why, r.Hint)
}

// Redact hides the passwords of a connection string, URL or key=value
// form: the URL's userinfo password, and the password and sslpassword
// parameters wherever they are (a URL's query, key=value pairs). It is the
// one helper for every connection string jobstream logs or prints.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.RawQuery = redactQuery(u.RawQuery)
		return u.Redacted()
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		// Not a URL Go can parse (a stray %, say): hide by pattern.
		dsn = urlUserPassword.ReplaceAllString(dsn, "${1}xxxxx@")
		return urlQueryPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	return passwordKV.ReplaceAllString(dsn, "${1}xxxxx")
}

// redactQuery replaces the values of a URL query's password parameters,
// leaving the rest of it as written (re-encoding would turn
// host=/var/run/postgresql into host=%2Fvar%2Frun%2Fpostgresql).
func redactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err == nil && secretParams[strings.ToLower(key)] {
			parts[i] = k + "=xxxxx"
		} else if err != nil && strings.Contains(strings.ToLower(k), "password") {
			parts[i] = "xxxxx"
		}
	}
	return strings.Join(parts, "&")
}

// secretParams are the connection parameters whose values are secrets.
var secretParams = map[string]bool{"password": true, "sslpassword": true}

var (
	passwordKV       = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	urlUserPassword  = regexp.MustCompile(`^(postgres(?:ql)?://[^:/@?#]*:)[^@]*@`)
	urlQueryPassword = regexp.MustCompile(`(?i)([?&][^=&]*password=)[^&#]*`)
)

func (c Config) withDefaults() Config {
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Warnf == nil {
		c.Warnf = c.Logf
	}
	c.Database = cmp.Or(c.Database, DefaultDatabase)
	return c
}

// Choose says which server Resolve would use and why, without starting a
// cluster or creating the database. For SourceEmbedded the cluster may not
// be running; ClusterStatus tells.
func Choose(ctx context.Context, cfg Config) (Result, error) {
	res, _, err := cfg.withDefaults().choose(ctx)
	return res, err
}

func (c Config) resolve(ctx context.Context) (Result, error) {
	res, cl, err := c.choose(ctx)
	if err != nil || cl == nil {
		return res, err
	}
	started, err := cl.start(ctx)
	if err != nil {
		return Result{}, err
	}
	if started {
		res.Stop = cl.stop
	}
	return res, nil
}

// choose decides which server to use, as the package doc orders them,
// without starting or creating anything. cl is the private cluster to start
// when that is the choice, else nil.
func (c Config) choose(ctx context.Context) (res Result, cl *cluster, err error) {
	if c.DatabaseURL != "" {
		return Result{
			URL: c.DatabaseURL, Source: SourceEnv,
			Why:  "DATABASE_URL is set",
			Hint: "unset DATABASE_URL to let jobstream find one",
		}, nil, nil
	}

	dataDir, err := c.dataDir()
	if err != nil {
		return Result{}, nil, err
	}
	cl = &cluster{dataDir: dataDir, logf: c.Logf, warnf: c.Warnf}

	var local localServer
	if !c.noLocal {
		if local, err = localCandidates(c.Getenv); err != nil {
			return Result{}, nil, err
		}
	}
	existing := cl.initialised()
	if !c.noLocal && (local.explicit || !existing) {
		url, err := local.find(ctx, c.Database, c.Logf)
		if err == nil {
			res := Result{URL: url, Source: SourceLocal}
			if local.explicit {
				res.Why = "PGHOST/PGPORT name this server"
				res.Hint = "set DATABASE_URL, or unset PGHOST and PGPORT"
			} else {
				res.Why = fmt.Sprintf("DATABASE_URL is not set, there is no private cluster in %s, and this server answered", dataDir)
				res.Hint = "set DATABASE_URL, or create a private cluster with `jobstream db start` (used from then on)"
			}
			return res, nil, nil
		}
		if local.explicit {
			return Result{}, nil, fmt.Errorf("no PostgreSQL server answered at %s (from PGHOST/PGPORT): %w", local, err)
		}
		c.Logf("no local PostgreSQL server answered at %s", local)
	}

	cl.bin = c.findBinaries()
	if cl.bin == "" && !existing {
		tried := "no local server was probed"
		if !c.noLocal {
			tried = "no server answered at " + local.String()
		}
		return Result{}, nil, fmt.Errorf("no PostgreSQL server found (%s) and no PostgreSQL server binaries "+
			"(initdb, pg_ctl, postgres) on PATH or in %s; either set DATABASE_URL, start PostgreSQL, "+
			"install the PostgreSQL server package (apt install postgresql, brew install postgresql, ...) "+
			"so that jobstream can run its own cluster in %s, or run `docker compose up`",
			tried, strings.Join(binDirGlobs, ", "), cl.dataDir)
	}
	res = Result{URL: cl.url(c.Database), Source: SourceEmbedded, DataDir: cl.dataDir,
		Hint: "set DATABASE_URL, or --data-dir for another private cluster (`jobstream db stop` stops this one)"}
	switch {
	case c.noLocal:
		res.Why = "the private cluster was asked for"
	case existing:
		res.Why = fmt.Sprintf("DATABASE_URL is not set and a private cluster was created in %s before; it is used before any local server, so that jobs never seem to vanish", cl.dataDir)
	default:
		res.Why = fmt.Sprintf("DATABASE_URL is not set, no local server answered at %s, and the PostgreSQL server binaries are in %s", local, cl.bin)
	}
	return res, cl, nil
}

// dataDir returns Config.DataDir, or the default one, cleaned and checked.
func (c Config) dataDir() (string, error) {
	dir := c.DataDir
	if dir == "" {
		var err error
		if dir, err = defaultDataDir(c.Getenv, isRoot()); err != nil {
			return "", err
		}
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("data directory %q is not an absolute path", dir)
	}
	return filepath.Clean(dir), nil
}

// rootDataDir is the default data directory when jobstream runs as root.
// The cluster then runs as another user (PostgreSQL refuses root), who must
// be able to traverse every directory above it; root's home is usually mode
// 0700, so a directory under it would need root's home opened up. Every
// user may traverse /var/lib.
const rootDataDir = "/var/lib/jobstream"

// defaultDataDir follows the XDG base directory spec, which ignores a
// relative XDG_DATA_HOME. As root it is rootDataDir, unless a cluster was
// already created in the home directory (moving it would lose its jobs).
func defaultDataDir(getenv func(string) string, root bool) (string, error) {
	home, err := homeDataDir(getenv)
	if !root {
		return home, err
	}
	if err == nil {
		if _, err := os.Stat(filepath.Join(home, "pg", "PG_VERSION")); err == nil {
			return home, nil
		}
	}
	return rootDataDir, nil
}

func homeDataDir(getenv func(string) string) (string, error) {
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
