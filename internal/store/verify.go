package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Verify recomputes a job's hash chain from its stored chunks (see
// internal/chain). tenant "" matches any tenant (the CLI); the API passes
// the key's, and another tenant's job is ErrNotFound. The job row and its
// chunks are read in one snapshot, so a running job verifies up to its
// last committed chunk, and a job that ends meanwhile is never mistaken
// for a truncated one.
func (s *Store) Verify(ctx context.Context, tenant string, id uuid.UUID) (chain.Result, error) {
	res, _, err := s.VerifySealed(ctx, tenant, id)
	return res, err
}

// Seal is what a job's row says of its chain: whether the job has ended,
// and, once it has, its chunk count and final hash (sealed by the terminal
// update), and when it was erased, if it was. A finished job's verdict
// cannot change unless its chunks or its seal are tampered with, or it is
// erased (which keeps the chunk count and final hash: ErasedAt tells the
// verdicts apart).
type Seal struct {
	Terminal   bool
	ChunkCount *int
	FinalHash  []byte
	ErasedAt   *time.Time
}

// Same reports whether o is the same seal as s.
func (s Seal) Same(o Seal) bool {
	return s.Terminal == o.Terminal && bytes.Equal(s.FinalHash, o.FinalHash) &&
		(s.ChunkCount == nil) == (o.ChunkCount == nil) && (s.ChunkCount == nil || *s.ChunkCount == *o.ChunkCount) &&
		(s.ErasedAt == nil) == (o.ErasedAt == nil) && (s.ErasedAt == nil || s.ErasedAt.Equal(*o.ErasedAt))
}

// VerifySealed is Verify, also returning the seal the job's row had in the
// snapshot its chunks were read in.
func (s *Store) VerifySealed(ctx context.Context, tenant string, id uuid.UUID) (chain.Result, Seal, error) {
	var (
		res  chain.Result
		seal Seal
	)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		res, seal, err = s.verify(ctx, tx, tenant, id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return chain.Result{}, Seal{}, ErrNotFound
	}
	if err != nil {
		return chain.Result{}, Seal{}, fmt.Errorf("verify job %s: %w", id, err)
	}
	if tenant != "" {
		s.NoteAccess(ctx, tenant, id, AccessVerify)
	}
	return res, seal, nil
}

// JobSeal reads a tenant's job's seal ("" matches any tenant), one row by
// its key, no chunk: enough to tell whether a verdict computed before
// still holds.
func (s *Store) JobSeal(ctx context.Context, tenant string, id uuid.UUID) (Seal, error) {
	row, err := s.q.JobChainGet(ctx, s.pool, dbsqlc.JobChainGetParams{ID: id, Tenant: strPtr(tenant)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Seal{}, ErrNotFound
	}
	if err != nil {
		return Seal{}, fmt.Errorf("read job %s seal: %w", id, err)
	}
	if tenant != "" {
		// A cached verdict is served after this read: a read all the same.
		s.NoteAccess(ctx, tenant, id, AccessVerify)
	}
	return sealOf(row), nil
}

func sealOf(row dbsqlc.JobChainGetRow) Seal {
	seal := Seal{Terminal: Terminal(row.Status), FinalHash: row.FinalHash, ErasedAt: row.ErasedAt}
	if row.ChunkCount != nil {
		n := int(*row.ChunkCount)
		seal.ChunkCount = &n
	}
	return seal
}

func (s *Store) verify(ctx context.Context, tx pgx.Tx, tenant string, id uuid.UUID) (chain.Result, Seal, error) {
	row, err := s.q.JobChainGet(ctx, tx, dbsqlc.JobChainGetParams{ID: id, Tenant: strPtr(tenant)})
	if errors.Is(err, pgx.ErrNoRows) {
		return chain.Result{}, Seal{}, ErrNotFound
	}
	if err != nil {
		return chain.Result{}, Seal{}, err
	}
	seal := sealOf(row)
	job := chain.Job{ID: row.ID, StoredSeed: row.ChainSeed, Terminal: seal.Terminal, FinalHash: row.FinalHash, ChunkCount: seal.ChunkCount}
	if row.ErasedAt != nil {
		// The request text is gone: the seed is recomputed from the
		// request's stored hash, which the seal and the log commit to.
		job.Seed, err = erasedSeed(row)
	} else {
		job.Seed, err = chain.SeedOf(int(row.ChainVersion), row.ID, row.Tenant, row.Engine, []byte(row.Request))
	}
	if err != nil {
		return chain.Result{}, Seal{}, err
	}
	chunks, err := s.q.ChunkChainList(ctx, tx, id)
	if err != nil {
		return chain.Result{}, Seal{}, err
	}
	rows, err := s.q.JobEventChainList(ctx, tx, id)
	if err != nil {
		return chain.Result{}, Seal{}, err
	}
	events := make([]chain.Event, len(rows))
	for i, r := range rows {
		events[i] = chain.Event{Seq: int(r.Seq), Event: r.Event, FromStatus: r.FromStatus, ToStatus: r.ToStatus,
			Attempt: r.Attempt, LeaseOwner: r.LeaseOwner, Actor: r.Actor, Reason: r.Reason, Detail: r.Detail,
			Tenant: r.Tenant, DBRole: r.DbRole, At: r.At, Hash: r.Hash}
	}
	if row.ErasedAt != nil {
		job.Erased = &chain.Erased{By: deref(row.ErasedBy), Reason: deref(row.EraseReason), At: *row.ErasedAt,
			RequestErased: row.Request == chain.ErasedText, ChunkHashes: erasedChunkHashes(events)}
	}
	v := chain.NewVerifier(job)
	for _, c := range chunks {
		v.Add(chain.Chunk{Seq: int(c.Seq), StreamType: c.StreamType, Data: []byte(c.Data), Hash: c.Hash})
	}
	res := v.Result()
	if !res.OK {
		return res, seal, nil
	}
	// The chunks hold: the job's audit trail must too.
	if reason := chain.VerifyEvents(id, events); reason != "" {
		res.OK, res.Reason = false, reason
	}
	return res, seal, nil
}

// erasedSeed is an erased job's seed, from its stored request hash.
func erasedSeed(row dbsqlc.JobChainGetRow) (chain.Hash, error) {
	switch row.ChainVersion {
	case 1:
		return chain.Seed(row.ID), nil
	case 2:
		return chain.SeedV2Of(row.ID, row.Tenant, row.Engine, row.RequestSha256), nil
	}
	return chain.Hash{}, fmt.Errorf("job %s: unknown chain version %d", row.ID, row.ChainVersion)
}

// erasedChunkHashes is the chunk hashes' SHA-256 the last erased event of
// a job's audit trail kept (jobstream_erase), nil when there is none.
func erasedChunkHashes(events []chain.Event) []byte {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Event != "erased" {
			continue
		}
		var d struct {
			ChunkHashes string `json:"chunk_hashes_sha256"`
		}
		if json.Unmarshal([]byte(events[i].Detail), &d) != nil {
			return nil
		}
		h, err := hex.DecodeString(d.ChunkHashes)
		if err != nil || len(h) != chain.Size {
			return nil
		}
		return h
	}
	return nil
}

// ChunkOrphans returns the ids (at most 1,000) of jobs that have chunks
// but no job row: a record no job accounts for.
func (s *Store) ChunkOrphans(ctx context.Context) ([]uuid.UUID, error) {
	ids, err := s.q.ChunkOrphans(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("find chunks without a job: %w", err)
	}
	return ids, nil
}

// JobFilter selects jobs for VerifyAll and Export.
type JobFilter struct {
	// Tenant, if not empty, selects one tenant's jobs.
	Tenant string
	// Since selects jobs created at or after it (zero: all).
	Since time.Time
}

// pageIDs calls fn with the ids of the jobs f selects, in id (creation)
// order, a page at a time.
func (s *Store) pageIDs(ctx context.Context, f JobFilter, fn func(uuid.UUID) error) error {
	since := f.Since
	if since.IsZero() {
		since = time.Unix(0, 0)
	}
	var after uuid.UUID
	for {
		ids, err := s.q.JobIDsPage(ctx, s.pool, dbsqlc.JobIDsPageParams{Since: since, Tenant: strPtr(f.Tenant), After: after, Max: 500})
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		for _, id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
		if len(ids) < 500 {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// VerifyAll verifies every job f selects, calling fn with each result.
func (s *Store) VerifyAll(ctx context.Context, f JobFilter, fn func(uuid.UUID, chain.Result) error) error {
	return s.pageIDs(ctx, f, func(id uuid.UUID) error {
		res, err := s.Verify(ctx, "", id)
		if errors.Is(err, ErrNotFound) {
			return nil // removed since it was listed
		}
		if err != nil {
			return err
		}
		return fn(id, res)
	})
}
