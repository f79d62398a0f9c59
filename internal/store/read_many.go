package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// ReadRequest is one reader's request in a ReadMany: what Read takes.
type ReadRequest struct {
	Tenant string
	JobID  uuid.UUID
	From   int
	Limit  int
}

// ReadResult answers one ReadRequest: a Snapshot, or ErrNotFound in Err.
type ReadResult struct {
	Snapshot Snapshot
	Err      error
}

// ReadMany serves many reads in ONE statement (ChunkReadMany in
// sql/queries/read.sql): when a notification wakes the readers of hundreds
// of jobs, they cost one query instead of one each. Each result is what
// Read would have returned for its request, and every job's status and
// chunks come from the same snapshot. A request for an unknown job (or
// another tenant's) gets ErrNotFound in its result; the returned error is
// for the statement as a whole.
func (s *Store) ReadMany(ctx context.Context, reqs []ReadRequest) ([]ReadResult, error) {
	out := make([]ReadResult, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	p := dbsqlc.ChunkReadManyParams{
		JobIds:   make([]uuid.UUID, len(reqs)),
		Tenants:  make([]string, len(reqs)),
		FromSeqs: make([]int32, len(reqs)),
		Maxes:    make([]int32, len(reqs)),
	}
	for i, r := range reqs {
		p.JobIds[i], p.Tenants[i], p.FromSeqs[i] = r.JobID, r.Tenant, int32(r.From)
		p.Maxes[i] = int32(min(r.Limit, 1<<30) + 1) // one more, to detect More
		out[i].Err = ErrNotFound
	}
	rows, err := s.q.ChunkReadMany(ctx, s.pool, p)
	if err != nil {
		return nil, fmt.Errorf("read chunks of %d jobs: %w", len(reqs), err)
	}
	for _, r := range rows {
		i := int(r.Idx) - 1
		if i < 0 || i >= len(out) {
			return nil, fmt.Errorf("read chunks: result index %d out of range", r.Idx)
		}
		res := &out[i]
		if res.Err != nil {
			res.Err = nil
			res.Snapshot.Status = r.Status
			if r.FinishReason != nil {
				res.Snapshot.FinishReason = *r.FinishReason
			}
		}
		if r.Seq < 0 || res.Snapshot.More {
			continue
		}
		if len(res.Snapshot.Chunks) == reqs[i].Limit {
			res.Snapshot.More = true
			continue
		}
		res.Snapshot.Chunks = append(res.Snapshot.Chunks, Chunk{Seq: int(r.Seq), StreamType: r.StreamType, Data: r.Data, CreatedAt: r.CreatedAt})
	}
	return out, nil
}

// NotifyCount is the number of NOTIFYs a transaction that changed jobs jobs
// sends on ChannelChunks: ids are packed into payloads under PostgreSQL's
// 8000-byte limit (notifyIDs), about 213 per NOTIFY.
func NotifyCount(jobs int) int {
	n, size := 0, 0
	for range jobs {
		if size > 0 && size+37 > maxNotifyPayload {
			size = 0
		}
		if size == 0 {
			n++
			size = 36
		} else {
			size += 37
		}
	}
	return n
}
