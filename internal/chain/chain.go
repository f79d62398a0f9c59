// Package chain defines jobstream's tamper-evident record: a SHA-256 hash
// chain over each job's chunks, and its verification.
//
//	h(-1) = the job's seed:
//	        version 2: sha256(job id, 16 bytes || sha256(request text) || tenant || 0x00 || engine)
//	        version 1 (jobs stored before migration 00040): sha256(job id, 16 bytes)
//	h(n)  = sha256(h(n-1) || decimal seq || 0x00 || stream_type || 0x00 || data)
//
// The request text is jobs.request exactly as stored (a json column, which
// keeps the text the server submitted), so the seed binds the chain to what
// the job was asked, by which tenant, of which engine: a request edited
// later breaks the chain at its first link, or the seal of a job without
// chunks.
//
// data is the chunk's JSON text exactly as stored (job_chunks.data is a json
// column, which keeps its input verbatim), all text UTF-8. Text never holds
// a NUL byte, so the separators make the input unambiguous. A finished job
// records chunk_count and final_hash = h(chunk_count-1), so a truncated
// tail is detected too. The definition is the SQL function job_chunk_hash
// (migrations/00004_chain.sql) and sql/verify.sql's, so that an auditor can
// recompute it with psql alone.
package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Size is the length of a hash in bytes.
const Size = sha256.Size

// Hash is one link of a chain.
type Hash [Size]byte

// String is the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Seed is the version 1 seed: h(-1) of a job stored before migration 00040.
func Seed(jobID uuid.UUID) Hash { return sha256.Sum256(jobID[:]) }

// SeedV2 is the version 2 seed, which every job submitted since migration
// 00040 has (the database computes it when the job is inserted, in
// job_chain_seed_v2). request is the request's stored text.
func SeedV2(jobID uuid.UUID, tenant, engine string, request []byte) Hash {
	rh := sha256.Sum256(request)
	d := sha256.New()
	d.Write(jobID[:])
	d.Write(rh[:])
	d.Write([]byte(tenant))
	d.Write([]byte{0})
	d.Write([]byte(engine))
	var h Hash
	d.Sum(h[:0])
	return h
}

// SeedOf is the seed of a job of the given chain version, or an error for a
// version this build does not know.
func SeedOf(version int, jobID uuid.UUID, tenant, engine string, request []byte) (Hash, error) {
	switch version {
	case 1:
		return Seed(jobID), nil
	case 2:
		return SeedV2(jobID, tenant, engine, request), nil
	}
	return Hash{}, fmt.Errorf("job %s: unknown chain version %d", jobID, version)
}

// Next is h(seq), the hash of a chunk whose predecessor's hash is prev.
// data must be the exact text that is stored.
func Next(prev Hash, seq int, streamType string, data []byte) Hash {
	d := sha256.New()
	d.Write(prev[:])
	var num [20]byte
	d.Write(strconv.AppendInt(num[:0], int64(seq), 10))
	d.Write([]byte{0})
	d.Write([]byte(streamType))
	d.Write([]byte{0})
	d.Write(data)
	var h Hash
	d.Sum(h[:0])
	return h
}

// Event is one row of a job's audit trail (job_events) as its hash covers
// it: every field as text (NULL as ""), At in UTC.
type Event struct {
	Seq                                  int
	Event, FromStatus, ToStatus, Attempt string
	LeaseOwner, Actor, Reason, Detail    string
	Tenant, DBRole                       string
	At                                   time.Time
}

// EventSeed is what a job's first event continues from:
// sha256(job id, 16 bytes || "events").
func EventSeed(jobID uuid.UUID) Hash {
	return sha256.Sum256(append(jobID[:], "events"...))
}

// NextEvent is the hash of event e after prev, as the trigger
// job_events_stamp stores it (job_event_hash, migrations/00040): prev, then
// the fields in order, joined by 0x00, At as 2006-01-02T15:04:05.000000Z.
func NextEvent(prev Hash, e Event) Hash {
	d := sha256.New()
	d.Write(prev[:])
	var num [20]byte
	d.Write(strconv.AppendInt(num[:0], int64(e.Seq), 10))
	for _, f := range []string{e.Event, e.FromStatus, e.ToStatus, e.Attempt, e.LeaseOwner, e.Actor,
		e.Reason, e.Detail, e.Tenant, e.DBRole, e.At.UTC().Format("2006-01-02T15:04:05.000000Z")} {
		d.Write([]byte{0})
		d.Write([]byte(f))
	}
	var h Hash
	d.Sum(h[:0])
	return h
}

// Job is what verification needs from a job row.
type Job struct {
	ID uuid.UUID
	// Seed is the seed recomputed from the job's id, tenant, engine and
	// request (SeedOf), never the one stored with it.
	Seed Hash
	// StoredSeed is jobs.chain_seed, the seed the database computed at
	// submission, which the writer chained from. Nil skips the comparison.
	StoredSeed []byte
	Terminal   bool
	// ChunkCount and FinalHash are recorded when the job ends; nil before.
	ChunkCount *int
	FinalHash  []byte
}

// Chunk is one stored chunk, as read back.
type Chunk struct {
	Seq        int
	StreamType string
	Data       []byte
	Hash       []byte
}

// Result is the outcome of verifying one job. The JSON form is the API's
// (GET /v1/jobs/{id}/verify) and sql/verify.sql's columns.
type Result struct {
	OK bool `json:"ok"`
	// Chunks is the number of chunks stored.
	Chunks int `json:"chunks"`
	// FirstBadSeq is the first seq where the chain breaks: an edited,
	// inserted or reordered chunk, the first missing one, or where a
	// truncated tail begins. Nil when the chain is intact or only the
	// final hash is wrong.
	FirstBadSeq *int   `json:"first_bad_seq"`
	Reason      string `json:"reason"`
}

// Reasons, shared word for word with sql/verify.sql.
const (
	ReasonIntact        = "intact"
	ReasonIntactRunning = "intact up to the last committed chunk (the job has not finished)"
	ReasonNoFinalHash   = "the job ended without a recorded final hash"
	ReasonFinalHash     = "the final hash does not match the chain"
	ReasonSeed          = "the job's request, tenant or engine changed after it was submitted (its chain seed does not match)"
)

func reasonMissing(seq int) string  { return fmt.Sprintf("chunk %d is missing", seq) }
func reasonMismatch(seq int) string { return fmt.Sprintf("chunk %d does not match its hash", seq) }
func reasonTruncated(n, count int) string {
	return fmt.Sprintf("truncated: %d of the job's %d chunks are stored", n, count)
}
func reasonExtra(n, count int) string {
	return fmt.Sprintf("%d chunks stored, but the job ended with %d", n, count)
}

// Verifier checks one job's chunks, fed in seq order, without holding
// them: Add each chunk, then read Result.
type Verifier struct {
	job    Job
	tip    Hash
	n      int
	broken bool
	res    Result
}

// NewVerifier starts verifying job.
func NewVerifier(job Job) *Verifier {
	v := &Verifier{job: job, tip: job.Seed}
	if job.StoredSeed != nil && !bytes.Equal(job.StoredSeed, job.Seed[:]) {
		v.broken = true
		v.res.Reason = ReasonSeed
	}
	return v
}

// Add checks the next stored chunk (chunks must come in seq order).
func (v *Verifier) Add(c Chunk) {
	defer func() { v.n++ }()
	if v.broken {
		return
	}
	if c.Seq != v.n {
		v.fail(v.n, reasonMissing(v.n))
		return
	}
	v.tip = Next(v.tip, c.Seq, c.StreamType, c.Data)
	if !bytes.Equal(c.Hash, v.tip[:]) {
		v.fail(c.Seq, reasonMismatch(c.Seq))
	}
}

func (v *Verifier) fail(seq int, reason string) {
	v.broken = true
	v.res.FirstBadSeq = &seq
	v.res.Reason = reason
}

// Result is the verdict on the chunks added so far.
func (v *Verifier) Result() Result {
	r := v.res
	r.Chunks = v.n
	if v.broken {
		return r
	}
	switch {
	case !v.job.Terminal:
		r.OK, r.Reason = true, ReasonIntactRunning
	case v.job.ChunkCount == nil || v.job.FinalHash == nil:
		r.Reason = ReasonNoFinalHash
	case v.n < *v.job.ChunkCount:
		seq := v.n
		r.FirstBadSeq, r.Reason = &seq, reasonTruncated(v.n, *v.job.ChunkCount)
	case v.n > *v.job.ChunkCount:
		seq := *v.job.ChunkCount
		r.FirstBadSeq, r.Reason = &seq, reasonExtra(v.n, *v.job.ChunkCount)
	case !bytes.Equal(v.job.FinalHash, v.tip[:]):
		r.Reason = ReasonFinalHash
	default:
		r.OK, r.Reason = true, ReasonIntact
	}
	return r
}

// Verify checks a job's chunks, given in seq order.
func Verify(job Job, chunks []Chunk) Result {
	v := NewVerifier(job)
	for _, c := range chunks {
		v.Add(c)
	}
	return v.Result()
}
