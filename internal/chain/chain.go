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
// tail is detected too.
//
// A finished job must also end with its finish chunk (IsFinish): every path
// that gives a job a terminal status appends one in the same transaction
// (see Verifier.Result), so a job whose tail was cut off and then re-sealed
// (chunk_count and final_hash rewritten for the shorter chain, which anyone
// who can write the database can do) is still caught. The definition is the SQL function job_chunk_hash
// (migrations/00004_chain.sql) and sql/verify.sql's, so that an auditor can
// recompute it with psql alone.
package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
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
	return SeedV2Of(jobID, tenant, engine, rh[:])
}

// SeedV2Of is SeedV2 given the request text's SHA-256 rather than the text
// (an export carries the hash, jobs.request_sha256).
func SeedV2Of(jobID uuid.UUID, tenant, engine string, requestSHA256 []byte) Hash {
	d := sha256.New()
	d.Write(jobID[:])
	d.Write(requestSHA256)
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
	// Hash is the stored hash (NextEvent ignores it).
	Hash []byte
}

// VerifyEvents checks a job's audit trail, given in seq order: seq 0, 1,
// ... with no gap, each stored hash the chain recomputed from EventSeed.
// It returns "" when intact, else the reason, word for word
// sql/verify.sql's. (A trail's tail has no seal: events keep coming after
// a job ends, holds and retention's among them; signed checkpoints commit
// to its tip.)
func VerifyEvents(jobID uuid.UUID, events []Event) string {
	h := EventSeed(jobID)
	for i, e := range events {
		if e.Seq != i {
			return fmt.Sprintf("the audit trail is broken: event %d is missing", i)
		}
		h = NextEvent(h, e)
		if !bytes.Equal(e.Hash, h[:]) {
			return fmt.Sprintf("the audit trail is broken: event %d does not match its hash", i)
		}
	}
	return ""
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
	// Erased is set when the job's content was erased (jobstream erase).
	// Its Seed must then be SeedV2Of the stored request_sha256 (the text
	// is gone), and its chunks are checked against their stored hashes
	// alone: gap-free, each erased, the count and the last hash the seal,
	// and the hashes the ones its erased event kept.
	Erased *Erased
}

// ErasedText is what an erased job's request and chunks' data hold.
const ErasedText = `{"erased":true}`

// Erased is a job's erasure, as its row and its audit trail record it.
type Erased struct {
	By, Reason string
	At         time.Time
	// RequestErased reports whether the row's request is ErasedText.
	RequestErased bool
	// ChunkHashes is the SHA-256 of the chunks' stored hashes concatenated
	// in seq order when the job was erased (the erased event's
	// detail.chunk_hashes_sha256); nil when the audit trail has no erased
	// event.
	ChunkHashes []byte
}

// ReasonErased is an erased job's verdict: ok, and by whom, when, why.
func ReasonErased(by string, at time.Time, reason string) string {
	return fmt.Sprintf("erased by %s at %s: %s", by, at.UTC().Format("2006-01-02T15:04:05.000000Z"), reason)
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
	// inserted or reordered chunk, the first missing one, where a
	// truncated tail begins, or where a finished job's missing finish
	// chunk belongs. Nil when the chain is intact or only the final hash
	// (or its absence) is wrong.
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
	// ReasonOrphan is verify --all's for chunks whose job row is gone.
	ReasonOrphan = "chunks stored for a job that does not exist"
	// An erased job's (Job.Erased) failures.
	ReasonErasedRequest = "the job is marked erased, but its request still holds data"
	ReasonErasedNoEvent = "the job is marked erased, but its audit trail records no erasure"
	ReasonErasedHashes  = "the chunk hashes are not the ones kept when the job was erased"
)

func reasonNotErased(seq int) string {
	return fmt.Sprintf("the job is marked erased, but chunk %d still holds data", seq)
}

func reasonMissing(seq int) string  { return fmt.Sprintf("chunk %d is missing", seq) }
func reasonMismatch(seq int) string { return fmt.Sprintf("chunk %d does not match its hash", seq) }
func reasonTruncated(n, count int) string {
	return fmt.Sprintf("truncated: %d of the job's %d chunks are stored", n, count)
}
func reasonExtra(n, count int) string {
	return fmt.Sprintf("%d chunks stored, but the job ended with %d", n, count)
}

// ReasonNoChunks is the reason of a finished job with no chunk at all: it
// lacks its finish chunk.
const ReasonNoChunks = "the job ended without a finish chunk: no chunk is stored"

func reasonNoFinish(n int) string {
	if n == 0 {
		return ReasonNoChunks
	}
	return fmt.Sprintf("the job ended without a finish chunk: chunk %d, the last stored, has no finish_reason", n-1)
}

// IsFinish reports whether data, a chunk's JSON text, is a finish chunk's:
// a JSON object with a member "finish_reason" whose value is a string (see
// "The chunk format" in internal/engine/README.md). A repeated member counts by its last
// occurrence, as PostgreSQL's json -> operator and Python's json module
// read it; names match exactly (encoding/json's struct decoding would
// also match "Finish_Reason", which sql/verify.sql does not).
func IsFinish(data []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return false
	}
	v, ok := obj["finish_reason"]
	return ok && len(v) > 0 && v[0] == '"'
}

// Verifier checks one job's chunks, fed in seq order, without holding
// them: Add each chunk, then read Result.
//
// It checks the chain link by link: chunk n's stored hash must be Next of
// chunk n-1's stored hash and chunk n, and chunk 0's must be Next of the
// job's seed. Where every link holds, the stored hashes are the chain
// recomputed from the seed, so this is the same verdict, at the same first
// bad seq, as recomputing it whole; and it lets chunk 0 wait for the seed
// until Result, for an export whose job line comes after its chunks.
type Verifier struct {
	job Job
	// tip is the stored hash of the last chunk added.
	tip    []byte
	n      int
	broken bool
	res    Result
	// first is chunk 0, checked against the seed in Result.
	first *Chunk
	// last is the data of the last chunk added, for the finish chunk
	// rule: only the last one is parsed, once, in Result.
	last []byte
	// What an erased job is checked by, kept for every job since an
	// export's job line (which says whether it was erased) may come after
	// its chunks: the first seq gap and the first chunk not erased, the
	// last stored hash, and the SHA-256 of the stored hashes.
	gap, unerased *int
	lastHash      []byte
	hashes        hash.Hash
}

// NewVerifier starts verifying job. Its Seed may be left zero when the
// job's row is only read later and given to ResultFor.
func NewVerifier(job Job) *Verifier {
	return &Verifier{job: job}
}

// Add checks the next stored chunk (chunks must come in seq order). It
// keeps c.Data until the next Add (and chunk 0's until Result): the caller
// must not modify it.
func (v *Verifier) Add(c Chunk) {
	defer func() { v.n++ }()
	v.last = c.Data
	v.addErased(c)
	if v.broken {
		return
	}
	if c.Seq != v.n {
		v.fail(v.n, reasonMissing(v.n))
		return
	}
	if c.Seq == 0 {
		first := c
		v.first, v.tip = &first, c.Hash
		return
	}
	var prev Hash
	copy(prev[:], v.tip)
	if h := Next(prev, c.Seq, c.StreamType, c.Data); len(v.tip) != Size || !bytes.Equal(c.Hash, h[:]) {
		v.fail(c.Seq, reasonMismatch(c.Seq))
		return
	}
	v.tip = c.Hash
}

// addErased keeps what verifying an erased job needs.
func (v *Verifier) addErased(c Chunk) {
	if v.hashes == nil {
		v.hashes = sha256.New()
	}
	if v.gap == nil && c.Seq != v.n {
		seq := v.n
		v.gap = &seq
	}
	if v.unerased == nil && string(c.Data) != ErasedText {
		seq := c.Seq
		v.unerased = &seq
	}
	v.hashes.Write(c.Hash)
	v.lastHash = c.Hash
}

// resultErased is the verdict on an erased job: its links cannot be
// recomputed (the data is gone), but its seed, its seq, its seal and the
// hashes its erasure kept can.
func (v *Verifier) resultErased(job Job) Result {
	r := Result{Chunks: v.n}
	e := job.Erased
	tip := job.Seed[:]
	if v.n > 0 {
		tip = v.lastHash
	}
	var sum []byte
	if v.hashes != nil {
		sum = v.hashes.Sum(nil)
	} else {
		empty := sha256.Sum256(nil)
		sum = empty[:]
	}
	switch {
	case job.StoredSeed != nil && !bytes.Equal(job.StoredSeed, job.Seed[:]):
		r.Reason = ReasonSeed
	case !e.RequestErased:
		r.Reason = ReasonErasedRequest
	case v.gap != nil:
		r.FirstBadSeq, r.Reason = v.gap, reasonMissing(*v.gap)
	case v.unerased != nil:
		r.FirstBadSeq, r.Reason = v.unerased, reasonNotErased(*v.unerased)
	case !job.Terminal || job.ChunkCount == nil || job.FinalHash == nil:
		r.Reason = ReasonNoFinalHash
	case v.n < *job.ChunkCount:
		seq := v.n
		r.FirstBadSeq, r.Reason = &seq, reasonTruncated(v.n, *job.ChunkCount)
	case v.n > *job.ChunkCount:
		seq := *job.ChunkCount
		r.FirstBadSeq, r.Reason = &seq, reasonExtra(v.n, *job.ChunkCount)
	case !bytes.Equal(job.FinalHash, tip):
		r.Reason = ReasonFinalHash
	case e.ChunkHashes == nil:
		r.Reason = ReasonErasedNoEvent
	case !bytes.Equal(e.ChunkHashes, sum):
		r.Reason = ReasonErasedHashes
	default:
		r.OK, r.Reason = true, ReasonErased(e.By, e.At, e.Reason)
	}
	return r
}

func (v *Verifier) fail(seq int, reason string) {
	v.broken = true
	v.res.FirstBadSeq = &seq
	v.res.Reason = reason
}

// Result is the verdict on the chunks added so far.
//
// A finished job whose chain and seal check out must still end with a
// finish chunk, whatever its status: completed (the model's finish reason,
// or "length" at the chunk cap), failed ("error", from the worker or from
// the rescuer of a job whose worker died) and cancelled ("cancelled", from
// the worker or from the cancel of a queued job) all append it in the
// transaction that sets the status (internal/worker's jobRun.end with
// store.WriteBatch; store.RescueExpired and store.RequestCancel with
// ChunkAppendLocked). A job that never got a terminal status (queued,
// running) has none.
func (v *Verifier) Result() Result { return v.ResultFor(v.job) }

// ResultFor is Result for job's recorded end, where job is the one the
// Verifier was started for but its row was read after the chunks (an
// export's job line may come after its chunk lines).
func (v *Verifier) ResultFor(job Job) Result {
	if job.Erased != nil {
		return v.resultErased(job)
	}
	r := v.res
	r.Chunks = v.n
	if job.StoredSeed != nil && !bytes.Equal(job.StoredSeed, job.Seed[:]) {
		return Result{Chunks: v.n, Reason: ReasonSeed}
	}
	tip := job.Seed
	if v.first != nil {
		// Chunk 0 comes before any other break.
		h := Next(job.Seed, 0, v.first.StreamType, v.first.Data)
		if !bytes.Equal(v.first.Hash, h[:]) {
			seq := 0
			return Result{Chunks: v.n, FirstBadSeq: &seq, Reason: reasonMismatch(0)}
		}
		copy(tip[:], v.tip)
	}
	if v.broken {
		return r
	}
	switch {
	case !job.Terminal:
		r.OK, r.Reason = true, ReasonIntactRunning
	case job.ChunkCount == nil || job.FinalHash == nil:
		r.Reason = ReasonNoFinalHash
	case v.n < *job.ChunkCount:
		seq := v.n
		r.FirstBadSeq, r.Reason = &seq, reasonTruncated(v.n, *job.ChunkCount)
	case v.n > *job.ChunkCount:
		seq := *job.ChunkCount
		r.FirstBadSeq, r.Reason = &seq, reasonExtra(v.n, *job.ChunkCount)
	case !bytes.Equal(job.FinalHash, tip[:]):
		r.Reason = ReasonFinalHash
	case v.n == 0 || !IsFinish(v.last):
		// Where the finish chunk is missing.
		seq := v.n
		r.FirstBadSeq, r.Reason = &seq, reasonNoFinish(v.n)
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
