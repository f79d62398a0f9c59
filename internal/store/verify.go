package store

import (
	"context"
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
	var res chain.Result
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		res, err = s.verify(ctx, tx, tenant, id)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return chain.Result{}, ErrNotFound
	}
	if err != nil {
		return chain.Result{}, fmt.Errorf("verify job %s: %w", id, err)
	}
	if tenant != "" {
		s.NoteAccess(ctx, tenant, id, AccessVerify)
	}
	return res, nil
}

func (s *Store) verify(ctx context.Context, tx pgx.Tx, tenant string, id uuid.UUID) (chain.Result, error) {
	row, err := s.q.JobChainGet(ctx, tx, dbsqlc.JobChainGetParams{ID: id, Tenant: strPtr(tenant)})
	if errors.Is(err, pgx.ErrNoRows) {
		return chain.Result{}, ErrNotFound
	}
	if err != nil {
		return chain.Result{}, err
	}
	seed, err := chain.SeedOf(int(row.ChainVersion), row.ID, row.Tenant, row.Engine, []byte(row.Request))
	if err != nil {
		return chain.Result{}, err
	}
	job := chain.Job{ID: row.ID, Seed: seed, StoredSeed: row.ChainSeed, Terminal: Terminal(row.Status), FinalHash: row.FinalHash}
	if row.ChunkCount != nil {
		n := int(*row.ChunkCount)
		job.ChunkCount = &n
	}
	chunks, err := s.q.ChunkChainList(ctx, tx, id)
	if err != nil {
		return chain.Result{}, err
	}
	v := chain.NewVerifier(job)
	for _, c := range chunks {
		v.Add(chain.Chunk{Seq: int(c.Seq), StreamType: c.StreamType, Data: []byte(c.Data), Hash: c.Hash})
	}
	return v.Result(), nil
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
