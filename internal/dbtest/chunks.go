package dbtest

import (
	"context"
	"fmt"
	"strings"

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
// a hash chained to the previous chunk from the job's seed) is filled in
// by SQL. A job that has ended gets its seal for the chunks, as if they had
// been written before it ended: the fixture runs with triggers off
// (session_replication_role, which needs a superuser, as tests have), since
// the schema refuses chunks of an ended job and a seal set by hand.
func InsertChunks(ctx context.Context, db DB, jobID uuid.UUID, chunks []Chunk) error {
	var dataType string
	var hash, seeded bool
	if err := db.QueryRow(ctx, `
		SELECT format_type(d.atttypid, d.atttypmod),
		       EXISTS (SELECT 1 FROM pg_attribute h WHERE h.attrelid = 'job_chunks'::regclass AND h.attname = 'hash' AND NOT h.attisdropped),
		       EXISTS (SELECT 1 FROM pg_attribute s WHERE s.attrelid = 'jobs'::regclass AND s.attname = 'chain_seed' AND NOT s.attisdropped)
		FROM pg_attribute d WHERE d.attrelid = 'job_chunks'::regclass AND d.attname = 'data'`).Scan(&dataType, &hash, &seeded); err != nil {
		return fmt.Errorf("job_chunks columns: %w", err)
	}
	types := make([]string, len(chunks))
	datas := make([]string, len(chunks))
	for i, c := range chunks {
		types[i], datas[i] = c.StreamType, c.Data
	}
	var q string
	switch {
	case seeded:
		q = fmt.Sprintf(`WITH RECURSIVE c AS (
			SELECT r.st, r.d, (r.n - 1)::integer AS seq FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(st, d, n)
		), h AS (
			SELECT -1 AS seq, (SELECT chain_seed FROM jobs WHERE id = $1) AS hash
			UNION ALL
			SELECT c.seq, job_chunk_hash(h.hash, c.seq, c.st, c.d) FROM h JOIN c ON c.seq = h.seq + 1
		), ins AS (
			INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
			SELECT $1, c.seq, c.st, c.d::%s, h.hash FROM c JOIN h USING (seq)
			RETURNING seq, hash
		)
		UPDATE jobs SET chunk_count = (SELECT count(*) FROM ins),
		                final_hash = coalesce((SELECT hash FROM ins ORDER BY seq DESC LIMIT 1), chain_seed)
		WHERE id = $1 AND status IN ('completed', 'failed', 'cancelled')`, dataType)
	case hash:
		q = fmt.Sprintf(`INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
		SELECT $1, (r.n - 1)::integer, r.st, r.d::%s, job_chain($1, (r.n - 1)::integer, r.st, r.d) OVER (ORDER BY r.n)
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(st, d, n)`, dataType)
	default:
		q = fmt.Sprintf(`INSERT INTO job_chunks (job_id, seq, stream_type, data)
		SELECT $1, (r.n - 1)::integer, r.st, r.d::%s
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(st, d, n)`, dataType)
	}
	if seeded {
		// One transaction on one connection, whatever db is.
		q = "BEGIN; SET LOCAL session_replication_role = replica; " + q + "; COMMIT"
		if _, err := db.Exec(ctx, strings.Replace(strings.Replace(strings.Replace(q, "$1", quote(jobID.String())+"::uuid", -1), "$2", textArray(types), -1), "$3", textArray(datas), -1)); err != nil {
			return fmt.Errorf("insert chunks of %s: %w", jobID, err)
		}
		return nil
	}
	if _, err := db.Exec(ctx, q, jobID, types, datas); err != nil {
		return fmt.Errorf("insert chunks of %s: %w", jobID, err)
	}
	return nil
}

// textArray is a text[] literal of ss, for a simple-protocol statement.
func textArray(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = quote(s)
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "]::text[]"
}

// ContentChunks returns n content chunks "tok0", "tok1", ...
func ContentChunks(n int) []Chunk {
	out := make([]Chunk, n)
	for i := range out {
		out[i] = Chunk{StreamType: "content", Data: fmt.Sprintf(`{"content":"tok%d"}`, i)}
	}
	return out
}
