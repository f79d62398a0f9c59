package testserver

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// gateKey is the advisory lock a NowGate holds while closed.
const gateKey = 7340509

// NowGate holds statements of chosen connections in the middle of their
// execution, after they took their snapshot and before they lock any row:
// the place where a decision made on a stale snapshot goes wrong, which no
// client-side hook can reach. It installs, in a database of the test's own,
// a public.now() that waits for the gate to be open (a shared advisory
// lock the gate holds exclusively while closed) and then returns
// pg_catalog.now(). Only connections of URL, whose search_path puts public
// before pg_catalog, call it; everyone else gets the real now() and never
// waits. A statement calls it where its plan evaluates now() (a WHERE
// clause: while scanning, before LockRows).
type NowGate struct {
	// URL is the database URL whose connections the gate holds.
	URL  string
	t    testing.TB
	conn *pgx.Conn
}

// NewNowGate installs the gate in db (a URL from Database) and returns it
// open. It is opened when the test ends.
func NewNowGate(t testing.TB, db string) *NowGate {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatalf("testserver: gate: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `
		CREATE OR REPLACE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
		BEGIN
			PERFORM pg_catalog.pg_advisory_lock_shared(`+strconv.Itoa(gateKey)+`);
			PERFORM pg_catalog.pg_advisory_unlock_shared(`+strconv.Itoa(gateKey)+`);
			RETURN pg_catalog.now();
		END $$`)
	if err != nil {
		t.Fatalf("testserver: install the gate: %v", err)
	}
	return &NowGate{URL: withSearchPath(t, db), t: t, conn: conn}
}

// withSearchPath returns db with search_path public, pg_catalog: public's
// now() then shadows the built-in one.
func withSearchPath(t testing.TB, db string) string {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil || u.Scheme == "" {
		return db + " search_path=public,pg_catalog"
	}
	q := u.Query()
	q.Set("search_path", "public,pg_catalog")
	u.RawQuery = q.Encode()
	return u.String()
}

// Close closes the gate: from now on statements of URL that evaluate now()
// wait in it.
func (g *NowGate) Close() {
	g.t.Helper()
	if _, err := g.conn.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, gateKey); err != nil {
		g.t.Fatalf("testserver: close the gate: %v", err)
	}
}

// Open lets the held statements go on.
func (g *NowGate) Open() {
	g.t.Helper()
	if _, err := g.conn.Exec(context.Background(), `SELECT pg_advisory_unlock_all()`); err != nil {
		g.t.Fatalf("testserver: open the gate: %v", err)
	}
}

// WaitHeld returns once a statement whose text contains query (such as
// "name: JobExpiredLock") waits in the closed gate, failing the test after
// Timeout.
func (g *NowGate) WaitHeld(query string) {
	g.t.Helper()
	g.WaitHeldSince(query, time.Time{})
}

// WaitHeldSince is WaitHeld for a statement that started after since (a
// time read from the database's clock): its snapshot holds everything
// committed before since.
func (g *NowGate) WaitHeldSince(query string, since time.Time) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var held bool
		err := g.conn.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'
			  AND strpos(query, $1) > 0 AND query_start > $2)`, query, since).Scan(&held)
		if err != nil {
			g.t.Fatalf("testserver: waiting for %q in the gate: %v", query, err)
		}
		if held {
			return
		}
		select {
		case <-ctx.Done():
			g.t.Fatalf("testserver: no statement %q waited in the gate within %s", query, Timeout)
		case <-tick.C:
		}
	}
}
