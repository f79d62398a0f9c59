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
package export

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

// Line types.
const (
	TypeJob   = "job"
	TypeChunk = "chunk"
	TypeEvent = "event"
)

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

// Write writes one job's record as JSON Lines.
func Write(w io.Writer, rec store.Record) error {
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
