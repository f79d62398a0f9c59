package export

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/chain"
)

// CheckSummary counts what Check found.
type CheckSummary struct {
	// Jobs is the number of jobs the export names (by a job line or a
	// chunk line); Intact + Broken = Jobs.
	Jobs, Intact, Broken int
	// Malformed is the number of lines that could not be read as a
	// checkpoint, job, chunk or event line.
	Malformed int
	// With a verifier key (CheckWith): Proven jobs whose leaf matches
	// their job line and is included in the checkpoint, NotLogged jobs
	// without a leaf the checkpoint covers, ProofBad jobs whose leaf or
	// proof fails; CheckpointBad when the export's checkpoint is missing,
	// repeated or does not open with the key.
	Proven, NotLogged, ProofBad int
	CheckpointBad               bool
}

// OK reports whether the export verifies: at least one job, every job
// intact, every line well-formed.
func (s CheckSummary) OK() bool {
	return s.Jobs > 0 && s.Broken == 0 && s.Malformed == 0 && s.ProofBad == 0 && !s.CheckpointBad
}

// Check verifies an export offline, as the Python checker in this
// package's README.md does, message for message (a test runs both on the
// same files): every job's chain from its seed, seq gap-free from 0 in
// file order, chunk_count and final_hash against its job line, and the
// finish chunk rule of chain.Verifier. Jobs are followed by id, so chunk
// lines may come before their job line and jobs may interleave; a chunk
// line whose job has no job line, a job with two, and a line that is not a
// well-formed job, chunk or event line are reported, never skipped.
//
// It writes one line to w per malformed line (as it reads them), then one
// per broken job (in the order the export first names them), then a
// summary. It keeps one chain state per job, not the chunks. The error is
// only a failure to read r or write w.
func Check(r io.Reader, w io.Writer) (CheckSummary, error) {
	return CheckWith(r, w, CheckOptions{})
}

// CheckOptions are what an auditor brings beyond the export.
type CheckOptions struct {
	// VerifierKey, when set, is the transparency log's verifier key: the
	// export's checkpoint line must open with it, and each job's leaf and
	// inclusion proof are checked against it (see checkProofs).
	VerifierKey string
}

// CheckWith is Check, then, with a verifier key, the log's proofs: after
// Check's summary line it writes one line per job whose proof fails or
// that is not logged yet, then a proofs summary. Without a key it is Check
// and ignores the checkpoint line and the job lines' log members, as the
// Python checker does.
func CheckWith(r io.Reader, w io.Writer, opts CheckOptions) (CheckSummary, error) {
	type job struct {
		id   uuid.UUID
		v    *chain.Verifier
		line chain.Job // from the job line, when there is exactly one
		seen int       // job lines
	}
	jobs := map[uuid.UUID]*job{}
	var order []*job
	var (
		sum   CheckSummary
		pr    proofs
		prove = opts.VerifierKey != ""
	)
	out := bufio.NewWriter(w)
	in := bufio.NewReader(r)
	for n := 1; ; n++ {
		raw, err := in.ReadBytes('\n')
		if len(raw) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return sum, fmt.Errorf("read export: %w", err)
		}
		l, problem := parseLine(raw)
		if problem != "" {
			sum.Malformed++
			fmt.Fprintf(out, "line %d: %s\n", n, problem)
			continue
		}
		if l.typ == TypeCheckpoint {
			if prove {
				pr.checkpoint(n, l.note)
			}
			continue
		}
		if l.typ == TypeEvent {
			continue
		}
		j := jobs[l.id]
		if j == nil {
			j = &job{id: l.id, v: chain.NewVerifier(chain.Job{ID: l.id})}
			jobs[l.id] = j
			order = append(order, j)
		}
		if l.typ == TypeJob {
			j.seen++
			j.line = l.job
			if prove {
				pr.job(l.id, raw)
			}
			continue
		}
		j.v.Add(l.chunk)
	}
	for _, j := range order {
		sum.Jobs++
		var res chain.Result
		switch {
		case j.seen == 0:
			res.Reason = reasonNoJobLine
		case j.seen > 1:
			res.Reason = reasonJobLines(j.seen)
		default:
			res = j.v.ResultFor(j.line)
		}
		if res.OK {
			sum.Intact++
			continue
		}
		sum.Broken++
		if res.FirstBadSeq != nil {
			fmt.Fprintf(out, "%s BROKEN at seq %d: %s\n", j.id, *res.FirstBadSeq, res.Reason)
		} else {
			fmt.Fprintf(out, "%s BROKEN: %s\n", j.id, res.Reason)
		}
	}
	if sum.Jobs == 0 {
		fmt.Fprintln(out, "nothing verified: the export holds no job")
	}
	fmt.Fprintf(out, "%d jobs verified: %d intact, %d broken", sum.Jobs, sum.Intact, sum.Broken)
	if sum.Malformed > 0 {
		fmt.Fprintf(out, ", %d malformed lines", sum.Malformed)
	}
	fmt.Fprintln(out)
	if prove {
		ids := make([]uuid.UUID, len(order))
		for i, j := range order {
			ids[i] = j.id
		}
		pr.report(out, opts.VerifierKey, ids, &sum)
	}
	if err := out.Flush(); err != nil {
		return sum, fmt.Errorf("write report: %w", err)
	}
	return sum, nil
}

// Reasons an export's job is broken beyond those of chain.Result, shared
// word for word with the README's Python checker.
const reasonNoJobLine = "its job line is missing"

func reasonJobLines(n int) string { return fmt.Sprintf("it has %d job lines", n) }

// line is one parsed job or chunk line (or an event line, of which
// nothing is checked but that it is one).
type line struct {
	typ   string
	note  string // a checkpoint line's
	id    uuid.UUID
	job   chain.Job
	chunk chain.Chunk
}

// field is one required member of a line: its name, a check that keeps
// what it read, and what the check wants, for the message.
type field struct {
	name  string
	check func(json.RawMessage) bool
	want  string
}

// parseLine reads one line of an export, or says what is wrong with it.
// The checks, their order and their messages are the Python checker's.
func parseLine(raw []byte) (line, string) {
	if !utf8.Valid(raw) {
		return line{}, "not UTF-8"
	}
	if !json.Valid(raw) {
		return line{}, "not JSON"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return line{}, "not a JSON object"
	}
	var (
		l                            line
		status, hash, tenant, engine string
		version                      int
		requestSHA                   []byte
		fields                       []field
	)
	str := func(dst *string) func(json.RawMessage) bool {
		return func(v json.RawMessage) bool { return isString(v) && json.Unmarshal(v, dst) == nil }
	}
	str(&l.typ)(obj["type"])
	switch l.typ {
	case TypeJob:
		fields = []field{
			{"id", func(v json.RawMessage) bool { return jobID(v, &l.id) }, "a job id"},
			{"status", func(v json.RawMessage) bool { return str(&status)(v) && knownStatus(status) }, "a job status"},
			{"chunk_count", func(v json.RawMessage) bool {
				if isNull(v) {
					return true
				}
				n, ok := count(v)
				l.job.ChunkCount = &n
				return ok
			}, "null or a count"},
			{"final_hash", func(v json.RawMessage) bool {
				var s string
				if isNull(v) {
					return true
				}
				ok := str(&s)(v)
				l.job.FinalHash = hexHash(s)
				return ok
			}, "null or a string"},
			{"chain_version", func(v json.RawMessage) bool {
				n, ok := count(v)
				version = n
				return ok && (n == 1 || n == 2)
			}, "1 or 2"},
			{"request_sha256", func(v json.RawMessage) bool {
				var s string
				ok := str(&s)(v)
				requestSHA = hexHash(s)
				return ok && len(requestSHA) == chain.Size
			}, "a SHA-256 in hex"},
			{"tenant", str(&tenant), "a string"},
			{"engine", str(&engine), "a string"},
			{"erased", func(v json.RawMessage) bool {
				if isNull(v) {
					return true
				}
				e, ok := erasure(v)
				l.job.Erased = e
				return ok
			}, "null or an erasure"},
		}
	case TypeChunk:
		fields = []field{
			{"job_id", func(v json.RawMessage) bool { return jobID(v, &l.id) }, "a job id"},
			{"seq", func(v json.RawMessage) bool {
				n, ok := count(v)
				l.chunk.Seq = n
				return ok
			}, "a count"},
			{"stream_type", str(&l.chunk.StreamType), "a string"},
			{"data", func(v json.RawMessage) bool {
				var s string
				ok := str(&s)(v)
				l.chunk.Data = []byte(s)
				return ok
			}, "a string"},
			{"hash", str(&hash), "a string"},
		}
	case TypeCheckpoint:
		fields = []field{{"note", str(&l.note), "a string"}}
	case TypeEvent:
	default:
		return line{}, "type is not checkpoint, job, chunk or event"
	}
	for _, f := range fields {
		if !f.check(obj[f.name]) {
			return line{}, fmt.Sprintf("malformed %s line: %s is not %s", l.typ, f.name, f.want)
		}
	}
	l.job.ID, l.job.Terminal = l.id, terminal(status)
	if l.typ == TypeJob {
		if version == 1 {
			l.job.Seed = chain.Seed(l.id)
		} else {
			l.job.Seed = chain.SeedV2Of(l.id, tenant, engine, requestSHA)
		}
	}
	l.chunk.Hash = hexHash(hash)
	return l, ""
}

// erasure reads a job line's erased member: an object whose by, at and
// reason are strings and chunk_hashes_sha256 a SHA-256 in hex. The
// request is not checked (an export writes it decoded): its hash is.
func erasure(v json.RawMessage) (*chain.Erased, bool) {
	var obj map[string]json.RawMessage
	if !bytes.HasPrefix(v, []byte("{")) || json.Unmarshal(v, &obj) != nil {
		return nil, false
	}
	var by, at, reason, hashes string
	for name, dst := range map[string]*string{"by": &by, "at": &at, "reason": &reason, "chunk_hashes_sha256": &hashes} {
		if !isString(obj[name]) || json.Unmarshal(obj[name], dst) != nil {
			return nil, false
		}
	}
	h := hexHash(hashes)
	if len(h) != chain.Size {
		return nil, false
	}
	return &chain.Erased{By: by, Reason: reason, RequestErased: true, ChunkHashes: h}, true
}

func isNull(v json.RawMessage) bool   { return v == nil || string(v) == "null" }
func isString(v json.RawMessage) bool { return len(v) > 0 && v[0] == '"' }

// jobID reads a job id in its canonical form only (lowercase, hyphens,
// no braces or urn: prefix), so that one job has one spelling, as Python's
// str(uuid.UUID(v)) == v demands.
func jobID(v json.RawMessage, dst *uuid.UUID) bool {
	var s string
	if !isString(v) || json.Unmarshal(v, &s) != nil {
		return false
	}
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return false
	}
	*dst = id
	return true
}

// count reads an integer in [0, 2^31): a JSON number without fraction or
// exponent (Python's json reads those as float, never as int).
func count(v json.RawMessage) (int, bool) {
	if len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9') || bytes.ContainsAny(v, ".eE") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 || n >= 1<<31 {
		return 0, false
	}
	return int(n), true
}

func knownStatus(s string) bool {
	switch s {
	case "queued", "running":
		return true
	}
	return terminal(s)
}

func terminal(s string) bool { return s == "completed" || s == "failed" || s == "cancelled" }

// hexHash is a hash written in lowercase hex, as the export writes it,
// decoded; anything else (uppercase included, which Python's string
// comparison would not accept either) decodes to a non-nil value that
// matches no hash.
func hexHash(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != chain.Size || hex.EncodeToString(b) != s {
		return []byte{}
	}
	return b
}
