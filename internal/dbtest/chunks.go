package dbtest

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Chunk is a chunk for InsertChunks.
type Chunk struct {
	StreamType string
	Data       string // JSON text
}

// DB is what InsertChunks needs: a pool, a connection or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InsertChunks stores all the chunks of a job that has none yet, with seq
// 0, 1, ..., as the owner, bypassing the chunk writer (for fixtures such as
// old jobs). Whatever the schema asks of a chunk (the data column's type,
// a hash chained to the previous chunk) is filled in by SQL.
func InsertChunks(ctx context.Context, db DB, jobID uuid.UUID, chunks []Chunk) error {
	var dataType string
	var hash bool
	if err := db.QueryRow(ctx, `
		SELECT format_type(d.atttypid, d.atttypmod),
		       EXISTS (SELECT 1 FROM pg_attribute h WHERE h.attrelid = 'job_chunks'::regclass AND h.attname = 'hash' AND NOT h.attisdropped)
		FROM pg_attribute d WHERE d.attrelid = 'job_chunks'::regclass AND d.attname = 'data'`).Scan(&dataType, &hash); err != nil {
		return fmt.Errorf("job_chunks columns: %w", err)
	}
	types := make([]string, len(chunks))
	datas := make([]string, len(chunks))
	for i, c := range chunks {
		types[i], datas[i] = c.StreamType, c.Data
	}
	cols, vals := "", ""
	if hash {
		cols, vals = ", hash", ", job_chain($1, (r.n - 1)::integer, r.st, r.d) OVER (ORDER BY r.n)"
	}
	q := fmt.Sprintf(`INSERT INTO job_chunks (job_id, seq, stream_type, data%s)
		SELECT $1, (r.n - 1)::integer, r.st, r.d::%s%s
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(st, d, n)`, cols, dataType, vals)
	if _, err := db.Exec(ctx, q, jobID, types, datas); err != nil {
		return fmt.Errorf("insert chunks of %s: %w", jobID, err)
	}
	return nil
}

// ContentChunks returns n content chunks "tok0", "tok1", ...
func ContentChunks(n int) []Chunk {
	out := make([]Chunk, n)
	for i := range out {
		out[i] = Chunk{StreamType: "content", Data: fmt.Sprintf(`{"content":"tok%d"}`, i)}
	}
	return out
}
