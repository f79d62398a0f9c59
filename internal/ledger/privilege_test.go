package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
)

// TestLogAppendOnly: the server's role may read leaves, never insert,
// change or remove one, nor a tree hash or a checkpoint; the owner is
// refused by the triggers too.
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
	// The server's role inserts no leaf itself: the triggers and the
	// sequencer's functions do (TestLogForgeriesRefused). The owner's
	// inserts are numbered by the sequencer, whatever index they said; a
	// leaf that is not a version 1 leaf of its kind is refused.
	if err := asApp(`INSERT INTO log_leaves (kind, leaf) VALUES ('key', '\x01000000036b6579')`); err == nil {
		t.Fatal("jobstream_app inserted a leaf")
	}
	b.exec(t, `INSERT INTO log_leaves (idx, kind, leaf, at) VALUES (99, 'key', '\x01000000036b6579', '2000-01-01')`)
	b.step(t)
	var idx int64
	if err := b.pool.QueryRow(b.ctx, `SELECT idx FROM log_leaves WHERE kind = 'key'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("index %d, %v; want 1", idx, err)
	}
	if _, err := b.pool.Exec(b.ctx, `INSERT INTO log_leaves (kind, leaf) VALUES ('job', '\x01000000036b6579')`); err == nil {
		t.Fatal("a key leaf inserted as a job leaf")
	}
}

// TestSequencerAsServerRole: the sequencer needs no more than what
// jobstream_app is granted: it appends, hashes and signs as that role.
func TestSequencerAsServerRole(t *testing.T) {
	b := setup(t)
	b.job(t, "acme", 2)
	cfg, err := pgxpool.ParseConfig(b.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE jobstream_app")
		return err
	}
	app, err := pgxpool.NewWithConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	seq := ledger.NewSequencer(store.New(app), ledger.Config{Signer: b.signer})
	s, err := seq.Step(b.ctx)
	if err != nil || s.Appended != 1 || s.Size != 1 || s.Checkpoint == nil {
		t.Fatalf("step as jobstream_app: %+v %v", s, err)
	}
	if rep := b.audit(t, s.Checkpoint, nil); !rep.OK() {
		t.Fatal(rep.Findings)
	}
}
