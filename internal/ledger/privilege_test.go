package ledger_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestLogAppendOnly: the server's role may insert leaves (whose index the
// database assigns) and read them, never change or remove one, nor a tree
// hash or a checkpoint; the owner is refused by the triggers too.
func TestLogAppendOnly(t *testing.T) {
	b := setup(t)
	b.job(t, "acme", 1)
	b.step(t)
	asApp := func(q string) error {
		return pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(b.ctx, "SET LOCAL ROLE jobstream_app"); err != nil {
				return err
			}
			_, err := tx.Exec(b.ctx, q)
			return err
		})
	}
	for _, q := range []string{
		`UPDATE log_leaves SET leaf = '\x01' WHERE idx = 0`,
		`DELETE FROM log_leaves`,
		`TRUNCATE log_leaves`,
		`UPDATE log_hashes SET hash = hash`,
		`DELETE FROM log_hashes`,
		`DELETE FROM log_checkpoints`,
		`TRUNCATE log_checkpoints`,
	} {
		var pe *pgconn.PgError
		if err := asApp(q); !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("jobstream_app: %s: %v, want permission denied", q, err)
		}
	}
	for _, q := range []string{`UPDATE log_leaves SET at = now()`, `DELETE FROM log_hashes`, `DELETE FROM log_checkpoints`} {
		if _, err := b.pool.Exec(b.ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("owner: %s: %v, want append-only", q, err)
		}
	}
	// An index chosen by the inserter is replaced by the next one; a leaf
	// that is not a version 1 leaf of its kind is refused.
	if err := asApp(`INSERT INTO log_leaves (idx, kind, leaf, at) VALUES (99, 'key', '\x01000000036b6579', '2000-01-01')`); err != nil {
		t.Fatal(err)
	}
	var idx int64
	if err := b.pool.QueryRow(b.ctx, `SELECT idx FROM log_leaves WHERE kind = 'key'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("index %d, %v; want 1", idx, err)
	}
	if err := asApp(`INSERT INTO log_leaves (kind, leaf) VALUES ('job', '\x01000000036b6579')`); err == nil {
		t.Fatal("a key leaf inserted as a job leaf")
	}
}
