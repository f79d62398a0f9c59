package pgsetup

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		name string
		url  string // names the database, which does not exist yet
	}

	setup := func(t *testing.T, name string) *testBundle {
		t.Helper()
		return &testBundle{name: name, url: testDatabaseURL(t, name)}
	}

	t.Run("CreatesMissing", func(t *testing.T) {
		t.Parallel()
		// Quotes, spaces and capitals check the identifier quoting.
		bundle := setup(t, `pgsetup "Quoted" `+uniqueName())

		if err := EnsureDatabase(t.Context(), bundle.url); err != nil {
			t.Fatalf("EnsureDatabase: %v", err)
		}
		if got := queryString(t, bundle.url, "SELECT current_database()"); got != bundle.name {
			t.Errorf("current_database() = %q, want %q", got, bundle.name)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t, uniqueName())

		for i := range 2 {
			if err := EnsureDatabase(t.Context(), bundle.url); err != nil {
				t.Fatalf("EnsureDatabase call %d: %v", i+1, err)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t, uniqueName())

		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = EnsureDatabase(t.Context(), bundle.url) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("EnsureDatabase %d: %v", i, err)
			}
		}
	})

	t.Run("BadURL", func(t *testing.T) {
		t.Parallel()

		if err := EnsureDatabase(t.Context(), "postgres://%zz"); err == nil {
			t.Fatal("EnsureDatabase with a malformed URL succeeded")
		}
	})
}

// testServerURL returns a URL for the postgres database on the local test
// server, found the way Resolve finds one, with an empty environment.
func testServerURL(t *testing.T) string {
	t.Helper()
	local, err := localCandidates(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	u, err := local.find(t.Context(), "postgres", t.Logf)
	if err != nil {
		t.Fatalf("no local PostgreSQL server for the tests: %v", err)
	}
	return u
}

// testDatabaseURL returns a URL for database name on the test server and
// drops that database when the test ends.
func testDatabaseURL(t *testing.T, name string) string {
	t.Helper()
	server := testServerURL(t)
	dropDatabase(t, server, name)
	return withDatabase(t, server, name)
}

// dropDatabase drops database name on the server at url when the test ends.
func dropDatabase(t *testing.T, url, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background() // t.Context is done by now
		conn, err := pgx.Connect(ctx, withDatabase(t, url, "postgres"))
		if err != nil {
			t.Errorf("drop database %q: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %q: %v", name, err)
		}
	})
}

func withDatabase(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func uniqueName() string {
	return "pgsetup_test_" + strings.ToLower(rand.Text()[:12])
}

func queryString(t *testing.T, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}
