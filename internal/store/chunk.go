package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Chunk is one stored chunk.
type Chunk struct {
	Seq        int             `json:"seq"`
	StreamType string          `json:"stream_type"`
	Data       json.RawMessage `json:"data"`
	CreatedAt  time.Time       `json:"created_at"`
}

// Stored is the chunk as stored, and so as a read returns it, when it is
// committed at at (the transaction's timestamp).
func (c NewChunk) Stored(at time.Time) Chunk {
	return Chunk{Seq: c.Seq, StreamType: c.StreamType, Data: pgJSON(c.Data), CreatedAt: at}
}

// Snapshot is a job's status and chunks read in one statement.
type Snapshot struct {
	Status       string
	FinishReason string
	Chunks       []Chunk
	// More is true when the read was cut by its limit.
	More bool
}

// Terminal reports whether the job had finished in this snapshot. With More
// false, Chunks then holds everything up to the end of the job.
func (s Snapshot) Terminal() bool { return Terminal(s.Status) }

// Read returns the job's status together with up to limit chunks whose seq
// >= from, from one snapshot (see ChunkRead in sql/queries/chunks.sql).
func (s *Store) Read(ctx context.Context, tenant string, id uuid.UUID, from, limit int) (Snapshot, error) {
	rows, err := s.q.ChunkRead(ctx, s.pool, dbsqlc.ChunkReadParams{
		JobID: id, Tenant: tenant, FromSeq: int32(from), Max: int64(limit) + 1,
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("read job %s chunks: %w", id, err)
	}
	if len(rows) == 0 {
		return Snapshot{}, ErrNotFound
	}
	s.NoteAccess(ctx, tenant, id, AccessChunks)
	return snapshotOf(rows, limit), nil
}

// Transcript is a job's assembled output (internal/engine/README.md, "The chunk format"),
// computed by the SQL function job_transcript.
type Transcript struct {
	Content   string          `json:"content"`
	Thinking  string          `json:"thinking"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// TranscriptAll is the upto of a whole job's Transcript.
const TranscriptAll = -1

// Transcript assembles a job's output from chunks with seq < upto: none
// for upto 0, all of them for TranscriptAll (any upto < 0).
func (s *Store) Transcript(ctx context.Context, tenant string, id uuid.UUID, upto int) (Transcript, error) {
	if upto < 0 {
		upto = 1<<31 - 1
	}
	row, err := s.q.JobTranscript(ctx, s.pool, dbsqlc.JobTranscriptParams{JobID: id, Tenant: tenant, Upto: int32(upto)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Transcript{}, ErrNotFound
	}
	if err != nil {
		return Transcript{}, fmt.Errorf("transcript of job %s: %w", id, err)
	}
	t := Transcript{ToolCalls: row.ToolCalls}
	if row.Content != nil {
		t.Content = *row.Content
	}
	if row.Thinking != nil {
		t.Thinking = *row.Thinking
	}
	s.NoteAccess(ctx, tenant, id, AccessTranscript)
	return t, nil
}

// Lease identifies one claim of a job: writes are fenced on it.
type Lease struct {
	JobID   uuid.UUID
	Attempt int
}

// NewChunk is a chunk to append under a lease.
type NewChunk struct {
	Lease
	Seq        int
	StreamType string
	Data       json.RawMessage
	// Hash is the chunk's chain hash (ChainHash), which the worker keeps
	// in memory from one chunk to the next. When nil, WriteBatch computes
	// it from the previous chunk: in the same batch, or as stored (one
	// extra lookup in the batch's transaction).
	Hash []byte
}

// ChainHash is c's chain hash when the previous chunk's is prev: over
// c.Data exactly as it is stored (see pgJSON).
func (c NewChunk) ChainHash(prev chain.Hash) chain.Hash {
	return chain.Next(prev, c.Seq, c.StreamType, pgJSON(c.Data))
}

// Finish moves a job to a terminal status. Its last chunk (the one with
// finish_reason) is passed in the same WriteBatch as the Finish, so both
// commit together.
type Finish struct {
	Lease
	Status       string // completed | failed | cancelled
	FinishReason string // normalised
	Error        json.RawMessage
	Usage        json.RawMessage
}

// WriteBatch commits many jobs' chunks and terminal updates in ONE
// transaction with at most a few NOTIFYs (one per ~200 job ids), so commits
// per second do not grow with the number of streams. Every write is fenced
// on its lease: the returned map holds the leases that were held; rows and
// finishes of other jobs were dropped (their worker lost the lease).
//
// It gives up after the Store's HotOperationTimeout (the writer retries).
// The batch is idempotent: retrying it after an ambiguous commit error
// writes nothing twice (the plain insert meets a unique violation, and the
// transaction runs again skipping the rows stored).
func (s *Store) WriteBatch(ctx context.Context, owner string, chunks []NewChunk, finishes []Finish) (held map[Lease]bool, err error) {
	held, _, err = s.WriteBatchAt(ctx, owner, chunks, finishes)
	return held, err
}

// WriteBatchAt is WriteBatch that also returns the created_at of the rows
// it stored: the transaction's timestamp. It is zero when some rows were
// stored by an earlier, ambiguous commit (and so carry its timestamp).
//
// The retry of a finishing batch whose commit landed finds the job no
// longer running, so the fence does not hold it; the lease is reported
// held all the same, because the finish is stored (FinishStored): the job
// completed under it, and was not lost.
func (s *Store) WriteBatchAt(ctx context.Context, owner string, chunks []NewChunk, finishes []Finish) (held map[Lease]bool, at time.Time, err error) {
	leases := map[Lease]bool{}
	for _, c := range chunks {
		leases[c.Lease] = false
	}
	for _, f := range finishes {
		leases[f.Lease] = false
	}
	if len(leases) == 0 {
		return leases, time.Time{}, nil
	}
	ctx, cancel := s.hot(ctx)
	defer cancel()
	ids, attempts := lockOrder(slices.Collect(maps.Keys(leases)))
	at, replayed, err := s.writeBatch(ctx, owner, chunks, finishes, leases, ids, attempts, false)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation {
		// Some rows are stored already: this is the retry of a commit
		// that landed although the caller saw an error. Run it again
		// skipping them.
		_, _, err = s.writeBatch(ctx, owner, chunks, finishes, leases, ids, attempts, true)
		replayed = true
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("write batch: %w", err)
	}
	if replayed {
		at = time.Time{}
	}
	return leases, at, nil
}

// codeUniqueViolation is PostgreSQL's unique_violation SQLSTATE.
const codeUniqueViolation = "23505"

// writeBatch is WriteBatch's transaction; it sets leases[l] for every lease
// the fence found held, or whose finish in the batch is stored already
// (replayed: some rows carry an earlier commit's timestamp). idempotent
// skips chunks already stored.
func (s *Store) writeBatch(ctx context.Context, owner string, chunks []NewChunk, finishes []Finish, leases map[Lease]bool, ids []uuid.UUID, attempts []int32, idempotent bool) (at time.Time, replayed bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		replayed = false
		fence, err := s.q.JobLeaseHeld(ctx, tx, dbsqlc.JobLeaseHeldParams{Ids: ids, Attempts: attempts, Owner: owner})
		if err != nil {
			return fmt.Errorf("fence: %w", err)
		}
		owned := make([]uuid.UUID, len(fence))
		ownedSet := make(map[uuid.UUID]bool, len(fence))
		for i, r := range fence {
			owned[i] = r.ID
			ownedSet[r.ID] = true
			at = r.At
		}
		// JobLeaseHeld names jobs, not leases. A job row has one attempt,
		// so when a batch carries two attempts of one job (this process
		// lost attempt n, then claimed the job again as n+1 before its
		// buffer drained), only the newest can be the one that matched:
		// the stale attempt's rows must not be written.
		newest := make(map[uuid.UUID]int, len(leases))
		for l := range leases {
			newest[l.JobID] = max(newest[l.JobID], l.Attempt)
		}
		for l := range leases {
			leases[l] = ownedSet[l.JobID] && l.Attempt == newest[l.JobID]
		}
		// A finish whose lease the fence did not find may be stored
		// already, by an earlier commit of this batch whose outcome the
		// writer did not learn. Its lease was not lost: the job finished
		// under it. Its rows are written again like any other's, which
		// meets the stored ones (the idempotent rerun skips them).
		done, err := s.finishesStored(ctx, tx, chunks, finishes, leases)
		if err != nil {
			return err
		}
		for _, l := range done {
			leases[l], replayed = true, true
		}
		hashes, err := s.chainHashes(ctx, tx, chunks, leases)
		if err != nil {
			return err
		}
		var ins dbsqlc.ChunkInsertManyParams
		for i, c := range chunks {
			if !leases[c.Lease] {
				continue
			}
			ins.JobIds = append(ins.JobIds, c.JobID)
			ins.Seqs = append(ins.Seqs, int32(c.Seq))
			ins.StreamTypes = append(ins.StreamTypes, c.StreamType)
			ins.Datas = append(ins.Datas, string(pgJSON(c.Data)))
			ins.Hashes = append(ins.Hashes, hashes[i])
		}
		// The rest of the transaction in one round trip: insert,
		// finishes and NOTIFYs queued on one batch (then COMMIT).
		var b pgx.Batch
		var what []string
		if len(ins.JobIds) > 0 {
			dbsqlc.QueueChunkInsertMany(&b, ins, idempotent)
			what = append(what, "insert chunks")
		}
		fin := dbsqlc.JobFinishManyParams{Owner: owner}
		for _, f := range finishes {
			if !leases[f.Lease] {
				continue
			}
			fin.Ids = append(fin.Ids, f.JobID)
			fin.Attempts = append(fin.Attempts, int32(f.Attempt))
			fin.Statuses = append(fin.Statuses, f.Status)
			fin.FinishReasons = append(fin.FinishReasons, f.FinishReason)
			fin.Errors = append(fin.Errors, jsonOrNull(f.Error))
			fin.Usages = append(fin.Usages, jsonOrNull(f.Usage))
		}
		if len(fin.Ids) > 0 {
			dbsqlc.QueueJobFinishMany(&b, fin)
			what = append(what, "finish jobs")
		}
		if payloads := notifyPayloads(owned); len(payloads) > 0 {
			dbsqlc.QueueNotifyMany(&b, dbsqlc.NotifyManyParams{Channel: ChannelChunks, Payloads: payloads})
			what = append(what, "notify")
		}
		if len(what) == 0 {
			return nil
		}
		br := tx.SendBatch(ctx, &b)
		for _, w := range what {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("%s: %w", w, err)
			}
		}
		return br.Close()
	})
	return at, replayed, err
}

// finishesStored returns the leases of finishes that the fence did not
// find held and whose finish is stored already (FinishStored): the job is
// at the lease's attempt, in the finish's status, and the finish's last
// chunk (its lease's highest seq in the batch) exists. It costs a
// statement only when a finish's lease was not held.
func (s *Store) finishesStored(ctx context.Context, tx pgx.Tx, chunks []NewChunk, finishes []Finish, leases map[Lease]bool) ([]Lease, error) {
	var p dbsqlc.FinishStoredParams
	for _, f := range finishes {
		if leases[f.Lease] {
			continue
		}
		last := -1
		for _, c := range chunks {
			if c.Lease == f.Lease {
				last = max(last, c.Seq)
			}
		}
		if last < 0 {
			continue
		}
		p.Ids = append(p.Ids, f.JobID)
		p.Attempts = append(p.Attempts, int32(f.Attempt))
		p.Statuses = append(p.Statuses, f.Status)
		p.LastSeqs = append(p.LastSeqs, int32(last))
	}
	if len(p.Ids) == 0 {
		return nil, nil
	}
	rows, err := s.q.FinishStored(ctx, tx, p)
	if err != nil {
		return nil, fmt.Errorf("stored finishes: %w", err)
	}
	out := make([]Lease, len(rows))
	for i, r := range rows {
		out[i] = Lease{JobID: r.ID, Attempt: int(r.Attempt)}
	}
	return out, nil
}

// chainHashes returns the chain hash of every chunk of a held lease: its
// Hash when the caller computed it, else chained from the chunk before it
// in the batch, or the stored previous chunk's hash or, for seq 0, the
// job's stored seed (read under the batch's fence, so no other writer
// interleaves).
func (s *Store) chainHashes(ctx context.Context, tx pgx.Tx, chunks []NewChunk, leases map[Lease]bool) ([][]byte, error) {
	type tip struct {
		seq  int
		hash chain.Hash
	}
	tips := map[Lease]tip{}
	var need dbsqlc.ChunkHashesParams
	for _, c := range chunks {
		if !leases[c.Lease] {
			continue
		}
		// The predecessor of seq 0 is the job's seed (seq -1).
		if t, ok := tips[c.Lease]; c.Hash == nil && (!ok || t.seq != c.Seq-1) {
			need.JobIds = append(need.JobIds, c.JobID)
			need.Seqs = append(need.Seqs, int32(c.Seq-1))
		}
		tips[c.Lease] = tip{seq: c.Seq}
	}
	stored := map[Lease]tip{}
	if len(need.JobIds) > 0 {
		rows, err := s.q.ChunkHashes(ctx, tx, need)
		if err != nil {
			return nil, fmt.Errorf("read chain tips: %w", err)
		}
		attempt := map[uuid.UUID]int{}
		for l := range leases {
			if leases[l] {
				attempt[l.JobID] = l.Attempt
			}
		}
		for _, r := range rows {
			var h chain.Hash
			copy(h[:], r.Hash)
			stored[Lease{JobID: r.JobID, Attempt: attempt[r.JobID]}] = tip{seq: int(r.Seq), hash: h}
		}
	}
	clear(tips)
	out := make([][]byte, len(chunks))
	for i, c := range chunks {
		if !leases[c.Lease] {
			continue
		}
		var h chain.Hash
		switch t, ok := tips[c.Lease]; {
		case c.Hash != nil:
			copy(h[:], c.Hash)
			out[i] = c.Hash
			tips[c.Lease] = tip{seq: c.Seq, hash: h}
			continue
		case ok && t.seq == c.Seq-1:
			h = c.ChainHash(t.hash)
		default:
			t, ok := stored[c.Lease]
			if !ok || t.seq != c.Seq-1 {
				return nil, fmt.Errorf("chain job %s: chunk %d has no stored predecessor", c.JobID, c.Seq)
			}
			h = c.ChainHash(t.hash)
		}
		out[i] = h[:]
		tips[c.Lease] = tip{seq: c.Seq, hash: h}
	}
	return out, nil
}

// jsonOrNull is b for a jsonb parameter (see pgJSON), or null when empty.
func jsonOrNull(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	return string(pgJSON(b))
}
