// Package export writes jobs' stored records as JSON Lines for discovery
// and offline audit: per job, one "job" line, then its "chunk" lines in seq
// order, then its "event" lines. A chunk line carries the chunk's data as a
// string holding its stored text byte for byte, and its chain hash, so that
// anyone can recompute the chain (internal/chain) from the export alone:
//
//	h = the seed: for chain_version 2, sha256(uuid bytes of the job id ||
//	    request_sha256 bytes || tenant || "\0" || engine); for version 1,
//	    sha256(uuid bytes of the job id)
//	for each chunk: h = sha256(h + str(seq) + "\0" + stream_type + "\0" + data)
//	                and h == the chunk's hash
//	at the end, for a finished job: number of chunks == chunk_count, h == final_hash,
//	and the last chunk is a finish chunk (chain.IsFinish)
//
// Check does exactly that (jobstream verify --export), as the Python checker
// in this package's README.md does without jobstream.
//
// An export of a database with a transparency log (internal/ledger) also
// starts with a "checkpoint" line, the latest signed checkpoint, and each
// logged job's line carries its leaf and its inclusion proof against that
// checkpoint, which CheckWith checks given the log's verifier key.
package export

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
)

// Line types.
const (
	TypeJob   = "job"
	TypeChunk = "chunk"
	TypeEvent = "event"
	// TypeCheckpoint is the export's first line when the log has a signed
	// checkpoint: the note that every job line's inclusion proof is
	// against.
	TypeCheckpoint = "checkpoint"
)

// CheckpointLine is the latest signed checkpoint when the export began:
// the C2SP tlog-checkpoint note exactly as signed.
type CheckpointLine struct {
	Type string `json:"type"`
	Note string `json:"note"`
}

// Proof is a job's place in the transparency log: its index, its job leaf
// and, when the export's checkpoint covers the leaf, the leaf's inclusion
// proof against that checkpoint's tree (nil when it does not).
type Proof struct {
	Index  int64
	Leaf   []byte
	Hashes [][]byte
}

// Prover finds jobs' proofs against the checkpoint that was the latest
// when it was made. The log is append-only, so proofs against that tree
// stay valid while the export runs; a job logged since is not covered.
type Prover struct {
	st *store.Store
	// Checkpoint is the latest signed checkpoint; nil when the log has
	// none (nothing to prove against).
	Checkpoint *store.LogCheckpoint
}

// NewProver reads the latest checkpoint.
func NewProver(ctx context.Context, st *store.Store) (*Prover, error) {
	cp, err := st.LogLatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	return &Prover{st: st, Checkpoint: cp}, nil
}

// Prove is a job's proof, nil when the job has no leaf yet. A leaf the
// checkpoint does not cover has no inclusion proof.
func (p *Prover) Prove(ctx context.Context, id uuid.UUID) (*Proof, error) {
	l, err := p.st.LogJobLeaf(ctx, "", id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &Proof{Index: l.Index, Leaf: l.Leaf}
	if p.Checkpoint == nil || l.Index >= p.Checkpoint.TreeSize {
		return out, nil
	}
	hs, err := ledger.Inclusion(ctx, p.st, l.Index, p.Checkpoint.TreeSize)
	if err != nil {
		return nil, err
	}
	out.Hashes = make([][]byte, len(hs))
	for i := range hs {
		out.Hashes[i] = hs[i][:]
	}
	return out, nil
}

// JobLine is a job's first line.
type JobLine struct {
	Type         string          `json:"type"`
	ID           uuid.UUID       `json:"id"`
	Tenant       string          `json:"tenant"`
	APIKeyID     *uuid.UUID      `json:"api_key_id"`
	Engine       string          `json:"engine"`
	RoomID       string          `json:"room_id,omitempty"`
	Request      store.Request   `json:"request"`
	Status       string          `json:"status"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Error        json.RawMessage `json:"error,omitempty"`
	Usage        json.RawMessage `json:"usage,omitempty"`
	Attempt      int             `json:"attempt"`
	CreatedAt    time.Time       `json:"created_at"`
	StartedAt    *time.Time      `json:"started_at"`
	FinishedAt   *time.Time      `json:"finished_at"`
	// ChunkCount and FinalHash (hex) seal the chain of a finished job;
	// null while it runs.
	ChunkCount *int    `json:"chunk_count"`
	FinalHash  *string `json:"final_hash"`
	// ChainVersion and RequestSHA256 (hex, of the request's stored text)
	// give the chain's seed.
	ChainVersion  int    `json:"chain_version"`
	RequestSHA256 string `json:"request_sha256"`
	// Erased is present when the job's content was erased (jobstream
	// erase): its request and chunks' data are gone, and its chunks are
	// checked against their hashes, whose SHA-256 the erasure kept.
	Erased *ErasedLine `json:"erased,omitempty"`
	// LogIndex, Leaf (base64) and InclusionProof (base64 hashes) are the
	// job's job leaf in the transparency log and its proof against the
	// export's checkpoint line; absent when the job has no leaf yet, and
	// the proof absent when the checkpoint does not cover the leaf.
	LogIndex       *int64    `json:"log_index,omitempty"`
	Leaf           []byte    `json:"leaf,omitempty"`
	InclusionProof *[][]byte `json:"inclusion_proof,omitempty"`
}

// ErasedLine is a job line's erasure: who, when, why, and the SHA-256 of
// the job's chunk hashes (32 bytes each, in seq order) when it was erased,
// in hex, from the job's erased event.
type ErasedLine struct {
	By                string    `json:"by"`
	At                time.Time `json:"at"`
	Reason            string    `json:"reason"`
	ChunkHashesSHA256 string    `json:"chunk_hashes_sha256"`
}

// ChunkLine is one chunk.
type ChunkLine struct {
	Type       string    `json:"type"`
	JobID      uuid.UUID `json:"job_id"`
	Seq        int       `json:"seq"`
	StreamType string    `json:"stream_type"`
	// Data is the chunk's JSON document as a string: exactly the stored
	// text, which the hash covers.
	Data      string    `json:"data"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

// EventLine is one audit event.
type EventLine struct {
	Type       string          `json:"type"`
	JobID      uuid.UUID       `json:"job_id"`
	ID         int64           `json:"id"`
	Event      string          `json:"event"`
	Actor      string          `json:"actor"`
	FromStatus *string         `json:"from_status"`
	ToStatus   *string         `json:"to_status"`
	Attempt    *int            `json:"attempt"`
	LeaseOwner *string         `json:"lease_owner"`
	Reason     *string         `json:"reason"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	DBRole     string          `json:"db_role"`
	At         time.Time       `json:"at"`
}

// keptHashes is detail.chunk_hashes_sha256 of the last erased event, ""
// when there is none (which no checker accepts).
func keptHashes(events []store.Event) string {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Event != "erased" {
			continue
		}
		var d struct {
			H string `json:"chunk_hashes_sha256"`
		}
		_ = json.Unmarshal(events[i].Detail, &d)
		return d.H
	}
	return ""
}

// WriteCheckpoint writes the checkpoint line; it goes first.
func WriteCheckpoint(w io.Writer, note string) error {
	if err := json.NewEncoder(w).Encode(CheckpointLine{Type: TypeCheckpoint, Note: note}); err != nil {
		return fmt.Errorf("export checkpoint: %w", err)
	}
	return nil
}

// Write writes one job's record as JSON Lines, without its log proof.
func Write(w io.Writer, rec store.Record) error {
	return WriteProof(w, rec, nil)
}

// WriteProof writes one job's record as JSON Lines, its job line carrying
// p (nil: the job has no leaf).
func WriteProof(w io.Writer, rec store.Record, p *Proof) error {
	enc := json.NewEncoder(w)
	j := rec.Job
	jl := JobLine{
		Type: TypeJob, ID: j.ID, Tenant: j.Tenant, APIKeyID: j.APIKeyID, Engine: j.Engine, RoomID: j.RoomID,
		Request: j.Request, Status: j.Status, FinishReason: j.FinishReason, Error: j.Error, Usage: j.Usage,
		Attempt: j.Attempt, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		ChunkCount: j.ChunkCount, ChainVersion: j.ChainVersion, RequestSHA256: hex.EncodeToString(j.RequestSHA256),
	}
	if j.FinalHash != nil {
		h := hex.EncodeToString(j.FinalHash)
		jl.FinalHash = &h
	}
	if j.Erased != nil {
		jl.Erased = &ErasedLine{By: j.Erased.By, At: j.Erased.At, Reason: j.Erased.Reason, ChunkHashesSHA256: keptHashes(rec.Events)}
	}
	if p != nil {
		idx := p.Index
		jl.LogIndex, jl.Leaf = &idx, p.Leaf
		if p.Hashes != nil {
			jl.InclusionProof = &p.Hashes
		}
	}
	if err := enc.Encode(jl); err != nil {
		return fmt.Errorf("export job %s: %w", j.ID, err)
	}
	for _, c := range rec.Chunks {
		err := enc.Encode(ChunkLine{
			Type: TypeChunk, JobID: j.ID, Seq: c.Seq, StreamType: c.StreamType, Data: c.Text,
			Hash: hex.EncodeToString(c.Hash), CreatedAt: c.CreatedAt,
		})
		if err != nil {
			return fmt.Errorf("export job %s: %w", j.ID, err)
		}
	}
	for _, e := range rec.Events {
		err := enc.Encode(EventLine{
			Type: TypeEvent, JobID: j.ID, ID: e.ID, Event: e.Event, Actor: e.Actor, FromStatus: e.FromStatus,
			ToStatus: e.ToStatus, Attempt: e.Attempt, LeaseOwner: e.LeaseOwner, Reason: e.Reason,
			Detail: e.Detail, DBRole: e.DBRole, At: e.At,
		})
		if err != nil {
			return fmt.Errorf("export job %s: %w", j.ID, err)
		}
	}
	return nil
}
