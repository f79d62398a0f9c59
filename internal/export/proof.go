package export

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/jobstream/jobstream/internal/ledger"
)

// proofs collects, as CheckWith reads an export, its checkpoint lines and
// each job line's log members, kept small (never the request), and judges
// them at the end (report).
type proofs struct {
	notes []string
	lines []int // the checkpoint lines' numbers
	jobs  map[uuid.UUID]*jobProof
}

// jobProof is a job line's log members and the fields its job leaf
// covers, read from the line; problem is what made them unreadable.
type jobProof struct {
	fields  ledger.Job // EventCount and EventTip are the leaf's: the job line has neither
	logged  bool       // log_index or leaf present
	index   int64
	leaf    []byte
	proof   []tlog.Hash
	hasPath bool // inclusion_proof present
	problem string
}

func (p *proofs) checkpoint(n int, note string) {
	p.notes = append(p.notes, note)
	p.lines = append(p.lines, n)
}

// job reads a job line that parseLine accepted: its members are
// well-formed as far as the chain needs them; the rest is checked here.
func (p *proofs) job(id uuid.UUID, raw []byte) {
	if p.jobs == nil {
		p.jobs = map[uuid.UUID]*jobProof{}
	}
	j := &jobProof{}
	p.jobs[id] = j
	var l struct {
		Tenant         string           `json:"tenant"`
		Engine         string           `json:"engine"`
		RequestSHA256  string           `json:"request_sha256"`
		ChainVersion   int64            `json:"chain_version"`
		Status         string           `json:"status"`
		ChunkCount     *int64           `json:"chunk_count"`
		FinalHash      *string          `json:"final_hash"`
		CreatedAt      json.RawMessage  `json:"created_at"`
		FinishedAt     json.RawMessage  `json:"finished_at"`
		LogIndex       json.RawMessage  `json:"log_index"`
		Leaf           json.RawMessage  `json:"leaf"`
		InclusionProof *json.RawMessage `json:"inclusion_proof"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		j.problem = fmt.Sprintf("its job line cannot be read: %v", err)
		return
	}
	f := ledger.Job{ID: id, Tenant: l.Tenant, Engine: l.Engine, RequestSHA256: hexHash(l.RequestSHA256),
		ChainVersion: l.ChainVersion, Status: l.Status, ChunkCount: l.ChunkCount}
	if l.FinalHash != nil {
		if f.FinalHash = hexHash(*l.FinalHash); len(f.FinalHash) == 0 {
			j.problem = "its final_hash is not a SHA-256 in hex"
			return
		}
	}
	var ok bool
	if f.CreatedAt, ok = jsonTime(l.CreatedAt); !ok {
		j.problem = "its created_at is not a time"
		return
	}
	if !isNull(l.FinishedAt) {
		t, ok := jsonTime(l.FinishedAt)
		if !ok {
			j.problem = "its finished_at is not null or a time"
			return
		}
		f.FinishedAt = &t
	}
	j.fields = f
	if isNull(l.LogIndex) && isNull(l.Leaf) && l.InclusionProof == nil {
		return
	}
	j.logged = true
	n, err := strconv.ParseInt(string(l.LogIndex), 10, 64)
	if err != nil || n < 0 {
		j.problem = "its log_index is not a leaf index"
		return
	}
	j.index = n
	var s string
	if !isString(l.Leaf) || json.Unmarshal(l.Leaf, &s) != nil {
		j.problem = "its leaf is not a base64 string"
		return
	}
	if j.leaf, err = base64.StdEncoding.Strict().DecodeString(s); err != nil {
		j.problem = "its leaf is not a base64 string"
		return
	}
	if l.InclusionProof == nil || isNull(*l.InclusionProof) {
		return
	}
	var hs []string
	if json.Unmarshal(*l.InclusionProof, &hs) != nil || !bytes.HasPrefix(*l.InclusionProof, []byte("[")) {
		j.problem = "its inclusion_proof is not a list of base64 hashes"
		return
	}
	j.hasPath = true
	j.proof = make([]tlog.Hash, len(hs))
	for i, h := range hs {
		b, err := base64.StdEncoding.Strict().DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			j.problem = "its inclusion_proof is not a list of base64 hashes"
			return
		}
		copy(j.proof[i][:], b)
	}
}

// jsonTime reads a JSON string holding an RFC 3339 time.
func jsonTime(v json.RawMessage) (time.Time, bool) {
	var s string
	if !isString(v) || json.Unmarshal(v, &s) != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// report judges the proofs, for the jobs in ids (the export's jobs in the
// order first named): the checkpoint must be there once and open with the
// verifier key; then each job's leaf must be its job line's (re-derived
// from the line's fields, the leaf's event count and tip aside, which the
// line does not carry) and, when the checkpoint covers its index, proven
// included in the checkpoint's tree. A job without a leaf, or whose leaf
// came after the checkpoint, is not yet logged: reported, not broken.
func (p *proofs) report(w io.Writer, key string, ids []uuid.UUID, sum *CheckSummary) {
	var cp ledger.Checkpoint
	switch {
	case len(p.notes) == 0:
		sum.CheckpointBad = true
		fmt.Fprintln(w, "checkpoint BAD: the export holds no checkpoint line: no job's proof can be checked")
		fmt.Fprintln(w, "proofs not checked")
		return
	case len(p.notes) > 1:
		sum.CheckpointBad = true
		fmt.Fprintf(w, "checkpoint BAD: the export holds %d checkpoint lines (lines %s), want one\n", len(p.notes), joinInts(p.lines))
		fmt.Fprintln(w, "proofs not checked")
		return
	}
	cp, err := ledger.OpenCheckpoint([]byte(p.notes[0]), key)
	if err != nil {
		sum.CheckpointBad = true
		fmt.Fprintf(w, "checkpoint BAD: %v\n", err)
		fmt.Fprintln(w, "proofs not checked")
		return
	}
	for _, id := range ids {
		j := p.jobs[id]
		if j == nil {
			continue // no job line: Check reported it broken
		}
		bad, notLogged := j.judge(cp)
		switch {
		case bad != "":
			sum.ProofBad++
			fmt.Fprintf(w, "%s PROOF BAD: %s\n", id, bad)
		case notLogged != "":
			sum.NotLogged++
			fmt.Fprintf(w, "%s NOT YET LOGGED: %s\n", id, notLogged)
		default:
			sum.Proven++
		}
	}
	fmt.Fprintf(w, "proofs against checkpoint %s of size %d: %d jobs included, %d not yet logged, %d bad\n",
		cp.Origin, cp.Size, sum.Proven, sum.NotLogged, sum.ProofBad)
}

// judge says what is wrong with a job's leaf or proof (bad), or why it
// is not proven yet (notLogged); both "" when it is proven.
func (j *jobProof) judge(cp ledger.Checkpoint) (bad, notLogged string) {
	if j.problem != "" {
		return j.problem, ""
	}
	if !j.logged {
		return "", "the export carries no leaf for it"
	}
	v, err := ledger.Decode(j.leaf)
	if err != nil {
		return fmt.Sprintf("its leaf %d cannot be read: %v", j.index, err), ""
	}
	leaf, ok := v.(*ledger.Job)
	if !ok || leaf.ID != j.fields.ID {
		return fmt.Sprintf("its leaf %d is not this job's job leaf", j.index), ""
	}
	want := j.fields
	want.EventCount, want.EventTip = leaf.EventCount, leaf.EventTip
	if !bytes.Equal(want.Encode(), j.leaf) {
		return fmt.Sprintf("its job line does not match its leaf %d (%s)", j.index, strings.Join(differ(&want, leaf), ", ")), ""
	}
	if j.index >= cp.Size {
		if j.hasPath {
			return fmt.Sprintf("its leaf %d is beyond the checkpoint's %d leaves, yet it has an inclusion proof", j.index, cp.Size), ""
		}
		return "", fmt.Sprintf("its leaf %d came after the checkpoint's %d leaves", j.index, cp.Size)
	}
	if !j.hasPath {
		return fmt.Sprintf("the checkpoint covers its leaf %d, but the export has no inclusion proof for it", j.index), ""
	}
	if err := tlog.CheckRecord(j.proof, cp.Size, cp.Root, j.index, tlog.RecordHash(j.leaf)); err != nil {
		return fmt.Sprintf("its leaf %d is not included in the checkpoint's tree: %v", j.index, err), ""
	}
	return "", ""
}

// differ names the job line's members that are not its leaf's.
func differ(line, leaf *ledger.Job) []string {
	var out []string
	add := func(same bool, name string) {
		if !same {
			out = append(out, name)
		}
	}
	add(line.Tenant == leaf.Tenant, "tenant")
	add(line.Engine == leaf.Engine, "engine")
	add(bytes.Equal(line.RequestSHA256, leaf.RequestSHA256), "request_sha256")
	add(line.ChainVersion == leaf.ChainVersion, "chain_version")
	add(line.Status == leaf.Status, "status")
	add((line.ChunkCount == nil) == (leaf.ChunkCount == nil) && (line.ChunkCount == nil || *line.ChunkCount == *leaf.ChunkCount), "chunk_count")
	add(bytes.Equal(line.FinalHash, leaf.FinalHash), "final_hash")
	add(line.CreatedAt.UnixMicro() == leaf.CreatedAt.UnixMicro(), "created_at")
	add((line.FinishedAt == nil) == (leaf.FinishedAt == nil) && (line.FinishedAt == nil || line.FinishedAt.UnixMicro() == leaf.FinishedAt.UnixMicro()), "finished_at")
	if len(out) == 0 {
		out = append(out, "its encoding")
	}
	return out
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
