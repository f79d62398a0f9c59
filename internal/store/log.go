package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// LogLeaf is one leaf of the transparency log (migrations/00050_log.sql;
// internal/ledger decodes Leaf).
type LogLeaf struct {
	Index int64
	Kind  string
	Leaf  []byte
	JobID *uuid.UUID
	At    time.Time
}

// LogCheckpoint is a signed checkpoint as kept in log_checkpoints.
type LogCheckpoint struct {
	TreeSize int64
	Root     []byte
	Note     string
	At       time.Time
}

// LogTx is the sequencer's transaction: it holds the log's advisory lock,
// so no other node numbers, hashes or signs meanwhile (leaves are still
// appended, unnumbered, by other transactions).
type LogTx struct {
	s  *Store
	tx pgx.Tx
	// Now is the transaction's start by the database's clock.
	Now time.Time
}

// LogSequence runs fn in a transaction that holds the log's lock, and
// commits if fn returns nil. It reports false, without running fn, when
// another session holds the lock (another node's sequencer).
func (s *Store) LogSequence(ctx context.Context, fn func(ctx context.Context, t *LogTx) error) (bool, error) {
	var locked bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := s.q.LogLock(ctx, tx)
		if err != nil || !r.Locked {
			return err
		}
		locked = true
		return fn(ctx, &LogTx{s: s, tx: tx, Now: r.Now})
	})
	if err != nil {
		return false, fmt.Errorf("sequence the log: %w", err)
	}
	return locked, nil
}

// AppendJobs appends a job leaf, unnumbered, for up to max ended jobs
// without one, after the keyset (end time, id) after, and returns how many
// it appended and the keyset of the last job it looked at. The database
// computes each leaf (jobstream_log_append_jobs).
func (t *LogTx) AppendJobs(ctx context.Context, after LogKeyset, max int) (int64, LogKeyset, error) {
	r, err := t.s.q.LogAppendJobs(ctx, t.tx, dbsqlc.LogAppendJobsParams{AfterEnded: after.Ended, AfterID: after.ID, Max: int32(max)})
	if err != nil {
		return 0, LogKeyset{}, fmt.Errorf("append job leaves: %w", err)
	}
	return r.Appended, LogKeyset{Ended: r.LastEnded, ID: r.LastID}, nil
}

// LogKeyset is a place in the order the sequencer logs ended jobs: by
// end time (finished_at, else created_at), then id.
type LogKeyset struct {
	Ended time.Time
	ID    uuid.UUID
}

// LogSequenced is what one call of Sequence did.
type LogSequenced struct {
	// Numbered leaves (given their index), Hashed leaves (into the tree),
	// and the tree's Size after.
	Numbered, Hashed, Size int64
}

// Sequence numbers up to max committed unnumbered leaves, in insertion
// order, then hashes up to max numbered leaves into the tree, in index
// order. The database computes every index and hash
// (jobstream_log_sequence): the server's role cannot write either.
func (t *LogTx) Sequence(ctx context.Context, max int) (LogSequenced, error) {
	r, err := t.s.q.LogSequenceStep(ctx, t.tx, int32(max))
	if err != nil {
		return LogSequenced{}, fmt.Errorf("number and hash leaves: %w", err)
	}
	return LogSequenced{Numbered: r.Numbered, Hashed: r.Hashed, Size: r.TreeSize}, nil
}

// ReadHashes reads stored hashes within the transaction (tlog.HashReader's
// contract: in the order asked, every one present).
func (t *LogTx) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	return t.s.readHashes(ctx, t.tx, idx)
}

// LatestCheckpoint is the checkpoint of the largest tree; nil when none.
func (t *LogTx) LatestCheckpoint(ctx context.Context) (*LogCheckpoint, error) {
	return t.s.latestCheckpoint(ctx, t.tx)
}

// InsertCheckpoint keeps a signed checkpoint; the database refuses one
// whose size is not hashed or not past the last checkpoint's, whose root is
// not that tree's, or whose note does not state them
// (jobstream_log_checkpoint).
func (t *LogTx) InsertCheckpoint(ctx context.Context, size int64, root []byte, note string) error {
	if err := t.s.q.LogCheckpointInsert(ctx, t.tx, dbsqlc.LogCheckpointInsertParams{TreeSize: size, Root: root, Note: note}); err != nil {
		return fmt.Errorf("keep checkpoint: %w", err)
	}
	return nil
}

// LogLeavesFrom returns up to max leaves from index first on, in index order.
func (s *Store) LogLeavesFrom(ctx context.Context, first int64, max int) ([]LogLeaf, error) {
	return s.logLeavesFrom(ctx, s.pool, first, max)
}

func (s *Store) logLeavesFrom(ctx context.Context, db dbsqlc.DBTX, first int64, max int) ([]LogLeaf, error) {
	rows, err := s.q.LogLeavesFrom(ctx, db, dbsqlc.LogLeavesFromParams{First: first, Max: int32(max)})
	if err != nil {
		return nil, fmt.Errorf("read log leaves: %w", err)
	}
	out := make([]LogLeaf, len(rows))
	for i, r := range rows {
		out[i] = LogLeaf{Index: r.Idx, Kind: r.Kind, Leaf: r.Leaf, JobID: r.JobID, At: r.At}
	}
	return out, nil
}

// LogHashCount is the number of stored hashes.
func (s *Store) LogHashCount(ctx context.Context) (int64, error) {
	n, err := s.q.LogHashCount(ctx, s.pool)
	if err != nil {
		return 0, fmt.Errorf("count tree hashes: %w", err)
	}
	return n, nil
}

// LogReadHashes reads stored hashes (immutable once written, so no
// snapshot is needed) in the order asked.
func (s *Store) LogReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	return s.readHashes(ctx, s.pool, idx)
}

func (s *Store) readHashes(ctx context.Context, db dbsqlc.DBTX, idx []int64) ([]tlog.Hash, error) {
	rows, err := s.q.LogHashesRead(ctx, db, idx)
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	got := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		got[r.Idx] = r.Hash
	}
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := got[x]
		if !ok || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("tree hash %d is missing", x)
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// LogLatestCheckpoint is the checkpoint of the largest tree; nil when none.
func (s *Store) LogLatestCheckpoint(ctx context.Context) (*LogCheckpoint, error) {
	return s.latestCheckpoint(ctx, s.pool)
}

func (s *Store) latestCheckpoint(ctx context.Context, db dbsqlc.DBTX) (*LogCheckpoint, error) {
	r, err := s.q.LogCheckpointLatest(ctx, db)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read latest checkpoint: %w", err)
	}
	return &LogCheckpoint{TreeSize: r.TreeSize, Root: r.Root, Note: r.Note, At: r.At}, nil
}

// LogJobLeaf returns a job's job leaf; tenant "" matches any tenant, and
// another tenant's job, or a job not logged yet, is ErrNotFound.
func (s *Store) LogJobLeaf(ctx context.Context, tenant string, id uuid.UUID) (LogLeaf, error) {
	r, err := s.q.LogJobLeaf(ctx, s.pool, dbsqlc.LogJobLeafParams{JobID: &id, Tenant: strPtr(tenant)})
	if errors.Is(err, pgx.ErrNoRows) {
		return LogLeaf{}, ErrNotFound
	}
	if err != nil {
		return LogLeaf{}, fmt.Errorf("read leaf of job %s: %w", id, err)
	}
	return LogLeaf{Index: r.Idx, Kind: r.Kind, Leaf: r.Leaf, JobID: r.JobID, At: r.At}, nil
}

// LogSealedUnlogged returns up to 1,000 jobs that ended before before
// and have no numbered job leaf.
func (s *Store) LogSealedUnlogged(ctx context.Context, before time.Time) ([]uuid.UUID, error) {
	ids, err := s.q.LogSealedUnlogged(ctx, s.pool, before)
	if err != nil {
		return nil, fmt.Errorf("find unlogged jobs: %w", err)
	}
	return ids, nil
}

// LogJobsPresent returns which of ids have a job row.
func (s *Store) LogJobsPresent(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	got, err := s.q.LogJobsPresent(ctx, s.pool, ids)
	if err != nil {
		return nil, fmt.Errorf("look up jobs: %w", err)
	}
	m := make(map[uuid.UUID]bool, len(got))
	for _, id := range got {
		m[id] = true
	}
	return m, nil
}

// LogJob is a job's row as an audit compares it with the job's leaf.
type LogJob struct {
	ID           uuid.UUID
	Tenant       string
	Engine       string
	Request      []byte
	ChainVersion int
	Status       string
	ChunkCount   *int64
	FinalHash    []byte
	CreatedAt    time.Time
	FinishedAt   *time.Time
	// RequestSHA256 is the stored hash of the request, all an erased
	// job (ErasedAt set) keeps of it.
	RequestSHA256 []byte
	ErasedAt      *time.Time
}

// LogJobRow reads a job's row; ErrNotFound when it is gone.
func (s *Store) LogJobRow(ctx context.Context, id uuid.UUID) (LogJob, error) {
	r, err := s.q.LogJobRow(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return LogJob{}, ErrNotFound
	}
	if err != nil {
		return LogJob{}, fmt.Errorf("read job %s: %w", id, err)
	}
	j := LogJob{ID: r.ID, Tenant: r.Tenant, Engine: r.Engine, Request: []byte(r.Request), ChainVersion: int(r.ChainVersion),
		Status: r.Status, FinalHash: r.FinalHash, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt,
		RequestSHA256: r.RequestSha256, ErasedAt: r.ErasedAt}
	if r.ChunkCount != nil {
		n := int64(*r.ChunkCount)
		j.ChunkCount = &n
	}
	return j, nil
}

// LogChunkHashesSHA256 is the SHA-256 of a job's stored chunk hashes
// concatenated in seq order, computed here rather than by the database:
// what an erased job's leaf commits to.
func (s *Store) LogChunkHashesSHA256(ctx context.Context, id uuid.UUID) ([]byte, error) {
	hs, err := s.q.LogChunkHashes(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("read chunk hashes of job %s: %w", id, err)
	}
	d := sha256.New()
	for _, h := range hs {
		d.Write(h)
	}
	return d.Sum(nil), nil
}

// LogJobEventHash returns the hash of event seq of a job's audit trail;
// ErrNotFound when there is no such event.
func (s *Store) LogJobEventHash(ctx context.Context, id uuid.UUID, seq int64) ([]byte, error) {
	h, err := s.q.LogJobEventHash(ctx, s.pool, dbsqlc.LogJobEventHashParams{JobID: id, Seq: int32(seq)})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read event %d of job %s: %w", seq, id, err)
	}
	return h, nil
}
