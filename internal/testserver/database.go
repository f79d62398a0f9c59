package testserver

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
)

// Database creates a migrated database for this test alone (a copy of
// dbtest's template) and drops it when the test ends. It returns the
// database's URL. See dbtest.Isolated.
func Database(t testing.TB) string {
	t.Helper()
	return dbtest.Isolated(t)
}

// EmptyDatabase is Database without the migrations.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	return dbtest.IsolatedEmpty(t)
}

// Pool returns a pool of size connections on url, closed when the test ends.
func Pool(t testing.TB, url string, size int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("testserver: parse url: %v", err)
	}
	cfg.MaxConns = size
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testserver: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// WithDatabase returns dsn with its database replaced by name.
func WithDatabase(dsn, name string) string { return dbtest.WithDatabase(dsn, name) }

// WithUser returns dsn logging in as user with password (none when empty).
func WithUser(dsn, user, password string) string { return dbtest.WithUser(dsn, user, password) }
