// Package dbtest gives tests a real PostgreSQL database: one per test
// package, cloned from a migrated template, so packages run in parallel
// without seeing each other's rows or NOTIFYs (NOTIFY is per database).
//
// The server is TEST_DATABASE_URL or DATABASE_URL when set, else whatever
// internal/pgsetup finds (the local server, or a private cluster). Test
// databases run in the Canada/Newfoundland time zone (UTC-3:30) to flush
// out timestamptz bugs.
package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/pgsetup"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/migrations"
)

// TimeZone is the session time zone of every test database.
const TimeZone = "Canada/Newfoundland"

var (
	once   sync.Once
	dbURL  string
	dbName string
	setErr error
)

// Main runs a test package's tests and then drops its database. Call it
// from TestMain.
func Main(m interface{ Run() int }) int {
	code := m.Run()
	if dbName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, dbName); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: drop %s: %v\n", dbName, err)
		}
	}
	return code
}

// URL returns the URL of this test package's database, creating it on first
// use.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { dbURL, dbName, setErr = setup(context.Background()) })
	if setErr != nil {
		t.Fatalf("dbtest: %v", setErr)
	}
	return dbURL
}

// Pool returns a small pool on this package's database, closed at the end of
// the test. Keep pools small: the server allows ~100 connections and
// packages run in parallel.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolSize(t, 4)
}

// PoolSize is Pool with a chosen maximum size.
func PoolSize(t testing.TB, size int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(URL(t))
	if err != nil {
		t.Fatalf("dbtest: parse url: %v", err)
	}
	cfg.MaxConns = size
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Store returns a store.Store on this package's database.
func Store(t testing.TB) *store.Store { return store.New(Pool(t)) }

func serverURL(ctx context.Context) (string, error) {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v, nil
		}
	}
	res, err := pgsetup.Resolve(ctx, pgsetup.Config{Getenv: os.Getenv})
	if err != nil {
		return "", err
	}
	return res.URL, nil
}

func setup(ctx context.Context) (url, name string, err error) {
	base, err := serverURL(ctx)
	if err != nil {
		return "", "", err
	}
	admin, err := pgx.Connect(ctx, WithDatabase(base, "postgres"))
	if err != nil {
		return "", "", fmt.Errorf("connect to %s: %w", pgsetup.Redact(base), err)
	}
	defer admin.Close(ctx)

	tmpl, err := ensureTemplate(ctx, admin, base)
	if err != nil {
		return "", "", err
	}
	exe, _ := os.Executable()
	pkg := strings.TrimSuffix(filepath.Base(exe), ".test")
	name = fmt.Sprintf("jobstream_test_%s_%d_%d", sanitize(pkg), os.Getpid(), time.Now().UnixNano()%1e6)
	if err := createDatabase(ctx, admin, name, tmpl); err != nil {
		return "", "", err
	}
	return WithDatabase(base, name), name, nil
}

// ensureTemplate creates (once per migration set) a migrated template
// database named after a hash of the migrations.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, base string) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "jobstream_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]
	// Serialise template creation across parallel test packages.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7340501)"); err != nil {
		return "", fmt.Errorf("template lock: %w", err)
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock(7340501)")
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	tmp := name + "_building"
	admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{tmp}.Sanitize())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{tmp}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, WithDatabase(base, tmp))
	if err != nil {
		return "", err
	}
	err = store.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", pgx.Identifier{tmp}.Sanitize(), pgx.Identifier{name}.Sanitize())); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	return name, nil
}

func dropDatabase(ctx context.Context, name string) error {
	base, err := serverURL(ctx)
	if err != nil {
		return err
	}
	admin, err := pgx.Connect(ctx, WithDatabase(base, "postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize()))
	return err
}

// WithDatabase returns dsn (URL or keyword/value form) with its database
// replaced by name.
func WithDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := neturl.Parse(dsn)
		if err != nil {
			return dsn
		}
		u.Path = "/" + name
		return u.String()
	}
	var kept []string
	for _, f := range strings.Fields(dsn) {
		if !strings.HasPrefix(f, "dbname=") {
			kept = append(kept, f)
		}
	}
	return strings.Join(append(kept, "dbname="+name), " ")
}

// WithUser returns dsn (URL or keyword/value form) logging in as user with
// password (none when empty) instead.
func WithUser(dsn, user, password string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := neturl.Parse(dsn)
		if err != nil {
			return dsn
		}
		u.User = neturl.User(user)
		if password != "" {
			u.User = neturl.UserPassword(user, password)
		}
		q := u.Query()
		if q.Has("user") || q.Has("password") {
			q.Del("user")
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	var kept []string
	for _, f := range strings.Fields(dsn) {
		if !strings.HasPrefix(f, "user=") && !strings.HasPrefix(f, "password=") {
			kept = append(kept, f)
		}
	}
	kept = append(kept, "user="+user)
	if password != "" {
		kept = append(kept, "password='"+strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(password)+"'")
	}
	return strings.Join(kept, " ")
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	if b.Len() > 20 {
		return b.String()[:20]
	}
	return b.String()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Isolated returns the URL of a fresh migrated database for this test
// alone, cloned from the template and dropped when the test ends. Use it for
// tests that run workers or call Claim/RescueExpired: those act on every job
// in a database, so tests sharing the package database would run each
// other's jobs.
func Isolated(t testing.TB) string {
	t.Helper()
	return isolated(t, true)
}

// IsolatedEmpty is Isolated without the migrations (for migration tests).
func IsolatedEmpty(t testing.TB) string {
	t.Helper()
	return isolated(t, false)
}

func isolated(t testing.TB, migrated bool) string {
	t.Helper()
	URL(t) // make sure the server and the template are set up
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, err := serverURL(ctx)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	admin, err := pgx.Connect(ctx, WithDatabase(base, "postgres"))
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	tmpl := ""
	if migrated {
		if tmpl, err = ensureTemplate(ctx, admin, base); err != nil {
			t.Fatalf("dbtest: %v", err)
		}
	}
	name := fmt.Sprintf("%s_%d", dbName, isolatedSeq.Add(1))
	if err := createDatabase(ctx, admin, name, tmpl); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
		}
	})
	return WithDatabase(base, name)
}

// createDatabase creates name (a copy of template when set) in the test time
// zone.
func createDatabase(ctx context.Context, admin *pgx.Conn, name, template string) error {
	ident := pgx.Identifier{name}.Sanitize()
	create := "CREATE DATABASE " + ident
	if template != "" {
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	var err error
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, create)
		if err == nil || attempt == 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		// Another package is copying the template at this moment:
		// contention on the server, not a test synchronisation.
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s SET timezone = %s", ident, quote(TimeZone))); err != nil {
		return fmt.Errorf("set time zone of %s: %w", name, err)
	}
	return nil
}

// IsolatedStore is Isolated with a small pool and a store on it.
func IsolatedStore(t testing.TB) *store.Store {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(Isolated(t))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	cfg.MaxConns = 6
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool)
}

var isolatedSeq atomic.Int64
