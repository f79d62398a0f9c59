package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
)

const logName = "test.example/jobstream"

type bundle struct {
	ctx      context.Context
	pool     *pgxpool.Pool
	st       *store.Store
	signer   note.Signer
	verifier string
	seq      *ledger.Sequencer
}

// setup gives a test its own migrated database (the owner's pool), a key
// and a sequencer that signs a checkpoint at every step that grows the log.
func setup(t testing.TB) *bundle {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbtest.Isolated(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	skey, vkey, err := ledger.GenerateKey(logName)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{ctx: context.Background(), pool: pool, st: store.New(pool), signer: signer, verifier: vkey}
	b.seq = ledger.NewSequencer(b.st, ledger.Config{Signer: signer, CheckpointInterval: time.Nanosecond, SweepEvery: time.Nanosecond})
	return b
}

// job inserts a job of tenant that ran and completed with n content chunks
// and its finish chunk, as the server would leave it; it returns its id.
func (b *bundle) job(t *testing.T, tenant string, n int) uuid.UUID {
	t.Helper()
	return b.jobAt(t, tenant, time.Now(), n)
}

func (b *bundle) jobAt(t *testing.T, tenant string, at time.Time, n int) uuid.UUID {
	t.Helper()
	// Created a second before at, ended at at.
	at = at.Add(-time.Second)
	id := idAt(t, at)
	b.exec(t, `INSERT INTO jobs (id, tenant, engine, request, status, created_at, lease_owner, lease_expires_at, attempt)
		VALUES ($1, $2, 'sim', '{"prompt": "hi"}', 'running', $3, 'w1', now() + interval '1 hour', 1)`, id, tenant, at)
	chunks := append(dbtest.ContentChunks(n), dbtest.Chunk{StreamType: "finish", Data: `{"finish_reason":"stop"}`})
	if err := dbtest.InsertChunks(b.ctx, b.pool, id, chunks); err != nil {
		t.Fatal(err)
	}
	b.exec(t, `UPDATE jobs SET status = 'completed', finish_reason = 'stop', finished_at = $2, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`, id, at.Add(time.Second))
	return id
}

func idAt(t *testing.T, at time.Time) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	ms := uint64(at.UnixMilli())
	for i := 0; i < 6; i++ {
		id[i] = byte(ms >> (8 * (5 - i)))
	}
	return id
}

func (b *bundle) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(b.ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// step runs the sequencer until it has nothing more to do and returns the
// last checkpoint signed (nil if none).
func (b *bundle) step(t *testing.T) []byte {
	t.Helper()
	var cp []byte
	for {
		s, err := b.seq.Step(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Locked {
			t.Fatal("sequencer: the log's lock is taken")
		}
		if s.Checkpoint != nil {
			cp = s.Checkpoint
		}
		if !s.More {
			return cp
		}
	}
}
